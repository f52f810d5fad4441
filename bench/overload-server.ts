/**
 * The overload benchmark's server, in its own process: a meshed `mesh.serve` whose handler
 * burns `--cpu-ms` of CPU synchronously (a CPU-bound service), with or without
 * `inbound.overload` (`--overload`). Prints `PORT <n>`; dies with its stdin, so it cannot
 * outlive the benchmark.
 */
import { parseArgs } from 'node:util';
import { meshClient } from 'trellis';

const { values } = parseArgs({ options: { 'cpu-ms': { type: 'string', default: '2' }, overload: { type: 'boolean', default: false } } });
const cpuMs = Number(values['cpu-ms']);
const overload = values.overload === true ? '  inbound:\n    overload: { eventLoop: { maxUtilization: 0.9, maxDelay: 50ms } }\n' : '';
const mesh = await meshClient({ service: 'work', config: `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: work }\nspec:\n  endpoints: [ 127.0.0.1:9 ]\n${overload}`, logger: { warn: () => undefined } });
const server = await mesh.serve((_req, res) => {
  const until = performance.now() + cpuMs;
  while (performance.now() < until) {
    // The work: CPU the event loop cannot share.
  }
  res.end('done');
});
console.log(`PORT ${server.port}`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
