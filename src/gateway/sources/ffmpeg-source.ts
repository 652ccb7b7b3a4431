// The shared part of the ffmpeg-backed sources (rtsp, http, v4l2, file): their common options and the supervisor loop
// that runs ffmpeg, reports online/offline, restarts a dead or stalled ffmpeg with capped backoff and jitter.
import { Type, type TSchema } from '@sinclair/typebox';
import { backoffDelayMs, type BackoffPolicy } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';
import { sleep } from '../sleep.js';
import type { Logger } from '../../core/log-types.js';
import { literals } from '../../core/schema.js';
import type { SourceContext } from '../../sdk/plugin-kinds.js';
import { ffmpegArgs, frameTransports, startFfmpeg, type FfmpegExit, type FfmpegInput, type FrameTransport } from '../ffmpeg.js';

/** Options every ffmpeg source has. The gateway fills ffmpegPath, transport and reconnect* from its own config. */
export interface FfmpegSourceOptions {
  /** Frames per second decoded and sent. Default 5. */
  fps: number;
  /** Output width in pixels; 0 keeps the source's (or follows heightPx's aspect). Default 0. */
  widthPx: number;
  /** Output height in pixels; 0 follows the width's aspect. Default 0. */
  heightPx: number;
  /** Frames to the server as "jpeg", "nv12" or "rgb". Default "jpeg". */
  transport: FrameTransport;
  /** ffmpeg binary. Default "ffmpeg". */
  ffmpegPath: string;
  /** JPEG quality (ffmpeg -q:v, 2 best .. 31 smallest) for the jpeg transport. Default 5. */
  jpegQuality: number;
  /** Restart ffmpeg when no frame came for this long, in milliseconds. Default 10000. */
  stallTimeoutMs: number;
  /** First delay before ffmpeg is restarted, in milliseconds. Default 500. */
  reconnectInitialMs: number;
  /** Longest delay between restarts, in milliseconds. Default 10000. */
  reconnectMaxMs: number;
  /** Random spread of each delay (0.2 = +-20 %). Default 0.2. */
  reconnectJitter: number;
  /** ffmpeg options placed before `-i`: hardware decoding (`["-hwaccel", "cuda"]`, `["-c:v", "h264_nvmpi"]`). Default none. */
  decoderArgs: string[];
}

export const ffmpegSourceSchemas = {
  fps: Type.Number({ exclusiveMinimum: 0, maximum: 120, default: 5, description: 'Frames per second decoded and sent. Default 5.' }),
  widthPx: Type.Integer({ minimum: 0, maximum: 8192, default: 0, description: 'Output width in pixels; 0 keeps the source’s. Default 0.' }),
  heightPx: Type.Integer({
    minimum: 0,
    maximum: 8192,
    default: 0,
    description: 'Output height in pixels; 0 follows the aspect. Default 0.',
  }),
  transport: literals(frameTransports, {
    default: 'jpeg',
    description: 'Frames to the server as "jpeg", "nv12" or "rgb". Default "jpeg".',
  }),
  ffmpegPath: Type.String({ minLength: 1, default: 'ffmpeg', description: 'ffmpeg binary. Default "ffmpeg".' }),
  jpegQuality: Type.Integer({ minimum: 2, maximum: 31, default: 5, description: 'JPEG quality (ffmpeg -q:v). Default 5.' }),
  stallTimeoutMs: Type.Integer({
    minimum: 100,
    default: 10_000,
    description: 'Restart ffmpeg when no frame came for this long, in ms. Default 10000.',
  }),
  reconnectInitialMs: Type.Integer({ minimum: 1, default: 500, description: 'First delay before a restart, in ms. Default 500.' }),
  reconnectMaxMs: Type.Integer({ minimum: 1, default: 10_000, description: 'Longest delay between restarts, in ms. Default 10000.' }),
  reconnectJitter: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.2, description: 'Random spread of each delay. Default 0.2.' }),
  decoderArgs: Type.Array(Type.String(), {
    default: [],
    description: 'ffmpeg options before -i for hardware decoding, e.g. ["-hwaccel", "cuda"]. Default none.',
  }),
} satisfies Record<keyof FfmpegSourceOptions, TSchema>;

/** What the supervisor needs besides the options: what ffmpeg reads, which option names it, and whether EOF ends it. */
export interface FfmpegSourcePlan {
  input: FfmpegInput;
  /** The option the input came from, for messages: `url "rtsp://..."`, `path "clip.mp4"`. */
  field: string;
  /** A clean exit (code 0) is the end (a file that does not loop), not a lost camera. */
  endsOnCleanExit: boolean;
}

