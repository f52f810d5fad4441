/**
 * The Redis side of a global rate limit: one token bucket per key, updated atomically by a Lua
 * script (Redis runs a script alone, so concurrent instances cannot both spend one token).
 *
 * The bucket is a hash `{ tk: tokens, ts: last refill time }`. Time comes from Redis `TIME`
 * inside the script, never from the instances, so instance clocks may disagree freely. A call
 * asks for up to `want` tokens (a batch the instance then spends locally) and gets
 * `[granted, waitMs]`: how many it got (0..want), and, when the bucket could not cover the whole
 * request, how long until it could (so the instance knows when asking again is worth it).
 *
 * The key expires once it would be full again anyway (burst / rate + 1 s), so idle limits cost
 * Redis no memory. A missing key is a full bucket; a bucket above `burst` (the burst was
 * lowered) is cut to it; a Redis clock that steps back (failover) earns nothing.
 *
 * Redis >= 5 (effects replication is the default, so writing after `TIME` is allowed); one key
 * per call, so Redis Cluster works too. Sent with EVALSHA, falling back to EVAL once after a
 * restart flushed the script cache (NOSCRIPT).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export const TOKEN_BUCKET_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local v = redis.call('HMGET', KEYS[1], 'tk', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then
  tokens = burst
elseif now > ts then
  tokens = tokens + (now - ts) * rate / 1000
else
  now = ts
end
if tokens > burst then tokens = burst end
local granted = math.floor(tokens + 1e-9)
if granted > want then granted = want end
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tk', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
local need = want
if need > burst then need = burst end
local wait = 0
if granted < want and tokens < need then wait = math.ceil((need - tokens) * 1000 / rate) end
return { granted, wait }
`;

const SHA = createHash('sha1').update(TOKEN_BUCKET_LUA).digest('hex');

export interface BucketReply {
  granted: number;
  waitMs: number;
}

export interface BucketRequest {
  key: string;
  requestsPerSecond: number;
  burst: number;
  want: number;
}

function parse(reply: unknown): BucketReply {
  if (Array.isArray(reply) && typeof reply[0] === 'number' && typeof reply[1] === 'number') return { granted: reply[0], waitMs: reply[1] };
  throw new TypeError(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** Takes up to `want` tokens from the bucket at `key`; rejects on any Redis failure. */
export async function takeTokens(client: Redis, r: BucketRequest): Promise<BucketReply> {
  const args = [r.key, r.requestsPerSecond, r.burst, r.want] as const;
  try {
    return parse(await client.evalsha(SHA, 1, ...args));
  } catch (err) {
    if (!isNoScript(err)) throw err;
    return parse(await client.eval(TOKEN_BUCKET_LUA, 1, ...args));
  }
}
