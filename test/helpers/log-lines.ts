// Reads back the JSON log lines a `kt` child process writes to stderr (stderr is a pipe there, so pino writes JSON).

export interface LogLine {
  level: string;
  msg: string;
  name?: string;
  component?: string;
  [field: string]: unknown;
}

/** Every JSON line of `stderr`; other lines (progress, plain errors) are skipped. */
export function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{') && line.endsWith('}'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** The first line whose message equals `msg` (or matches it). */
export function logLine(stderr: string, msg: string | RegExp): LogLine | undefined {
  return logLines(stderr).find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));
}
