/**
 * The client side of bench/instructions.ts, run under valgrind: sends `warm` then `count`
 * requests of one contender (bench/contenders.ts) with 32 in flight, then exits. Prints
 * `DONE <failed>` on stdout. Not meant to be run by hand.
 *
 *   node --import tsx bench/instructions-driver.ts <contender> <warm> <count> <port,port,port>
 */
import { benchClients, CONTENDER_KEYS } from './contenders.js';
import { FULL_POLICY } from './bench-service.js';
import type { ContenderKey } from './contenders.js';

const [key, warmArg, countArg, portsArg] = process.argv.slice(2);
if (!CONTENDER_KEYS.includes(key as ContenderKey) || portsArg === undefined) {
  process.stderr.write(`usage: instructions-driver.ts <${CONTENDER_KEYS.join('|')}> <warm> <count> <ports>\n`);
  process.exit(2);
}
const CONCURRENCY = 32;
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

await run(Number(warmArg));
await run(Number(countArg));
await clients.close();
process.stdout.write(`DONE ${failed}\n`);
