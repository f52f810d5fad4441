/**
 * An instance in its own process for the control-plane end-to-end tests: a `meshClient`
 * configured, registered and certified by the control plane (`controlPlane` + `token` +
 * `cacheDir`, nothing else), serving `{ server, service }` with the mesh's inbound side (mTLS from
 * the control plane's CA), and calling other services through the mesh when told to.
 *
 * Argument: one JSON object `{ name, service, urls, token?, cacheDir, port?, labels?, serve? }`.
 * Stdout, one line each: `PORT <n>` once serving (or `READY` with `serve: false`);
 * `EVENT control-plane <state> <url>`; `EVENT config <service,...>` (the Services in the configuration in force);
 * `EVENT configured <service> <n>` (endpoints in its configuration, after each config change);
 * `EVENT endpoints <service> <n>` (the destination's endpoint set changed); and for each stdin line `call SERVICE N` the line
 * `RESULT {"ok":n,"failed":m,"servers":{...},"seenAs":{...},"errors":{...}}`
 * (`seenAs`: the caller as the server verified it from the mTLS certificate) after N sequential calls.
 * SIGTERM closes the mesh (deregisters, drains) and exits 0.
 */
import { createInterface } from 'node:readline';
import { meshClient } from 'trellis';

interface Args {
  name: string;
  service: string;
  urls: string[];
  token?: string;
  cacheDir: string;
  port?: number;
  labels?: Record<string, string>;
  serve?: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const out = (line: string): void => void process.stdout.write(`${line}\n`);
const mesh = await meshClient({
  service: args.service,
  controlPlane: args.urls,
  ...(args.token !== undefined ? { token: args.token } : {}),
  cacheDir: args.cacheDir,
  labels: args.labels ?? { name: args.name },
  logger: { warn: (m) => process.stderr.write(`[${args.name}] ${m}\n`) },
});
mesh.on('control-plane', (e: { state: string; url: string }) => out(`EVENT control-plane ${e.state} ${e.url}`));
const services = (): string => [...(mesh.config?.services.keys() ?? [])].sort().join(',');
// What each Service's configuration lists now (registry endpoints arrive in the snapshot).
const configured = (): void => {
  for (const [name, svc] of mesh.config?.services ?? []) out(`EVENT configured ${name} ${svc.endpoints?.length ?? 0}`);
};
mesh.on('config', () => {
  out(`EVENT config ${services()}`);
  configured();
});
mesh.on('endpoints', (e: { service: string; endpoints: readonly unknown[] }) => out(`EVENT endpoints ${e.service} ${e.endpoints.length}`));
out(`EVENT config ${services()}`);
configured();

if (args.serve !== false) {
  const server = await mesh.serve(
    (req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ server: args.name, service: args.service, caller: req.trellis?.peer.service ?? null }));
    },
    { port: args.port ?? 0 },
  );
  out(`PORT ${server.port}`);
} else out('READY');

async function call(service: string, n: number): Promise<void> {
  const result = { ok: 0, failed: 0, servers: {} as Record<string, number>, seenAs: {} as Record<string, number>, errors: {} as Record<string, number> };
  for (let i = 0; i < n; i++) {
    try {
      const res = await mesh.http(service).request({ method: 'GET', path: '/' });
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        result.failed++;
        result.errors[`HTTP ${res.statusCode}`] = (result.errors[`HTTP ${res.statusCode}`] ?? 0) + 1;
        continue;
      }
      const answer = JSON.parse(text) as { server: string; caller: string | null };
      result.ok++;
      result.servers[answer.server] = (result.servers[answer.server] ?? 0) + 1;
      const seen = answer.caller ?? 'unverified';
      result.seenAs[seen] = (result.seenAs[seen] ?? 0) + 1;
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      result.failed++;
      result.errors[code] = (result.errors[code] ?? 0) + 1;
    }
  }
  out(`RESULT ${JSON.stringify(result)}`);
}

let queue = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  const [verb, service = '', n = '1'] = line.trim().split(/\s+/);
  if (verb === 'call') queue = queue.then(() => call(service, Number(n)));
});
process.stdin.on('end', () => {});
process.on('SIGTERM', () => {
  void mesh.close({ drainTimeoutMs: 2000 }).then(() => process.exit(0));
});
