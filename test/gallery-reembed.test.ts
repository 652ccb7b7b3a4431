// A gallery enrolled with one embedding model (faceres) moves to another (facerec) with `kt gallery reembed`, from the
// enrolment faces it keeps, and identifies the same people with the new model. Real faces: ORL (../shared/data).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, encodePng } from '../src/core/image.js';
import { GalleryClient, type EnrolResponse, type IdentifyResponse } from '../src/gen/kt/v1/gallery.js';
import { identityFrame } from '../src/models/eval/identity.js';
import { ENROLMENT_FACE_FORMAT } from '../src/server/gallery/enrolment-face.js';
import { IdentityGallery } from '../src/server/gallery/store.js';
import type { RunningServer } from '../src/server/server.js';
import { runKt } from './helpers/cli.js';
import { encodedImage, startTestServer } from './helpers/server-fixture.js';

const ORL = join(import.meta.dirname, '..', '..', 'shared', 'data', 'identity-orl');
const hasOrl = existsSync(join(ORL, 'labels.csv'));
if (!hasOrl)
  console.warn(`gallery-reembed: ${ORL} is absent, so the re-embed test is skipped (it needs real faces of one person in several photos)`);

/** An ORL photo as a camera frame (PNG bytes), the way the identity evaluation sees it. */
async function orlFrame(subject: number, image: number): Promise<Buffer> {
  const photo = await decodeImage(await readFile(join(ORL, `s${subject}`, `${image}.pgm`)));
  return Buffer.from(await encodePng(identityFrame(photo)));
}

const call = <Req, Res>(fn: (req: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown, req: Req): Promise<Res> =>
  new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r))));

let dir: string;
let galleryPath: string;
let server: RunningServer | undefined;
const people = [
  { subject: 1, name: 'Subject One' },
  { subject: 2, name: 'Subject Two' },
  { subject: 3, name: 'Subject Three' },
];

describe.skipIf(!hasOrl)('kt gallery reembed', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-reembed-'));
    galleryPath = join(dir, 'gallery.db');
  });

  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('enrols with faceres and keeps one aligned enrolment face per image', async () => {
    server = await startTestServer({ galleryPath, tasks: ['identity'], taskModels: { identity: 'faceres' } });
    const gallery = new GalleryClient(server.address, grpc.credentials.createInsecure());
    for (const p of people) {
      const images = [encodedImage(await orlFrame(p.subject, 1)), encodedImage(await orlFrame(p.subject, 2))];
      const enrolled = await call<Parameters<GalleryClient['enrol']>[0], EnrolResponse>(gallery.enrol.bind(gallery), {
        name: p.name,
        personId: `s${p.subject}`,
        images,
      });
      expect(enrolled.facesUsed).toBe(2);
    }
    gallery.close();
    await server.close();
    server = undefined;
    const store = IdentityGallery.open({ path: galleryPath });
    try {
      expect(store.faces().map((f) => [f.personId, f.format])).toEqual(
        people.flatMap((p) => [
          [`s${p.subject}`, ENROLMENT_FACE_FORMAT],
          [`s${p.subject}`, ENROLMENT_FACE_FORMAT],
        ]),
      );
      expect(store.dims({ name: 'faceres', version: '1' })).toBe(1024);
      expect(store.dims({ name: 'facerec', version: '1' })).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('re-embeds every person with facerec from the kept faces, without the people', async () => {
    const out = await runKt(['gallery', 'reembed', '--model', 'facerec', '--gallery', galleryPath]);
    expect(out.stderr + out.stdout).toContain('3 people, 6 faces re-embedded with facerec@1');
    expect(out.code).toBe(0);
    const store = IdentityGallery.open({ path: galleryPath });
    try {
      expect(store.dims({ name: 'facerec', version: '1' })).toBe(128);
      expect(store.list({ name: 'facerec', version: '1' }).map((p) => p.embeddingCount)).toEqual([2, 2, 2]);
      // The faceres embeddings stay: the gallery can still serve the old model.
      expect(store.dims({ name: 'faceres', version: '1' })).toBe(1024);
    } finally {
      store.close();
    }
  });

  it('a server answering identity with facerec names the enrolled people in new photos and no one else', async () => {
    server = await startTestServer({ galleryPath, tasks: ['identity'], taskModels: { identity: 'facerec' } });
    const gallery = new GalleryClient(server.address, grpc.credentials.createInsecure());
    const identify = (image: Buffer) =>
      call<Parameters<GalleryClient['identify']>[0], IdentifyResponse>(gallery.identify.bind(gallery), {
        image: encodedImage(image),
        maxMatches: 1,
        threshold: 0,
      });
    for (const p of people) {
      const found = await identify(await orlFrame(p.subject, 7));
      expect(found.faces).toHaveLength(1);
      expect(found.faces[0]!.matches[0]).toMatchObject({ known: true, personId: `s${p.subject}`, name: p.name });
      // facerec's threshold calibrated on ORL (model.json identity.threshold), not the 0.6 fallback.
      expect(found.threshold).toBeGreaterThan(0.8);
    }
    const stranger = await identify(await orlFrame(4, 7));
    expect(stranger.faces[0]!.matches[0]!.known).toBe(false);
    gallery.close();
  });

  it('names the missing model and the missing gallery', async () => {
    const noModel = await runKt(['gallery', 'reembed', '--model', 'no-such-model', '--gallery', galleryPath]);
    expect(noModel.code).not.toBe(0);
    expect(noModel.stderr).toMatch(/no-such-model/);
    const notEmbedding = await runKt(['gallery', 'reembed', '--model', 'landmarks68', '--gallery', galleryPath]);
    expect(notEmbedding.stderr).toMatch(/landmarks68 has no embedding output/);
    const noGallery = await runKt(['gallery', 'reembed', '--model', 'facerec', '--gallery', join(dir, 'missing.db')]);
    expect(noGallery.stderr).toMatch(/no gallery at/);
  });
});
