// Reader for CSV-manifest datasets: UTKFace-style regression (file, age, ...) and ORL-style identity (file, subject_id), with configurable columns.
import { basename, dirname, resolve } from 'node:path';
import { InvalidInputError } from '../../core/errors.js';
import { checkImages, naturalCompare, parseNumber } from './common.js';
import { readCsvFile, type CsvTable } from './csv.js';
import { ProblemCollector } from './problems.js';
import type { CommonReaderOptions, FaceDataset, FaceSample } from './types.js';

export interface CsvManifestOptions extends CommonReaderOptions {
  /** The manifest. */
  csvPath: string;
  /** Folder that relative image paths are relative to (absolute paths are used as they are). Default: the manifest's folder. */
  imageRoot?: string;
  /**
   * `regression`: label is the number in `labelColumn`; `classification`: label is the index of the value in
   * `classNames`; `identity`: like classification, and `subject` is the same value (or `subjectColumn`).
   */
  taskType: 'regression' | 'classification' | 'identity';
  /** Column with the image path. Default `file`. */
  fileColumn?: string;
  /** Column with the label (e.g. `age`, `subject_id`). */
  labelColumn: string;
  /** Column with a person id (identity default: the label column). */
  subjectColumn?: string;
  /** Column with a duplicate / group id. */
  groupColumn?: string;
  /** regression: inclusive valid range; values outside are reported `out-of-range` and excluded. */
  labelRange?: [min: number, max: number];
  /** regression: require whole numbers (ages in years). Default false. */
  integerLabels?: boolean;
  /** classification / identity: class order. Default: the distinct label values in natural order. */
  classNames?: string[];
  /** Extra columns to keep per sample as numeric attributes (e.g. `gender`, `race`). */
  attributeColumns?: string[];
}

export async function readCsvManifest(options: CsvManifestOptions): Promise<FaceDataset> {
  const csvPath = resolve(options.csvPath);
  const imageRoot = resolve(options.imageRoot ?? dirname(csvPath));
  const problems = new ProblemCollector(options.maxExamples ?? 5);
  const table = await readCsvFile(csvPath);
  const subjectColumn = options.subjectColumn ?? (options.taskType === 'identity' ? options.labelColumn : undefined);
  const fileColumn = options.fileColumn ?? 'file';
  checkColumns(csvPath, table, [fileColumn, options.labelColumn, subjectColumn, options.groupColumn, ...(options.attributeColumns ?? [])]);

  const classNames =
    options.taskType === 'regression'
      ? []
      : (options.classNames ?? [...new Set(table.rows.map((r) => r.values[options.labelColumn]!).filter(Boolean))].sort(naturalCompare));
  const reader: RowReader = {
    options,
    csvPath,
    imageRoot,
    headerLength: table.header.length,
    fileColumn,
    subjectColumn,
    classIndex: new Map(classNames.map((n, i) => [n, i])),
    problems,
  };
  const entries: { sample: FaceSample; line: number }[] = [];
  const seen = new Set<string>();
  for (const row of table.rows) {
    problems.check();
    const sample = sampleOfRow(reader, row, seen);
    if (sample) entries.push({ sample, line: row.line });
  }

  const checks = await checkImages(
    entries.map((e) => ({ imagePath: e.sample.imagePath, name: e.sample.id, file: csvPath, line: e.line })),
    options.imageCheck ?? 'header',
    problems,
  );
  const samples = entries.filter((_, i) => checks[i]!.ok).map((e) => e.sample);
  return {
    name: options.name ?? basename(dirname(csvPath)),
    source: csvPath,
    taskType: options.taskType,
    classNames,
    samples,
    problems: problems.report(samples.length),
  };
}

function checkColumns(csvPath: string, table: CsvTable, columns: readonly (string | undefined)[]): void {
  for (const col of columns) {
    if (col !== undefined && !table.header.includes(col)) {
      throw new InvalidInputError(`${csvPath}: no column "${col}" (have ${table.header.join(', ')})`);
    }
  }
}

