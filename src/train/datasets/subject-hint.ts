// Guesses from file names whether a dataset without a subject column holds several images of the same people.
import { posix } from 'node:path';
import type { FaceSample } from './types.js';

/**
 * A person key guessed from a sample's file: the file name without its trailing counter (`alice_0003.jpg` -> `alice`)
 * when that leaves letters, else the folder it is in when the files are spread over several folders (`s12/3.pgm`).
 */
function personKey(id: string, severalFolders: boolean): string | undefined {
  const path = id.replaceAll('\\', '/');
  // One trailing counter goes (`alice_0003`, `img001`, `bob (2)`); a number inside the name stays (`person3_2` -> `person3`).
  const stem = posix
    .basename(path)
    .replace(/\.[^.]*$/, '')
    .toLowerCase()
    .replace(/[\s_.-]*\(?\d+\)?$/, '');
  if (/[a-z]/.test(stem)) return `${posix.dirname(path)}/${stem}`;
  return severalFolders && path.includes('/') ? posix.dirname(path) : undefined;
}

/**
 * When file names suggest repeated people (at least two guessed persons with two or more images each, covering a
 * fifth of the samples), a warning that a split by sample can put one person in train and test; else undefined.
 */
export function repeatedPeopleHint(samples: readonly FaceSample[], source: string): string | undefined {
  const severalFolders = new Set(samples.map((s) => posix.dirname(s.id.replaceAll('\\', '/')))).size > 1;
  const counts = new Map<string, number>();
  for (const s of samples) {
    const key = personKey(s.id, severalFolders);
    if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const repeated = [...counts].filter(([, n]) => n >= 2).sort((a, b) => b[1] - a[1]);
  const covered = repeated.reduce((a, [, n]) => a + n, 0);
  if (repeated.length < 2 || covered < samples.length / 5) return undefined;
  const examples = repeated
    .slice(0, 3)
    .map(([key, n]) => `${key.replace(/^\.\//, '')} (${n} files)`)
    .join(', ');
  return (
    `${source} has no subject column, but its file names suggest several images per person (${repeated.length} names repeat, e.g. ${examples}). ` +
    'The split is by sample, so one person can land in train and test and the test figures are optimistic; name the person column with --subject-column (or a group column with --group-column).'
  );
}
