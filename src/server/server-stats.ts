// Server-wide throughput, latency and drop counters for `<prefix>/<node>/stats` (bounded: a ring of recent latencies).

const latencyWindow = 1024;

export interface StatsSnapshotView {
  uptimeMs: number;
  streamsOpen: number;
  framesReceived: number;
  framesAnalyzed: number;
  framesDropped: number;
  framesFailed: number;
  unaryCalls: number;
  unaryFailed: number;
  /** Frames analysed per second since the previous snapshot. */
  fps: number;
  /** Over the last (up to 1024) analysed frames, milliseconds from receipt to result. */
  latencyMs: { mean: number; p50: number; p95: number; max: number };
  inferenceSlotsBusy: number;
  unaryQueued: number;
}

export class ServerStats {
  private readonly started = Date.now();
  framesReceived = 0;
  framesAnalyzed = 0;
  framesDropped = 0;
  framesFailed = 0;
  unaryCalls = 0;
  unaryFailed = 0;
  private readonly latencies = new Float64Array(latencyWindow);
  private latencyCount = 0;
  private lastSnapshotAt = Date.now();
  private lastSnapshotFrames = 0;

  recordLatency(ms: number): void {
    this.latencies[this.latencyCount % latencyWindow] = ms;
    this.latencyCount += 1;
  }

  snapshot(live: { streamsOpen: number; inferenceSlotsBusy: number; unaryQueued: number }): StatsSnapshotView {
    const n = Math.min(this.latencyCount, latencyWindow);
    const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b);
    const pick = (q: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]!);
    const t = Date.now();
    const fps = t > this.lastSnapshotAt ? ((this.framesAnalyzed - this.lastSnapshotFrames) * 1000) / (t - this.lastSnapshotAt) : 0;
    this.lastSnapshotAt = t;
    this.lastSnapshotFrames = this.framesAnalyzed;
    return {
      uptimeMs: t - this.started,
      streamsOpen: live.streamsOpen,
      framesReceived: this.framesReceived,
      framesAnalyzed: this.framesAnalyzed,
      framesDropped: this.framesDropped,
      framesFailed: this.framesFailed,
      unaryCalls: this.unaryCalls,
      unaryFailed: this.unaryFailed,
      fps: Math.round(fps * 100) / 100,
      latencyMs: {
        mean: n === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / n,
        p50: pick(0.5),
        p95: pick(0.95),
        max: n === 0 ? 0 : sorted[n - 1]!,
      },
      inferenceSlotsBusy: live.inferenceSlotsBusy,
      unaryQueued: live.unaryQueued,
    };
  }
}
