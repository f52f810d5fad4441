/**
 * Schema building blocks shared by the Mesh, Service and route schemas: names, durations,
 * labels, HTTP tokens, paths, regexes and retry conditions. Each block refuses bad input with a
 * message that quotes the value (the rest of the messages come from `issues.ts`).
 *
 * Invariants: schemas never fill in defaults (that is `normalize.ts`, so a route can tell which
 * retry fields it wrote); leaf values are checked and converted here — durations become
 * milliseconds, numeric status codes strings — so normalization needs no second parse.
 */

import { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { describeValue } from './issues.js';
import { LIMITS } from './limits.js';
import { regexProblem } from './config-regex.js';

/** A string that passes `test`, refused with `message(value)` otherwise. */
export function checkedString(test: (s: string) => boolean, message: (s: string) => string, max = 253) {
  return z
    .string()
    .max(max)
    .refine(test, { error: (iss) => message(typeof iss.input === 'string' ? iss.input : String(iss.input)) });
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Resource and route names: an RFC 1123 DNS label (lowercase, digits, `-`, 1-63 characters). */
export const nameSchema = checkedString(
  (s) => DNS_LABEL.test(s),
  (s) => `invalid name ${describeValue(s)} (lowercase letters, digits and "-", 1-63 characters, starting and ending with a letter or digit)`,
  63,
);

/** Longest timer Node can arm (setTimeout overflows past 2^31-1 ms): 24 days. */
export const MAX_TIMER_MS = 24 * 86_400_000;

function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * A duration string (`250ms`, `2s`, `1m30s`, `24h`, or `0`), converted to milliseconds.
 * `min` and `max` bound it; `positive` refuses 0.
 */
export function durationMs(opts: { min?: number; max?: number; positive?: boolean } = {}) {
  const min = opts.min ?? 0;
  const max = opts.max ?? MAX_TIMER_MS;
  return z.unknown().transform((value, ctx): number => {
    const fail = (message: string): never => {
      ctx.addIssue({ code: 'custom', message, input: value });
      return z.NEVER;
    };
    if (value === undefined) return fail('required field is missing');
    // YAML reads a bare `0` as a number; it means "none" wherever 0 is allowed.
    const ms = value === 0 ? 0 : typeof value === 'string' ? parseDuration(value) : undefined;
    if (ms === undefined) {
      const hint = typeof value === 'number' ? 'durations are strings with a unit: ' : 'use ';
      return fail(`invalid duration ${describeValue(value)} (${hint}250ms, 2s, 1m, 24h)`);
    }
    if (ms === 0 && opts.positive === true) return fail(`duration ${describeValue(value)} must be greater than 0`);
    if (ms < min) return fail(`duration ${describeValue(value)} is too short (at least ${formatMs(min)})`);
    if (ms > max) return fail(`duration ${describeValue(value)} is too long (at most ${formatMs(max)})`);
    return ms;
  });
}

export const percentSchema = z.number().min(0).max(100);

export function intSchema(min: number, max: number) {
  return z.int().min(min).max(max);
}

const LABEL_KEY = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Whether `key` is a label key Service documents accept (`version`, `example.org/tier`). */
export function isLabelKey(key: string): boolean {
  return key.length <= 253 && LABEL_KEY.test(key);
}

/** Whether `value` is a label value Service documents accept (up to 63 letters, digits, "-", "_", "."). */
export function isLabelValue(value: string): boolean {
  return LABEL_VALUE.test(value);
}

/** Labels as Kubernetes writes them: `{ version: v1 }`; keys may carry a `prefix/`. */
export const labelsSchema = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  const keys = Object.keys(labels);
  if (keys.length > 64) ctx.addIssue({ code: 'custom', message: `has ${keys.length} labels (at most 64)`, input: labels });
  for (const key of keys) {
    if (key.length > 253 || !LABEL_KEY.test(key)) {
      ctx.addIssue({ code: 'custom', path: [key], message: `invalid label key ${describeValue(key)} (letters, digits, "-", "_", ".", optionally "prefix/")`, input: key });
    }
    const value = labels[key] ?? '';
    if (!LABEL_VALUE.test(value)) {
      ctx.addIssue({ code: 'custom', path: [key], message: `invalid label value ${describeValue(value)} (up to 63 letters, digits, "-", "_", ".")`, input: value });
    }
  }
});

/** A string or a list of them (`pathPrefix: /a` or `pathPrefix: [/a, /b]`). */
export function stringOrList<T extends z.ZodType<string>>(item: T, max: number) {
  return z.union([item, z.array(item).min(1).max(max)]);
}

const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;
export const methodSchema = checkedString(
  (s) => METHOD.test(s),
  (s) => `invalid method ${describeValue(s)} (HTTP methods are uppercase tokens, e.g. GET, POST)`,
  32,
);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
export function isHeaderName(s: string): boolean {
  return s.length <= 256 && TOKEN.test(s);
}
export const headerNameSchema = checkedString(isHeaderName, (s) => `invalid header name ${describeValue(s)}`, 256);

const URL_PATH = /^\/[^\s?#]*$/;
/** A literal URL path: starts with `/`, no spaces, query or fragment. */
export const urlPathSchema = checkedString(
  (s) => URL_PATH.test(s),
  (s) => `invalid path ${describeValue(s)} (starts with "/", without spaces, "?" or "#")`,
  LIMITS.maxStringLength,
);

/** A regex from config: valid RE2 syntax, at most 1 KiB, and a bounded RE2 program (`config-regex.ts`). */
export const regexSchema = z.string().superRefine((source, ctx) => {
  const problem = regexProblem(source);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `regex ${describeValue(source)} ${problem}`, input: source });
});

export const MTLS_MODES = ['strict', 'permissive', 'off'] as const;
export const mtlsSchema = z.enum(MTLS_MODES);

/** gRPC status codes in kebab case, as `retries.on` and `fault.abort.grpcStatus` write them. */
export const GRPC_STATUS_NAMES = [
  'cancelled', 'unknown', 'invalid-argument', 'deadline-exceeded', 'not-found', 'already-exists',
  'permission-denied', 'resource-exhausted', 'failed-precondition', 'aborted', 'out-of-range',
  'unimplemented', 'internal', 'unavailable', 'data-loss', 'unauthenticated',
] as const;
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number];

export const grpcStatusSchema = z.enum(GRPC_STATUS_NAMES, {
  error: (iss) => `unknown gRPC status ${describeValue(iss.input)} (kebab case: ${GRPC_STATUS_NAMES.join(', ')})`,
});

const RETRY_KEYWORDS = ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx', 'retriable-4xx'];
const RETRY_CONDITIONS = new Set<string>([...RETRY_KEYWORDS, ...GRPC_STATUS_NAMES]);

/** A `retries.on` entry, normalized to a string (`503` and `"503"` are both `"503"`). */
export const retryConditionSchema = z.unknown().transform((value, ctx): string => {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 100 && value <= 599) return String(value);
  if (typeof value === 'string') {
    if (RETRY_CONDITIONS.has(value)) return value;
    if (/^[1-5]\d\d$/.test(value)) return value;
  }
  ctx.addIssue({
    code: 'custom',
    input: value,
    message: `unknown retry condition ${describeValue(value)} (use ${RETRY_KEYWORDS.join(', ')}, a status code 100-599, or a gRPC status name such as unavailable)`,
  });
  return z.NEVER;
});
