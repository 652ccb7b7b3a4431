// AdamW (decoupled weight decay) with a linear warm-up then cosine-decay learning-rate schedule.
import type { Tf } from './tfjs-backend.js';
import type { NamedTensorMap, Tensor, Variable } from '@tensorflow/tfjs';

export interface LearningRateSchedule {
  /** Peak learning rate, reached at the end of the warm-up. */
  peakLearningRate: number;
  /** Learning rate at the end of the cosine decay. Default 0. */
  minLearningRate?: number;
  /** Steps of linear warm-up from peak/warmupSteps to peak. */
  warmupSteps: number;
  /** Total optimiser steps (warm-up included); the cosine reaches its minimum here and stays there. */
  totalSteps: number;
}

/** lr at 0-based step: (step+1)/warmup x peak during warm-up, then min + (peak-min)(1 + cos(pi t))/2, t in [0, 1]. */
export function learningRateAt(step: number, schedule: LearningRateSchedule): number {
  const { peakLearningRate: peak, warmupSteps } = schedule;
  const min = schedule.minLearningRate ?? 0;
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const decaySteps = Math.max(1, schedule.totalSteps - warmupSteps);
  const t = Math.min(1, (step - warmupSteps) / decaySteps);
  return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * t));
}

export interface AdamWOptions {
  schedule: LearningRateSchedule;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay per unit learning rate. Default 0.01. */
  weightDecay?: number;
  /** Which variables decay; default: matrices only (rank >= 2), not biases, LayerNorm, tokens or the gate. */
  decays?: (variable: Variable) => boolean;
  /** Per-variable multiple of the scheduled learning rate (e.g. a faster gate). Default 1 for every variable. */
  learningRateScale?: (variable: Variable) => number;
}

export interface AdamW {
  /** One update from the gradients (keyed by variable name); returns the learning rate it used. */
  applyGradients(grads: NamedTensorMap): number;
  readonly step: number;
  dispose(): void;
}

/** theta <- theta - lr (m^/(sqrt(v^) + eps) + wd theta), with bias-corrected moments. */
export function createAdamW(tf: Tf, variables: readonly Variable[], options: AdamWOptions): AdamW {
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const epsilon = options.epsilon ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0.01;
  const decays = options.decays ?? ((v: Variable) => v.rank >= 2);
  const slots = variables.map((variable) => ({
    variable,
    firstMoment: tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
    secondMoment: tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
    decay: decays(variable) ? weightDecay : 0,
    lrScale: options.learningRateScale?.(variable) ?? 1,
  }));
  let step = 0;
  return {
    get step() {
      return step;
    },
    applyGradients(grads) {
      const lr = learningRateAt(step, options.schedule);
      step += 1;
      const correction1 = 1 - beta1 ** step;
      const correction2 = 1 - beta2 ** step;
      tf.tidy(() => {
        for (const slot of slots) {
          const g: Tensor | undefined = grads[slot.variable.name];
          if (!g) continue;
          const m = tf.add(tf.mul(slot.firstMoment, beta1), tf.mul(g, 1 - beta1));
          const v = tf.add(tf.mul(slot.secondMoment, beta2), tf.mul(tf.square(g), 1 - beta2));
          slot.firstMoment.assign(m);
          slot.secondMoment.assign(v);
          let update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
          if (slot.decay > 0) update = tf.add(update, tf.mul(slot.variable, slot.decay));
          slot.variable.assign(tf.sub(slot.variable, tf.mul(update, lr * slot.lrScale)));
        }
      });
      return lr;
    },
    dispose() {
      for (const s of slots) {
        s.firstMoment.dispose();
        s.secondMoment.dispose();
      }
    },
  };
}
