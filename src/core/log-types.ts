// The logger interface every layer uses (a pino-compatible subset), secret scrubbing, and a dependency-free default for the SDK.

/** pino's level names; `silent` logs nothing. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const logLevels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const levelRank: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** Structured fields of one line (stream, model, version, peer, provider, url, error, ...). */
export type LogFields = Record<string, unknown>;

/** `log.info('message')` or, as in pino, `log.info({ stream, model }, 'message')`: values go in fields, not in the text. */
export interface LogFn {
  (msg: string): void;
  (fields: LogFields, msg: string): void;
}

/** A pino `Logger` satisfies this; so does {@link createBasicLogger}. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger whose lines all carry `bindings` (e.g. `{ component: 'models' }`, `{ stream: 'cam-1' }`). */
  child(bindings: LogFields): Logger;
}

export const redacted = '[redacted]';

/** Field names whose values never reach a log line. */
export const secretKeyPattern =
  /^(?:password|passwd|pwd|token|access_?token|refresh_?token|authorization|secret|api_?key|client_?secret)$/i;
// scheme://user:password@host: the password goes, the user stays (it helps to diagnose a refused connection).
const urlCredentials = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/?#@"']*):([^\s/?#@"']+)@/gi;
// ?token=...&password=... in webhook or broker URLs.
const secretQueryParams = /([?&](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|sig|signature)=)[^&#\s"']+/gi;

/** Removes passwords from `scheme://user:password@host` and secret query parameters from any text. */
export function redactSecrets(text: string): string {
  if (!text.includes('=') && !text.includes('@')) return text;
  return text.replace(urlCredentials, `$1$2:${redacted}@`).replace(secretQueryParams, `$1${redacted}`);
}

/** A copy of `fields` with secret-named keys censored and credentials removed from strings (two levels deep). */
export function redactFields(fields: LogFields, depth = 2): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) out[key] = secretKeyPattern.test(key) ? redacted : redactValue(value, depth);
  return out;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth <= 1 || value === null || typeof value !== 'object' || value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth - 1));
  return redactFields(value as LogFields, depth - 1);
}

/** `KT_LOG_LEVEL` (or any text) as a level; undefined when it names none. */
export function parseLogLevel(text: string | undefined): LogLevel | undefined {
  const level = text?.trim().toLowerCase();
  return logLevels.find((l) => l === level);
}

export function isLevelEnabled(level: LogLevel, threshold: LogLevel): boolean {
  return levelRank[level] >= levelRank[threshold];
}

export interface BasicLoggerOptions {
  /** Default: KT_LOG_LEVEL, else info. */
  level?: LogLevel;
  /** Where lines go; default: stderr. */
  write?: (line: string) => void;
}

/**
 * The default for code that must not depend on pino (the SDK package): `ISO-time level [name] message {fields}` lines on
 * stderr, secrets redacted. The server and the CLI pass a pino logger instead.
 */
export function createBasicLogger(name: string, options: BasicLoggerOptions = {}): Logger {
  const threshold = options.level ?? parseLogLevel(globalThis.process?.env['KT_LOG_LEVEL']) ?? 'info';
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  return basicLogger(name, {}, threshold, write);
}

function basicLogger(name: string, bindings: LogFields, threshold: LogLevel, write: (line: string) => void): Logger {
  const at =
    (level: LogLevel): LogFn =>
    (fieldsOrMsg: LogFields | string, msg?: string): void => {
      if (!isLevelEnabled(level, threshold)) return;
      const [fields, text] = typeof fieldsOrMsg === 'string' ? [{}, fieldsOrMsg] : [fieldsOrMsg, msg ?? ''];
      const all = redactFields({ ...bindings, ...fields });
      const suffix = Object.keys(all).length > 0 ? ` ${JSON.stringify(all)}` : '';
      write(`${new Date().toISOString()} ${level.padEnd(5)} [${name}] ${redactSecrets(text)}${suffix}`);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => basicLogger(name, { ...bindings, ...more }, threshold, write),
  };
}

/** Drops every line (tests, embedding code that logs elsewhere). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
