// Reader for folder-per-class datasets (FER2013 image-folder style, ORL sN folders), honouring labels.csv and duplicate groups.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join, posix, resolve, sep } from 'node:path';
import { InvalidInputError } from '../../core/errors.js';
import { checkImages, isImageFile, naturalCompare, parseNumber, IMAGE_EXTENSIONS } from './common.js';
import { readCsvFile } from './csv.js';
import { ProblemCollector } from './problems.js';
import type { CommonReaderOptions, FaceDataset, FaceSample } from './types.js';

export interface ClassFolderOptions extends CommonReaderOptions {
  /** Folder whose sub-folders are the classes. */
  root: string;
  /** `classification` (default) or `identity` (then each folder is a person: `subject` = class name). */
  taskType?: 'classification' | 'identity';
  /** Class order (index -> name). Default: from `classIndexColumn` when given, else folder names in natural order. */
  classNames?: string[];
  /** Manifest relative to `root`, or false to use folder names only. Default `labels.csv` when it exists. */
  labelsCsv?: string | false;
  /** Manifest column with the image path relative to `root`. Default `file`. */
  fileColumn?: string;
  /** Manifest column with the class name. Default: the first of `emotion`, `label`, `class`, `subject_id` present. */
  classColumn?: string;
  /** Manifest column with the class index in the canonical order (e.g. FER2013's `fer2013_label`). Optional. */
  classIndexColumn?: string;
  /** CSV (relative to `root`) of pixel-identical duplicate groups (`group`, `file`), or false. Default `pixel_duplicate_groups.csv` when it exists. */
  duplicateGroupsCsv?: string | false;
  /** Image file name endings accepted. Default common image formats. */
  extensions?: string[];
}

const CLASS_COLUMN_GUESSES = ['emotion', 'label', 'class', 'subject_id'];

/** One manifest (or folder) entry; `folder` is set when the manifest's class differs from the folder the file is in. */
interface ClassEntry {
  rel: string;
  className: string;
  line?: number;
  classIndex?: number;
  folder?: string;
}

/** An entry with its class index resolved. */
interface LabelledEntry {
  rel: string;
  label: number;
  className: string;
  line?: number;
}

export async function readClassFolders(options: ClassFolderOptions): Promise<FaceDataset> {
  const root = resolve(options.root);
  const taskType = options.taskType ?? 'classification';
  const problems = new ProblemCollector(options.maxExamples ?? 5);
  const folders = await listClassFolders(root);
  const onDisk = await listImages(root, folders, options.extensions ?? IMAGE_EXTENSIONS, problems);

  const labelsCsv = options.labelsCsv ?? (existsSync(join(root, 'labels.csv')) ? 'labels.csv' : false);
  const manifestPath = labelsCsv ? join(root, labelsCsv) : undefined;
  let entries: ClassEntry[];
  if (manifestPath) entries = await readManifestEntries(manifestPath, options, { root, folders, taskType, onDisk }, problems);
  else {
    entries = [...onDisk.entries()].map(([rel, folder]) => ({ rel, className: folder }));
    problems.check(entries.length);
  }

  const classNames = resolveClassOrder(options, entries, folders, onDisk);
  const labelled = labelEntries(
    entries,
    classNames,
    (e) => ({ file: manifestPath ?? join(root, e.rel), ...(e.line !== undefined ? { line: e.line } : {}) }),
    problems,
  );
  const checks = await checkImages(
    labelled.map((l) => ({
      imagePath: join(root, ...l.rel.split('/')),
      name: l.rel,
      file: manifestPath ?? join(root, l.rel),
      ...(l.line !== undefined ? { line: l.line } : {}),
    })),
    options.imageCheck ?? 'header',
    problems,
  );
  const samples: FaceSample[] = [];
  labelled.forEach((l, i) => {
    if (!checks[i]!.ok) return;
    const sample: FaceSample = { id: l.rel, imagePath: join(root, ...l.rel.split('/')), label: l.label };
    if (taskType === 'identity') sample.subject = l.className;
    samples.push(sample);
  });

  const dupCsv =
    options.duplicateGroupsCsv ?? (existsSync(join(root, 'pixel_duplicate_groups.csv')) ? 'pixel_duplicate_groups.csv' : false);
  if (dupCsv) await applyDuplicateGroups(join(root, dupCsv), samples, classNames, problems);

  return {
    name: options.name ?? basename(root),
    source: root,
    taskType,
    classNames,
    samples,
    problems: problems.report(samples.length),
  };
}

