// Real face fixtures for tests: face-api's demo photos, decoded once, and the faces the repository's detector finds in them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeImage, type RgbImage } from '../../src/core/image.js';
import { packageInfo } from '../../src/models/build.js';
import { resolveModel } from '../../src/models/repository.js';
import { detectFaces, loadModel, type LoadedModel } from '../../src/models/runner.js';
import type { DetectedFace } from '../../src/models/processing/index.js';

export function demoPhotoPath(n: number): string {
  return join(packageInfo('@vladmandic/face-api').dir, 'demo', `sample${n}.jpg`);
}

export async function demoPhoto(n: number): Promise<RgbImage> {
  return decodeImage(await readFile(demoPhotoPath(n)));
}

const loaded = new Map<string, Promise<LoadedModel>>();
export function repositoryModel(name: string): Promise<LoadedModel> {
  let p = loaded.get(name);
  if (!p) {
    p = resolveModel(name).then((e) => loadModel(e));
    loaded.set(name, p);
  }
  return p;
}

export async function demoFaces(n: number): Promise<{ frame: RgbImage; faces: DetectedFace[] }> {
  const frame = await demoPhoto(n);
  return { frame, faces: await detectFaces(await repositoryModel('blazeface'), frame) };
}
