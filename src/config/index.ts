/**
 * The configuration module's public surface: loading and validating config (YAML files, text or
 * parsed documents) into the normalized `MeshConfig` the rest of Trellis consumes, plus the
 * regex compiler that route and authorization matchers must use for config regexes.
 */

export { loadConfig, parseConfigText, parseConfigDocuments, INLINE, type ConfigSource, type LoadConfigOptions, type ParseConfigOptions } from './load.js';
export { CONFIG_LIMIT_CEILINGS, type ConfigLimits } from './config-limits.js';
export { compileMatcherRegex, regexProblem, type ConfigRegex } from './config-regex.js';
export { LIMITS as CONFIG_LIMITS } from './limits.js';
export type * from './types.js';
