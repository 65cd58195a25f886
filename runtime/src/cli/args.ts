import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SkeinError } from '@skein/core';

/** A usage error: the CLI prints it and exits 2. */
export class UsageError extends SkeinError {
  constructor(message: string) {
    super('ERR_MALFORMED_REQUEST', message);
  }
}

/** A command that could not do what it was asked: the CLI prints the message alone (no stack) and exits 1. */
export class CommandFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailed';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Strict flag parsing: unknown flags and missing values are usage errors that name the flag. */
export function parseFlags<T extends Options>(argv: string[], options: T): ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: false }>>['values'] {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

/** Parses a port flag: an integer 0..65535 (0 picks a free port). */
export function portFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--${name} must be a port number from 0 to 65535, not "${value}"`);
  return port;
}

/** Parses a size like `4Mi`, `512Ki`, `1048576`. */
export function sizeFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G|B)?$/.exec(value.trim());
  if (!match) throw new UsageError(`--${name} must be a size like 4Mi or 1048576, not "${value}"`);
  const unit = { B: 1, K: 1000, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[match[2] ?? 'B'] ?? 1;
  return Number(match[1]) * unit;
}
