// Built-in sources without ffmpeg: `folder` (image files sent in name order at a steady fps; new files are picked up)
// and `snapshot` (an HTTP JPEG URL polled). Both send the files' own bytes: no decode in the gateway.
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Type, type TSchema } from '@sinclair/typebox';
import { backoffDelayMs } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';
import { sleep } from '../sleep.js';
import type { Logger } from '../../core/log-types.js';
import { definePlugin, type PluginFactory } from '../../sdk/plugin.js';
import type { SourceContext } from '../../sdk/plugin-kinds.js';

export interface FolderSourceOptions {
  /** Folder of images (relative paths are relative to the config file). Required. */
  path: string;
  /** Images per second. Default 2. */
  fps: number;
  /** Start again with the first image after the last (else wait for new files). Default false. */
  loop: boolean;
  /** File extensions read, lower case. Default jpg, jpeg, png, webp. */
  extensions: string[];
}

const imageExtensions = ['.jpg', '.jpeg', '.png', '.webp'];

export const folderSource: PluginFactory<FolderSourceOptions, 'source'> = definePlugin<FolderSourceOptions, 'source'>({
  name: 'folder',
  kind: 'source',
  description: 'image files of a folder in name order at a steady fps; new files are picked up',
  schema: Type.Object(
    {
      path: Type.String({ minLength: 1, default: '.', description: 'Folder of images. Required.' }),
      fps: Type.Number({ exclusiveMinimum: 0, maximum: 120, default: 2, description: 'Images per second. Default 2.' }),
      loop: Type.Boolean({ default: false, description: 'Start again after the last image (else wait for new files). Default false.' }),
      extensions: Type.Array(Type.String({ pattern: '^\\.[a-z0-9]+$' }), {
        default: imageExtensions,
        description: 'File extensions read.',
      }),
    } satisfies Record<keyof FolderSourceOptions, TSchema>,
    { additionalProperties: false, title: 'folder source options' },
  ),
  create: ({ options: o, log }) => timedSource(o.fps, log, folderReader(o)),
});

/** Lists the folder each tick and hands out the next file not sent yet (name order); loops when asked. */
function folderReader(o: FolderSourceOptions): (signal: AbortSignal) => Promise<Uint8Array | undefined> {
  const sent = new Set<string>();
  return async () => {
    let names: string[];
    try {
      names = (await readdir(o.path)).filter((n) => o.extensions.includes(extname(n).toLowerCase())).sort();
    } catch (e) {
      throw new Error(`path "${o.path}": ${errorMessage(e)}`, { cause: e });
    }
    let next = names.find((n) => !sent.has(n));
    if (next === undefined && o.loop && names.length > 0) {
      sent.clear();
      next = names[0];
    }
    if (next === undefined) return undefined;
    sent.add(next);
    const file = join(o.path, next);
    if (!(await stat(file)).isFile()) return undefined;
    return readFile(file);
  };
}

export interface SnapshotSourceOptions {
  /** http(s) URL answering with one JPEG (or PNG) per request. Required. */
  url: string;
  /** Requests per second. Default 1. */
  fps: number;
  /** Time allowed per request, in milliseconds. Default 5000. */
  timeoutMs: number;
  /** Extra request headers (e.g. Authorization). Default none. */
  headers: Record<string, string>;
}

export const snapshotSource: PluginFactory<SnapshotSourceOptions, 'source'> = definePlugin<SnapshotSourceOptions, 'source'>({
  name: 'snapshot',
  kind: 'source',
  description: 'an HTTP snapshot URL (one JPEG per request) polled at a steady fps',
  schema: Type.Object(
    {
      url: Type.String({ pattern: '^https?://.', mustBe: 'an http(s) URL', default: '', description: 'Snapshot URL. Required.' }),
      fps: Type.Number({ exclusiveMinimum: 0, maximum: 30, default: 1, description: 'Requests per second. Default 1.' }),
      timeoutMs: Type.Integer({ minimum: 1, default: 5000, description: 'Time allowed per request, in ms. Default 5000.' }),
      headers: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Extra request headers. Default none.' }),
    } satisfies Record<keyof SnapshotSourceOptions, TSchema>,
    { additionalProperties: false, title: 'snapshot source options' },
  ),
  create: ({ options: o, log }) => timedSource(o.fps, log, snapshotReader(o)),
});

function snapshotReader(o: SnapshotSourceOptions): (signal: AbortSignal) => Promise<Uint8Array | undefined> {
  return async (stopSignal) => {
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(o.timeoutMs)]);
    let res: Response;
    try {
      res = await fetch(o.url, { headers: o.headers, signal });
    } catch (e) {
      throw new Error(`url "${o.url}": ${errorMessage((e as { cause?: unknown }).cause ?? e)}`, { cause: e });
    }
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) throw new Error(`url "${o.url}": HTTP ${res.status}`);
    return body;
  };
}

/**
 * A source that reads one image per tick: online while reads succeed, offline with the reason while they fail (the
 * ticks then back off, capped at 10 s, with jitter). `undefined` from the reader is "nothing new yet".
 */
function timedSource(
  fps: number,
  log: Logger,
  read: (signal: AbortSignal) => Promise<Uint8Array | undefined>,
): { onStart(ctx: SourceContext): void; onStop(): Promise<void> } {
  const stopper = new AbortController();
  let running: Promise<void> | undefined;
  const periodMs = 1000 / fps;
  const loop = async (ctx: SourceContext, signal: AbortSignal): Promise<void> => {
    let failures = 0;
    let state: 'starting' | 'online' | 'offline' = 'starting';
    ctx.setState('starting');
    while (!signal.aborted) {
      const started = Date.now();
      let waitMs = periodMs;
      try {
        const image = await read(signal);
        failures = 0;
        if (state !== 'online') {
          state = 'online';
          ctx.setState('online');
        }
        if (image !== undefined && !signal.aborted) ctx.emit({ image, captureTimeUnixMs: Date.now() });
      } catch (e) {
        if (signal.aborted) return;
        const reason = errorMessage(e);
        waitMs = Math.max(periodMs, backoffDelayMs({ initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.2 }, failures));
        failures += 1;
        if (state !== 'offline' || failures === 1) log.warn({ reason, delayMs: waitMs }, 'camera source failed; retrying');
        state = 'offline';
        ctx.setState('offline', reason);
      }
      await sleep(Math.max(0, waitMs - (Date.now() - started)), signal);
    }
  };
  return {
    onStart(ctx) {
      const signal = AbortSignal.any([ctx.signal, stopper.signal]);
      running = loop(ctx, signal).catch((e: unknown) => ctx.fail(e));
    },
    async onStop() {
      stopper.abort();
      await running;
    },
  };
}