/** What turning one manifest row into a sample needs. */
interface RowReader {
  options: CsvManifestOptions;
  csvPath: string;
  imageRoot: string;
  headerLength: number;
  fileColumn: string;
  subjectColumn: string | undefined;
  classIndex: ReadonlyMap<string, number>;
  problems: ProblemCollector;
}

type CsvRow = CsvTable['rows'][number];

/** The sample of one row, or undefined after reporting why the row is excluded. `seen` collects file names. */
function sampleOfRow(reader: RowReader, row: CsvRow, seen: Set<string>): FaceSample | undefined {
  const { options, problems, subjectColumn } = reader;
  const where = { file: reader.csvPath, line: row.line };
  const rel = row.values[reader.fileColumn]!;
  if (row.fieldCount !== reader.headerLength) {
    problems.add('malformed-line', 'excluded', { ...where, message: `${row.fieldCount} fields, header has ${reader.headerLength}` });
    return undefined;
  }
  if (!rel) {
    problems.add('malformed-line', 'excluded', { ...where, message: 'empty file name' });
    return undefined;
  }
  if (seen.has(rel)) {
    problems.add('duplicate-id', 'excluded', { ...where, message: `${rel} listed twice; first kept` });
    return undefined;
  }
  seen.add(rel);
  const label = labelOfRow(reader, row, rel);
  if (label === undefined) return undefined;
  // Absolute paths (common in a CSV written by a script) are used as they are; relative ones are under imageRoot.
  const sample: FaceSample = { id: rel, imagePath: resolve(reader.imageRoot, rel), label };
  if (subjectColumn) {
    const subject = row.values[subjectColumn];
    if (!subject) {
      problems.add('bad-label', 'excluded', { ...where, message: `${rel}: empty ${subjectColumn}` });
      return undefined;
    }
    sample.subject = subject;
  }
  if (options.groupColumn && row.values[options.groupColumn]) sample.group = row.values[options.groupColumn]!;
  if (options.attributeColumns) sample.attributes = attributesOfRow(reader, row, rel);
  return sample;
}

/** The row's label: a class index, or a number checked against `integerLabels` and `labelRange`. */
function labelOfRow({ options, problems, classIndex, csvPath }: RowReader, row: CsvRow, rel: string): number | undefined {
  const where = { file: csvPath, line: row.line };
  const raw = row.values[options.labelColumn]!;
  if (options.taskType !== 'regression') {
    const idx = classIndex.get(raw);
    if (idx === undefined)
      problems.add(raw ? 'unknown-class' : 'bad-label', 'excluded', {
        ...where,
        message: `${rel}: ${options.labelColumn} "${raw}" is not a known class`,
      });
    return idx;
  }
  const value = parseNumber(raw);
  if (value === undefined || (options.integerLabels && !Number.isInteger(value))) {
    problems.add('bad-label', 'excluded', {
      ...where,
      message: `${rel}: ${options.labelColumn} "${raw}" is not ${options.integerLabels ? 'a whole number' : 'a number'}`,
    });
    return undefined;
  }
  if (options.labelRange && (value < options.labelRange[0] || value > options.labelRange[1])) {
    problems.add('out-of-range', 'excluded', {
      ...where,
      message: `${rel}: ${options.labelColumn} ${value} outside [${options.labelRange[0]}, ${options.labelRange[1]}]`,
    });
    return undefined;
  }
  return value;
}

/** Numeric attribute columns; a non-number is a warning and the attribute is omitted. */
function attributesOfRow({ options, problems, csvPath }: RowReader, row: CsvRow, rel: string): Record<string, number> {
  const attributes: Record<string, number> = {};
  for (const col of options.attributeColumns ?? []) {
    const v = parseNumber(row.values[col]);
    if (v === undefined)
      problems.add('bad-label', 'warning', {
        file: csvPath,
        line: row.line,
        message: `${rel}: attribute ${col} "${row.values[col]}" is not a number; omitted`,
      });
    else attributes[col] = v;
  }
  return attributes;
}
