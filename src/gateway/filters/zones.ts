// Built-in filters on results: `zones` (include/exclude polygons; a face whose centre is outside is dropped) and
// `min-face-size` (faces smaller than a size are dropped). Both count what they drop.
import { Type, type TSchema } from '@sinclair/typebox';
import { literals } from '../../core/schema.js';
import { definePlugin, type PluginFactory } from '../../sdk/plugin.js';
import type { FaceResult } from '../../sdk/results.js';

export interface Zone {
  /** For logs. Default "". */
  name?: string;
  /** "include": faces must be inside one include zone (when there is any); "exclude": faces inside are dropped. */
  mode: 'include' | 'exclude';
  /** Polygon corners [x, y], at least 3: fractions of the frame (0..1) or pixels (see `units`). */
  points: [number, number][];
}

export interface ZonesFilterOptions {
  zones: Zone[];
  /** Whether points are fractions of the frame size ("fraction") or pixels ("px"). Default "fraction". */
  units: 'fraction' | 'px';
}

/** Even-odd ray casting: whether (x, y) is inside the polygon. */
export function insidePolygon(x: number, y: number, points: readonly (readonly [number, number])[]): boolean {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i]!;
    const [xj, yj] = points[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Whether a face centred at (x, y) is kept: inside some include zone (if any exist) and inside no exclude zone. */
export function keptByZones(x: number, y: number, zones: readonly Zone[]): boolean {
  const includes = zones.filter((z) => z.mode === 'include');
  if (includes.length > 0 && !includes.some((z) => insidePolygon(x, y, z.points))) return false;
  return !zones.some((z) => z.mode === 'exclude' && insidePolygon(x, y, z.points));
}

export const zonesFilter: PluginFactory<ZonesFilterOptions, 'filter'> = definePlugin<ZonesFilterOptions, 'filter'>({
  name: 'zones',
  kind: 'filter',
  description: 'keeps faces whose centre is inside the include polygons and outside the exclude polygons',
  schema: Type.Object(
    {
      zones: Type.Array(
        Type.Object(
          {
            name: Type.Optional(Type.String()),
            mode: literals(['include', 'exclude'] as const),
            points: Type.Array(Type.Tuple([Type.Number(), Type.Number()]), { minItems: 3, mustBe: 'at least 3 [x, y] points' }),
          },
          { additionalProperties: false },
        ),
        { default: [], description: 'Include/exclude polygons.' },
      ),
      units: literals(['fraction', 'px'] as const, { default: 'fraction', description: 'Points as fractions of the frame or pixels.' }),
    } satisfies Record<keyof ZonesFilterOptions, TSchema>,
    { additionalProperties: false, title: 'zones filter options' },
  ),
  create({ options: o }) {
    let facesDropped = 0;
    return {
      onResult(result) {
        const sx = o.units === 'fraction' ? 1 / Math.max(1, result.frameWidthPx) : 1;
        const sy = o.units === 'fraction' ? 1 / Math.max(1, result.frameHeightPx) : 1;
        const kept = result.faces.filter((f) => keptByZones((f.box.x + f.box.width / 2) * sx, (f.box.y + f.box.height / 2) * sy, o.zones));
        if (kept.length === result.faces.length) return undefined;
        facesDropped += result.faces.length - kept.length;
        return { faces: kept, reason: 'zone' };
      },
      stats: () => ({ facesDropped }),
    };
  },
});

export interface MinFaceSizeFilterOptions {
  /** Smallest face kept: the shorter side of its box, in pixels. Default 40. */
  minSizePx: number;
}

export const minFaceSizeFilter: PluginFactory<MinFaceSizeFilterOptions, 'filter'> = definePlugin<MinFaceSizeFilterOptions, 'filter'>({
  name: 'min-face-size',
  kind: 'filter',
  description: 'drops faces smaller than a size',
  schema: Type.Object(
    {
      minSizePx: Type.Number({ minimum: 0, default: 40, description: 'Smallest face kept (shorter box side), in pixels. Default 40.' }),
    } satisfies Record<keyof MinFaceSizeFilterOptions, TSchema>,
    { additionalProperties: false, title: 'min-face-size filter options' },
  ),
  create({ options: o }) {
    let facesDropped = 0;
    const big = (f: FaceResult): boolean => Math.min(f.box.width, f.box.height) >= o.minSizePx;
    return {
      onResult(result) {
        const kept = result.faces.filter(big);
        if (kept.length === result.faces.length) return undefined;
        facesDropped += result.faces.length - kept.length;
        return { faces: kept, reason: 'min-size' };
      },
      stats: () => ({ facesDropped }),
    };
  },
});
