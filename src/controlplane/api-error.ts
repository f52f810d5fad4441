/**
 * How the control-plane API says no: every refusal is `{ "error": { "code", "message",
 * "issues"? } }` with a stable `TRELLIS_*` code and an HTTP status. Handlers throw; the router
 * turns what they throw into that body through `toApiError`, the only mapping from errors to
 * statuses here.
 *
 * Statuses follow `ERROR_CODES`, except where the API's meaning differs from the data plane's:
 * an invalid configuration is the caller's fault here (400, not 500), and a few refusals of the
 * HTTP exchange itself (405, 413, 415) carry TRELLIS_INVALID_ARGUMENT with their own status.
 */
import { ConfigInvalidError, ERROR_CODES, isTrellisError, type ConfigIssue, type ErrorCode } from '../core/errors.js';
import { StoreConflictError, StoreUnavailableError } from './store/store.js';

/** One problem of a refused apply, as the API reports it. */
export interface ApiIssue {
  readonly file: string;
  readonly document: number;
  readonly path: string;
  readonly message: string;
  readonly line?: number | undefined;
}

/** A refusal with its HTTP status, code, message and (for configuration) issues. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly issues: readonly ApiIssue[] | undefined;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: ApiError['code'], message: string, options: { issues?: readonly ApiIssue[]; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.issues = options.issues;
    this.headers = options.headers ?? {};
  }
}

function issueOf(i: ConfigIssue): ApiIssue {
  return { file: i.file, document: i.document, path: i.path, message: i.message, ...(i.line !== undefined ? { line: i.line } : {}) };
}

/** The API's answer to whatever a handler threw. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ConfigInvalidError) return new ApiError(400, 'TRELLIS_CONFIG_INVALID', err.detail, { issues: err.issues.map(issueOf) });
  if (isTrellisError(err)) return new ApiError(ERROR_CODES[err.code].httpStatus, err.code, err.detail);
  if (err instanceof StoreConflictError) return new ApiError(409, 'TRELLIS_CONFLICT', err.message);
  if (err instanceof StoreUnavailableError) return new ApiError(503, 'TRELLIS_STORE_UNAVAILABLE', `the store is unavailable; nothing was written: ${err.message}`);
  return new ApiError(500, 'TRELLIS_UPSTREAM_ERROR', `internal error: ${err instanceof Error ? err.message : String(err)}`);
}

/** The JSON body of a refusal. */
export function errorBody(e: ApiError): { error: { code: string; message: string; issues?: readonly ApiIssue[] } } {
  return { error: { code: e.code, message: e.message, ...(e.issues !== undefined ? { issues: e.issues } : {}) } };
}
