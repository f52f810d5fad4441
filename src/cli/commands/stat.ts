/**
 * `trellis stat [SERVICE] [--window 1m] [-o table|json] [--watch]`: the mesh's golden metrics
 * from the control plane's `GET /v1/stat`, as `linkerd viz stat` prints them — one row per
 * service, or for one service its routes (weights and live split), instances (labels, config
 * ACK/NACK, certificate expiry) and edges. `--watch` redraws every `--interval` until Ctrl-C.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isServiceName } from '../../tls/spiffe.js';
import type { StatBody } from '../../controlplane/fleet/stat-body.js';
import { WINDOWS } from '../../controlplane/fleet/stat-body.js';
import { connectControlPlane, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS, type ControlPlaneConnection } from '../control-plane-client.js';
import { durationOption, optionalString } from '../args.js';
import { UsageError, type Command } from '../command.js';
import { formatStat } from '../stat-format.js';

/** Clears a terminal and puts the cursor home (one frame per redraw). */
const CLEAR = '\x1b[H\x1b[2J';

export const stat: Command = {
  path: ['stat'],
  summary: 'Show request rate, success rate and latency per service (or one service\'s routes, instances and edges).',
  positionals: { names: ['SERVICE'], required: 0 },
  help: [
    '--window 10s|1m|10m     the window the figures cover (default 1m)',
    '-o, --output table|json table (default) or the /v1/stat body as JSON',
    '--watch                 redraw until Ctrl-C',
    '--interval DURATION     time between redraws with --watch (default 2s)',
    ...CONTROL_PLANE_HELP,
  ],
  options: {
    window: { type: 'string' },
    output: { type: 'string', short: 'o' },
    watch: { type: 'boolean' },
    interval: { type: 'string' },
    ...CONTROL_PLANE_OPTIONS,
  },
  async run(values, io, positionals) {
    const service = positionals[0];
    if (service !== undefined && !isServiceName(service)) throw new UsageError(`"${service.slice(0, 64)}" is not a valid service name`);
    const window = optionalString(values, 'window') ?? '1m';
    if (WINDOWS[window] === undefined) throw new UsageError(`--window "${window.slice(0, 64)}" is not one of ${Object.keys(WINDOWS).join(', ')}`);
    const output = optionalString(values, 'output') ?? 'table';
    if (output !== 'table' && output !== 'json') throw new UsageError(`-o "${output.slice(0, 64)}" is not table or json`);
    const intervalMs = durationOption(values, 'interval', 2_000);
    const q = new URLSearchParams({ window, ...(service !== undefined ? { service } : {}) });
    // With --watch the connection is made again after a failure (the control plane restarted).
    let conn: ControlPlaneConnection | undefined;
    const frame = async (): Promise<string> => {
      conn ??= await connectControlPlane(values, io);
      try {
        const body = (await conn.call('GET', `/v1/stat?${q.toString()}`)).body as StatBody;
        return output === 'json' ? `${JSON.stringify(body, null, 2)}\n` : formatStat(body);
      } catch (err) {
        if (values.watch === true) {
          conn.close();
          conn = undefined;
        }
        throw err;
      }
    };
    if (values.watch !== true) {
      try {
        io.stdout(await frame());
      } finally {
        conn?.close();
      }
      return 0;
    }
    // Until Ctrl-C (or SIGTERM): a failed fetch shows its error and the next frame tries again.
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      while (!stop.signal.aborted) {
        let text: string;
        try {
          text = await frame();
        } catch (err) {
          text = `error: ${(err as Error).message}\n`;
        }
        io.stdout(`${CLEAR}Every ${intervalMs / 1000}s: trellis stat${service !== undefined ? ` ${service}` : ''} --window ${window}   ${new Date(io.clock.wall()).toISOString()}\n\n${text}`);
        await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      conn?.close();
    }
    return 0;
  },
};
