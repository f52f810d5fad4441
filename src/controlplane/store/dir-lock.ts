/**
 * The embedded store's single-writer lock: a file `lock` in the store directory, created
 * exclusively (O_EXCL), holding the owner's pid and, on Linux, its start time. A lock whose
 * process is gone (or whose pid now belongs to a process started at another time: pid reuse) is
 * stale and taken over; a live one refuses the open with StoreLockedError naming the pid.
 *
 * Taking over a stale lock renames it aside first and checks that what was renamed is the stale
 * lock read before, so two processes racing over one stale lock cannot both win.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreLockedError } from './store.js';

interface LockContent {
  readonly pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22), when known. */
  readonly start?: string | undefined;
}

export interface DirLock {
  readonly file: string;
  release(): Promise<void>;
}

/** Start time of `pid` (Linux), or undefined where /proc is not there. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

function alive(content: LockContent): boolean {
  try {
    process.kill(content.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a live process of another user.
  }
  if (content.start === undefined) return true;
  const now = startTime(content.pid);
  return now === undefined || now === content.start;
}

function parse(text: string): LockContent | undefined {
  try {
    const v = JSON.parse(text) as { pid?: unknown; start?: unknown };
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined;
    return { pid: v.pid, start: typeof v.start === 'string' ? v.start : undefined };
  } catch {
    return undefined;
  }
}

export async function acquireDirLock(dir: string): Promise<DirLock> {
  const file = join(dir, 'lock');
  const mine = JSON.stringify({ pid: process.pid, start: startTime(process.pid) });
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(mine);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return {
        file,
        async release() {
          // Only our own lock: never remove one another process took over.
          const text = await readFile(file, 'utf8').catch(() => '');
          if (text === mine) await unlink(file).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // released meanwhile
    const held = parse(text);
    // A lock file being written right now reads empty or partial: give its writer a moment.
    if (held === undefined && attempt < 3) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (held !== undefined && alive(held)) throw new StoreLockedError(dir, held.pid, file);
    const aside = `${file}.stale.${randomBytes(6).toString('hex')}`;
    try {
      await rename(file, aside);
    } catch {
      continue; // someone else moved it
    }
    const moved = await readFile(aside, 'utf8').catch(() => '');
    if (moved !== text) {
      // We moved a fresh lock another process had just taken: put it back unless a third took the place.
      await link(aside, file).catch(() => {});
    }
    await unlink(aside).catch(() => {});
  }
  const text = await readFile(file, 'utf8').catch(() => '');
  throw new StoreLockedError(dir, parse(text)?.pid ?? 0, file);
}
