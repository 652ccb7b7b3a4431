// A proto FrameResult as the contract's MQTT faces event (kt/<node>/<stream>/faces): an adapter to the one builder.
import { facesEventOf as buildFacesEvent, type FaceLike, type FacesEvent, type PointLike } from '../contract/face-events.js';
import type { Point } from '../gen/kt/v1/common.js';
import type { Face, FrameResult } from '../gen/kt/v1/face_analysis.js';

const pointLike = (p: Point): PointLike => ({ x: p.xPx, y: p.yPx, z: p.zPx });

function faceLike(f: Face): FaceLike {
  return {
    ...f,
    box: { x: f.box?.xPx ?? 0, y: f.box?.yPx ?? 0, width: f.box?.widthPx ?? 0, height: f.box?.heightPx ?? 0 },
    landmarks: f.landmarks && { scheme: f.landmarks.scheme, points: f.landmarks.points.map(pointLike) },
    mesh: f.mesh && { scheme: f.mesh.scheme, points: f.mesh.points.map(pointLike) },
  };
}

/**
 * `receivedAtMs`: when the frame arrived, the latency origin when the camera sent no capture time. Only frames with
 * faces are published, and those never carry a per-frame error, so the proto error is not mapped.
 */
export function facesEventOf(result: FrameResult, receivedAtMs: number): FacesEvent {
  const frame = { sequence: result.sequence, captureTimeUnixMs: result.captureTimeUnixMs, faces: result.faces.map(faceLike) };
  return buildFacesEvent(frame, { receivedAtMs });
}
