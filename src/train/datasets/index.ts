// Public surface of the dataset layer: readers, the problems report, image checks and seeded splits.
export type {
  Box,
  CommonReaderOptions,
  DatasetTaskType,
  FaceDataset,
  FaceSample,
  ImageCheckLevel,
  LandmarkScheme,
  ProblemExample,
  ProblemGroup,
  ProblemKind,
  ProblemSeverity,
  ProblemsReport,
} from './types.js';
export { ProblemCollector, formatProblems, hasExclusions } from './problems.js';
export { checkImageFile, parseImageHeader, type ImageCheckResult, type ImageFormat, type ImageHeader } from './image-check.js';
export { parseCsv, readCsvFile, type CsvTable } from './csv.js';
export { defaultDataRoot } from './common.js';
export { readClassFolders, type ClassFolderOptions } from './class-folders.js';
export { readCsvManifest, type CsvManifestOptions } from './csv-manifest.js';
export { repeatedPeopleHint } from './subject-hint.js';
export { readWflw, WFLW_ATTRIBUTES, type WflwOptions } from './wflw.js';
export { readIbugPts, parsePts, type IbugPtsOptions } from './ibug-pts.js';
export { landmarkBox } from './landmark-common.js';
export { readSharedDataset, SHARED_DATASETS, FER2013_CLASSES, type SharedDatasetName } from './shared-data.js';
export { splitDataset, type SplitOptions, type SplitResult, type SplittableSample } from './split.js';
export { mulberry32, gaussian, shuffleInPlace, type Random } from './random.js';
