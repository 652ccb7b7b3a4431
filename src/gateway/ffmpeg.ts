// One ffmpeg subprocess decoding a camera (RTSP, HTTP, V4L2, file) to frames on stdout: raw NV12/RGB or JPEG, at the
// configured fps and size; its stderr is summarised (repeated lines counted) instead of copied into the log.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { RawImageInput } from '../sdk/results.js';

/** How frames travel from ffmpeg to the server: raw pixels (no encode, bigger messages) or JPEG (encoded by ffmpeg). */
export type FrameTransport = 'nv12' | 'rgb' | 'jpeg';
export const frameTransports: readonly FrameTransport[] = ['nv12', 'rgb', 'jpeg'];

/** What ffmpeg reads. */
export interface FfmpegInput {
  /** URL, device or file path given to `-i`. */
  url: string;
  /** Demuxer (`-f`), e.g. "v4l2". Default: ffmpeg guesses. */
  format?: string;
  /** Options placed before `-i` (e.g. `-rtsp_transport tcp`, `-stream_loop -1`, `-re`). */
  inputArgs?: readonly string[];
}

/** What ffmpeg writes to stdout. */
export interface FfmpegOutput {
  /** Frames per second ffmpeg emits (its fps filter drops or repeats frames). */
  fps: number;
  /** Output width in pixels; 0 keeps the source's (or follows the height's aspect). Made even for NV12. */
  widthPx: number;
  /** Output height in pixels; 0 follows the width's aspect ratio. */
  heightPx: number;
  transport: FrameTransport;
  /** JPEG quality 2 (best) .. 31 (smallest), ffmpeg's -q:v. */
  jpegQuality: number;
}

/** The ffmpeg command line for `input` -> `output` (stdout). */
export function ffmpegArgs(input: FfmpegInput, output: FfmpegOutput): string[] {
  const even = (n: number): string => (n > 0 ? String(n - (n % 2)) : '-2');
  const scale =
    output.widthPx > 0 || output.heightPx > 0
      ? [`scale=${output.widthPx > 0 ? even(output.widthPx) : '-2'}:${output.heightPx > 0 ? even(output.heightPx) : '-2'}`]
      : ['scale=trunc(iw/2)*2:trunc(ih/2)*2'];
  const filters = [`fps=${output.fps}`, ...scale].join(',');
  const encode =
    output.transport === 'jpeg'
      ? ['-f', 'image2pipe', '-c:v', 'mjpeg', '-pix_fmt', 'yuvj420p', '-q:v', String(output.jpegQuality)]
      : ['-f', 'rawvideo', '-pix_fmt', output.transport === 'nv12' ? 'nv12' : 'rgb24'];
  return [
    '-hide_banner',
    '-nostats',
    '-nostdin',
    '-loglevel',
    'info',
    ...(input.inputArgs ?? []),
    ...(input.format !== undefined ? ['-f', input.format] : []),
    '-i',
    input.url,
    '-an',
    '-vf',
    filters,
    ...encode,
    'pipe:1',
  ];
}

/** The output size ffmpeg announces on stderr ("Output #0 ... Video: rawvideo ..., 640x360, ..."). */
export function parseOutputSize(stderrText: string): { widthPx: number; heightPx: number } | undefined {
  const at = stderrText.indexOf('Output #0');
  if (at < 0) return undefined;
  const m = /Stream #\d+:\d+[^\n]*?: Video: [^\n]*?(\d{2,5})x(\d{2,5})/.exec(stderrText.slice(at));
  return m ? { widthPx: Number(m[1]), heightPx: Number(m[2]) } : undefined;
}

