// Timing helpers for benchmarks: a bounded loop (duration or iterations) with progress and ETA, and latency percentiles.

export interface MeasureOptions {
  /** Stop after this many milliseconds of timed work. */
  durationMs: number;
  /** ... or after this many timed iterations, whichever comes first (0: no limit). */
  maxIterations: number;
  /** Untimed iterations first (sessions, caches, JIT). */
  warmupIterations: number;
  /** Progress lines go here (stderr by default). */
  log?: (line: string) => void;
}

export interface Measurement {
  label: string;
  frames: number;
  elapsedMs: number;
  framesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Faces seen over the timed frames (a sanity check that every mode did the same work). */
  faces: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarise(label: string, latenciesMs: readonly number[], elapsedMs: number, faces: number): Measurement {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    label,
    frames: sorted.length,
    elapsedMs,
    framesPerSecond: sorted.length / (elapsedMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    faces,
  };
}

/** Prints `label: n frames, t/T s, ETA` at most once a second. */
export function progressPrinter(
  label: string,
  options: MeasureOptions,
): { tick(frames: number, elapsedMs: number): void; done(m: Measurement): void } {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let last = 0;
  return {
    tick(frames, elapsedMs) {
      const now = Date.now();
      if (now - last < 1000) return;
      last = now;
      const byTime = options.durationMs - elapsedMs;
      const byCount =
        options.maxIterations > 0 ? ((options.maxIterations - frames) * elapsedMs) / Math.max(1, frames) : Number.POSITIVE_INFINITY;
      const eta = Math.max(0, Math.min(byTime, byCount));
      log(
        `  ${label}: ${frames} frames, ${(elapsedMs / 1000).toFixed(1)} s, ${(frames / (elapsedMs / 1000)).toFixed(2)} frames/s, ETA ${(eta / 1000).toFixed(1)} s`,
      );
    },
    done(m) {
      log(`  ${label}: done, ${m.frames} frames in ${(m.elapsedMs / 1000).toFixed(1)} s`);
    },
  };
}

/**
 * Runs `step(i)` (one frame; returns the faces it found) sequentially: `warmupIterations` untimed, then timed until
 * `durationMs` or `maxIterations`.
 */
export async function measureLoop(label: string, options: MeasureOptions, step: (i: number) => Promise<number>): Promise<Measurement> {
  for (let i = 0; i < options.warmupIterations; i++) await step(i);
  const progress = progressPrinter(label, options);
  const latencies: number[] = [];
  let faces = 0;
  const start = performance.now();
  for (let i = 0; ; i++) {
    const elapsed = performance.now() - start;
    if (elapsed >= options.durationMs || (options.maxIterations > 0 && i >= options.maxIterations)) break;
    const t0 = performance.now();
    faces += await step(i);
    latencies.push(performance.now() - t0);
    progress.tick(latencies.length, performance.now() - start);
  }
  const m = summarise(label, latencies, performance.now() - start, faces);
  progress.done(m);
  return m;
}

/** Per-stage times summed over frames (decode, detection, task models), printed as means per frame. */
export class StageTotals {
  private frames = 0;
  private readonly sums = { decodeMs: 0, detectMs: 0, tasksMs: 0 };

  add(stage: { decodeMs: number; detectMs: number; tasksMs: number }): void {
    this.frames++;
    this.sums.decodeMs += stage.decodeMs;
    this.sums.detectMs += stage.detectMs;
    this.sums.tasksMs += stage.tasksMs;
  }

  describe(): string {
    const n = Math.max(1, this.frames);
    const { decodeMs, detectMs, tasksMs } = this.sums;
    return `decode ${(decodeMs / n).toFixed(1)} ms, detect ${(detectMs / n).toFixed(1)} ms, crops + task models ${(tasksMs / n).toFixed(1)} ms (${this.frames} frames incl. warm-up)`;
  }
}
