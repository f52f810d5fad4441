/**
 * The loader limits a caller may set for one load (`loadConfig(source, { limits })`,
 * `meshClient({ configLimits })`, the control plane's `configLimits`): how many documents, how
 * many YAML nodes and how many bytes per file. The other limits (nesting, string and list
 * lengths, regex size...) bound the work of one document and stay fixed (limits.ts).
 *
 * The token budget follows the node budget (four tokens per node, the default ratio: whitespace,
 * line breaks and comments are tokens too), so raising `maxYamlNodes` alone is enough.
 *
 * Values are checked: whole numbers from 1 up to a ceiling past which one load would need
 * gigabytes (the ceilings below); anything else is a TRELLIS_CONFIG_INVALID naming the option.
 */
import { ConfigInvalidError } from '../core/errors.js';
import type { ConfigIssue } from '../core/errors.js';
import { didYouMean } from '../core/did-you-mean.js';
import { LIMITS } from './limits.js';

/** Loader limits for one load; each one left out keeps its default. */
export interface ConfigLimits {
  /** Most documents across all sources of one load. Default 10,000. */
  maxDocuments?: number;
  /** Most YAML nodes (scalars, collections, entries, aliases) across all sources of one load. Default 100,000. */
  maxYamlNodes?: number;
  /** Largest YAML text per file or text, in bytes. Default 4 MiB. */
  maxTextBytes?: number;
}

/** The limits in force for one load, every one set. */
export interface EffectiveConfigLimits {
  readonly maxDocuments: number;
  readonly maxYamlNodes: number;
  readonly maxYamlTokens: number;
  readonly maxTextBytes: number;
}

/** Highest value each limit accepts. */
export const CONFIG_LIMIT_CEILINGS = {
  maxDocuments: 1_000_000,
  maxYamlNodes: 10_000_000,
  maxTextBytes: 256 * 1024 * 1024,
} as const;

const TOKENS_PER_NODE = LIMITS.maxYamlTokens / LIMITS.maxYamlNodes;

export const DEFAULT_CONFIG_LIMITS: EffectiveConfigLimits = Object.freeze({
  maxDocuments: LIMITS.maxDocuments,
  maxYamlNodes: LIMITS.maxYamlNodes,
  maxYamlTokens: LIMITS.maxYamlTokens,
  maxTextBytes: LIMITS.maxTextBytes,
});

const NAMES = Object.keys(CONFIG_LIMIT_CEILINGS) as (keyof typeof CONFIG_LIMIT_CEILINGS)[];

/** What is wrong with `limits` as an option (`option` names it in messages: `limits`, `meshClient.configLimits`). */
export function configLimitProblems(limits: unknown, option: string): { path: string; message: string }[] {
  if (limits === undefined) return [];
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
    return [{ path: option, message: `expected an object such as { maxDocuments: 5000, maxYamlNodes: 500000 }, got ${Array.isArray(limits) ? 'an array' : JSON.stringify(limits) ?? String(limits)}` }];
  }
  const out: { path: string; message: string }[] = [];
  const record = limits as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) {
    if (!(NAMES as string[]).includes(key)) {
      out.push({ path: `${option}.${key.slice(0, 64)}`, message: `unknown limit${didYouMean(key, NAMES)}; the loader limits that can be set are ${NAMES.join(', ')}` });
      continue;
    }
    if (value === undefined) continue;
    const ceiling = CONFIG_LIMIT_CEILINGS[key as keyof typeof CONFIG_LIMIT_CEILINGS];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > ceiling) {
      const shown = typeof value === 'number' ? String(value) : typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value;
      out.push({ path: `${option}.${key}`, message: `expected a whole number from 1 to ${ceiling}, got ${shown}` });
    }
  }
  return out;
}

/**
 * The limits in force for a load given `limits` (undefined: the defaults).
 * @throws ConfigInvalidError naming each bad limit (`file` says whose option it is).
 */
export function resolveConfigLimits(limits: ConfigLimits | undefined, file: string, option = 'limits'): EffectiveConfigLimits {
  if (limits === undefined) return DEFAULT_CONFIG_LIMITS;
  const problems = configLimitProblems(limits, option);
  if (problems.length > 0) throw new ConfigInvalidError(problems.map((p): ConfigIssue => ({ file, document: 0, path: p.path, message: p.message })));
  const nodes = limits.maxYamlNodes ?? LIMITS.maxYamlNodes;
  return Object.freeze({
    maxDocuments: limits.maxDocuments ?? LIMITS.maxDocuments,
    maxYamlNodes: nodes,
    maxYamlTokens: Math.max(LIMITS.maxYamlTokens, nodes * TOKENS_PER_NODE),
    maxTextBytes: limits.maxTextBytes ?? LIMITS.maxTextBytes,
  });
}
