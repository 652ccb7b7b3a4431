// A stream's TrackingConfig resolved against the server's defaults: one merge point for tracker, reuse and topics.
import { FacesTopicMode, TrackingMode, type TrackingConfig } from '../../gen/kt/v1/face_analysis.js';
import { defaultTrackerOptions, type TrackerOptions } from './tracker.js';

/** When a tracked face's task answers are re-run (ReusePolicy with its defaults filled in). */
export interface ReuseSettings {
  /** Age, gender, embedding and identity re-run after this many milliseconds. */
  refreshAfterMs: number;
  /** ... or when the face is this much better (area x score) than the face the answers came from. */
  betterFaceRatio: number;
  /** ... and on the first this-many frames of a track. */
  minObservations: number;
  /** Emotion re-runs every this-many frames of a track. */
  emotionEveryFrames: number;
  /** The detector runs on every this-many frames; the frames between use the tracks' predicted boxes. 1: every frame. */
  detectEveryFrames: number;
}

export const defaultReuseSettings: Readonly<ReuseSettings> = Object.freeze({
  refreshAfterMs: 2000,
  betterFaceRatio: 1.25,
  minObservations: 3,
  // Every frame: the expression model is cheap next to the person tasks, and on the labelled sequence of
  // `npm run bench:tracks` every third frame cost 1.7 points of accuracy (paired CI -5.7..+1.1) where every frame did not.
  emotionEveryFrames: 1,
  detectEveryFrames: 1,
});

export interface StreamTrackingSettings {
  enabled: boolean;
  /** The client asked for tracking by name: it gets a last response with the end events when it half-closes. */
  requested: boolean;
  tracker: TrackerOptions;
  /** Absent: every task runs on every face of every frame. */
  reuse: ReuseSettings | undefined;
  /** Publish the per-frame faces topic. */
  publishFaces: boolean;
}

/** `serverDefault`: the config's `streamTracking`. */
export function trackingSettingsOf(config: TrackingConfig | undefined, serverDefault: boolean): StreamTrackingSettings {
  const mode = config?.mode ?? TrackingMode.TRACKING_MODE_UNSPECIFIED;
  const enabled = mode === TrackingMode.TRACKING_MODE_UNSPECIFIED ? serverDefault : mode === TrackingMode.TRACKING_MODE_ON;
  const reuse = config?.reuse?.enabled
    ? {
        refreshAfterMs: config.reuse.refreshAfterMs || defaultReuseSettings.refreshAfterMs,
        betterFaceRatio: config.reuse.betterFaceRatio || defaultReuseSettings.betterFaceRatio,
        minObservations: config.reuse.minObservations || defaultReuseSettings.minObservations,
        emotionEveryFrames: config.reuse.emotionEveryFrames || defaultReuseSettings.emotionEveryFrames,
        detectEveryFrames: config.reuse.detectEveryFrames || defaultReuseSettings.detectEveryFrames,
      }
    : undefined;
  return {
    enabled,
    requested: mode === TrackingMode.TRACKING_MODE_ON,
    tracker: {
      ...defaultTrackerOptions,
      ...(config?.maxAgeFrames ? { maxAgeFrames: config.maxAgeFrames } : {}),
      ...(config?.minHits ? { minHits: config.minHits } : {}),
    },
    reuse: enabled ? reuse : undefined,
    publishFaces: config?.facesTopic !== FacesTopicMode.FACES_TOPIC_MODE_OFF,
  };
}
