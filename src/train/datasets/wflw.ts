// Reader for WFLW 98-point annotation lines: 196 coordinates, optional 4-value rectangle, 6 attribute flags, image name.
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkImages, parseNumber } from './common.js';
import { keepCheckedLandmarkSamples, landmarkBox } from './landmark-common.js';
import { ProblemCollector } from './problems.js';
import type { CommonReaderOptions, FaceDataset, FaceSample } from './types.js';

export interface WflwOptions extends CommonReaderOptions {
  /** The annotation file (`annotations_98pt.txt` or an official `list_98pt_*.txt`). */
  annotationFile: string;
  /** Folder image names are relative to. Default: `images/` next to the annotation file. */
  imageRoot?: string;
  /** Points farther than this outside the image are reported as a warning (needs `imageCheck: 'header'`). Default 5 px. */
  outsideTolerancePx?: number;
}

export const WFLW_ATTRIBUTES = ['pose', 'expression', 'illumination', 'makeup', 'occlusion', 'blur'] as const;
const POINTS = 98;

export async function readWflw(options: WflwOptions): Promise<FaceDataset> {
  const annotationFile = resolve(options.annotationFile);
  const imageRoot = resolve(options.imageRoot ?? join(dirname(annotationFile), 'images'));
  const problems = new ProblemCollector(options.maxExamples ?? 5);
  const lines = (await readFile(annotationFile, 'utf8')).split(/\r?\n/);
  const faceCountPerImage = new Map<string, number>();
  const entries: { sample: FaceSample; line: number }[] = [];

  lines.forEach((text, i) => {
    const line = i + 1;
    const trimmed = text.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    problems.check();
    const where = { file: annotationFile, line };
    const tokens = trimmed.split(/\s+/);
    const imageName = tokens[tokens.length - 1]!;
    const numbers = tokens.slice(0, -1);
    // 196 coords (official list_98pt_test), +6 flags (this repo's file), +4 rect +6 flags (list_98pt_rect_attr).
    if (![196, 202, 206].includes(numbers.length)) {
      problems.add('wrong-coordinate-count', 'excluded', {
        ...where,
        message: `${numbers.length} numbers before the image name; expected 196 coordinates (+6 flags, or +4 rect +6 flags)`,
      });
      return;
    }
    if (parseNumber(imageName) !== undefined) {
      problems.add('malformed-line', 'excluded', { ...where, message: 'last field is a number, expected the image name' });
      return;
    }
    const values = numbers.map(parseNumber);
    const bad = values.findIndex((v) => v === undefined || !Number.isFinite(v));
    if (bad >= 0) {
      problems.add('bad-label', 'excluded', { ...where, message: `field ${bad + 1} "${numbers[bad]}" is not a number` });
      return;
    }
    const nums = values as number[];
    const points = nums.slice(0, 2 * POINTS);
    const flags = numbers.length === 202 ? nums.slice(196, 202) : numbers.length === 206 ? nums.slice(200, 206) : undefined;
    const faceIndex = faceCountPerImage.get(imageName) ?? 0;
    faceCountPerImage.set(imageName, faceIndex + 1);
    const sample: FaceSample = {
      id: `${imageName}#${faceIndex}`,
      imagePath: join(imageRoot, imageName),
      label: points,
      // Faces of one scene share lighting, camera and often people: keep them on one side of a split.
      group: imageName,
      box: landmarkBox(points),
    };
    if (flags) sample.attributes = Object.fromEntries(WFLW_ATTRIBUTES.map((name, k) => [name, flags[k]!]));
    entries.push({ sample, line });
  });

  const checks = await checkImages(
    entries.map((e) => ({ imagePath: e.sample.imagePath, name: e.sample.group!, file: annotationFile, line: e.line })),
    options.imageCheck ?? 'header',
    problems,
  );
  const tolerance = options.outsideTolerancePx ?? 5;
  const samples = keepCheckedLandmarkSamples(entries, checks, tolerance, problems, (e, outside, header) => ({
    file: annotationFile,
    line: e.line,
    message: `${e.sample.id}: ${outside} points more than ${tolerance} px outside the ${header.width}x${header.height} image (truncated face)`,
  }));
  return {
    name: options.name ?? basename(dirname(annotationFile)),
    source: annotationFile,
    taskType: 'landmarks',
    classNames: [],
    landmarkScheme: 'wflw98',
    pointCount: POINTS,
    samples,
    problems: problems.report(samples.length),
  };
}
