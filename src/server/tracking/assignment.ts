// Minimum-cost assignment (Hungarian method, potentials form, O(n^2 m)) for matching tracks to detections.

/**
 * Pairs rows with columns to minimise the summed cost, then drops pairs whose cost exceeds `maxCost`.
 * `cost[r][c]` may be Infinity (a forbidden pair). Returns `[row, col]` pairs; rows or columns left out are unmatched.
 */
export function assign(cost: readonly (readonly number[])[], maxCost: number): [number, number][] {
  const rows = cost.length;
  const cols = rows > 0 ? cost[0]!.length : 0;
  if (rows === 0 || cols === 0) return [];
  // The method needs rows <= cols: solve the transpose otherwise.
  if (rows > cols) {
    const transposed = Array.from({ length: cols }, (_, c) => cost.map((row) => row[c]!));
    return assign(transposed, maxCost).map(([c, r]) => [r, c]);
  }
  // Forbidden pairs get a large finite cost so that a full assignment always exists; they are filtered out below.
  const big = 1e9;
  const at = (r: number, c: number): number => {
    const v = cost[r]![c]!;
    return Number.isFinite(v) ? v : big;
  };
  const u = new Float64Array(rows + 1);
  const v = new Float64Array(cols + 1);
  const match = new Int32Array(cols + 1); // match[c] = row (1-based) assigned to column c, 0 = none
  const way = new Int32Array(cols + 1);
  for (let r = 1; r <= rows; r++) {
    match[0] = r;
    let c0 = 0;
    const minv = new Float64Array(cols + 1).fill(Infinity);
    const used = new Uint8Array(cols + 1);
    do {
      used[c0] = 1;
      const r0 = match[c0]!;
      let delta = Infinity;
      let c1 = 0;
      for (let c = 1; c <= cols; c++) {
        if (used[c]) continue;
        const reduced = at(r0 - 1, c - 1) - u[r0]! - v[c]!;
        if (reduced < minv[c]!) {
          minv[c] = reduced;
          way[c] = c0;
        }
        if (minv[c]! < delta) {
          delta = minv[c]!;
          c1 = c;
        }
      }
      for (let c = 0; c <= cols; c++) {
        if (used[c]) {
          u[match[c]!] += delta;
          v[c] -= delta;
        } else {
          minv[c] -= delta;
        }
      }
      c0 = c1;
    } while (match[c0] !== 0);
    do {
      const c1 = way[c0]!;
      match[c0] = match[c1]!;
      c0 = c1;
    } while (c0 !== 0);
  }
  const pairs: [number, number][] = [];
  for (let c = 1; c <= cols; c++) {
    const r = match[c]! - 1;
    if (r >= 0 && at(r, c - 1) <= maxCost) pairs.push([r, c - 1]);
  }
  return pairs.sort((a, b) => a[0] - b[0]);
}
