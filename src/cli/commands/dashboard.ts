/**
 * `trellis dashboard [--address HOST:PORT] [--open]`: prints the URL of the control plane's
 * dashboard (its own listener, `trellis control-plane --dashboard HOST:PORT`, default
 * 127.0.0.1:7401), checks that something answers there, and with `--open` opens it in the
 * desktop's browser (xdg-open, open or start).
 */
import { spawn } from 'node:child_process';
import { optionalString } from '../args.js';
import { UsageError, type Command } from '../command.js';

export const DEFAULT_DASHBOARD = '127.0.0.1:7401';

function urlOf(address: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[2]) > 65535) throw new UsageError(`--address "${address.slice(0, 100)}" is not HOST:PORT (e.g. 127.0.0.1:7401)`);
  return `http://${m[1] ?? ''}:${m[2] ?? ''}/`;
}

function opener(url: string): { command: string; args: string[] } {
  if (process.platform === 'darwin') return { command: 'open', args: [url] };
  if (process.platform === 'win32') return { command: 'cmd', args: ['/c', 'start', '""', url] };
  return { command: 'xdg-open', args: [url] };
}

export const dashboard: Command = {
  path: ['dashboard'],
  summary: 'Print the URL of the control plane\'s dashboard (and open it with --open).',
  help: [
    `--address HOST:PORT   where the dashboard listens (default $TRELLIS_DASHBOARD or ${DEFAULT_DASHBOARD})`,
    '--open                open it in the browser',
  ],
  options: {
    address: { type: 'string' },
    open: { type: 'boolean' },
  },
  async run(values, io) {
    const url = urlOf(optionalString(values, 'address') ?? io.env.TRELLIS_DASHBOARD ?? DEFAULT_DASHBOARD);
    io.stdout(`${url}\n`);
    try {
      const res = await fetch(new URL('healthz', url), { signal: AbortSignal.timeout(3_000) });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`it answered ${res.status}`);
    } catch (err) {
      io.stderr(`error: no dashboard answers at ${url} (${(err as Error).message}): start it with trellis control-plane --dashboard HOST:PORT\n`);
      return 1;
    }
    if (values.open === true) {
      const { command, args } = opener(url);
      const opened = await new Promise<string | undefined>((resolve) => {
        const child = spawn(command, args, { stdio: 'ignore', detached: true });
        child.once('error', (err: NodeJS.ErrnoException) => resolve(`${command}: ${err.code ?? err.message}`));
        child.once('spawn', () => {
          child.unref();
          resolve(undefined);
        });
      });
      if (opened !== undefined) io.stderr(`warning: could not open a browser (${opened}); open ${url} yourself\n`);
    }
    return 0;
  },
};
