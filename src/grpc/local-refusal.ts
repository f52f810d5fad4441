/**
 * Calls grpc-js refused itself, before anything reached the network: a request message larger
 * than the channel's `grpc.max_send_message_length`, or one its serializer rejected. grpc-js
 * ends such a call with an ordinary status (RESOURCE_EXHAUSTED, INTERNAL), which would otherwise
 * read as a failure of the endpoint: outlier detection ejecting a healthy endpoint, the breaker
 * opening, the retry budget spent on a call that fails the same way everywhere. The caller made
 * the mistake (DESIGN: "an error the caller made is never charged to an endpoint, a breaker or a
 * budget, and is never retried"), so these are recognised by grpc-js's own wording (its
 * compression filter and client interceptor, grpc-js ~1.14) and classified as ignorable: the
 * caller gets grpc-js's status unchanged, the metrics outcome is `invalid_argument`.
 */
import { status as Status } from '@grpc/grpc-js';

const PREFIXES: ReadonlyMap<number, readonly string[]> = new Map([
  // Not "Sent message larger than max": that is a server refusing to send its response.
  [Status.RESOURCE_EXHAUSTED, ['Attempted to send message with a size larger than']],
  [Status.INTERNAL, ['Request message serialization failure']],
]);

/** Whether a status with `code` and `details` is grpc-js refusing the call locally. */
export function isLocalRefusal(code: number, details: string): boolean {
  const prefixes = PREFIXES.get(code);
  if (prefixes === undefined) return false;
  for (const p of prefixes) if (details.startsWith(p)) return true;
  return false;
}
