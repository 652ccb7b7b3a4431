// How an analysis is shown to a person: one text line per face and an annotated PNG (`kt analyze`, `npm run demo`).
import { drawPoint, drawRect, drawText, type Color } from './core/draw.js';
import { decodeImage, encodePng } from './core/image.js';
import type { AnalysisResult, FaceResult } from './sdk/results.js';

const fixed = (v: number, digits = 0): string => v.toFixed(digits);

/**
 * `face 1: box 418,408 190x189 score 0.94, age 30.5, gender female 0.84, emotion happy 0.59`: box and score always,
 * age, gender and emotion always ('-' when not asked for), the other answers only when present.
 */
export function faceLine(index: number, f: FaceResult): string {
  const b = f.box;
  const parts = [
    `face ${index + 1}: box ${fixed(b.x)},${fixed(b.y)} ${fixed(b.width)}x${fixed(b.height)} score ${fixed(f.score, 2)}`,
    `age ${f.age ? fixed(f.age.years, 1) : '-'}`,
    `gender ${f.gender ? `${f.gender.label} ${fixed(f.gender.confidence, 2)}` : '-'}`,
    `emotion ${f.emotion ? `${f.emotion.label} ${fixed(f.emotion.confidence, 2)}` : '-'}`,
  ];
  if (f.landmarks) parts.push(`landmarks ${f.landmarks.points.length} (${f.landmarks.scheme})`);
  if (f.mesh) parts.push(`mesh ${f.mesh.points.length} (${f.mesh.scheme})`);
  if (f.embedding) parts.push(`embedding ${f.embedding.values.length}`);
  if (f.identity)
    parts.push(
      `identity ${f.identity.known ? `${f.identity.name} (${fixed(f.identity.similarity, 2)})` : `unknown (nearest ${fixed(f.identity.similarity, 2)})`}`,
    );
  return parts.join(', ');
}

const palette: readonly Color[] = [
  [46, 204, 113],
  [52, 152, 219],
  [241, 196, 15],
  [231, 76, 60],
  [155, 89, 182],
  [26, 188, 156],
];

/** The label drawn above a face box: number, age, gender, emotion, name (the bitmap font is upper-case only). */
function faceLabel(index: number, f: FaceResult): string {
  const age = f.age ? `${Math.round(f.age.years)}Y` : '';
  return [`${index + 1}`, age, f.gender?.label ?? '', f.emotion?.label ?? '', f.identity?.known ? f.identity.name : '']
    .filter(Boolean)
    .join(' ');
}

/** The photo as PNG with every face boxed and labelled, its landmarks (cyan) and detector keypoints (red) dotted. */
export async function annotatedPng(photo: Uint8Array, result: AnalysisResult): Promise<Uint8Array> {
  const img = await decodeImage(photo);
  // Lines and text grow with the photo so that they stay readable on a 4K frame.
  const scale = Math.max(1, Math.round(Math.min(img.width, img.height) / 400));
  const textScale = Math.max(2, scale + 1);
  result.faces.forEach((f, i) => {
    const color = palette[i % palette.length]!;
    drawRect(img, f.box, color, 2 * scale);
    for (const p of f.landmarks?.points ?? []) drawPoint(img, p.x, p.y, [0, 255, 255], scale);
    for (const p of f.keypoints) drawPoint(img, p.x, p.y, [255, 0, 0], 2 * scale);
    drawText(img, f.box.x, Math.max(textScale, f.box.y - 8 * textScale), faceLabel(i, f), color, textScale);
  });
  return encodePng(img);
}
