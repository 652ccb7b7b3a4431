// Point correspondences into the iBUG 68-point scheme (for NME on 68 points) and the 68-point regions.

/** iBUG-68 regions: index ranges of the 300-W / dlib layout. */
export const IBUG68_REGIONS: Readonly<Record<string, readonly number[]>> = {
  jaw: range(0, 17),
  brows: range(17, 27),
  nose: range(27, 36),
  eyes: range(36, 48),
  mouth: range(48, 68),
};

/** Outer eye corners in iBUG-68 (the inter-ocular normaliser): the image-left eye's outer corner 36, the other's 45. */
export const IBUG68_OUTER_EYES: readonly [number, number] = [36, 45];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/**
 * WFLW-98 index of each iBUG-68 point. WFLW's contour has 33 points (every second one is an iBUG jaw point), its brows
 * have upper and lower edges (iBUG uses the upper: 33-37 and 42-46), its eyes 8 points (iBUG's 6 are corners plus the
 * 1st and 3rd of each lid: 60,61,63,64,65,67 / 68,69,71,72,73,75), nose 51-59 and mouth 76-95 are one to one.
 * The outer eye corners map to WFLW 60 and 72, the points the WFLW protocol normalises by.
 */
// prettier-ignore
export const WFLW98_TO_IBUG68: readonly number[] = [
  ...range(0, 17).map((i) => 2 * i),
  33, 34, 35, 36, 37,
  42, 43, 44, 45, 46,
  ...range(51, 60),
  60, 61, 63, 64, 65, 67,
  68, 69, 71, 72, 73, 75,
  ...range(76, 96),
];

/**
 * MediaPipe FaceMesh (468 points) index pairs for each iBUG-68 point; a point is the mean of its pair (the same index
 * twice where one mesh point corresponds). Source: the correspondence table `mp2dlib_correspondence` of
 * github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks (mediapipe2dlib/mp2dlib.py, 2024), restated here as data.
 */
// prettier-ignore
export const MEDIAPIPE468_TO_IBUG68: readonly (readonly [number, number])[] = [
  // jaw 0-16
  [127, 127], [234, 234], [93, 93], [132, 58], [58, 172], [136, 136], [150, 150], [176, 176], [152, 152],
  [400, 400], [379, 379], [365, 365], [397, 288], [361, 361], [323, 323], [454, 454], [356, 356],
  // brows 17-26
  [70, 70], [63, 63], [105, 105], [66, 66], [107, 107], [336, 336], [296, 296], [334, 334], [293, 293], [300, 300],
  // nose 27-35
  [168, 6], [197, 195], [5, 5], [4, 4], [75, 75], [97, 97], [2, 2], [326, 326], [305, 305],
  // eyes 36-47
  [33, 33], [160, 160], [158, 158], [133, 133], [153, 153], [144, 144],
  [362, 362], [385, 385], [387, 387], [263, 263], [373, 373], [380, 380],
  // outer lips 48-59
  [61, 61], [39, 39], [37, 37], [0, 0], [267, 267], [269, 269], [291, 291], [321, 321], [314, 314], [17, 17], [84, 84], [91, 91],
  // inner lips 60-67
  [78, 78], [82, 82], [13, 13], [312, 312], [308, 308], [317, 317], [14, 14], [87, 87],
];

/** Points of any supported scheme as iBUG-68 (undefined for a scheme without a mapping). */
export function toIbug68<P extends { x: number; y: number }>(scheme: string, points: readonly P[]): { x: number; y: number }[] | undefined {
  if (scheme === 'ibug68' && points.length >= 68) return points.slice(0, 68).map((p) => ({ x: p.x, y: p.y }));
  if (scheme === 'wflw98' && points.length >= 98) return WFLW98_TO_IBUG68.map((i) => ({ x: points[i]!.x, y: points[i]!.y }));
  if (scheme === 'mediapipe468' && points.length >= 468)
    return MEDIAPIPE468_TO_IBUG68.map(([a, b]) => ({ x: (points[a]!.x + points[b]!.x) / 2, y: (points[a]!.y + points[b]!.y) / 2 }));
  return undefined;
}
