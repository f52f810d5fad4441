/**
 * Sliding windows as a ring of fixed time slots (10 s each, 61 of them: ten minutes and the
 * slot being filled). A report's counts go into the slot of the moment it arrives; a window is
 * the sum of the slots it covers. A slot that the ring comes back to is emptied first, which is
 * how the series of an instance that left expire: nothing outlives ten minutes without new
 * reports, and memory is bounded by (series per slot) x (slots).
 */
import type { Cell } from './cell.js';
import { mergeCell, newCell } from './cell.js';

export const SLOT_MS = 10_000;
/** Ten minutes of full slots and the current one. */
export const SLOTS = 61;

interface Slot {
  /** Absolute slot number: floor(epoch ms / SLOT_MS). */
  readonly index: number;
  readonly cells: Map<string, Cell>;
}

export class SlotRing {
  readonly #slots: (Slot | undefined)[] = new Array<Slot | undefined>(SLOTS).fill(undefined);

  /** The cell of `key` in the slot holding `atMs`, created on first use. */
  cell(atMs: number, key: string): Cell {
    const index = Math.floor(atMs / SLOT_MS);
    const pos = index % SLOTS;
    let slot = this.#slots[pos];
    if (slot === undefined || slot.index !== index) {
      slot = { index, cells: new Map() };
      this.#slots[pos] = slot;
    }
    let c = slot.cells.get(key);
    if (c === undefined) slot.cells.set(key, (c = newCell()));
    return c;
  }

  /**
   * Merged cells of the keys `pick` accepts over the slots from `slotsBack` slots before the one
   * holding `nowMs` up to it; `pick` maps a key to the series it counts for (or undefined).
   */
  window(nowMs: number, slotsBack: number, pick: (key: string) => string | undefined): Map<string, Cell> {
    const cur = Math.floor(nowMs / SLOT_MS);
    const out = new Map<string, Cell>();
    for (const slot of this.#slots) {
      if (slot === undefined || slot.index > cur || slot.index < cur - slotsBack) continue;
      for (const [key, cell] of slot.cells) {
        const series = pick(key);
        if (series === undefined) continue;
        let into = out.get(series);
        if (into === undefined) out.set(series, (into = newCell()));
        mergeCell(into, cell);
      }
    }
    return out;
  }

  /** Per slot, oldest first, the merged cell of the keys `pick` accepts (one entry per slot, empty cells included). */
  series(nowMs: number, slotsBack: number, pick: (key: string) => string | undefined): { startMs: number; cells: Map<string, Cell> }[] {
    const cur = Math.floor(nowMs / SLOT_MS);
    const byIndex = new Map<number, Slot>();
    for (const s of this.#slots) if (s !== undefined) byIndex.set(s.index, s);
    const out: { startMs: number; cells: Map<string, Cell> }[] = [];
    for (let i = cur - slotsBack; i <= cur; i++) {
      const cells = new Map<string, Cell>();
      for (const [key, cell] of byIndex.get(i)?.cells ?? []) {
        const series = pick(key);
        if (series === undefined) continue;
        let into = cells.get(series);
        if (into === undefined) cells.set(series, (into = newCell()));
        mergeCell(into, cell);
      }
      out.push({ startMs: i * SLOT_MS, cells });
    }
    return out;
  }

  /** Drops slots older than ten minutes before `nowMs` (a quiet fleet releases its memory). */
  prune(nowMs: number): void {
    const cur = Math.floor(nowMs / SLOT_MS);
    for (let i = 0; i < SLOTS; i++) {
      const s = this.#slots[i];
      if (s !== undefined && s.index <= cur - SLOTS) this.#slots[i] = undefined;
    }
  }

  /** Cells held (for the memory figure and tests of expiry). */
  size(): number {
    let n = 0;
    for (const s of this.#slots) n += s?.cells.size ?? 0;
    return n;
  }
}
