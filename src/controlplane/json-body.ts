/**
 * JSON request bodies: parsed, then checked against a strict zod schema, so an unknown field is
 * refused (400) rather than ignored, and every problem is named by its field path.
 */
import { z } from 'zod';
import { ApiError } from './api-error.js';
import type { ApiRequest } from './router.js';

export async function jsonBody<T extends z.ZodType>(req: ApiRequest, schema: T): Promise<z.infer<T>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new ApiError(415, 'TRELLIS_INVALID_ARGUMENT', 'send the body as application/json');
  const bytes = await req.body();
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `the body is not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 20).map((i) => ({ file: '<request>', document: 0, path: i.path.join('.'), message: i.message }));
    throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `invalid request body: ${issues.map((i) => `${i.path === '' ? '<root>' : i.path}: ${i.message}`).join('; ')}`, { issues });
  }
  return parsed.data;
}
