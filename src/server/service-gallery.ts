// kt.v1.Gallery: enrol people from images (largest face, identity-model embedding), list, delete, identify.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidInputError, NotFoundError } from '../core/errors.js';
import { ENROLMENT_FACE_FORMAT, enrolmentFace } from './gallery/enrolment-face.js';
import { checkPersonId, normalisePersonName } from './gallery/person-name.js';
import type { IdentityGallery, Person as StoredPerson } from './gallery/store.js';
import { IdentityMatch } from '../gen/kt/v1/common.js';
import {
  DeletePersonResponse,
  EnrolResponse,
  IdentifyResponse,
  ListPeopleResponse,
  Person,
  SkippedImage,
  type DeletePersonRequest,
  type EnrolRequest,
  type GalleryServer,
  type IdentifyRequest,
  type ListPeopleRequest,
} from '../gen/kt/v1/gallery.js';
import type { DetectLimits, FaceEmbedding } from './pipeline.js';
import type { ServingContext } from './serving-context.js';
import { answer, notServingError, toItemError } from './status.js';

const defaultMaxMatches = 5;

function personOf(p: StoredPerson): Person {
  return Person.fromPartial({
    personId: p.id,
    name: p.name,
    faceCount: p.embeddingCount,
    createdAtUnixMs: p.createdMs,
    updatedAtUnixMs: p.createdMs,
  });
}

export function galleryService(ctx: ServingContext): GalleryServer {
  const log = (call: string) => ({ logger: ctx.log, call: `Gallery.${call}` });
  return {
    enrol: (call: ServerUnaryCall<EnrolRequest, EnrolResponse>, callback: sendUnaryData<EnrolResponse>) =>
      answer(callback, log('Enrol'), () => enrol(ctx, call.request)),
    listPeople: (_call: ServerUnaryCall<ListPeopleRequest, ListPeopleResponse>, callback: sendUnaryData<ListPeopleResponse>) =>
      answer(callback, log('ListPeople'), () => listPeople(ctx)),
    deletePerson: (call: ServerUnaryCall<DeletePersonRequest, DeletePersonResponse>, callback: sendUnaryData<DeletePersonResponse>) =>
      answer(callback, log('DeletePerson'), () => deletePerson(ctx, call.request)),
    identify: (call: ServerUnaryCall<IdentifyRequest, IdentifyResponse>, callback: sendUnaryData<IdentifyResponse>) =>
      answer(callback, log('Identify'), () => identify(ctx, call.request)),
  };
}

function openGallery(ctx: ServingContext): IdentityGallery {
  if (!ctx.gallery) throw new FailedPreconditionError('the identity gallery is not open on this server');
  return ctx.gallery;
}

function detectLimits(ctx: ServingContext): DetectLimits {
  return { minScore: ctx.config.detectorScoreThreshold, maxFaces: ctx.config.maxFacesPerFrame, minFaceSizePx: ctx.config.minFaceSizePx };
}

/**
 * Empty person_id: a new person with a server-assigned id. An id not in the gallery: that person is created (a name
 * is then required). An enrolled id: the faces are added, and a non-empty name renames them.
 */
async function enrol(ctx: ServingContext, request: EnrolRequest): Promise<EnrolResponse> {
  if (!ctx.serving()) throw notServingError();
  const store = openGallery(ctx);
  const { name, personId, images } = request;
  if (images.length === 0) throw new InvalidInputError('enrolment needs at least one image');
  const existing = personId === '' ? undefined : store.get(checkPersonId(personId));
  // Checked before any image is decoded: a bad name must not cost a detector run per image.
  const cleanName = existing && name.trim() === '' ? undefined : normalisePersonName(name);
  const { used, skipped } = await embedLargestFaces(ctx, images);
  if (used.length === 0)
    throw new InvalidInputError(`no usable face in ${images.length} image(s): ${skipped.map((s) => s.error?.message).join('; ')}`);
  const model = { name: used[0]!.model.name, version: String(used[0]!.model.version) };
  const kept = used.filter((u) => u.model.version === used[0]!.model.version);
  const vectors = kept.map((u) => u.vector);
  let id = personId;
  if (existing === undefined || store.get(personId) === undefined) {
    // A person deleted while the images were analysed is created again, as the caller asked for them.
    id = store.enrol(cleanName ?? existing!.name, vectors, model, personId === '' ? undefined : personId);
  } else {
    store.addEmbeddings(id, vectors, model);
    if (cleanName !== undefined && cleanName !== existing.name) store.rename(id, cleanName);
  }
  // The aligned enrolment crops stay with the person, so that `kt gallery reembed` can move to another model.
  const faces = kept.flatMap((u) => (u.enrolmentFace ? [u.enrolmentFace] : []));
  if (faces.length > 0) store.addFaces(id, faces, ENROLMENT_FACE_FORMAT);
  const person = store.get(id);
  if (!person) throw new NotFoundError(`person ${id} vanished during enrolment`);
  return EnrolResponse.fromPartial({ personId: id, facesUsed: vectors.length, skipped, person: personOf(person) });
}

