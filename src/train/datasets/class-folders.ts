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

export async function readClassFolders(options: ClassFolderOptions): Promise<FaceDataset> {
  const root = resolve(options.root);
  const taskType = options.taskType ?? 'classification';
  const problems = new ProblemCollector(options.maxExamples ?? 5);
  const extensions = options.extensions ?? IMAGE_EXTENSIONS;

  let folders: string[];
  try {
    folders = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort(naturalCompare);
  } catch (e) {
    throw new InvalidInputError(`class-folder dataset ${root} cannot be read`, { cause: e });
  }

  // Files on disk, as posix paths relative to root.
  const onDisk = new Map<string, string>(); // rel -> folder
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

  const labelsCsv = options.labelsCsv ?? (existsSync(join(root, 'labels.csv')) ? 'labels.csv' : false);
  /** `folder` is set when the manifest's class differs from the folder the file is in. */
  let entries: { rel: string; className: string; line?: number; classIndex?: number; folder?: string }[] = [];
  const manifestPath = labelsCsv ? join(root, labelsCsv) : undefined;

  if (manifestPath) {
    const table = await readCsvFile(manifestPath);
    const fileColumn = options.fileColumn ?? 'file';
    const classColumn = options.classColumn ?? CLASS_COLUMN_GUESSES.find((c) => table.header.includes(c));
    if (!table.header.includes(fileColumn) || !classColumn || !table.header.includes(classColumn)) {
      throw new InvalidInputError(`${manifestPath}: needs columns ${fileColumn} and a class column (have ${table.header.join(', ')})`);
    }
    if (options.classIndexColumn && !table.header.includes(options.classIndexColumn)) {
      throw new InvalidInputError(`${manifestPath}: no class index column ${options.classIndexColumn}`);
    }
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
      const entry: (typeof entries)[number] = { rel, className, line: row.line };
      if (options.classIndexColumn) {
        const idx = parseNumber(row.values[options.classIndexColumn]);
        if (idx === undefined || !Number.isInteger(idx) || idx < 0) {
          problems.add('bad-label', 'excluded', { ...where, message: `${rel}: class index "${row.values[options.classIndexColumn]}" is not a non-negative integer` });
          continue;
        }
        entry.classIndex = idx;
      }
      const folder = rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : undefined;
      if (folder !== undefined && folders.includes(folder) && folder !== className && taskType === 'classification') entry.folder = folder;
      entries.push(entry);
    }
    for (const rel of onDisk.keys()) {
      if (seen.has(rel)) continue;
      problems.check();
      problems.add('unlisted-file', 'excluded', { file: join(root, rel), message: `image not in ${basename(manifestPath)}; left out` });
    }
  } else {
    entries = [...onDisk.entries()].map(([rel, folder]) => ({ rel, className: folder }));
    problems.check(entries.length);
  }

  // Class order.
  let classNames: string[];
  if (options.classNames) classNames = [...options.classNames];
  else if (options.classIndexColumn) {
    const byIndex = new Map<number, string>();
    for (const e of entries) if (!byIndex.has(e.classIndex!)) byIndex.set(e.classIndex!, e.className);
    const size = Math.max(-1, ...byIndex.keys()) + 1;
    classNames = Array.from({ length: size }, (_, i) => byIndex.get(i) ?? `class_${i}`);
  } else classNames = [...new Set([...folders.filter((f) => [...onDisk.values()].includes(f)), ...entries.map((e) => e.className)])].sort(naturalCompare);
  const indexOf = new Map(classNames.map((n, i) => [n, i]));

  const labelled: { rel: string; label: number; className: string; line?: number }[] = [];
  for (const e of entries) {
    const where = { file: manifestPath ?? join(root, e.rel), ...(e.line !== undefined ? { line: e.line } : {}) };
    const idx = indexOf.get(e.className);
    if (idx === undefined) {
      problems.add('unknown-class', 'excluded', { ...where, message: `${e.rel}: class "${e.className}" is not one of ${classNames.join(', ')}` });
      continue;
    }
    if (e.classIndex !== undefined && e.classIndex !== idx) {
      problems.add('bad-label', 'excluded', { ...where, message: `${e.rel}: class index ${e.classIndex} disagrees with class ${e.className} (index ${idx})` });
      continue;
    }
    if (e.folder !== undefined) {
      problems.add('label-mismatch', 'warning', { ...where, message: `${e.rel}: manifest says ${e.className}, folder says ${e.folder}; manifest wins` });
    }
    labelled.push({ rel: e.rel, label: idx, className: e.className, ...(e.line !== undefined ? { line: e.line } : {}) });
  }

  const checks = await checkImages(
    labelled.map((l) => ({ imagePath: join(root, ...l.rel.split('/')), name: l.rel, file: manifestPath ?? join(root, l.rel), ...(l.line !== undefined ? { line: l.line } : {}) })),
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

  const dupCsv = options.duplicateGroupsCsv ?? (existsSync(join(root, 'pixel_duplicate_groups.csv')) ? 'pixel_duplicate_groups.csv' : false);
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

/** Sets `group` from a (group, file) CSV; reports groups whose members disagree on the label and members that are not in the dataset. */
export async function applyDuplicateGroups(csvPath: string, samples: FaceSample[], classNames: readonly string[], problems: ProblemCollector): Promise<void> {
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
      problems.add('missing-file', 'warning', { file: csvPath, line: row.line, message: `duplicate-group member ${rel} is not in the dataset` });
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
      problems.add('conflicting-duplicate-labels', 'warning', { file: csvPath, message: `${group}: identical pixels, different labels: ${desc}` });
    }
  }
}
