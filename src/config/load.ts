/**
 * The entry points for configuration: `loadConfig` (a file path, YAML text, several files, or
 * parsed objects), `parseConfigText` (YAML already in memory) and `parseConfigDocuments`
 * (objects, as the control-plane API delivers them). All end in `assembleConfig`, so every
 * source is held to the same schema, limits and checks, and fails with one ConfigInvalidError
 * listing every problem.
 *
 * Files are read with a size cap (never more than `maxTextBytes` + 1 byte, 4 MiB by default, whatever the file is), so a
 * path to a huge file or a device cannot exhaust memory.
 */

import { open } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigInvalidError, type ConfigIssue } from '../core/errors.js';
import { assembleConfig } from './assemble.js';
import { resolveConfigLimits, type ConfigLimits } from './config-limits.js';
import type { MeshConfig } from './types.js';
import type { DocumentCache } from './document-cache.js';
import { formatBytes, loadBudget, objectSource, yamlSource, type ParsedSource } from './yaml-source.js';

/** A file path, YAML text, several files, or already-parsed documents. */
export type ConfigSource = string | object | readonly object[] | readonly string[];

export interface LoadConfigOptions {
  /** Directory that relative file paths are resolved against. Default: the working directory. */
  baseDir?: string;
  /**
   * Loader limits for this load (documents, YAML nodes, bytes per file); each one left out keeps
   * its default. A value that is not a whole number from 1 to its ceiling is refused
   * (TRELLIS_CONFIG_INVALID). See docs/configuration.md, "Limits and validation".
   */
  limits?: ConfigLimits;
}

/** Options of parseConfigText and parseConfigDocuments. */
export interface ParseConfigOptions {
  /** As LoadConfigOptions.limits. */
  limits?: ConfigLimits;
}

const OPTIONS_FILE = 'loadConfig options';

/** Name used in messages for text and objects passed in directly. */
export const INLINE = '<inline>';

/** YAML text rather than a path: it spans lines or starts like a document. */
function isYamlText(s: string): boolean {
  return s.includes('\n') || s.trimStart().startsWith('apiVersion');
}

/** Reads a file as UTF-8 text, at most the size limit (plus one byte, to detect going over). */
async function readCapped(path: string, limit: number): Promise<{ text: string } | { problem: string }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { problem: 'file not found' };
    if (code === 'EACCES') return { problem: 'permission denied' };
    if (code === 'EISDIR') return { problem: 'is a directory, not a file' };
    return { problem: `cannot open: ${err instanceof Error ? err.message : String(err)}` };
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) return { problem: 'is a directory, not a file' };
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    // The file's size as stat saw it (a pipe or a growing file says less: then only "over").
    if (length > limit) return { problem: `file is ${stat.size > limit ? `${stat.size} bytes, ` : ''}over the ${formatBytes(limit)} limit (maxTextBytes)` };
    try {
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length)) };
    } catch {
      return { problem: 'file is not valid UTF-8' };
    }
  } catch (err) {
    return { problem: `cannot read: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    await handle.close();
  }
}

function fileIssue(file: string, message: string): ConfigIssue {
  return { file, document: 0, path: '', message };
}

/**
 * Loads and validates configuration.
 *
 * @example
 * const config = await loadConfig('./mesh.yaml');
 * const products = config.services.get('products');
 */
export async function loadConfig(source: ConfigSource, options: LoadConfigOptions = {}): Promise<MeshConfig> {
  return loadConfigCached(source, options, undefined);
}

/**
 * `loadConfig` remembering its last good load in `cache`, so unchanged documents are not
 * validated again (document-cache.ts). What a mesh uses for its loads and reloads.
 */
export async function loadConfigCached(source: ConfigSource, options: LoadConfigOptions, cache: DocumentCache | undefined): Promise<MeshConfig> {
  resolveConfigLimits(options.limits, OPTIONS_FILE); // bad limits fail before any file is read
  if (typeof source === 'string') return loadStrings([source], options, cache);
  if (Array.isArray(source)) {
    const items: readonly unknown[] = source;
    if (items.every((s) => typeof s === 'string')) return loadStrings(items as readonly string[], options, cache);
    if (items.some((s) => typeof s === 'string')) {
      throw new ConfigInvalidError([fileIssue(INLINE, 'a list of sources holds either file paths or parsed documents, not both')]);
    }
    return parseConfigDocumentsCached(items, INLINE, options, cache);
  }
  return parseConfigDocumentsCached([source], INLINE, options, cache);
}

async function loadStrings(items: readonly string[], options: LoadConfigOptions, cache: DocumentCache | undefined): Promise<MeshConfig> {
  const limits = resolveConfigLimits(options.limits, OPTIONS_FILE);
  const texts = await Promise.all(
    items.map(async (item): Promise<{ file: string; text: string } | { file: string; problem: string }> => {
      if (isYamlText(item)) return { file: INLINE, text: item };
      const file = options.baseDir !== undefined && !isAbsolute(item) ? join(options.baseDir, item) : item;
      return { file, ...(await readCapped(resolve(file), limits.maxTextBytes)) };
    }),
  );
  const budget = loadBudget(limits);
  const sources: ParsedSource[] = texts.map((t) =>
    // A relative path is shown as given, plus where it was looked for (the working directory is rarely obvious).
    'text' in t ? yamlSource(t.text, t.file, budget) : { file: t.file, documents: [], issues: [fileIssue(t.file, isAbsolute(t.file) ? t.problem : `${t.problem} (looked for ${resolve(t.file)})`)] },
  );
  return assembleConfig(sources, cache);
}

/** Validates YAML text already in memory (one or more `---`-separated documents). */
export function parseConfigText(text: string, fileName: string = INLINE, options: ParseConfigOptions = {}): MeshConfig {
  return assembleConfig([yamlSource(text, fileName, loadBudget(resolveConfigLimits(options.limits, OPTIONS_FILE)))]);
}

/** Validates already-parsed documents (objects shaped as the YAML documents are). */
export function parseConfigDocuments(documents: readonly unknown[], fileName: string = INLINE, options: ParseConfigOptions = {}): MeshConfig {
  return parseConfigDocumentsCached(documents, fileName, options, undefined);
}

/** `parseConfigDocuments` with a cache of the last good load (document-cache.ts). */
export function parseConfigDocumentsCached(documents: readonly unknown[], fileName: string, options: ParseConfigOptions, cache: DocumentCache | undefined): MeshConfig {
  return assembleConfig([objectSource(documents, fileName, loadBudget(resolveConfigLimits(options.limits, OPTIONS_FILE)))], cache);
}
