// A gRPC TrackEvent as the MQTT events message (Frigate's { type, before, after } shape).
import type { TrackEventMessage, TrackState } from '../../contract/track-events.js';
import { trackEventTypeName } from '../../contract/track-names.js';
import type { TrackEvent } from '../../gen/kt/v1/face_analysis.js';

const r = (value: number, digits: number): number => Math.round(Math.fround(value) * 10 ** digits) / 10 ** digits;

/** The track state of an event; `node` is left empty for the publisher to fill in. */
export function trackStateOf(streamId: string, event: TrackEvent, hasSnapshot: boolean, frameTimeMs: number): TrackState {
  const s = event.summary;
  const b = event.box;
  const x = b?.xPx ?? 0;
  const y = b?.yPx ?? 0;
  const attributes: TrackState['attributes'] = {};
  if (s?.ageYears) attributes.age = r(s.ageYears, 1);
  if (s?.gender) attributes.gender = { label: s.gender.label, score: r(s.gender.confidence, 3) };
  if (s?.emotion)
    attributes.emotion = { label: s.emotion.label, scores: Object.fromEntries(s.emotion.scores.map((e) => [e.label, r(e.score, 3)])) };
  if (s?.identity?.known)
    attributes.identity = { personId: s.identity.personId, name: s.identity.name, similarity: r(s.identity.similarity, 3) };
  const startSeconds = event.startTimeUnixMs / 1000;
  return {
    id: `${startSeconds.toFixed(3)}-${streamId}-${event.trackId}`,
    camera: streamId,
    node: '',
    track_id: event.trackId,
    label: 'face',
    sub_label: attributes.identity ? [attributes.identity.name, attributes.identity.similarity] : null,
    score: r(s?.bestScore ?? 0, 3),
    top_score: r(s?.bestScore ?? 0, 3),
    start_time: startSeconds,
    end_time: event.endTimeUnixMs > 0 ? event.endTimeUnixMs / 1000 : null,
    frame_time: (event.endTimeUnixMs || frameTimeMs) / 1000,
    box: [r(x, 1), r(y, 1), r(x + (b?.widthPx ?? 0), 1), r(y + (b?.heightPx ?? 0), 1)],
    frames: s?.hits ?? 0,
    has_snapshot: hasSnapshot,
    attributes,
  };
}

/** The MQTT message of `event`; `before` is the track's previous event (absent for `new`). */
export function trackEventMessage(
  streamId: string,
  event: TrackEvent,
  before: { event: TrackEvent; frameTimeMs: number } | undefined,
  hasSnapshot: boolean,
  frameTimeMs: number,
): TrackEventMessage {
  const type = trackEventTypeName(event.type) ?? 'update';
  const after = trackStateOf(streamId, event, hasSnapshot, frameTimeMs);
  if (!before || type === 'new') return { type, after };
  return { type, before: trackStateOf(streamId, before.event, hasSnapshot, before.frameTimeMs), after };
}
