// Per-track answers over many frames: age as a robust mean, gender and identity as votes, emotion smoothed.
import type { IdentityMatch } from '../../gen/kt/v1/common.js';
import { EmotionResult, GenderResult, TrackSummary } from '../../gen/kt/v1/face_analysis.js';

/** Age observations kept per track (the median of the newest ones). */
const ageWindow = 31;
/** Weight of the newest emotion scores in the exponential smoothing. */
const emotionAlpha = 0.35;

export class TrackAggregates {
  private readonly ages: number[] = [];
  private readonly genderWeight = new Map<string, number>();
  private readonly identities = new Map<string, { votes: number; best: IdentityMatch }>();
  private emotion: { labels: string[]; scores: number[] } | undefined;
  hits = 0;
  bestScore = 0;

  observeAge(years: number): void {
    this.ages.push(years);
    if (this.ages.length > ageWindow) this.ages.shift();
  }

  observeGender(g: GenderResult): void {
    // A 0.5-confidence answer is a coin toss: it weighs nothing.
    const weight = Math.max(0, g.confidence - 0.5);
    this.genderWeight.set(g.label, (this.genderWeight.get(g.label) ?? 0) + weight);
  }

  /** Only confident matches vote: "unknown" frames (blur, profile) say nothing about who it is. */
  observeIdentity(m: IdentityMatch): void {
    if (!m.known || !m.personId) return;
    const entry = this.identities.get(m.personId);
    if (!entry) this.identities.set(m.personId, { votes: 1, best: m });
    else {
      entry.votes += 1;
      if (m.similarity > entry.best.similarity) entry.best = m;
    }
  }

  observeEmotion(e: EmotionResult): void {
    const labels = e.scores.map((s) => s.label);
    const scores = e.scores.map((s) => s.score);
    if (!this.emotion || this.emotion.labels.join() !== labels.join()) {
      this.emotion = { labels, scores };
      return;
    }
    const prev = this.emotion.scores;
    this.emotion.scores = scores.map((s, i) => emotionAlpha * s + (1 - emotionAlpha) * prev[i]!);
  }

  /** The median of the newest age answers (robust to the odd blurred or turned-away frame); undefined when none. */
  age(): number | undefined {
    if (this.ages.length === 0) return undefined;
    const sorted = [...this.ages].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }

  gender(): GenderResult | undefined {
    let total = 0;
    let best: [string, number] | undefined;
    for (const [label, w] of this.genderWeight) {
      total += w;
      if (!best || w > best[1]) best = [label, w];
    }
    if (!best) return undefined;
    // Confidence of the vote: the winner's share of the evidence, 0.5..1.
    return GenderResult.fromPartial({ label: best[0], confidence: total > 0 ? 0.5 + 0.5 * (best[1] / total) : 0.5 });
  }

  identity(): IdentityMatch | undefined {
    let best: { votes: number; best: IdentityMatch } | undefined;
    for (const entry of this.identities.values()) if (!best || entry.votes > best.votes) best = entry;
    return best?.best;
  }

  emotionResult(): EmotionResult | undefined {
    if (!this.emotion) return undefined;
    const { labels, scores } = this.emotion;
    let top = 0;
    scores.forEach((s, i) => {
      if (s > scores[top]!) top = i;
    });
    return EmotionResult.fromPartial({
      label: labels[top]!,
      confidence: scores[top]!,
      scores: labels.map((label, i) => ({ label, score: scores[i]! })),
    });
  }

  summary(): TrackSummary {
    const gender = this.gender();
    const identity = this.identity();
    const emotion = this.emotionResult();
    return TrackSummary.fromPartial({
      ageYears: this.age() ?? 0,
      hits: this.hits,
      bestScore: this.bestScore,
      ...(gender ? { gender } : {}),
      ...(identity ? { identity } : {}),
      ...(emotion ? { emotion } : {}),
    });
  }
}
