// Landmark helpers shared by the WFLW and iBUG readers: bounding box of the points and points outside the image.
import type { ImageHeader } from './image-check.js';
import type { ProblemCollector } from './problems.js';
import type { Box, FaceSample, ProblemExample } from './types.js';

/** Axis-aligned bounding box `[x, y, w, h]` of flat `[x0, y0, x1, y1, ...]` points. */
export function landmarkBox(points: readonly number[]): Box {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i + 1 < points.length; i += 2) {
    minX = Math.min(minX, points[i]!);
    maxX = Math.max(maxX, points[i]!);
    minY = Math.min(minY, points[i + 1]!);
    maxY = Math.max(maxY, points[i + 1]!);
  }
  return [minX, minY, maxX - minX, maxY - minY];
}

/** Number of points farther than `tolerancePx` outside the image (truncated faces). */
export function countPointsOutside(points: readonly number[], header: ImageHeader, tolerancePx: number): number {
  let n = 0;
  for (let i = 0; i + 1 < points.length; i += 2) {
    const x = points[i]!;
    const y = points[i + 1]!;
    if (x < -tolerancePx || y < -tolerancePx || x > header.width - 1 + tolerancePx || y > header.height - 1 + tolerancePx) n++;
  }
  return n;
}

/**
 * The samples whose image passed its check, warning (not excluding) those with points more than `tolerancePx`
 * outside the image; `where` says where to report a warning for an entry.
 */
export function keepCheckedLandmarkSamples<E extends { sample: FaceSample }>(
  entries: readonly E[],
  checks: readonly { ok: boolean; header?: ImageHeader }[],
  tolerancePx: number,
  problems: ProblemCollector,
  where: (entry: E, outside: number, header: ImageHeader) => ProblemExample,
): FaceSample[] {
  const samples: FaceSample[] = [];
  entries.forEach((e, i) => {
    const check = checks[i]!;
    if (!check.ok) return;
    if (check.header) {
      const outside = countPointsOutside(e.sample.label as number[], check.header, tolerancePx);
      if (outside > 0) problems.add('points-outside-image', 'warning', where(e, outside, check.header));
    }
    samples.push(e.sample);
  });
  return samples;
}
