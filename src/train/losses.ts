// Training losses: Wing loss (Feng et al. 2018) for regression, softmax cross-entropy for classification, self-distillation.
import type { Tf } from './tfjs-backend.js';
import type { Scalar, Tensor } from '@tensorflow/tfjs';

export interface WingLossOptions {
  /** w: the range of the log part. Default 10. */
  width?: number;
  /** epsilon: curvature of the log part. Default 2. */
  curvature?: number;
}

export const defaultWingLoss = { width: 10, curvature: 2 } as const;

/** wing(x) for one residual, the reference the tensor version is tested against. */
export function wingValue(residual: number, options: WingLossOptions = {}): number {
  const w = options.width ?? defaultWingLoss.width;
  const eps = options.curvature ?? defaultWingLoss.curvature;
  const a = Math.abs(residual);
  return a < w ? w * Math.log(1 + a / eps) : a - (w - w * Math.log(1 + w / eps));
}

/**
 * Mean over every element of wing(pred - target): w ln(1 + |x|/eps) for |x| < w, else |x| - C with
 * C = w - w ln(1 + w/eps). (Feng et al. sum over coordinates per sample; the mean only rescales the learning rate.)
 */
export function wingLoss(tf: Tf, predictions: Tensor, targets: Tensor, options: WingLossOptions = {}): Scalar {
  const w = options.width ?? defaultWingLoss.width;
  const eps = options.curvature ?? defaultWingLoss.curvature;
  const c = w - w * Math.log(1 + w / eps);
  return tf.tidy(() => {
    const a = tf.abs(tf.sub(predictions, targets));
    const small = tf.mul(tf.log1p(tf.div(a, eps)), w);
    const large = tf.sub(a, c);
    // step() instead of where(less()): Less has no gradient in TF.js, Step has (zero).
    const inLogRange = tf.step(tf.sub(w, a));
    return tf.mean(tf.add(tf.mul(inLogRange, small), tf.mul(tf.sub(1, inLogRange), large))) as Scalar;
  });
}

export function meanSquaredError(tf: Tf, predictions: Tensor, targets: Tensor): Scalar {
  return tf.tidy(() => tf.mean(tf.square(tf.sub(predictions, targets))) as Scalar);
}

export function meanAbsoluteError(tf: Tf, predictions: Tensor, targets: Tensor): Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(predictions, targets))) as Scalar);
}

/** Mean over samples of -log softmax(logits)[label]; labels are class indices [N]. */
export function softmaxCrossEntropy(tf: Tf, logits: Tensor, labels: Tensor): Scalar {
  return tf.tidy(() => {
    const classes = logits.shape[logits.rank - 1]!;
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), classes);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), -1))) as Scalar;
  });
}

/** Mean over samples of KL(softmax(teacher) || softmax(student)); the teacher is held fixed (no gradient flows into it). */
export function distillationKl(tf: Tf, studentLogits: Tensor, teacherLogits: Tensor): Scalar {
  return tf.tidy(() => {
    const teacherLog = tf.logSoftmax(detached(tf, teacherLogits));
    const kl = tf.sum(tf.mul(tf.exp(teacherLog), tf.sub(teacherLog, tf.logSoftmax(studentLogits))), -1);
    return tf.mean(kl) as Scalar;
  });
}

/** Mean |student - teacher| with the teacher held fixed (expected age in years). */
export function distillationL1(tf: Tf, student: Tensor, teacher: Tensor): Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(student, detached(tf, teacher)))) as Scalar);
}

/** The same values with no path back to the variables (TF.js has no stopGradient): a copy through the host. */
function detached(tf: Tf, x: Tensor): Tensor {
  return tf.tensor(x.dataSync() as Float32Array, x.shape, 'float32');
}
