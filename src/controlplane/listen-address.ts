/**
 * `HOST:PORT` as the `--listen` option takes it: `127.0.0.1:7400`, `[::1]:7400`,
 * `localhost:0` (port 0: any free port; the bound address is printed).
 */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** @throws TypeError naming what is wrong. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port > 65535) throw new TypeError(`listen address "${text.slice(0, 80)}" is not HOST:PORT (e.g. 127.0.0.1:7400, [::1]:7400)`);
  return { host: (m[1] ?? m[2]) as string, port };
}
