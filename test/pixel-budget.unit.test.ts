// The decoded-pixel budget: frames wait for their share first come, first served; release wakes the next that fits.
import { describe, expect, it } from 'vitest';
import { PixelBudget } from '../src/server/pixel-budget.js';

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('PixelBudget', () => {
  it('grants what fits at once and makes the rest wait until a release', async () => {
    const budget = new PixelBudget(100);
    const a = budget.reservation();
    const b = budget.reservation();
    await a.reserve(60);
    const waiting = b.reserve(60);
    expect(await settled(waiting)).toBe(false);
    expect(budget.stats()).toEqual({ capacity: 100, inUse: 60, waiting: 1, waitsTotal: 1 });
    a.release();
    expect(await settled(waiting)).toBe(true);
    expect(budget.stats()).toMatchObject({ inUse: 60, waiting: 0 });
    b.release();
    b.release(); // idempotent
    expect(budget.stats().inUse).toBe(0);
  });

  it('serves waiters in order: a small frame does not overtake a big one that is waiting', async () => {
    const budget = new PixelBudget(100);
    const first = budget.reservation();
    await first.reserve(90);
    const order: string[] = [];
    const big = budget.reservation();
    const small = budget.reservation();
    const bigDone = big.reserve(80).then(() => order.push('big'));
    const smallDone = small.reserve(5).then(() => order.push('small'));
    expect(await settled(smallDone)).toBe(false); // 5 would fit, but the big one came first
    first.release();
    await Promise.all([bigDone, smallDone]);
    expect(order).toEqual(['big', 'small']);
  });

  it('clamps a frame larger than the budget to the whole budget, and capacity 0 never waits', async () => {
    const budget = new PixelBudget(100);
    const huge = budget.reservation();
    await huge.reserve(1_000);
    expect(budget.stats().inUse).toBe(100);
    huge.release();
    const none = new PixelBudget(0);
    const r = none.reservation();
    await r.reserve(1e9);
    expect(await settled(none.reservation().reserve(1e9))).toBe(true);
    expect(none.stats().waitsTotal).toBe(0);
    expect(() => new PixelBudget(-1)).toThrow(RangeError);
  });
});
