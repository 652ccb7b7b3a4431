// TF.js building blocks shared by the adapter and the heads: matMul with explicit-transpose gradients, GELU, LayerNorm.
import type { Tf } from './tfjs-backend.js';
import type { Tensor, Variable } from '@tensorflow/tfjs';

export type HiddenActivation = 'none' | 'relu' | 'relu6' | 'gelu' | 'sigmoid' | 'tanh';
export type OutputActivation = 'none' | 'softmax' | 'sigmoid';

const matMulCache = new WeakMap<Tf, (a: Tensor, b: Tensor) => Tensor>();

const swapLastTwo = (tf: Tf, x: Tensor): Tensor => {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return tf.transpose(x, perm);
};

/**
 * a @ b whose gradients use explicit transposes: TF.js differentiates matMul with transposed matMuls, which are
 * 4-15x slower than transpose + plain matMul on the wasm backend. Batch dimensions of a and b must be equal.
 */
export function matMul(tf: Tf, a: Tensor, b: Tensor): Tensor {
  let fn = matMulCache.get(tf);
  if (!fn) {
    const custom = tf.customGrad((...args) => {
      const [x, y, save] = args as [Tensor, Tensor, (t: Tensor[]) => void];
      save([x, y]);
      return {
        value: tf.matMul(x, y),
        gradFunc: (dy: Tensor, saved: Tensor[]) => [tf.matMul(dy, swapLastTwo(tf, saved[1]!)), tf.matMul(swapLastTwo(tf, saved[0]!), dy)],
      };
    });
    fn = (a2: Tensor, b2: Tensor) => custom(a2, b2);
    matMulCache.set(tf, fn);
  }
  return fn(a, b);
}

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)); the ONNX export writes the same formula with Erf (opset 17 has no Gelu). */
export function gelu(tf: Tf, x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

export function applyHiddenActivation(tf: Tf, x: Tensor, activation: HiddenActivation): Tensor {
  switch (activation) {
    case 'none':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'relu6':
      return tf.relu6(x);
    case 'gelu':
      return gelu(tf, x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
  }
}

export function applyOutputActivation(tf: Tf, x: Tensor, activation: OutputActivation): Tensor {
  switch (activation) {
    case 'none':
      return x;
    case 'softmax':
      return tf.softmax(x);
    case 'sigmoid':
      return tf.sigmoid(x);
  }
}

/** LayerNorm over the last axis with biased variance, as ONNX LayerNormalization computes it. */
export function layerNorm(tf: Tf, x: Tensor, gamma: Tensor, beta: Tensor, epsilon: number): Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const { mean, variance } = tf.moments(x, axis, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon))), gamma), beta);
  });
}

/** A variable holding `values`; the staging tensor is freed (tf.variable keeps its input tensor alive otherwise). */
export function variableOf(tf: Tf, values: Float32Array, shape: readonly number[], trainable: boolean): Variable {
  return tf.tidy(() => tf.variable(tf.tensor(values, [...shape], 'float32'), trainable));
}
