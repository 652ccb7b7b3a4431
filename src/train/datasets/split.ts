// Deterministic seeded train/val/test splits that keep subjects and duplicate groups on one side, stratified by class when possible.
import { InvalidInputError } from '../../core/errors.js';
import { mulberry32, shuffleInPlace } from './random.js';

/** The fields a split looks at; any FaceSample fits. */
export interface SplittableSample {
  id: string;
  label: number | number[];
  subject?: string;
  group?: string;
}

export interface SplitOptions {
  seed: number;
  /** Fractions of samples for train, val and test; non-negative, summing to 1 (within 1e-6). */
  fractions: [train: number, val: number, test: number];
  /**
   * The unit that never straddles two sides:
   * `subject`: a person, merged with any duplicate group its images are in (samples without a subject fall back to their group, then themselves);
   * `group`: a duplicate group (samples without one are their own unit);
   * `sample`: every sample on its own (ignores subjects and groups).
   */
  by: 'subject' | 'group' | 'sample';
  /**
   * Balance class proportions across sides. Applies when every label is a class index (a number); each unit is
   * counted under its most frequent class. Regression labels should not be stratified: pass false. Default true.
   */
  stratify?: boolean;
  /**
   * Custom stratum per sample (e.g. the age decade for regression); overrides the class label and applies to any
   * label type. A unit counts under its members' most frequent stratum.
   */
  strataOf?: (sample: SplittableSample) => number;
}

export interface SplitResult<S> {
  train: S[];
  val: S[];
  test: S[];
  /** Units (subjects / groups / samples) per side, for the report. */
  units: { train: number; val: number; test: number };
  stratified: boolean;
}

const SIDES = ['train', 'val', 'test'] as const;

export function splitDataset<S extends SplittableSample>(samples: readonly S[], options: SplitOptions): SplitResult<S> {
  const { fractions } = options;
  if (fractions.length !== 3 || fractions.some((f) => !(f >= 0)) || Math.abs(fractions[0] + fractions[1] + fractions[2] - 1) > 1e-6) {
    throw new InvalidInputError(`split fractions must be three non-negative numbers summing to 1, got [${fractions.join(', ')}]`);
  }
  const units = buildUnits(samples, options.by);
  const strataOf = options.strataOf ?? ((s: SplittableSample): number => s.label as number);
  const stratified =
    (options.stratify ?? true) &&
    samples.length > 0 &&
    (options.strataOf !== undefined || samples.every((s) => typeof s.label === 'number' && Number.isInteger(s.label)));

  // Sort by key first so the result depends on the seed and the sample ids, not on input order.
  const unitList = [...units.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const strata = new Map<number, Unit[]>();
  for (const unit of unitList) {
    const stratum = stratified ? majorityLabel(unit.members.map((i) => strataOf(samples[i]!))) : 0;
    const list = strata.get(stratum) ?? [];
    list.push(unit);
    strata.set(stratum, list);
  }
  const random = mulberry32(options.seed);
  const assigned = new Map<Unit, number>();
  const global = [0, 0, 0];
  let globalTotal = 0;
  for (const stratum of [...strata.keys()].sort((a, b) => a - b)) {
    const list = shuffleInPlace(strata.get(stratum)!, random);
    const local = [0, 0, 0];
    let localTotal = 0;
    for (const unit of list) {
      const size = unit.members.length;
      // Deficit after adding this unit, in this stratum plus overall: small strata still spread, big ones match fractions.
      let best = 0;
      let bestScore = -Infinity;
      for (let side = 0; side < 3; side++) {
        if (fractions[side] === 0) continue;
        const score = fractions[side]! * (localTotal + size) - local[side]! + (fractions[side]! * (globalTotal + size) - global[side]!);
        if (score > bestScore + 1e-9) {
          bestScore = score;
          best = side;
        }
      }
      assigned.set(unit, best);
      local[best]! += size;
      global[best]! += size;
      localTotal += size;
      globalTotal += size;
    }
  }

  const sideOf = new Int8Array(samples.length);
  const unitCounts = { train: 0, val: 0, test: 0 };
  for (const [unit, side] of assigned) {
    for (const i of unit.members) sideOf[i] = side;
    unitCounts[SIDES[side]!] += 1;
  }
  const result: SplitResult<S> = { train: [], val: [], test: [], units: unitCounts, stratified };
  samples.forEach((s, i) => result[SIDES[sideOf[i]!]!].push(s));
  return result;
}

interface Unit {
  key: string;
  members: number[];
}

/** Union-find over samples: joined when they share the unit key (subject) or a duplicate group. */
function buildUnits(samples: readonly SplittableSample[], by: SplitOptions['by']): Map<number, Unit> {
  const parent = samples.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const seenIds = new Set<string>();
  for (const s of samples) {
    if (seenIds.has(s.id)) throw new InvalidInputError(`split: sample id ${s.id} appears twice`);
    seenIds.add(s.id);
  }
  if (by !== 'sample') {
    const keys: ((s: SplittableSample) => string | undefined)[] = by === 'subject' ? [(s) => s.subject, (s) => s.group] : [(s) => s.group];
    for (const keyOf of keys) {
      const first = new Map<string, number>();
      samples.forEach((s, i) => {
        const key = keyOf(s);
        if (key === undefined) return;
        const f = first.get(key);
        if (f === undefined) first.set(key, i);
        else union(f, i);
      });
    }
  }
  const units = new Map<number, Unit>();
  samples.forEach((s, i) => {
    const root = find(i);
    const unit = units.get(root);
    if (unit) unit.members.push(i);
    else units.set(root, { key: '', members: [i] });
  });
  for (const unit of units.values()) {
    // Stable key: the smallest sample id in the unit.
    unit.key = unit.members.map((i) => samples[i]!.id).reduce((a, b) => (b < a ? b : a));
  }
  return units;
}

function majorityLabel(labels: number[]): number {
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  let best = labels[0]!;
  for (const [label, count] of counts) if (count > counts.get(best)! || (count === counts.get(best)! && label < best)) best = label;
  return best;
}
