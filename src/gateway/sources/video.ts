// Built-in video sources through ffmpeg: `rtsp` and `http` (network cameras), `v4l2` (/dev/videoN) and `file` (a video
// file, optionally looped). Each is the shared ffmpeg supervisor with its own input options.
import { Type, type TSchema } from '@sinclair/typebox';
import { literals } from '../../core/schema.js';
import { definePlugin, type PluginFactory } from '../../sdk/plugin.js';
import { ffmpegSourceInstance, ffmpegSourceSchemas, type FfmpegSourceOptions, type FfmpegSourcePlan } from './ffmpeg-source.js';

export interface RtspSourceOptions extends FfmpegSourceOptions {
  /** rtsp:// or rtsps:// URL of the camera. Required. */
  url: string;
  /** RTP over "udp", "tcp" (through firewalls), or "auto" (ffmpeg tries UDP, then TCP). Default "auto". */
  rtspTransport: 'auto' | 'udp' | 'tcp';
}

export const rtspSource: PluginFactory<RtspSourceOptions, 'source'> = definePlugin<RtspSourceOptions, 'source'>({
  name: 'rtsp',
  kind: 'source',
  description: 'an RTSP camera decoded by ffmpeg',
  schema: Type.Object(
    {
      url: Type.String({
        pattern: '^rtsps?://.',
        mustBe: 'an rtsp:// URL',
        default: '',
        description: 'rtsp:// URL of the camera. Required.',
      }),
      rtspTransport: literals(['auto', 'udp', 'tcp'] as const, {
        default: 'auto',
        description: 'RTP over udp, tcp or auto. Default "auto".',
      }),
      ...ffmpegSourceSchemas,
    } satisfies Record<keyof RtspSourceOptions, TSchema>,
    { additionalProperties: false, title: 'rtsp source options' },
  ),
  create: ({ options: o, log }) => ffmpegSourceInstance(o, rtspPlan(o), log),
});

export function rtspPlan(o: RtspSourceOptions): FfmpegSourcePlan {
  return {
    input: { url: o.url, inputArgs: o.rtspTransport === 'auto' ? [] : ['-rtsp_transport', o.rtspTransport] },
    field: `url "${o.url}"`,
    endsOnCleanExit: false,
  };
}

export interface HttpSourceOptions extends FfmpegSourceOptions {
  /** http(s) URL of a video stream (MJPEG, HLS, MPEG-TS...). Required. */
  url: string;
}

export const httpSource: PluginFactory<HttpSourceOptions, 'source'> = definePlugin<HttpSourceOptions, 'source'>({
  name: 'http',
  kind: 'source',
  description: 'an HTTP video stream (MJPEG, HLS, MPEG-TS) decoded by ffmpeg',
  schema: Type.Object(
    {
      url: Type.String({
        pattern: '^https?://.',
        mustBe: 'an http(s) URL',
        default: '',
        description: 'http(s) URL of the stream. Required.',
      }),
      ...ffmpegSourceSchemas,
    } satisfies Record<keyof HttpSourceOptions, TSchema>,
    { additionalProperties: false, title: 'http source options' },
  ),
  create: ({ options: o, log }) => ffmpegSourceInstance(o, httpPlan(o), log),
});

export function httpPlan(o: HttpSourceOptions): FfmpegSourcePlan {
  return { input: { url: o.url, inputArgs: ['-rw_timeout', '10000000'] }, field: `url "${o.url}"`, endsOnCleanExit: false };
}

export interface V4l2SourceOptions extends FfmpegSourceOptions {
  /** The video device. Default "/dev/video0". */
  device: string;
  /** What to ask the camera for: "mjpeg", "yuyv422", ... Default "" (the driver's default). */
  inputFormat: string;
  /** Capture size asked of the camera, e.g. "1280x720". Default "" (the driver's default). */
  inputSize: string;
}

export const v4l2Source: PluginFactory<V4l2SourceOptions, 'source'> = definePlugin<V4l2SourceOptions, 'source'>({
  name: 'v4l2',
  kind: 'source',
  description: 'a local camera (/dev/videoN) read by ffmpeg',
  schema: Type.Object(
    {
      device: Type.String({ minLength: 1, default: '/dev/video0', description: 'The video device. Default "/dev/video0".' }),
      inputFormat: Type.String({ default: '', description: 'Camera pixel format to ask for ("mjpeg", "yuyv422"). Default: the driver’s.' }),
      inputSize: Type.String({
        pattern: '^(\\d+x\\d+)?$',
        mustBe: 'WIDTHxHEIGHT, e.g. "1280x720"',
        default: '',
        description: 'Capture size.',
      }),
      ...ffmpegSourceSchemas,
    } satisfies Record<keyof V4l2SourceOptions, TSchema>,
    { additionalProperties: false, title: 'v4l2 source options' },
  ),
  create: ({ options: o, log }) => ffmpegSourceInstance(o, v4l2Plan(o), log),
});

export function v4l2Plan(o: V4l2SourceOptions): FfmpegSourcePlan {
  return {
    input: {
      url: o.device,
      format: 'v4l2',
      inputArgs: [
        ...(o.inputFormat !== '' ? ['-input_format', o.inputFormat] : []),
        ...(o.inputSize !== '' ? ['-video_size', o.inputSize] : []),
      ],
    },
    field: `device "${o.device}"`,
    endsOnCleanExit: false,
  };
}

export interface FileSourceOptions extends FfmpegSourceOptions {
  /** Video file. Required. */
  path: string;
  /** Start again at the end. Default false. */
  loop: boolean;
  /** Read at the file's own speed (like a camera) rather than as fast as ffmpeg decodes. Default true. */
  realtime: boolean;
}

export const fileSource: PluginFactory<FileSourceOptions, 'source'> = definePlugin<FileSourceOptions, 'source'>({
  name: 'file',
  kind: 'source',
  description: 'a video file decoded by ffmpeg, optionally looped',
  schema: Type.Object(
    {
      path: Type.String({ minLength: 1, default: '', description: 'Video file. Required.' }),
      loop: Type.Boolean({ default: false, description: 'Start again at the end. Default false.' }),
      realtime: Type.Boolean({ default: true, description: 'Read at the file’s own speed. Default true.' }),
      ...ffmpegSourceSchemas,
    } satisfies Record<keyof FileSourceOptions, TSchema>,
    { additionalProperties: false, title: 'file source options' },
  ),
  validate: (o) => (o.path === '' ? 'option "path" is required (the video file)' : undefined),
  create: ({ options: o, log }) => ffmpegSourceInstance(o, filePlan(o), log),
});

export function filePlan(o: FileSourceOptions): FfmpegSourcePlan {
  return {
    input: { url: o.path, inputArgs: [...(o.realtime ? ['-re'] : []), ...(o.loop ? ['-stream_loop', '-1'] : [])] },
    field: `path "${o.path}"`,
    endsOnCleanExit: true,
  };
}

/** What ffmpeg reads for a camera of a built-in video source type (`kt doctor --gateway` probes it); undefined for others. */
export function videoPlanOf(type: string, options: Record<string, unknown>): FfmpegSourcePlan | undefined {
  const plans: Record<string, (o: never) => FfmpegSourcePlan> = { rtsp: rtspPlan, http: httpPlan, v4l2: v4l2Plan, file: filePlan };
  return plans[type]?.(options as never);
}
