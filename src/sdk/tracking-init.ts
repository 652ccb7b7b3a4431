// The tracking options of a stream (StreamInit.tracking) and their conversion to the kt.v1 TrackingConfig.
import { InvalidInputError } from '../core/errors.js';
import { FacesTopicMode, ReusePolicy, TrackingConfig } from '../gen/kt/v1/face_analysis.js';
import { facesTopicModeOf, onOffNames, trackingModeOf, type OnOffName } from '../contract/track-names.js';

export type { OnOffName };

/** Analysis reuse within a track (the contract's ReusePolicy). Absent fields: the server's defaults. */
export interface ReuseInit {
  /** Age, gender, embedding and identity are re-run after this many ms. Server default 2000. */
  refreshAfterMs?: number;
  /** ... or as soon as the face is this much better (box area x score), e.g. 1.25 = 25 % better. Server default 1.25. */
  betterFaceRatio?: number;
  /** Age, gender, embedding and identity run on the first this-many frames of a track. Server default 3. */
  minObservations?: number;
  /** Emotion is re-run every this-many frames of a track. Server default 3. */
  emotionEveryFrames?: number;
  /** The detector runs on every this-many frames; between them faces are motion predictions. Server default 1. */
  detectEveryFrames?: number;
}

/** Face tracking on a stream (the contract's TrackingConfig). Absent fields: the server's defaults. */
export interface TrackingInit {
  /**
   * Default 'on' (a `tracking` object asks for tracks; leave `tracking` out for the server's default). With 'on' the
   * stream also hears the end events of the tracks still open when its source ends (see StreamInit.onTrackEvents).
   */
  mode?: OnOffName;
  /**
   * Frames a track may go without a matching face before it ends. Server default 15. Frames the detector skips
   * (reuse.detectEveryFrames > 1) count too: a track the last detection missed ages on them.
   */
  maxAgeFrames?: number;
  /** Frames with a matching face before a track is confirmed (its `new` event). Server default 3. */
  minHits?: number;
  /** Reuse task answers within a track: true for the server's reuse defaults. Default false: every task on every frame. */
  reuse?: boolean | ReuseInit;
  /** The per-frame MQTT faces topic; 'off' publishes only the track events. Server default 'on'. */
  facesTopic?: OnOffName;
}

const uint32Max = 2 ** 32 - 1;

/** A whole count >= 1 (0 on the wire means "server default", so the SDK says that by leaving the field out). */
function countField(value: unknown, field: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > uint32Max)
    throw new InvalidInputError(`tracking.${field} must be an integer >= 1, got ${JSON.stringify(value) ?? String(value)}`);
  return value;
}

function onOffField<W>(value: unknown, field: string, table: Readonly<Record<OnOffName, W>>, absent: W): W {
  if (value === undefined) return absent;
  if (!onOffNames.includes(value as OnOffName))
    throw new InvalidInputError(`tracking.${field} must be "on" or "off", got ${JSON.stringify(value) ?? String(value)}`);
  return table[value as OnOffName];
}

function reuseToProto(reuse: boolean | ReuseInit | undefined): ReusePolicy | undefined {
  if (reuse === undefined || reuse === false) return undefined;
  if (reuse === true) return ReusePolicy.fromPartial({ enabled: true });
  if (typeof reuse !== 'object' || reuse === null)
    throw new InvalidInputError(`tracking.reuse must be true, false or an object, got ${JSON.stringify(reuse) ?? String(reuse)}`);
  const ratio = reuse.betterFaceRatio;
  if (ratio !== undefined && !(typeof ratio === 'number' && Number.isFinite(ratio) && ratio >= 1))
    throw new InvalidInputError(`tracking.reuse.betterFaceRatio must be a number >= 1, got ${JSON.stringify(ratio) ?? String(ratio)}`);
  return ReusePolicy.fromPartial({
    enabled: true,
    refreshAfterMs: countField(reuse.refreshAfterMs, 'reuse.refreshAfterMs'),
    betterFaceRatio: ratio ?? 0,
    minObservations: countField(reuse.minObservations, 'reuse.minObservations'),
    emotionEveryFrames: countField(reuse.emotionEveryFrames, 'reuse.emotionEveryFrames'),
    detectEveryFrames: countField(reuse.detectEveryFrames, 'reuse.detectEveryFrames'),
  });
}

/** StreamInit.tracking on the wire: `true` is `{}` (tracking on), `false` is `{ mode: 'off' }`, absent stays absent. */
export function trackingToProto(tracking: boolean | TrackingInit | undefined): TrackingConfig | undefined {
  if (tracking === undefined) return undefined;
  const init: TrackingInit = tracking === true ? {} : tracking === false ? { mode: 'off' } : tracking;
  if (typeof init !== 'object' || init === null)
    throw new InvalidInputError(`tracking must be true, false or an object, got ${JSON.stringify(tracking) ?? String(tracking)}`);
  const reuse = reuseToProto(init.reuse);
  return TrackingConfig.fromPartial({
    mode: onOffField(init.mode, 'mode', trackingModeOf, trackingModeOf.on),
    maxAgeFrames: countField(init.maxAgeFrames, 'maxAgeFrames'),
    minHits: countField(init.minHits, 'minHits'),
    ...(reuse ? { reuse } : {}),
    facesTopic: onOffField(init.facesTopic, 'facesTopic', facesTopicModeOf, FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED),
  });
}
