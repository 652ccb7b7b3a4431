// Seeded pseudo-random numbers: the same seed gives the same sequence on every platform (reproducible shuffles, drop
// masks, weight initialisation, bootstrap resamples).

/** A uniform generator on [0, 1). */
export type UniformRandom = () => number;

/** mulberry32: small, fast and good enough for shuffles, masks, initialisation and resampling. */
export function createRandom(seed: number): UniformRandom {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
