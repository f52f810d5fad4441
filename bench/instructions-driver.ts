/**
 * The client side of bench/instructions.ts, run under callgrind: sends `warm` requests of one
 * contender (bench/contenders.ts) with 32 (or `concurrency`) in flight, prints `READY` and waits for a line on
 * stdin (meanwhile the parent zeroes callgrind's counters), sends `count` requests, prints
 * `DONE <failed>` and waits for another line (the parent dumps the counters), then exits. A 5 ms
 * interval keeps the process running while it waits: callgrind reads its control commands only
 * while the program runs. Not meant to be run by hand.
 *
 *   node --import tsx bench/instructions-driver.ts <contender> <warm> <count> <port,port,port> [concurrency]
 */
import { benchClients, CONTENDER_KEYS } from './contenders.js';
import { FULL_POLICY } from './bench-service.js';
import type { ContenderKey } from './contenders.js';

const [key, warmArg, countArg, portsArg, concurrencyArg] = process.argv.slice(2);
if (!CONTENDER_KEYS.includes(key as ContenderKey) || portsArg === undefined) {
  process.stderr.write(`usage: instructions-driver.ts <${CONTENDER_KEYS.join('|')}> <warm> <count> <ports>\n`);
  process.exit(2);
}
const CONCURRENCY = Number(concurrencyArg ?? 32);
// The full stack of bench/bench-service.ts, with its timeouts made long enough for valgrind's
// ~50× slowdown (the same code runs; only the durations differ).
const policy = Object.values({
  ...FULL_POLICY,
  timeout: 'timeout: 120s',
  retries: FULL_POLICY.retries.replace('perTryTimeout: 500ms', 'perTryTimeout: 60s'),
});
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

const line = (): Promise<void> => new Promise((resolve) => process.stdin.once('data', () => resolve()));
const tick = setInterval(() => undefined, 5);
await run(Number(warmArg));
failed = 0;
process.stdout.write('READY\n');
await line();
await run(Number(countArg));
process.stdout.write(`DONE ${failed}\n`);
await line();
clearInterval(tick);
await clients.close();
process.exit(0);
