// A FrameResult as the MQTT faces event (kt/<node>/<stream>/faces): boxes, scores and the task results that ran.
import type { FrameResult } from '../gen/kt/v1/face_analysis.js';
import type { FaceResult, FacesEvent } from '../contract/face-events.js';

const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** `receivedAtMs`: when the frame arrived, the latency origin when the camera sent no capture time. */
export function facesEventOf(result: FrameResult, receivedAtMs: number): FacesEvent {
  const processedTimeMs = Date.now();
  const origin = result.captureTimeUnixMs > 0 ? result.captureTimeUnixMs : receivedAtMs;
  const faces: FaceResult[] = result.faces.map((f) => {
    const out: FaceResult = {
      box: { x: round(f.box?.xPx ?? 0, 1), y: round(f.box?.yPx ?? 0, 1), width: round(f.box?.widthPx ?? 0, 1), height: round(f.box?.heightPx ?? 0, 1) },
      score: round(f.score, 3),
    };
    if (f.age) out.age = round(f.age.years, 1);
    if (f.gender) out.gender = { label: f.gender.label, score: round(f.gender.confidence, 3) };
    if (f.emotion) out.emotion = { label: f.emotion.label, scores: Object.fromEntries(f.emotion.scores.map((s) => [s.label, round(s.score, 3)])) };
    if (f.landmarks) out.landmarks = { scheme: f.landmarks.scheme, points: f.landmarks.points.map((p) => [round(p.xPx, 1), round(p.yPx, 1)]) };
    if (f.identity) {
      out.identity = f.identity.known ? { personId: f.identity.personId, name: f.identity.name, similarity: round(f.identity.similarity, 3) } : { similarity: round(f.identity.similarity, 3) };
    }
    // The mesh (468 points) travels in `tasks`; embeddings stay off MQTT (1024 floats per face, and biometric data).
    if (f.mesh) out.tasks = { mesh: { scheme: f.mesh.scheme, points: f.mesh.points.map((p) => [round(p.xPx, 1), round(p.yPx, 1), round(p.zPx, 1)]) } };
    return out;
  });
  return {
    sequence: result.sequence,
    ...(result.captureTimeUnixMs > 0 ? { captureTimeMs: result.captureTimeUnixMs } : {}),
    processedTimeMs,
    latencyMs: processedTimeMs - origin,
    faces,
  };
}
