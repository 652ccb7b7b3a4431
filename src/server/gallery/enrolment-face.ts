// The enrolment face kept in the gallery: one canonical 5-point-aligned crop per enrolment image, from which any
// embedding model's input (aligned or a box crop) can be made again later (`kt gallery reembed`).
import { InvalidInputError } from '../../core/errors.js';
import { decodeImage, encodePng, type RgbImage } from '../../core/image.js';
import { alignFace, alignmentTemplate } from '../../models/processing/align.js';
import type { DetectedFace } from '../../models/processing/index.js';

/** Stored format tag: PNG of a CANONICAL_SIZE px crop aligned on dlib's template with CANONICAL_PADDING. */
export const ENROLMENT_FACE_FORMAT = 'png-aligned-224-p0.6';
const CANONICAL_SIZE = 224;
/**
 * Template padding of the kept crop (dlib's chip uses 0.25): 0.6 keeps hair, chin and background around the face, so
 * that box-crop models with a margin (faceres: 20 % on each side of the detector box) still find their whole crop.
 * Eye distance is then 0.53 / 2.2 * 224 = 54 px, a little more than dlib's 150 px chip has (53 px).
 */
const CANONICAL_PADDING = 0.6;

/**
 * The canonical crop of a detected face (needs its eye, nose and mouth keypoints), PNG-encoded, about 224 x 224 RGB.
 * It is a biometric photo of the person: the store keeps it until the person is deleted.
 */
export async function enrolmentFace(frame: RgbImage, face: DetectedFace): Promise<{ png: Uint8Array; crop: RgbImage }> {
  if (face.keypoints.length < 4) throw new InvalidInputError('the enrolment face needs eye, nose and mouth keypoints');
  // The detector box is not stored: faceFromEnrolment rebuilds a box from the template points.
  const { image } = alignFace(frame, face.keypoints, CANONICAL_SIZE, CANONICAL_PADDING);
  return { png: await encodePng(image), crop: image };
}

/**
 * A stored canonical crop as a frame with its face: the keypoints are the template's points (the crop was warped
 * onto them), the box is the detector-like box of the template face (the eye-to-mouth span grown as BlazeFace's boxes
 * are: BOX_PER_EYE_DISTANCE eye distances wide, centred between the eyes and the mouth).
 */
export async function faceFromEnrolment(bytes: Uint8Array, format: string): Promise<{ frame: RgbImage; face: DetectedFace }> {
  if (format !== ENROLMENT_FACE_FORMAT)
    throw new InvalidInputError(`stored enrolment face has format "${format}", expected "${ENROLMENT_FACE_FORMAT}"`);
  const frame = await decodeImage(bytes);
  if (frame.width !== CANONICAL_SIZE || frame.height !== CANONICAL_SIZE)
    throw new InvalidInputError(`stored enrolment face is ${frame.width}x${frame.height}, expected ${CANONICAL_SIZE}x${CANONICAL_SIZE}`);
  const points = alignmentTemplate(CANONICAL_SIZE, CANONICAL_PADDING);
  return { frame, face: { box: templateBox(points), score: 1, keypoints: points } };
}

/** A BlazeFace-like box around template points (eyes, nose, mouth). */
function templateBox(points: readonly { x: number; y: number }[]): DetectedFace['box'] {
  const [re, le, , mouth] = points as [{ x: number; y: number }, { x: number; y: number }, unknown, { x: number; y: number }];
  const eyeDistance = Math.hypot(le.x - re.x, le.y - re.y);
  const side = BOX_PER_EYE_DISTANCE * eyeDistance;
  const cx = (re.x + le.x + 2 * mouth.x) / 4;
  const cy = ((re.y + le.y) / 2 + mouth.y) / 2;
  return { x: cx - side / 2, y: cy - side / 2, width: side, height: side };
}

/**
 * BlazeFace's box side / eye distance on frontal faces: median 2.32 on 23 faces (face-api's 3 demo photos and 14
 * ORL photos), boxes square and centred on the mean of the eye centre and the mouth (offset < 0.05 eye distances).
 */
export const BOX_PER_EYE_DISTANCE = 2.32;
