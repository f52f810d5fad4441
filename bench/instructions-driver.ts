/**
 * The client side of bench/instructions.ts, run under callgrind: sends `warm` requests of one
 * contender (bench/contenders.ts) with 32 (or `concurrency`) in flight, prints `READY` and waits for a line on
 * stdin (meanwhile the parent zeroes callgrind's counters), sends `count` requests, prints
 * `DONE <failed>` and waits for another line (the parent dumps the counters), then exits. A 5 ms
 * interval keeps the process running while it waits: callgrind reads its control commands only
 * while the program runs. Not meant to be run by hand.
 *
 *   node --import tsx bench/instructions-driver.ts <contender> <warm> <count> <port,port,port> [concurrency] [drop]
 *
 * `drop`: FULL_POLICY keys (comma-separated) left out of the mesh's stack, for the ablation.
 */
import { benchClients, CONTENDER_KEYS } from './contenders.js';
import { FULL_POLICY } from './bench-service.js';
import type { ContenderKey } from './contenders.js';

const [key, warmArg, countArg, portsArg, concurrencyArg, dropArg] = process.argv.slice(2);
if (!CONTENDER_KEYS.includes(key as ContenderKey) || portsArg === undefined) {
  process.stderr.write(`usage: instructions-driver.ts <${CONTENDER_KEYS.join('|')}> <warm> <count> <ports>\n`);
  process.exit(2);
}
const CONCURRENCY = Number(concurrencyArg ?? 32);
// The full stack of bench/bench-service.ts, with its timeouts made long enough for valgrind's
// ~50× slowdown (the same code runs; only the durations differ).
const drop = new Set((dropArg ?? '').split(',').filter((k) => k !== ''));
const policy = Object.entries({
  ...FULL_POLICY,
  timeout: 'timeout: 120s',
  retries: FULL_POLICY.retries.replace('perTryTimeout: 500ms', 'perTryTimeout: 60s'),
})
  .filter(([k]) => !drop.has(k))
  .map(([, line]) => line);
const clients = await benchClients(portsArg.split(',').map(Number), () => undefined, policy);
const call = clients.calls[key as ContenderKey];
let failed = 0;

async function run(n: number): Promise<void> {
  let left = n;
  const loop = async (): Promise<void> => {
    while (left > 0) {
      left--;
      const ok = await call().catch(() => false);
      if (!ok) failed++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
}

/**
 * Waits for the parent's line, with a 5 ms interval keeping the process running meanwhile (so
 * callgrind reads its control commands). The interval stops before the counted requests: each of
 * its turns would be counted, and their number follows wall time, so a loaded machine (valgrind
 * is slower there) would add instructions per request (seen: ±10-20k between identical runs).
 */
async function line(): Promise<void> {
  const tick = setInterval(() => undefined, 5);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  clearInterval(tick);
}
await run(Number(warmArg));
failed = 0;
process.stdout.write('READY\n');
await line();
await run(Number(countArg));
process.stdout.write(`DONE ${failed}\n`);
await line();
await clients.close();
process.exit(0);
