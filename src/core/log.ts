// Leveled logging to stderr and a progress reporter with ETA for long jobs (model build, caching, training).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  child(scope: string): Logger;
}

export function createLogger(scope = 'kt', level: LogLevel = (process.env['KT_LOG_LEVEL'] as LogLevel | undefined) ?? 'info'): Logger {
  const emit = (lvl: LogLevel, msg: string): void => {
    if (order[lvl] < order[level]) return;
    process.stderr.write(`${new Date().toISOString()} ${lvl.padEnd(5)} [${scope}] ${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (s) => createLogger(`${scope}:${s}`, level),
  };
}

export interface Progress {
  tick(label?: string, amount?: number): void;
  done(label?: string): void;
}

/** Prints `what i/n (pct) elapsed, ETA` lines, at most every `intervalMs`, and always the last one. */
export function createProgress(what: string, total: number, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`), intervalMs = 1000): Progress {
  const start = Date.now();
  let done = 0;
  let lastPrint = 0;
  const fmt = (ms: number): string => (ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`);
  const print = (label?: string): void => {
    const elapsed = Date.now() - start;
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
    const pct = total > 0 ? ((100 * done) / total).toFixed(0) : '100';
    log(`${what} ${done}/${total} (${pct}%) ${fmt(elapsed)} elapsed${Number.isFinite(eta) && done < total ? `, ETA ${fmt(eta)}` : ''}${label ? ` ${label}` : ''}`);
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
