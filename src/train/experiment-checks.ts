// Checks a `kt train` run makes before the slow work: the repositories it reads and writes, and what is left of the data.
import { existsSync } from 'node:fs';
import { access, constants, mkdir } from 'node:fs/promises';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import { listRepository } from '../models/repository.js';
import { SHARED_DATASETS, formatProblems, repeatedPeopleHint } from './datasets/index.js';
import type { FaceDataset } from './datasets/types.js';
import type { TaskDataOptions } from './pipeline-tasks.js';

export interface RepositoryCheck {
  /** Where the encoders are read (--repo). */
  repo: string;
  /** Where the KT model is written (--export-repo). */
  exportRepo: string;
  encoders: readonly string[];
  exportEnabled: boolean;
  log: (line: string) => void;
}

/**
 * Fails before any work when an encoder is missing from --repo or --export-repo cannot be written, saying which
 * repository is meant: --repo is read (encoders), --export-repo is written (the KT model; default --repo).
 */
export async function checkRepositories({ repo, exportRepo, encoders, exportEnabled, log }: RepositoryCheck): Promise<void> {
  const hint = 'To keep trained models apart, leave --repo at the encoders and write with --export-repo DIR.';
  if (!existsSync(repo))
    throw new InvalidInputError(
      `the encoder repository --repo ${repo} does not exist; the encoders (${encoders.join(', ')}) are read from it. ${hint}`,
    );
  const present = new Set((await listRepository(repo)).map((e) => e.manifest.name));
  const missing = encoders.filter((name) => !present.has(name));
  if (missing.length > 0) {
    throw new InvalidInputError(
      `encoder model${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found in the encoder repository --repo ${repo} (run \`kt models build\` there, or point --repo at a built repository). ${hint}`,
    );
  }
  if (!exportEnabled) return;
  try {
    await mkdir(exportRepo, { recursive: true });
    await access(exportRepo, constants.W_OK);
  } catch (e) {
    throw new InvalidInputError(`cannot write the export repository --export-repo ${exportRepo}: ${errorMessage(e)}`, { cause: e });
  }
  if (exportRepo !== repo) log(`encoders from ${repo}; the KT model is exported to ${exportRepo}`);
}

/** Prints the data problems (counts and first examples); stops with that report when no sample is left. */
export function checkUsableData(dataset: FaceDataset, data: string, dataOptions: TaskDataOptions, log: (line: string) => void): void {
  const report = dataset.problems;
  if (dataset.samples.length === 0)
    throw new InvalidInputError(`no usable samples in ${dataset.source}; nothing to train on.\n${formatProblems(report, dataset.name)}`);
  if (report.excluded > 0 || report.warnings > 0) log(formatProblems(report, dataset.name));
  const userCsv = !(SHARED_DATASETS as readonly string[]).includes(data) && dataset.source.toLowerCase().endsWith('.csv');
  if (userCsv && !dataOptions.subjectColumn && !dataOptions.groupColumn) {
    const hint = repeatedPeopleHint(dataset.samples, dataset.source);
    if (hint) log(`warning: ${hint}`);
  }
}
