/**
 * Named loggers. `SKEIN_LOG=invoke,discovery` switches debug output on for those names (`*` for all);
 * `SKEIN_LOG_LEVEL` sets the threshold and `SKEIN_LOG_FORMAT=json` writes one JSON object a line.
 * Fields whose names look like secrets are redacted before they are written.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /token|secret|password|passphrase|authorization|api.?key|private.?key|credential|cookie/i;
/** Values known to be secret (resolved secrets, issued tokens); masked wherever they appear in a log line. */
const secretValues = new Set<string>();
/** Shorter values would mask ordinary words; such secrets are too weak to matter anyway. */
const MIN_SECRET_LENGTH = 4;

interface LogSettings {
  level: LogLevel;
  json: boolean;
  debugNames: Set<string>;
}

function readSettings(env: NodeJS.ProcessEnv): LogSettings {
  const level = (env['SKEIN_LOG_LEVEL'] ?? 'info') as LogLevel;
  return {
    level: level in LEVELS ? level : 'info',
    json: env['SKEIN_LOG_FORMAT'] === 'json',
    debugNames: new Set((env['SKEIN_LOG'] ?? '').split(',').map((name) => name.trim()).filter(Boolean)),
  };
}

let settings = readSettings(process.env);

/** Overrides the log settings (the CLI's `--log-level` and `--log-as-json`). */
export function configureLogging(options: { level?: LogLevel; json?: boolean }): void {
  settings = { ...settings, ...(options.level ? { level: options.level } : {}), ...(options.json === undefined ? {} : { json: options.json }) };
}

/**
 * Remembers a secret value so no log line ever shows it, whatever field or message it ends up in (field-name
 * redaction alone misses a secret inside an error message). Returns a function that forgets it again.
 */
export function registerSecretValue(value: string): () => void {
  if (value.length < MIN_SECRET_LENGTH) return () => undefined;
  secretValues.add(value);
  return () => void secretValues.delete(value);
}

/** `text` with every registered secret value replaced by `[redacted]`. */
export function maskSecretValues(text: string): string {
  let masked = text;
  for (const secret of secretValues) if (masked.includes(secret)) masked = masked.split(secret).join('[redacted]');
  return masked;
}

/** Replaces the values of secret-looking fields, and registered secret values anywhere, recursively. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskSecretValues(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_FIELD.test(key) ? '[redacted]' : redact(inner, depth + 1);
  }
  return out;
}

/** A named logger. */
export class Logger {
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  private enabled(level: LogLevel): boolean {
    if (level === 'debug') {
      const short = this.name.replace(/^skein\./, '');
      if (settings.debugNames.has('*') || settings.debugNames.has(short) || settings.debugNames.has(this.name)) return true;
    }
    return LEVELS[level] >= LEVELS[settings.level];
  }

  private write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const safe = fields ? (redact(fields) as Record<string, unknown>) : undefined;
    const text = maskSecretValues(msg);
    if (settings.json) {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, logger: this.name, msg: text, ...safe })}\n`);
      return;
    }
    const extra = safe && Object.keys(safe).length > 0 ? ` ${JSON.stringify(safe)}` : '';
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${this.name}: ${text}${extra}\n`);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields);
  }
}

/** The logger named `skein.<name>`. */
export function logger(name: string): Logger {
  return new Logger(`skein.${name}`);
}
