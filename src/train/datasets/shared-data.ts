// Readers preset for the four research datasets under ../shared/data (age-utkface, emotion-fer2013, identity-orl, landmarks-wflw).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NotFoundError } from '../../core/errors.js';
import { EMOTION_LABELS_FER } from '../../models/zoo.js';
import { readClassFolders } from './class-folders.js';
import { defaultDataRoot } from './common.js';
import { readCsvManifest } from './csv-manifest.js';
import type { CommonReaderOptions, FaceDataset } from './types.js';
import { readWflw } from './wflw.js';

export const SHARED_DATASETS = ['age-utkface', 'emotion-fer2013', 'identity-orl', 'landmarks-wflw'] as const;
export type SharedDatasetName = (typeof SHARED_DATASETS)[number];

/** FER2013's label order (fer2013_label 0..6): the one the pre-trained emotion models use (the zoo's list). */
export const FER2013_CLASSES = EMOTION_LABELS_FER;

/** Reads one of the shared datasets; `dataRoot` defaults to `../shared/data` next to the repository (or $KT_DATA_ROOT). */
export async function readSharedDataset(
  name: SharedDatasetName,
  dataRoot = defaultDataRoot(),
  options: CommonReaderOptions = {},
): Promise<FaceDataset> {
  const folder = resolve(dataRoot, name);
  if (!existsSync(folder)) throw new NotFoundError(`dataset ${name} not found at ${folder} (pass a data root or set KT_DATA_ROOT)`);
  const common = { name, ...options };
  switch (name) {
    case 'age-utkface':
      return readCsvManifest({
        ...common,
        csvPath: join(folder, 'labels.csv'),
        taskType: 'regression',
        labelColumn: 'age',
        integerLabels: true,
        labelRange: [0, 120],
        attributeColumns: ['gender', 'race'],
      });
    case 'emotion-fer2013':
      return readClassFolders({
        ...common,
        root: folder,
        classColumn: 'emotion',
        classIndexColumn: 'fer2013_label',
        classNames: FER2013_CLASSES,
      });
    case 'identity-orl':
      return readCsvManifest({ ...common, csvPath: join(folder, 'labels.csv'), taskType: 'identity', labelColumn: 'subject_id' });
    case 'landmarks-wflw':
      return readWflw({ ...common, annotationFile: join(folder, 'annotations_98pt.txt') });
  }
}
