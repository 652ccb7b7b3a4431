// Collects dataset problems with counts and examples, and prints them; readers never drop a sample silently.
import type { ProblemExample, ProblemGroup, ProblemKind, ProblemSeverity, ProblemsReport } from './types.js';

export class ProblemCollector {
  /** Keyed by kind and severity: a missing image that drops a sample and one that only weakens a duplicate group count apart. */
  private readonly groups = new Map<string, ProblemGroup>();
  private checked = 0;

  constructor(private readonly maxExamples = 5) {}

  /** Counts one entry the reader looked at (a manifest line, an image file). */
  check(amount = 1): void {
    this.checked += amount;
  }

  add(kind: ProblemKind, severity: ProblemSeverity, example: ProblemExample): void {
    const key = `${kind}/${severity}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { kind, severity, count: 0, examples: [] };
      this.groups.set(key, group);
    }
    group.count += 1;
    if (group.examples.length < this.maxExamples) group.examples.push(example);
  }

  report(kept: number): ProblemsReport {
    const groups = [...this.groups.values()].sort((a, b) => b.count - a.count);
    const sum = (sev: ProblemSeverity): number => groups.filter((g) => g.severity === sev).reduce((s, g) => s + g.count, 0);
    return { checked: this.checked, kept, excluded: sum('excluded'), warnings: sum('warning'), groups };
  }
}

/** Multi-line human summary: one line of totals, then per kind its count and examples. */
export function formatProblems(report: ProblemsReport, name = 'dataset'): string {
  const lines = [`${name}: ${report.checked} checked, ${report.kept} kept, ${report.excluded} excluded, ${report.warnings} warnings`];
  if (report.groups.length === 0) lines.push('  no problems found');
  for (const group of report.groups) {
    lines.push(`  ${group.kind} (${group.severity}): ${group.count}`);
    for (const ex of group.examples) lines.push(`    ${ex.file}${ex.line !== undefined ? `:${ex.line}` : ''}: ${ex.message}`);
    if (group.count > group.examples.length) lines.push(`    ... and ${group.count - group.examples.length} more`);
  }
  return lines.join('\n');
}

/** True when any sample was excluded; callers that want a clean dataset can fail on it. */
export function hasExclusions(report: ProblemsReport): boolean {
  return report.excluded > 0;
}
