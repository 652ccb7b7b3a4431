// Seeded pseudo-random numbers (mulberry32) for reproducible splits, shuffles and t-SNE initialisation.

import { createRandom } from '../seeded-random.js';

export type Random = () => number;

/** mulberry32 (the trainer's generator, one implementation): the same seed gives the same sequence everywhere. Values in [0, 1). */
export function mulberry32(seed: number): Random {
  return createRandom(seed);
}

/** Standard normal draws (Box-Muller) from a uniform generator. */
export function gaussian(random: Random): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = random();
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Fisher-Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
