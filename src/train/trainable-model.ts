// The contract between the trainer and every model it fits: KT-Adapter, baseline head and ensemble head.
import type { Tf } from './tfjs-backend.js';
import type { Tensor2D, Variable } from '@tensorflow/tfjs';
import type { OutputActivation } from './tensor-ops.js';
import type { UniformRandom } from './seeded-random.js';
import type { TokenBatch } from './token-dataset.js';

export type TrainableModelKind = 'kt-adapter' | 'baseline' | 'ensemble';

export interface TrainableModel {
  readonly kind: TrainableModelKind;
  readonly tf: Tf;
  /** Applied at inference/export only; forwardTrain and predict return pre-activation outputs (logits). */
  readonly outputActivation: OutputActivation;
  /** Variables the optimiser updates. */
  trainableVariables(): Variable[];
  /** Training forward; stochastic parts (drop masks) draw from `random`. Returns [N, outputs]. */
  forwardTrain(batch: TokenBatch, random: UniformRandom): Tensor2D;
  /** The deployment path (for KT: canonical token only, no masks). Returns [N, outputs]. */
  predict(batch: TokenBatch): Tensor2D;
  /** KT with priors: the training path with every prior kept (the teacher the deployment path is distilled from). */
  predictWithPriors?(batch: TokenBatch): Tensor2D;
  /** Learning rate of a variable relative to the schedule's (default 1). */
  learningRateScale?(variable: Variable): number;
  /** Frees every variable, trainable or not. */
  dispose(): void;
}