/** The class sub-folders of the root, in natural order. */
async function listClassFolders(root: string): Promise<string[]> {
  try {
    return (await readdir(root, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort(naturalCompare);
  } catch (e) {
    throw new InvalidInputError(`class-folder dataset ${root} cannot be read`, { cause: e });
  }
}

/** Image files in the class folders, as posix paths relative to root -> their folder; other files are reported. */
async function listImages(
  root: string,
  folders: readonly string[],
  extensions: readonly string[],
  problems: ProblemCollector,
): Promise<Map<string, string>> {
  const onDisk = new Map<string, string>();
  for (const folder of folders) {
    for (const entry of await readdir(join(root, folder), { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const rel = posix.join(folder, entry.name);
      if (isImageFile(entry.name, extensions)) onDisk.set(rel, folder);
      else if (!entry.name.startsWith('.')) {
        problems.check();
        problems.add('unlisted-file', 'warning', { file: join(root, rel), message: 'not an image file name; ignored' });
      }
    }
  }
  return onDisk;
}

/** What the manifest reader needs to know about the folders. */
interface FolderLayout {
  root: string;
  folders: readonly string[];
  taskType: 'classification' | 'identity';
  onDisk: ReadonlyMap<string, string>;
}

/** The manifest's entries (first of each file kept); images on disk that it does not list are reported and left out. */
async function readManifestEntries(
  manifestPath: string,
  options: ClassFolderOptions,
  layout: FolderLayout,
  problems: ProblemCollector,
): Promise<ClassEntry[]> {
  const table = await readCsvFile(manifestPath);
  const fileColumn = options.fileColumn ?? 'file';
  const classColumn = options.classColumn ?? CLASS_COLUMN_GUESSES.find((c) => table.header.includes(c));
  if (!table.header.includes(fileColumn) || !classColumn || !table.header.includes(classColumn)) {
    throw new InvalidInputError(`${manifestPath}: needs columns ${fileColumn} and a class column (have ${table.header.join(', ')})`);
  }
  const indexColumn = options.classIndexColumn;
  if (indexColumn && !table.header.includes(indexColumn))
    throw new InvalidInputError(`${manifestPath}: no class index column ${indexColumn}`);
  const entries: ClassEntry[] = [];
  const seen = new Set<string>();
  for (const row of table.rows) {
    problems.check();
    const rel = row.values[fileColumn]!.replaceAll('\\', '/');
    const className = row.values[classColumn]!;
    const where = { file: manifestPath, line: row.line };
    if (!rel) {
      problems.add('malformed-line', 'excluded', { ...where, message: 'empty file name' });
      continue;
    }
    if (!className) {
      problems.add('bad-label', 'excluded', { ...where, message: `${rel}: empty class` });
      continue;
    }
    if (seen.has(rel)) {
      problems.add('duplicate-id', 'excluded', { ...where, message: `${rel} listed twice; first kept` });
      continue;
    }
    seen.add(rel);
    const entry: ClassEntry = { rel, className, line: row.line };
    if (indexColumn) {
      const idx = parseNumber(row.values[indexColumn]);
      if (idx === undefined || !Number.isInteger(idx) || idx < 0) {
        problems.add('bad-label', 'excluded', {
          ...where,
          message: `${rel}: class index "${row.values[indexColumn]}" is not a non-negative integer`,
        });
        continue;
      }
      entry.classIndex = idx;
    }
    const folder = rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : undefined;
    if (folder !== undefined && layout.folders.includes(folder) && folder !== className && layout.taskType === 'classification')
      entry.folder = folder;
    entries.push(entry);
  }
  for (const rel of layout.onDisk.keys()) {
    if (seen.has(rel)) continue;
    problems.check();
    problems.add('unlisted-file', 'excluded', {
      file: join(layout.root, rel),
      message: `image not in ${basename(manifestPath)}; left out`,
    });
  }
  return entries;
}

/** Class order: as given, else from the class index column, else folder and manifest class names in natural order. */
function resolveClassOrder(
  options: ClassFolderOptions,
  entries: readonly ClassEntry[],
  folders: readonly string[],
  onDisk: ReadonlyMap<string, string>,
): string[] {
  if (options.classNames) return [...options.classNames];
  if (options.classIndexColumn) {
    const byIndex = new Map<number, string>();
    for (const e of entries) if (!byIndex.has(e.classIndex!)) byIndex.set(e.classIndex!, e.className);
    const size = Math.max(-1, ...byIndex.keys()) + 1;
    return Array.from({ length: size }, (_, i) => byIndex.get(i) ?? `class_${i}`);
  }
  return [...new Set([...folders.filter((f) => [...onDisk.values()].includes(f)), ...entries.map((e) => e.className)])].sort(
    naturalCompare,
  );
}

/** Class indices for the entries; unknown classes and disagreeing indices are excluded, folder mismatches warned. */
function labelEntries(
  entries: readonly ClassEntry[],
  classNames: readonly string[],
  whereOf: (e: ClassEntry) => { file: string; line?: number },
  problems: ProblemCollector,
): LabelledEntry[] {
  const indexOf = new Map(classNames.map((n, i) => [n, i]));
  const labelled: LabelledEntry[] = [];
  for (const e of entries) {
    const where = whereOf(e);
    const idx = indexOf.get(e.className);
    if (idx === undefined) {
      problems.add('unknown-class', 'excluded', {
        ...where,
        message: `${e.rel}: class "${e.className}" is not one of ${classNames.join(', ')}`,
      });
      continue;
    }
    if (e.classIndex !== undefined && e.classIndex !== idx) {
      problems.add('bad-label', 'excluded', {
        ...where,
        message: `${e.rel}: class index ${e.classIndex} disagrees with class ${e.className} (index ${idx})`,
      });
      continue;
    }
    if (e.folder !== undefined) {
      problems.add('label-mismatch', 'warning', {
        ...where,
        message: `${e.rel}: manifest says ${e.className}, folder says ${e.folder}; manifest wins`,
      });
    }
    labelled.push({ rel: e.rel, label: idx, className: e.className, ...(e.line !== undefined ? { line: e.line } : {}) });
  }
  return labelled;
}

/** Sets `group` from a (group, file) CSV; reports groups whose members disagree on the label and members that are not in the dataset. */
export async function applyDuplicateGroups(
  csvPath: string,
  samples: FaceSample[],
  classNames: readonly string[],
  problems: ProblemCollector,
): Promise<void> {
  const table = await readCsvFile(csvPath);
  if (!table.header.includes('group') || !table.header.includes('file')) {
    throw new InvalidInputError(`${csvPath}: duplicate groups need columns group, file (have ${table.header.join(', ')})`);
  }
  const byId = new Map(samples.map((s) => [s.id, s]));
  const members = new Map<string, FaceSample[]>();
  for (const row of table.rows) {
    const group = `dup-${row.values['group']}`;
    const rel = row.values['file']!.replaceAll('\\', '/').split(sep).join('/');
    const sample = byId.get(rel);
    if (!sample) {
      problems.add('missing-file', 'warning', {
        file: csvPath,
        line: row.line,
        message: `duplicate-group member ${rel} is not in the dataset`,
      });
      continue;
    }
    sample.group = group;
    const list = members.get(group) ?? [];
    list.push(sample);
    members.set(group, list);
  }
  for (const [group, list] of members) {
    const labels = new Set(list.map((s) => s.label as number));
    if (labels.size > 1) {
      const desc = list.map((s) => `${s.id}=${classNames[s.label as number] ?? s.label}`).join(', ');
      problems.add('conflicting-duplicate-labels', 'warning', {
        file: csvPath,
        message: `${group}: identical pixels, different labels: ${desc}`,
      });
    }
  }
}