/** One embedding per image, of its largest face; images without a usable face are reported, not fatal. */
async function embedLargestFaces(
  ctx: ServingContext,
  images: EnrolRequest['images'],
): Promise<{ used: (FaceEmbedding & { enrolmentFace?: Uint8Array })[]; skipped: SkippedImage[] }> {
  const limits = detectLimits(ctx);
  const used: (FaceEmbedding & { enrolmentFace?: Uint8Array })[] = [];
  const skipped: SkippedImage[] = [];
  for (let i = 0; i < images.length; i++) {
    try {
      const embedding = await ctx.unary.run(async () => {
        const image = await ctx.pipeline.decode(images[i]);
        const faces = await ctx.pipeline.detect(image, limits);
        if (faces.length === 0) throw new InvalidInputError('no face found');
        // The person is the clearly largest face of the image.
        const largest = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
        const embedding = (await ctx.pipeline.embed(image, [largest]))[0]!;
        return largest.keypoints.length >= 4 ? { ...embedding, enrolmentFace: (await enrolmentFace(image, largest)).png } : embedding;
      });
      used.push(embedding);
    } catch (e) {
      // A bad image is skipped and reported; a server-side fault (identity model missing or unloaded, queue full)
      // fails the call with its own code instead of passing for the client's mistake.
      if (!(e instanceof InvalidInputError)) throw e;
      skipped.push(SkippedImage.fromPartial({ imageIndex: i, error: toItemError(e, `image ${i}: `) }));
    }
  }
  return { used, skipped };
}

function listPeople(ctx: ServingContext): ListPeopleResponse {
  return ListPeopleResponse.fromPartial({
    people: openGallery(ctx)
      .list()
      .map(personOf)
      .sort((a, b) => a.name.localeCompare(b.name)),
  });
}

function deletePerson(ctx: ServingContext, request: DeletePersonRequest): DeletePersonResponse {
  const store = openGallery(ctx);
  if (request.personId === '') throw new InvalidInputError('person_id is required');
  const person = store.get(request.personId);
  if (!person) throw new NotFoundError(`no enrolled person with id "${request.personId}"`);
  store.delete(person.id);
  return DeletePersonResponse.fromPartial({ person: personOf(person) });
}

async function identify(ctx: ServingContext, request: IdentifyRequest): Promise<IdentifyResponse> {
  if (!ctx.serving()) throw notServingError();
  const store = openGallery(ctx);
  const requested = request.threshold || ctx.config.identityThreshold;
  if (!(requested >= -1 && requested <= 1)) throw new InvalidInputError(`threshold must be in -1..1, got ${requested}`);
  const maxMatches = request.maxMatches || defaultMaxMatches;
  const embeddings = await ctx.unary.run(async () => {
    const image = await ctx.pipeline.decode(request.image);
    return ctx.pipeline.embed(image, await ctx.pipeline.detect(image, detectLimits(ctx)));
  });
  // Unset (0) in the request and the config: the identity model's calibrated threshold (model.json), else 0.6.
  const threshold = ctx.pipeline.identityThreshold(embeddings[0]?.model ?? { name: ctx.config.taskModels.identity, version: 0 }, requested);
  const faces = embeddings.map((e) => {
    const result = store.identify(e.vector, threshold, { name: e.model.name, version: String(e.model.version) });
    // The store answers with the single nearest person, so at most one match per face.
    const nearest = result.known ? result : result.nearest;
    const matches = nearest
      ? [IdentityMatch.fromPartial({ known: result.known, personId: nearest.personId, name: nearest.name, similarity: nearest.similarity })]
      : [];
    return {
      box: { xPx: e.face.box.x, yPx: e.face.box.y, widthPx: e.face.box.width, heightPx: e.face.box.height },
      score: e.face.score,
      matches: matches.slice(0, maxMatches),
    };
  });
  return IdentifyResponse.fromPartial({ faces, threshold });
}
