// Logging: JSON lines with structured fields, child bindings, levels, and secrets (URL passwords, tokens) redacted.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, createProgress } from '../src/core/log.js';
import { createBasicLogger, parseLogLevel, redactSecrets } from '../src/core/log-types.js';

/** A pino logger writing JSON into an array, one parsed object per line. */
function capture(level: Parameters<typeof createLogger>[1] = {}) {
  const lines: Record<string, unknown>[] = [];
  const destination = {
    write: (chunk: string) =>
      void lines.push(
        ...chunk
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      ),
  };
  const options = typeof level === 'string' ? { level } : level;
  return { lines, log: createLogger('serve', { pretty: false, ...options, destination }) };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('createLogger (pino)', () => {
  it('writes one JSON object per line: level label, ISO time, name, bindings and fields, message without values', () => {
    const { lines, log } = capture('info');
    log
      .child({ component: 'models' })
      .info({ model: 'blazeface', version: 2, provider: 'cpu', warmupMs: 41 }, 'model loaded and warmed up');
    log.child({ stream: 'cam-1' }).warn({ peer: 'ipv4:127.0.0.1:5000' }, 'stream ending');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'info',
      name: 'serve',
      component: 'models',
      model: 'blazeface',
      version: 2,
      provider: 'cpu',
      warmupMs: 41,
      msg: 'model loaded and warmed up',
    });
    expect(new Date(lines[0]!['time'] as string).toISOString()).toBe(lines[0]!['time']);
    expect(lines[1]).toMatchObject({ level: 'warn', stream: 'cam-1', peer: 'ipv4:127.0.0.1:5000', msg: 'stream ending' });
  });

  it('redacts the password of an MQTT URL in fields and message, and secret-named keys', () => {
    const { lines, log } = capture('info');
    const url = 'mqtt://edge:s3cr3t-pw@broker.local:1883';
    log.info({ url, token: 'tok-123', options: { password: 'pw-456', authorization: 'Bearer abc' } }, `connected to ${url}`);
    log.child({ component: 'mqtt', broker: url }).info('bound');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('s3cr3t-pw');
    expect(text).not.toContain('tok-123');
    expect(text).not.toContain('pw-456');
    expect(text).not.toContain('Bearer abc');
    expect(lines[0]).toMatchObject({
      url: 'mqtt://edge:[redacted]@broker.local:1883',
      token: '[redacted]',
      options: { password: '[redacted]', authorization: '[redacted]' },
    });
    expect(lines[0]!['msg']).toBe('connected to mqtt://edge:[redacted]@broker.local:1883');
    expect(lines[1]).toMatchObject({ broker: 'mqtt://edge:[redacted]@broker.local:1883' });
  });

  it('takes the level from KT_LOG_LEVEL, keeps silent, and reports an unknown level instead of logging everything', () => {
    vi.stubEnv('KT_LOG_LEVEL', 'warn');
    const warnOnly = capture();
    warnOnly.log.info('hidden');
    warnOnly.log.debug('hidden');
    warnOnly.log.warn('shown');
    expect(warnOnly.lines.map((l) => l['msg'])).toEqual(['shown']);

    vi.stubEnv('KT_LOG_LEVEL', 'silent');
    const silent = capture();
    silent.log.error('hidden');
    expect(silent.lines).toEqual([]);

    vi.stubEnv('KT_LOG_LEVEL', 'loud');
    const unknown = capture();
    unknown.log.debug('hidden');
    unknown.log.info('shown');
    expect(unknown.lines.map((l) => l['msg'])).toEqual(['unknown KT_LOG_LEVEL; using info', 'shown']);
    expect(unknown.lines[0]).toMatchObject({ level: 'warn', KT_LOG_LEVEL: 'loud' });
  });
});

describe('the dependency-free logger of the SDK', () => {
  it('writes level, name, message and fields, with the same redaction', () => {
    const lines: string[] = [];
    const log = createBasicLogger('plugins', { level: 'debug', write: (l) => lines.push(l) }).child({ plugin: 'webhook' });
    log.warn({ url: 'https://hooks.example/x?token=abc123&v=1', authorization: 'Bearer xyz' }, 'event not delivered');
    log.info('forwarding to mqtt://u:pa55@h:1883');
    expect(lines[0]).toMatch(
      /^\S+Z warn {2}\[plugins\] event not delivered \{"plugin":"webhook","url":"https:\/\/hooks\.example\/x\?token=\[redacted\]&v=1","authorization":"\[redacted\]"\}$/,
    );
    expect(lines[1]).toContain('forwarding to mqtt://u:[redacted]@h:1883');
    expect(lines.join('\n')).not.toMatch(/abc123|xyz|pa55/);
  });

  it('honours the level threshold', () => {
    const lines: string[] = [];
    const log = createBasicLogger('x', { level: 'error', write: (l) => lines.push(l) });
    log.warn('hidden');
    log.error({ code: 7 }, 'shown');
    expect(lines).toHaveLength(1);
  });
});

describe('helpers', () => {
  it('redactSecrets leaves text without credentials alone', () => {
    expect(redactSecrets('mqtt://127.0.0.1:1883')).toBe('mqtt://127.0.0.1:1883');
    expect(redactSecrets('user@example.org wrote a=b')).toBe('user@example.org wrote a=b');
    expect(redactSecrets('mqtts://:only-password@h')).toBe('mqtts://:[redacted]@h');
  });

  it('parseLogLevel accepts pino level names in any case', () => {
    expect(parseLogLevel(' DEBUG ')).toBe('debug');
    expect(parseLogLevel('silent')).toBe('silent');
    expect(parseLogLevel('verbose')).toBeUndefined();
    expect(parseLogLevel(undefined)).toBeUndefined();
  });

  it('createProgress still prints counts and an ETA', () => {
    const out: string[] = [];
    const p = createProgress('caching', 4, (l) => out.push(l), 0);
    p.tick();
    p.tick('b');
    p.done();
    expect(out[0]).toMatch(/^caching 1\/4 \(25%\) \d+\.\ds elapsed, ETA \d+\.\ds$/);
    expect(out[1]).toMatch(/^caching 2\/4 \(50%\) .* b$/);
    expect(out.at(-1)).toMatch(/^caching 4\/4 \(100%\) \d+\.\ds elapsed$/);
  });
});
