// Benchmark sections: each measures a few modes on the same frames and names the ratios to print side by side.
// A new section (e.g. KT-Adapter vs baseline vs ensemble inference) implements BenchSection and is registered in run.ts.
import type { Logger } from '../src/core/log.js';
import type { MeasureOptions, Measurement } from './measure.js';

export interface BenchPhoto {
  name: string;
  bytes: Buffer;
}

export interface BenchContext {
  /** The frames every mode runs on (face-api's six demo photos), cycled. */
  photos: readonly BenchPhoto[];
  /** Duration / iteration bounds per mode. */
  measure: MeasureOptions;
  /** Face tasks the pipeline modes run. */
  tasks: readonly ('age' | 'gender' | 'emotion' | 'landmarks')[];
  log: Logger;
}

export interface BenchRow extends Measurement {
  /** Short id used by ratios, e.g. "a". */
  key: string;
  /** What exactly was timed. */
  note: string;
  /** Process RSS after the mode, bytes. */
  rssAfterBytes: number;
}

/** `numerator / denominator` of frames/s and of p50 latency, printed under the table. */
export interface BenchRatio {
  label: string;
  numerator: string;
  denominator: string;
}

export interface BenchSectionResult {
  title: string;
  rows: BenchRow[];
  ratios: BenchRatio[];
}

export interface BenchSection {
  /** Selector for `--sections`. */
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchSectionResult>;
}

const registered: BenchSection[] = [];

export function registerBenchSection(section: BenchSection): void {
  if (registered.some((s) => s.name === section.name)) throw new Error(`bench section ${section.name} registered twice`);
  registered.push(section);
}

export function benchSections(): readonly BenchSection[] {
  return registered;
}