/** Splits a byte stream into fixed-size frames (raw video). */
export class FixedSizeFramer {
  private parts: Buffer[] = [];
  private held = 0;
  constructor(readonly frameBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.parts.push(chunk);
    this.held += chunk.length;
    const out: Buffer[] = [];
    if (this.held < this.frameBytes) return out;
    let all = Buffer.concat(this.parts);
    while (all.length >= this.frameBytes) {
      out.push(all.subarray(0, this.frameBytes));
      all = all.subarray(this.frameBytes);
    }
    this.parts = all.length > 0 ? [all] : [];
    this.held = all.length;
    return out;
  }
}

/**
 * Splits an MJPEG byte stream into JPEG files at their end-of-image markers. Inside entropy-coded data a 0xFF byte is
 * always followed by 0x00 or a restart marker, so FF D9 only ends an image (ffmpeg writes no embedded thumbnails).
 */
export class JpegFramer {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of `pending` already searched for the marker. */
  private searched = 0;

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const end = this.pending.indexOf(eoi, Math.max(2, this.searched - 1));
      if (end < 0) {
        this.searched = this.pending.length;
        return out;
      }
      const start = this.pending.indexOf(soi);
      if (start >= 0 && start < end) out.push(Buffer.from(this.pending.subarray(start, end + 2)));
      this.pending = this.pending.subarray(end + 2);
      this.searched = 0;
    }
  }
}
const soi = Buffer.from([0xff, 0xd8]);
const eoi = Buffer.from([0xff, 0xd9]);

/** Repeated stderr lines counted once: `[h264 @ 0x55...] error while decoding` twice is one entry with count 2. */
export class StderrSummary {
  private readonly counts = new Map<string, number>();
  private head = '';
  private partial = '';
  constructor(
    private readonly maxDistinct = 20,
    private readonly maxHeadChars = 16_384,
  ) {}

  push(text: string): void {
    if (this.head.length < this.maxHeadChars) this.head += text.slice(0, this.maxHeadChars - this.head.length);
    const lines = (this.partial + text).split(/\r?\n|\r/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.addLine(line);
  }

  /** The first stderr text (stream info, where the output size is announced). */
  get startText(): string {
    return this.head;
  }

  private addLine(raw: string): void {
    const line = normaliseStderrLine(raw);
    if (line === '' || isInfoLine(line)) return;
    if (!this.counts.has(line) && this.counts.size >= this.maxDistinct) return;
    this.counts.set(line, (this.counts.get(line) ?? 0) + 1);
  }

  /** "Connection refused (x3); Invalid data found when processing input": the distinct problems, most frequent first. */
  text(maxChars = 400): string {
    if (this.partial !== '') {
      this.addLine(this.partial);
      this.partial = '';
    }
    const entries = [...this.counts.entries()].sort((a, b) => b[1] - a[1]);
    const joined = entries.map(([line, n]) => (n > 1 ? `${line} (x${n})` : line)).join('; ');
    return joined.length > maxChars ? `${joined.slice(0, maxChars - 3)}...` : joined;
  }

  clear(): void {
    this.counts.clear();
  }
}

/** Drops addresses and frame numbers so that repeats compare equal. */
export function normaliseStderrLine(line: string): string {
  return line
    .replace(/ @ 0x[0-9a-f]+\]/g, ']')
    .replace(/\s+/g, ' ')
    .trim();
}

// ffmpeg's informational banner (stream layout, metadata) is not a problem worth reporting.
const infoLine =
  /^(Input #|Output #|Stream #|Stream mapping|Metadata|Duration|encoder|title|major_brand|minor_version|compatible_brands|creation_time|handler_name|vendor_id|Press \[q\]|Side data|cpb|frame=|video:)/;
const isInfoLine = (line: string): boolean =>
  infoLine.test(line) || /^[a-z_]+ :/.test(line) || /deprecated pixel format|No accelerated colorspace/.test(line);

/** A frame as ffmpeg produced it. */
export interface FfmpegFrame {
  image: Uint8Array | RawImageInput;
  /** When the frame's last byte was read from ffmpeg, Unix ms (the capture time the server and events see). */
  captureTimeUnixMs: number;
}

export interface FfmpegRunInit {
  /** Path or name of the ffmpeg binary. */
  ffmpegPath: string;
  args: readonly string[];
  transport: FrameTransport;
  onFrame(frame: FfmpegFrame): void;
  /** Give up waiting for the output size after this long (raw transports only), in ms. */
  sizeTimeoutMs?: number;
}

/** How an ffmpeg run ended. */
export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Spawning failed (ENOENT: no ffmpeg there). */
  spawnError?: NodeJS.ErrnoException;
  /** Frames read during the run. */
  frames: number;
  /** The summarised stderr. */
  stderr: string;
}

