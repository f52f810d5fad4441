/**
 * Sliding windows as a ring of fixed time slots (10 s each, 61 of them: ten minutes and the
 * slot being filled). A report's counts go into the slot of the moment it arrives; a window is
 * the sum of the slots it covers. A slot that the ring comes back to is emptied first, which is
 * how the series of an instance that left expire: nothing outlives ten minutes without new
 * reports, and memory is bounded by (series per slot) x (slots).
 *
 * Storage: each slot keeps its cells in one Float32Array slab (CELL_WIDTH numbers per cell,
 * grown by half when full) with, per kind of series, a Map from series key to offset. One
 * object per slot rather than per cell: measured with 1,000 reporting instances, per-cell
 * typed arrays cost about 480 bytes a cell against about 150 here. Kinds let a query read only
 * the series it needs (a fleet-wide stat never touches the per-instance ones).
 */
import type { Cell, CellValues, EdgeCounts } from './cell.js';
import { addEdgeAt, CELL_WIDTH, mergeAt, newCell } from './cell.js';

export const SLOT_MS = 10_000;
/** Ten minutes of full slots and the current one. */
export const SLOTS = 61;

class Slot {
  readonly index: number;
  data: Float32Array = new Float32Array(CELL_WIDTH * 32);
  used = 0;
  /** kind → series key → offset in `data`. */
  readonly kinds = new Map<string, Map<string, number>>();
  /** offset → requests by failure outcome (few cells have any). */
  failures: Map<number, Map<string, number>> | undefined;

  constructor(index: number) {
    this.index = index;
  }

  offsetOf(kind: string, key: string): number {
    let keys = this.kinds.get(kind);
    if (keys === undefined) this.kinds.set(kind, (keys = new Map()));
    let off = keys.get(key);
    if (off === undefined) {
      if (this.used + CELL_WIDTH > this.data.length) {
        const bigger = new Float32Array(Math.ceil((this.data.length * 1.5) / CELL_WIDTH) * CELL_WIDTH);
        bigger.set(this.data);
        this.data = bigger;
      }
      off = this.used;
      this.used += CELL_WIDTH;
      keys.set(key, off);
    }
    return off;
  }

  failuresAt(off: number): Map<string, number> {
    this.failures ??= new Map();
    let f = this.failures.get(off);
    if (f === undefined) this.failures.set(off, (f = new Map()));
    return f;
  }
}

export class SlotRing {
  readonly #slots: (Slot | undefined)[] = new Array<Slot | undefined>(SLOTS).fill(undefined);

  #slotAt(atMs: number): Slot {
    const index = Math.floor(atMs / SLOT_MS);
    const pos = index % SLOTS;
    let slot = this.#slots[pos];
    if (slot === undefined || slot.index !== index) {
      slot = new Slot(index);
      this.#slots[pos] = slot;
    }
    return slot;
  }

  /** Adds an edge's counts to series `key` of `kind` in the slot holding `atMs`. */
  add(atMs: number, kind: string, key: string, e: EdgeCounts, buckets: readonly number[]): void {
    const slot = this.#slotAt(atMs);
    const off = slot.offsetOf(kind, key);
    addEdgeAt(slot.data, off, () => slot.failuresAt(off), e, buckets);
  }

  #slotsIn(nowMs: number, slotsBack: number): Slot[] {
    const cur = Math.floor(nowMs / SLOT_MS);
    return this.#slots.filter((s): s is Slot => s !== undefined && s.index <= cur && s.index >= cur - slotsBack);
  }

  /** Merged cells per series key of `kind` (those `keep` accepts) over the slots from `slotsBack` before the one holding `nowMs` to it. */
  window(nowMs: number, slotsBack: number, kind: string, keep?: (key: string) => boolean): Map<string, Cell> {
    const out = new Map<string, Cell>();
    for (const slot of this.#slotsIn(nowMs, slotsBack)) mergeSlot(slot, kind, keep, out);
    return out;
  }

  /** Per slot, oldest first, the merged cells of `kind` (one entry per slot, empty slots included). */
  series(nowMs: number, slotsBack: number, kind: string, keep?: (key: string) => boolean): { startMs: number; cells: Map<string, Cell> }[] {
    const cur = Math.floor(nowMs / SLOT_MS);
    const byIndex = new Map(this.#slotsIn(nowMs, slotsBack).map((s) => [s.index, s]));
    const out: { startMs: number; cells: Map<string, Cell> }[] = [];
    for (let i = cur - slotsBack; i <= cur; i++) {
      const cells = new Map<string, Cell>();
      const slot = byIndex.get(i);
      if (slot !== undefined) mergeSlot(slot, kind, keep, cells);
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
    for (const s of this.#slots) n += (s?.used ?? 0) / CELL_WIDTH;
    return n;
  }
}

function mergeSlot(slot: Slot, kind: string, keep: ((key: string) => boolean) | undefined, out: Map<string, Cell>): void {
  const keys = slot.kinds.get(kind);
  if (keys === undefined) return;
  const data: CellValues = slot.data;
  for (const [key, off] of keys) {
    if (keep !== undefined && !keep(key)) continue;
    let into = out.get(key);
    if (into === undefined) out.set(key, (into = newCell()));
    mergeAt(into, data, off, slot.failures?.get(off));
  }
}
