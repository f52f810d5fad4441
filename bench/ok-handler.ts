/**
 * The upstream handler every HTTP benchmark answers with: the smallest honest response, a fixed
 * JSON body with its length, keep-alive (bench/upstream.ts, bench/sidecar-upstream.ts and
 * bench/path-profile.ts's inbound servers).
 */
import type http from 'node:http';

const body = Buffer.from('{"ok":true}');

export function okHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}
