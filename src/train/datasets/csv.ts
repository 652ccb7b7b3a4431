// A small RFC-4180 CSV parser (quotes, CRLF, BOM) for dataset manifests; rows keep their 1-based line numbers.
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../../core/errors.js';

export interface CsvTable {
  header: string[];
  /** Each row as column -> value, with the line it started on (header is line 1). */
  rows: { line: number; values: Record<string, string>; fieldCount: number }[];
}

export function parseCsv(text: string, source = 'csv'): CsvTable {
  const records = splitRecords(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  const first = records.find((r) => !(r.fields.length === 1 && r.fields[0] === ''));
  if (!first) throw new InvalidInputError(`${source}: CSV has no header row`);
  const header = first.fields.map((h) => h.trim());
  const rows: CsvTable['rows'] = [];
  for (const rec of records) {
    if (rec === first) continue;
    if (rec.fields.length === 1 && rec.fields[0]!.trim() === '') continue; // blank line
    const values: Record<string, string> = {};
    header.forEach((h, i) => {
      values[h] = (rec.fields[i] ?? '').trim();
    });
    rows.push({ line: rec.line, values, fieldCount: rec.fields.length });
  }
  return { header, rows };
}

export async function readCsvFile(path: string): Promise<CsvTable> {
  return parseCsv(await readFile(path, 'utf8'), path);
}

function splitRecords(text: string): { line: number; fields: string[] }[] {
  const out: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"') inQuotes = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      out.push({ line: recordLine, fields });
      fields = [];
      field = '';
      line++;
      recordLine = line;
    } else field += ch;
  }
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    out.push({ line: recordLine, fields });
  }
  return out;
}