/** A running ffmpeg; `exited` resolves once it is gone (never rejects). */
export interface FfmpegRun {
  readonly pid: number | undefined;
  readonly exited: Promise<FfmpegExit>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<FfmpegExit>;
  /** Frames read so far. */
  readonly frames: number;
  readonly stderr: StderrSummary;
}

function rawFrameOf(transport: 'nv12' | 'rgb', size: { widthPx: number; heightPx: number }, data: Buffer): RawImageInput {
  return { data, widthPx: size.widthPx, heightPx: size.heightPx, pixelFormat: transport === 'nv12' ? 'NV12' : 'RGB8' };
}

function rawFrameBytesOf(transport: 'nv12' | 'rgb', size: { widthPx: number; heightPx: number }): number {
  return transport === 'nv12' ? (size.widthPx * size.heightPx * 3) / 2 : size.widthPx * size.heightPx * 3;
}

/** Starts ffmpeg; frames go to `onFrame` as they complete. */
export function startFfmpeg(init: FfmpegRunInit): FfmpegRun {
  const stderr = new StderrSummary();
  let frames = 0;
  let child: ChildProcessByStdio<null, Readable, Readable>;
  const emit = (image: Uint8Array | RawImageInput): void => {
    frames += 1;
    init.onFrame({ image, captureTimeUnixMs: Date.now() });
  };
  let spawnError: NodeJS.ErrnoException | undefined;
  const exited = new Promise<FfmpegExit>((resolve) => {
    child = spawn(init.ffmpegPath, init.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
      // 'close' follows 'error' only when the process had started; a failed spawn gets no 'close' in every Node version.
      if (child.pid === undefined) resolve({ code: null, signal: null, spawnError: e, frames, stderr: stderr.text() });
    });
    child.on('close', (code, signal) => resolve({ code, signal, ...(spawnError ? { spawnError } : {}), frames, stderr: stderr.text() }));
  });
  child!.stderr.setEncoding('utf8');
  let framer: FixedSizeFramer | JpegFramer | undefined = init.transport === 'jpeg' ? new JpegFramer() : undefined;
  let waiting: Buffer[] = [];
  let size: { widthPx: number; heightPx: number } | undefined;
  child!.stderr.on('data', (text: string) => {
    stderr.push(text);
    if (framer !== undefined || init.transport === 'jpeg') return;
    size = parseOutputSize(stderr.startText);
    if (size === undefined) return;
    const raw = init.transport;
    const fixed = new FixedSizeFramer(rawFrameBytesOf(raw, size));
    framer = fixed;
    const known = size;
    for (const chunk of waiting) for (const f of fixed.push(chunk)) emit(rawFrameOf(raw, known, f));
    waiting = [];
  });
  child!.stdout.on('data', (chunk: Buffer) => {
    if (framer === undefined) {
      waiting.push(chunk);
      return;
    }
    for (const f of framer.push(chunk)) emit(init.transport === 'jpeg' ? f : rawFrameOf(init.transport, size!, f));
  });
  const stop = async (graceMs = 2000): Promise<FfmpegExit> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    }
    return exited;
  };
  return {
    get pid() {
      return child.pid;
    },
    exited,
    stop,
    get frames() {
      return frames;
    },
    stderr,
  };
}
