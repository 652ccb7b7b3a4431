// Greedy hard non-maximum suppression, the same rule as tf.image.nonMaxSuppression.
import { iou, type Rect } from './geometry.js';

/**
 * Indices of the boxes kept, best score first: candidates at or below `scoreThreshold` are ignored, and a box
 * is dropped when its IoU with an already kept box exceeds `iouThreshold`. At most `maxOutput` are kept.
 */
export function nonMaxSuppression(
  boxes: readonly Rect[],
  scores: ArrayLike<number>,
  iouThreshold: number,
  scoreThreshold: number,
  maxOutput: number,
): number[] {
  const order: number[] = [];
  for (let i = 0; i < boxes.length; i++) if (scores[i]! > scoreThreshold) order.push(i);
  order.sort((a, b) => scores[b]! - scores[a]!);
  const kept: number[] = [];
  for (const i of order) {
    if (kept.length >= maxOutput) break;
    if (kept.every((k) => iou(boxes[k]!, boxes[i]!) <= iouThreshold)) kept.push(i);
  }
  return kept;
}
