// Public surface of per-model pre- and post-processing, shared by the server and training.
export { regionTransform, toFramePoint, iou, type Rect, type Point, type FrameTransform } from './geometry.js';
export { cropRect, cropFace, resampleRegion, type CropBorder, type CropOptions, type ResampleOptions, type FaceCrop } from './crop.js';
export { fitFrame, type FrameFit, type FittedFrame } from './letterbox.js';
export { normalize, grayWeights, type NormalizeSpec, type FloatTensor } from './normalize.js';
export { nonMaxSuppression } from './nms.js';
export {
  blazefaceAnchors,
  blazefaceInputSpec,
  blazefaceKeypointNames,
  blazefaceOptionsFromManifest,
  decodeBlazeface,
  defaultBlazefaceOptions,
  prepareBlazefaceInput,
  selectBlazefaceHeads,
  type BlazefaceHead,
  type BlazefaceInput,
  type BlazefaceOptions,
  type DetectedFace,
} from './blazeface.js';
export {
  decodeAgeBins,
  decodeAgeExpectation,
  decodeAgeYears,
  decodeClassification,
  decodeGender,
  decodeOutput,
  cosineSimilarity,
  l2Normalize,
  landmarksToFrame,
  softmax,
  type Classification,
  type ClassScore,
  type CropContext,
  type DecodedOutput,
  type GenderResult,
} from './decode.js';
