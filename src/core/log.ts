// pino loggers for the server, CLI, training and model tools (JSON lines off a TTY, readable on one), and the progress reporter with ETA.
import { pino, type DestinationStream, type LoggerOptions, type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';
import { parseLogLevel, redactFields, redactSecrets, type LogFields, type LogLevel, type Logger } from './log-types.js';

export type { LogFields, LogFn, LogLevel, Logger } from './log-types.js';

export interface CreateLoggerOptions {
  /** Default: KT_LOG_LEVEL, else info (an unknown KT_LOG_LEVEL is reported and info used). */
  level?: LogLevel;
  /** Where lines go; default: stderr (fd 2, synchronous writes, so nothing is lost on exit). */
  destination?: DestinationStream;
  /** Human-readable lines instead of JSON; default: whether stderr is a TTY. */
  pretty?: boolean;
}

// Keys censored by pino itself, at the top level and one level down (`{ options: { password } }`, `{ headers: { authorization } }`).
const secretKeys = ['password', 'token', 'accessToken', 'access_token', 'authorization', 'Authorization', 'secret', 'apiKey', 'api_key'];
const redactPaths = secretKeys.flatMap((k) => [k, `*.${k}`]);

/**
 * A pino logger named `name` (the `name` field; children add `component`, `stream`, `model`, ...). Secrets never reach
 * a line: secret-named keys are censored by pino's redaction, passwords in URLs and secret query parameters are
 * removed from the message and from string fields.
 */
export function createLogger(name = 'kt', options: CreateLoggerOptions | LogLevel = {}): Logger {
  const opts = typeof options === 'string' ? { level: options } : options;
  const envLevel = process.env['KT_LOG_LEVEL'];
  const level = opts.level ?? parseLogLevel(envLevel) ?? 'info';
  const readable = opts.pretty ?? process.stderr.isTTY === true;
  const logger = pino(
    pinoOptions(name, level, readable),
    opts.destination ?? (readable ? prettyStream() : pino.destination({ dest: 2, sync: true })),
  );
  scrubChildBindings(logger);
  if (opts.level === undefined && envLevel !== undefined && envLevel !== '' && parseLogLevel(envLevel) === undefined) {
    logger.warn({ KT_LOG_LEVEL: envLevel, levels: 'trace, debug, info, warn, error, fatal, silent' }, 'unknown KT_LOG_LEVEL; using info');
  }
  return logger;
}

function pinoOptions(name: string, level: LogLevel, readable: boolean): LoggerOptions {
  return {
    name,
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    // JSON consumers (journald, Docker, Loki) read a level label and an ISO time more easily than numbers; pino-pretty
    // wants the numeric level, so the label is for JSON only.
    ...(readable ? {} : { timestamp: pino.stdTimeFunctions.isoTime }),
    formatters: {
      ...(readable ? {} : { level: (label: string) => ({ level: label }) }),
      log: (fields: LogFields) => redactFields(fields),
    },
    hooks: {
      logMethod(args, method) {
        // The message text (and printf-style arguments) may carry a URL with credentials too.
        method.apply(this, args.map((a: unknown) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>);
      },
    },
  };
}

/** pino skips `formatters.bindings` for children, so their bindings (`{ broker: url }`) are scrubbed here; children inherit this. */
function scrubChildBindings(logger: PinoLogger): void {
  const pinoChild = logger.child;
  logger.child = function (this: PinoLogger, bindings, options) {
    return pinoChild.call(this, redactFields(bindings), options);
  } as PinoLogger['child'];
}

/** pino-pretty as an in-process stream (not a worker-thread transport): `12:00:01.234 INFO [serve/models] message {fields}`. */
function prettyStream(): DestinationStream {
  return pretty({
    destination: 2,
    sync: true,
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name,component',
    singleLine: true,
    messageFormat: (log, messageKey) => {
      const scope = [log['name'], log['component']].filter((s) => typeof s === 'string' && s !== '').join('/');
      return `${scope ? `[${scope}] ` : ''}${String(log[messageKey] ?? '')}`;
    },
  });
}

export interface Progress {
  tick(label?: string, amount?: number): void;
  done(label?: string): void;
}

/** Prints `what i/n (pct) elapsed, ETA` lines, at most every `intervalMs`, and always the last one. */
export function createProgress(
  what: string,
  total: number,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  intervalMs = 1000,
): Progress {
  const start = Date.now();
  let done = 0;
  let lastPrint = 0;
  const fmt = (ms: number): string =>
    ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
  const print = (label?: string): void => {
    const elapsed = Date.now() - start;
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
    const pct = total > 0 ? ((100 * done) / total).toFixed(0) : '100';
    log(
      `${what} ${done}/${total} (${pct}%) ${fmt(elapsed)} elapsed${Number.isFinite(eta) && done < total ? `, ETA ${fmt(eta)}` : ''}${label ? ` ${label}` : ''}`,
    );
  };
  return {
    tick(label, amount = 1) {
      done += amount;
      const now = Date.now();
      if (now - lastPrint >= intervalMs || done >= total) {
        lastPrint = now;
        print(label);
      }
    },
    done(label) {
      done = total;
      print(label);
    },
  };
}
