// Seeded pseudo-random numbers for reproducible shuffling, drop masks and weight initialisation.

import { createRandom, type UniformRandom } from '../core/random.js';

export { createRandom, type UniformRandom };

export function fillNormal(random: UniformRandom, out: Float32Array, std = 1, mean = 0): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = Math.max(random(), 1e-12);
    const u2 = random();
    const radius = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = mean + radius * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = mean + radius * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Uniform samples on [-limit, limit). */
export function fillUniform(random: UniformRandom, out: Float32Array, limit: number): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = (2 * random() - 1) * limit;
  return out;
}

/** Fisher-Yates shuffle of 0..count-1. */
export function shuffledIndices(random: UniformRandom, count: number): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i]!;
    order[i] = order[j]!;
    order[j] = swap;
  }
  return order;
}
