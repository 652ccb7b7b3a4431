// The common shape every face-dataset reader returns: samples, task, class names and a problems report.

/** What a dataset's labels mean; decides the loss, the metrics and whether a split can stratify. */
export type DatasetTaskType = 'regression' | 'classification' | 'identity' | 'landmarks';

/** Landmark schemes whose outer-eye-corner indices the metrics know. */
export type LandmarkScheme = 'wflw98' | 'ibug68';

/** Face box in image pixels: x, y of the top-left corner, width, height. */
export type Box = [x: number, y: number, width: number, height: number];

export interface FaceSample {
  /** Unique within the dataset; stable across runs (derived from file names and line numbers). */
  id: string;
  /** Absolute path of the image file. */
  imagePath: string;
  /**
   * regression: the value (age in years); classification / identity: the class index into `classNames`;
   * landmarks: flat `[x0, y0, x1, y1, ...]` in original-image pixels.
   */
  label: number | number[];
  /** Person id where the data has one; a split by subject keeps a person on one side. */
  subject?: string;
  /** Duplicate (or same-scene) group; a split keeps a group on one side. */
  group?: string;
  /** For full-scene landmark images: the landmark bounding box (no detector rectangle in the data). */
  box?: Box;
  /** Extra per-sample flags from the annotation, e.g. WFLW's pose / occlusion / blur attributes. */
  attributes?: Record<string, number>;
}

export type ProblemKind =
  | 'missing-file'
  | 'empty-file'
  | 'unreadable-image'
  | 'truncated-image'
  | 'bad-label'
  | 'out-of-range'
  | 'wrong-coordinate-count'
  | 'malformed-line'
  | 'unknown-class'
  | 'label-mismatch'
  | 'unlisted-file'
  | 'duplicate-id'
  | 'conflicting-duplicate-labels'
  | 'points-outside-image';

/** `excluded`: the sample was left out of `samples`; `warning`: it was kept as given. */
export type ProblemSeverity = 'excluded' | 'warning';

export interface ProblemExample {
  /** File the problem is about (an image, or the annotation file for a bad line). */
  file: string;
  /** 1-based line number in the manifest or annotation file, where there is one. */
  line?: number;
  message: string;
}

export interface ProblemGroup {
  kind: ProblemKind;
  severity: ProblemSeverity;
  count: number;
  /** The first few occurrences (at most `maxExamples` of the collector). */
  examples: ProblemExample[];
}

export interface ProblemsReport {
  /** Entries (lines, files) the reader looked at. */
  checked: number;
  /** Samples returned. */
  kept: number;
  /** Entries left out because of a problem; equals the sum of `count` over excluded groups. */
  excluded: number;
  /** Warnings about samples that were kept. */
  warnings: number;
  groups: ProblemGroup[];
}

export interface FaceDataset {
  /** Short name for logs and reports, e.g. `emotion-fer2013`. */
  name: string;
  /** Folder or file the dataset was read from. */
  source: string;
  taskType: DatasetTaskType;
  /** classification / identity: index -> name. Empty for regression and landmarks. */
  classNames: string[];
  /** landmarks only. */
  landmarkScheme?: LandmarkScheme;
  /** landmarks only: points per face. */
  pointCount?: number;
  samples: FaceSample[];
  problems: ProblemsReport;
}

/** How hard a reader looks at image files. */
export type ImageCheckLevel = 'none' | 'exists' | 'header';

/** Options every reader accepts. */
export interface CommonReaderOptions {
  /** Dataset name for reports; defaults to the folder or file name. */
  name?: string;
  /**
   * `exists`: the file exists and is non-empty; `header`: also parse the image header (JPEG, PNG, PGM/PPM,
   * GIF, BMP, WebP) and look for truncation. Default `header` (cheap: reads at most the first and last bytes).
   */
  imageCheck?: ImageCheckLevel;
  /** Examples kept per problem kind. Default 5. */
  maxExamples?: number;
}
