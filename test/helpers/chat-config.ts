/**
 * The config the upgrade tests share: a strict-mTLS Mesh and a `chat` Service whose inbound side
 * lets only `c` open `/rooms/*` (so `c` is allowed and any other caller refused with 403).
 */
import { TRUST_DOMAIN } from './identities.js';

/** The Mesh document (strict mTLS) followed by `chat` (with an endpoint on `port`, when given). */
export function strictChatConfig(port: number | undefined): string {
  return `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TRUST_DOMAIN}, mtls: strict }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: chat }
spec:
${port !== undefined ? `  endpoints: ["127.0.0.1:${port}"]\n` : ''}  inbound:
    authorization: { allow: [ { from: [c], paths: ["/rooms/*"] } ] }
`;
}