/** Why ffmpeg ended, in one sentence naming the option to fix. */
export function describeExit(exit: FfmpegExit, o: FfmpegSourceOptions, plan: FfmpegSourcePlan, stalled: string | undefined): string {
  if (exit.spawnError?.code === 'ENOENT') return `ffmpeg not found: option ffmpegPath "${o.ffmpegPath}" (install ffmpeg or fix the path)`;
  if (exit.spawnError) return `cannot start ffmpeg (option ffmpegPath "${o.ffmpegPath}"): ${exit.spawnError.message}`;
  const stderr = exit.stderr !== '' ? `: ${exit.stderr}` : '';
  if (stalled !== undefined) return `${plan.field}: ${stalled}${stderr}`;
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return `${plan.field}: ffmpeg ${how} after ${exit.frames} frame(s)${stderr}`;
}

/** One ffmpeg run: frames to ctx.emit, stall watchdog, stop on abort. Resolves with the exit and the stall reason. */
async function runOnce(
  ctx: SourceContext,
  o: FfmpegSourceOptions,
  plan: FfmpegSourcePlan,
  onFirstFrame: () => void,
): Promise<{ exit: FfmpegExit; stalled: string | undefined }> {
  let lastFrameMs = Date.now();
  let stalled: string | undefined;
  const run = startFfmpeg({
    ffmpegPath: o.ffmpegPath,
    args: ffmpegArgs(
      { ...plan.input, inputArgs: [...o.decoderArgs, ...(plan.input.inputArgs ?? [])] },
      {
        fps: o.fps,
        widthPx: o.widthPx,
        heightPx: o.heightPx,
        transport: o.transport,
        jpegQuality: o.jpegQuality,
      },
    ),
    transport: o.transport,
    onFrame: (f) => {
      if (run.frames === 1) onFirstFrame();
      lastFrameMs = f.captureTimeUnixMs;
      const size = f.image instanceof Uint8Array ? {} : { widthPx: f.image.widthPx, heightPx: f.image.heightPx };
      ctx.emit({ image: f.image, captureTimeUnixMs: f.captureTimeUnixMs, ...size });
    },
  });
  const stop = (): void => void run.stop();
  ctx.signal.addEventListener('abort', stop, { once: true });
  const watchdog = setInterval(
    () => {
      if (Date.now() - lastFrameMs <= o.stallTimeoutMs) return;
      stalled = `no frame for ${o.stallTimeoutMs} ms (option stallTimeoutMs)`;
      void run.stop();
    },
    Math.min(1000, o.stallTimeoutMs),
  );
  const exit = await run.exited;
  clearInterval(watchdog);
  ctx.signal.removeEventListener('abort', stop);
  return { exit, stalled };
}

/**
 * Runs ffmpeg until ctx.signal aborts: `online` at the first frame, `offline` (or `error` when ffmpeg cannot start)
 * with the reason when it ends, then a restart after a capped backoff with jitter; the backoff resets once frames flow.
 */
export async function superviseFfmpeg(ctx: SourceContext, o: FfmpegSourceOptions, plan: FfmpegSourcePlan, log: Logger): Promise<void> {
  const policy: BackoffPolicy = { initialMs: o.reconnectInitialMs, maxMs: o.reconnectMaxMs, multiplier: 2, jitter: o.reconnectJitter };
  let attempt = 0;
  ctx.setState('starting');
  while (!ctx.signal.aborted) {
    const { exit, stalled } = await runOnce(ctx, o, plan, () => {
      attempt = 0;
      ctx.setState('online');
    });
    if (ctx.signal.aborted) return;
    const reason = describeExit(exit, o, plan, stalled);
    if (plan.endsOnCleanExit && exit.code === 0 && stalled === undefined) {
      ctx.setState('offline', `${plan.field}: end of input`);
      log.info({ frames: exit.frames }, 'camera input ended');
      return;
    }
    const delayMs = backoffDelayMs(policy, attempt);
    attempt += 1;
    ctx.setState(exit.spawnError ? 'error' : 'offline', reason);
    log.warn({ reason, attempt, delayMs, code: exit.code }, 'camera source lost; restarting ffmpeg');
    await sleep(delayMs, ctx.signal);
  }
}

/**
 * The instance hooks of an ffmpeg source: onStart runs the supervisor in the background (a bug in it, not a lost
 * camera, goes to ctx.fail); onStop aborts it and waits until ffmpeg is gone.
 */
export function ffmpegSourceInstance(
  o: FfmpegSourceOptions,
  plan: FfmpegSourcePlan,
  log: Logger,
): { onStart(ctx: SourceContext): void; onStop(): Promise<void> } {
  const stopper = new AbortController();
  let running: Promise<void> | undefined;
  return {
    onStart(ctx) {
      const signal = AbortSignal.any([ctx.signal, stopper.signal]);
      const scoped: SourceContext = {
        cameraId: ctx.cameraId,
        signal,
        emit: (frame) => ctx.emit(frame),
        setState: (state, reason) => ctx.setState(state, reason),
        fail: (error) => ctx.fail(error),
      };
      running = superviseFfmpeg(scoped, o, plan, log).catch((e: unknown) => {
        log.error({ error: errorMessage(e) }, 'camera supervisor failed');
        ctx.fail(e);
      });
    },
    async onStop() {
      stopper.abort();
      await running;
    },
  };
}
