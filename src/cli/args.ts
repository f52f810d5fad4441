/**
 * Option readers shared by commands: each turns a raw parseArgs value into what the command
 * needs, or throws a UsageError that names the option and says what was expected.
 */
import { parseDuration } from '../core/duration.js';
import { isServiceName, isTrustDomain } from '../tls/spiffe.js';
import { UsageError, type CliIo, type OptionValues } from './command.js';

export function requiredString(values: OptionValues, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`);
  return v;
}

export function optionalString(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function serviceOption(values: OptionValues, name = 'service'): string {
  const v = requiredString(values, name);
  if (!isServiceName(v)) throw new UsageError(`--${name} "${v.slice(0, 64)}" is not a valid service name (a DNS label: lowercase letters, digits and "-", at most 63)`);
  return v;
}

export function trustDomainOption(values: OptionValues, name = 'trust-domain'): string {
  const v = requiredString(values, name);
  if (!isTrustDomain(v)) throw new UsageError(`--${name} "${v.slice(0, 64)}" is not a valid trust domain (lowercase letters, digits, ".", "-", "_")`);
  return v;
}

/** A duration option (`24h`, `90m`), in ms; `fallback` when absent. */
export function durationOption(values: OptionValues, name: string, fallback: number): number {
  const v = optionalString(values, name);
  if (v === undefined) return fallback;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new UsageError(`--${name} "${v.slice(0, 64)}" is not a positive duration (e.g. 90s, 30m, 24h)`);
  return ms;
}

/** A secret read from the environment variable an option names (secrets never go on the command line). */
export function secretFromEnv(values: OptionValues, name: string, io: CliIo): string | undefined {
  const variable = optionalString(values, name);
  if (variable === undefined) return undefined;
  const secret = io.env[variable];
  if (secret === undefined || secret.length === 0) throw new UsageError(`--${name}: environment variable ${variable} is not set or empty`);
  return secret;
}
