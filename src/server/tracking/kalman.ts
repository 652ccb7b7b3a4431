// Constant-velocity Kalman filter on a face box (centre x, centre y, width, height), the motion model of SORT.
// The four coordinates move independently, and with diagonal process and measurement noise an 8-state filter splits
// exactly into four 2-state filters (position, velocity): cheaper, and the algebra stays readable.

import { iou, type Rect } from '../../models/processing/index.js';

/** A box in frame pixels, top-left origin (the pipeline's Rect). */
export type BoxRect = Rect;
/** Intersection over union of two boxes (0 when either is empty): the one of pre/post-processing. */
export { iou };

/** One coordinate: position p, velocity v (per frame), covariance [[a, b], [b, c]]. */
interface Axis {
  p: number;
  v: number;
  a: number;
  b: number;
  c: number;
}

/** Noise as a fraction of the box height (as DeepSORT does): a big face moves more pixels per frame than a small one. */
const positionNoise = 1 / 20;
const velocityNoise = 1 / 160;

export class BoxKalman {
  private readonly axes: [Axis, Axis, Axis, Axis];

  constructor(box: BoxRect) {
    const z = measurement(box);
    const h = Math.max(box.height, 1);
    this.axes = z.map((p) => ({
      p,
      v: 0,
      a: (2 * positionNoise * h) ** 2,
      b: 0,
      c: (10 * velocityNoise * h) ** 2,
    })) as [Axis, Axis, Axis, Axis];
  }

  /** Advances one frame (x = F x, P = F P F' + Q) and returns the predicted box. */
  predict(): BoxRect {
    const h = Math.max(this.axes[3].p, 1);
    const q = (positionNoise * h) ** 2;
    const qv = (velocityNoise * h) ** 2;
    for (const s of this.axes) {
      s.p += s.v;
      // P' = F P F' with F = [[1, 1], [0, 1]].
      const a = s.a + 2 * s.b + s.c;
      const b = s.b + s.c;
      s.a = a + q;
      s.b = b;
      s.c += qv;
    }
    // A box never shrinks below one pixel, whatever its velocity says.
    if (this.axes[2].p < 1) this.axes[2].p = 1;
    if (this.axes[3].p < 1) this.axes[3].p = 1;
    return this.box();
  }

  /** Folds in a measured box (Kalman gain per coordinate). */
  update(box: BoxRect): void {
    const z = measurement(box);
    const r = (positionNoise * Math.max(box.height, 1)) ** 2;
    this.axes.forEach((s, i) => {
      const innovation = z[i]! - s.p;
      const S = s.a + r;
      const kp = s.a / S;
      const kv = s.b / S;
      s.p += kp * innovation;
      s.v += kv * innovation;
      // P = (I - K H) P with H = [1, 0].
      const a = (1 - kp) * s.a;
      const b = (1 - kp) * s.b;
      const c = s.c - kv * s.b;
      s.a = a;
      s.b = b;
      s.c = c;
    });
  }

  /** The current estimate. */
  box(): BoxRect {
    const [cx, cy, w, h] = this.axes.map((s) => s.p) as [number, number, number, number];
    return { x: cx - w / 2, y: cy - h / 2, width: w, height: h };
  }
}

function measurement(box: BoxRect): [number, number, number, number] {
  return [box.x + box.width / 2, box.y + box.height / 2, box.width, box.height];
}
