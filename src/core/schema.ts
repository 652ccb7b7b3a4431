// Validation against TypeBox schemas: defaults applied, every problem one sentence naming its field path, unknown keys
// answered with the nearest valid name. The schemas themselves are plain JSON Schema (emitted into schemas/).
import { Kind, Type, type SchemaOptions, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InvalidInputError } from './errors.js';

export type { Static, TSchema };

/** How problems are worded. */
export interface ProblemWording {
  /**
   * What a field is called in messages, e.g. "MQTT publisher option": `unknown MQTT publisher option "x"`,
   * `MQTT publisher option "qos" must be ...`. Default: unknown ones are "key", known ones are just quoted.
   */
  noun?: string;
}

/**
 * A schema keyword of this project (ignored by other JSON Schema tools): what a value must be, in words, for fields
 * whose rule a pattern or a union cannot say well ("host:port, e.g. \"0.0.0.0:50051\"").
 */
export const mustBeKeyword = 'mustBe';

/** A union of literal values (an enum as JSON Schema spells it: `anyOf` of `const`). */
export function literals<T extends string | number>(values: readonly T[], options: SchemaOptions = {}): TUnion<TLiteral<T>[]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as TUnion<TLiteral<T>[]>;
}

type Path = readonly (string | number)[];
type SchemaNode = TSchema & Record<string, unknown>;

/** `outputs[0].decoding.type`; empty for the root. */
export function pathText(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function fold(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate closest to `name` after folding case, '-' and '_' (`mqtt_url` -> `mqttUrl`), or one a few edits away
 * (`listenAdress` -> `listenAddress`): at most a third of the name's length, so short unrelated words get no answer;
 * else the shortest candidate containing the name (`retries` -> `maxRetries`).
 */
export function nearestName(name: string, candidates: readonly string[]): string | undefined {
  const folded = fold(name);
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(folded, fold(candidate));
    if (best === undefined || distance < best.distance) best = { name: candidate, distance };
  }
  if (best !== undefined && best.distance <= Math.max(1, Math.floor(folded.length / 3)) && best.distance < folded.length) return best.name;
  // A shortened name (`retries` for `maxRetries`): the shortest candidate that contains it.
  if (folded.length < 4) return undefined;
  return candidates.filter((c) => fold(c).includes(folded)).sort((a, b) => a.length - b.length)[0];
}

const kindOf = (s: TSchema): string => (s as { [Kind]: string })[Kind];
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

function orList(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? '') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

function rangeText(s: SchemaNode): string {
  const min = s['minimum'] as number | undefined;
  const max = s['maximum'] as number | undefined;
  const exMin = s['exclusiveMinimum'] as number | undefined;
  const exMax = s['exclusiveMaximum'] as number | undefined;
  if (min !== undefined && max !== undefined) return ` in ${min}..${max}`;
  if (min !== undefined && exMax !== undefined) return ` in [${min}, ${exMax})`;
  if (min !== undefined) return ` >= ${min}`;
  if (exMin !== undefined) return ` > ${exMin}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}

function literalValues(s: SchemaNode): unknown[] | undefined {
  if (kindOf(s) === 'Literal') return [s['const']];
  if (kindOf(s) !== 'Union') return undefined;
  const variants = s['anyOf'] as SchemaNode[];
  return variants.every((v) => kindOf(v) === 'Literal') ? variants.map((v) => v['const']) : undefined;
}

function describeItems(items: SchemaNode): string {
  const literals = literalValues(items);
  if (literals) return literals.map((v) => JSON.stringify(v)).join(', ');
  const plural: Record<string, string> = {
    String: 'strings',
    Number: 'numbers',
    Integer: 'integers',
    Boolean: 'booleans',
    Object: 'objects',
  };
  return plural[kindOf(items)] ?? describeSchema(items);
}

/** What a value of `schema` must be, in words: "an integer in 1..1024", "one of \"QUEUE\", \"BLOCK\"", "0, 1 or 2". */
export function describeSchema(schema: TSchema): string {
  const s = schema as SchemaNode;
  if (typeof s[mustBeKeyword] === 'string') return s[mustBeKeyword];
  const literals = literalValues(s);
  if (literals) {
    if (literals.length === 1) return JSON.stringify(literals[0]);
    return literals.every((v) => typeof v === 'number')
      ? orList(literals.map(String))
      : `one of ${literals.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  switch (kindOf(s)) {
    case 'Union':
      return orList((s['anyOf'] as SchemaNode[]).map(describeSchema));
    case 'Integer':
      return `an integer${rangeText(s)}`;
    case 'Number':
      return `a number${rangeText(s)}`;
    case 'String':
      return ((s['minLength'] as number | undefined) ?? 0) > 0 ? 'a non-empty string' : 'a string';
    case 'Boolean':
      return 'true or false';
    case 'Array':
      return `${((s['minItems'] as number | undefined) ?? 0) > 0 ? 'a non-empty array' : 'an array'} of ${describeItems(s['items'] as SchemaNode)}`;
    case 'Record': {
      const values = Object.values(s['patternProperties'] as Record<string, SchemaNode>)[0];
      return values ? `an object of ${describeItems(values)}` : 'an object';
    }
    case 'Object':
      return 'an object';
    case 'Function':
      return 'a function';
    case 'Uint8Array':
      return 'a Uint8Array';
    default:
      return 'of the documented type';
  }
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One problem: the field path it is about (`keepalive.timeMs`; '' for the value itself) and the sentence. */
export interface SchemaIssue {
  path: string;
  message: string;
}

interface Walk {
  out: SchemaIssue[];
  noun: string | undefined;
}

function report(w: Walk, path: Path, message: string): void {
  w.out.push({ path: pathText(path), message });
}

function fieldName(w: Walk, path: Path): string {
  return `${w.noun ? `${w.noun} ` : ''}"${pathText(path)}"`;
}

function problemAt(w: Walk, schema: TSchema, value: unknown, path: Path): string {
  return `${path.length === 0 ? 'the value' : fieldName(w, path)} must be ${describeSchema(schema)}, got ${show(value)}`;
}

function walkObject(w: Walk, s: SchemaNode, value: Record<string, unknown>, path: Path): void {
  const properties = s['properties'] as Record<string, SchemaNode>;
  const required = (s['required'] as string[] | undefined) ?? [];
  if (s['additionalProperties'] === false) {
    for (const key of Object.keys(value)) {
      if (key in properties) continue;
      const near = nearestName(key, Object.keys(properties));
      report(
        w,
        [...path, key],
        `unknown ${w.noun ?? 'key'} "${pathText([...path, key])}"${near ? ` (did you mean "${pathText([...path, near])}"?)` : ''}`,
      );
    }
  }
  for (const [key, property] of Object.entries(properties)) {
    const v = value[key];
    if (v !== undefined) walk(w, property, v, [...path, key]);
    else if (required.includes(key)) report(w, [...path, key], `${fieldName(w, [...path, key])} is required (${describeSchema(property)})`);
  }
}

/** A union of objects told apart by one literal property (`type` of a decoding): the variant the value names. */
function pickVariant(w: Walk, s: SchemaNode, value: Record<string, unknown>, path: Path): SchemaNode | undefined | 'reported' {
  const objects = (s['anyOf'] as SchemaNode[]).filter((v) => kindOf(v) === 'Object');
  if (objects.length === 1) return objects[0];
  if (objects.length === 0) return undefined;
  const first = objects[0]!['properties'] as Record<string, SchemaNode>;
  const tag = Object.keys(first).find((k) =>
    objects.every((o) => kindOf((o['properties'] as Record<string, SchemaNode>)[k] ?? ({} as SchemaNode)) === 'Literal'),
  );
  if (tag === undefined) return undefined;
  const tagOf = (o: SchemaNode): unknown => (o['properties'] as Record<string, SchemaNode>)[tag]!['const'];
  const chosen = objects.find((o) => tagOf(o) === value[tag]);
  if (chosen) return chosen;
  report(
    w,
    [...path, tag],
    `${fieldName(w, [...path, tag])} must be one of ${objects.map((o) => JSON.stringify(tagOf(o))).join(', ')}, got ${show(value[tag])}`,
  );
  return 'reported';
}

/** Arrays of objects are walked element by element (`outputs[1].task`); arrays of scalars are judged whole. */
function holdsObjects(items: SchemaNode): boolean {
  return kindOf(items) === 'Object' || (kindOf(items) === 'Union' && (items['anyOf'] as SchemaNode[]).some((v) => kindOf(v) === 'Object'));
}

function walk(w: Walk, schema: TSchema, value: unknown, path: Path): void {
  const s = schema as SchemaNode;
  const kind = kindOf(s);
  if (kind === 'Object' && isPlainObject(value)) return walkObject(w, s, value, path);
  if (kind === 'Union' && isPlainObject(value)) {
    const variant = pickVariant(w, s, value, path);
    if (variant === 'reported') return;
    if (variant !== undefined) return walk(w, variant, value, path);
  }
  if (kind === 'Array' && Array.isArray(value) && holdsObjects(s['items'] as SchemaNode)) {
    const minItems = (s['minItems'] as number | undefined) ?? 0;
    if (value.length < minItems) report(w, path, problemAt(w, s, value, path));
    value.forEach((item, i) => walk(w, s['items'] as TSchema, item, [...path, i]));
    return;
  }
  if (!Value.Check(s, value)) report(w, path, problemAt(w, s, value, path));
}

/** Every problem of `value` against `schema` with its field path: unknown keys first, then fields in schema order. */
export function schemaIssues(schema: TSchema, value: unknown, wording: ProblemWording = {}): SchemaIssue[] {
  const w: Walk = { out: [], noun: wording.noun };
  walk(w, schema, value, []);
  if (w.out.length === 0 && !Value.Check(schema, value)) {
    // A rule the walk does not model (e.g. a keyword on an object): TypeBox's own first error still names the path.
    const first = Value.Errors(schema, value).First();
    const path = first ? first.path.slice(1).replace(/\//g, '.') : '';
    w.out.push({ path, message: first ? `"${path}": ${first.message}` : 'does not match its schema' });
  }
  return w.out;
}

/** Every problem of `value` against `schema`, one sentence each; empty when it is valid. */
export function schemaProblems(schema: TSchema, value: unknown, wording: ProblemWording = {}): string[] {
  return schemaIssues(schema, value, wording).map((issue) => issue.message);
}

/** Plain objects and arrays copied (defaults are written into the copy); functions, buffers and the rest shared. */
function copyTree(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyTree);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copyTree(v)]));
  return value;
}

/** `value` with the schema's defaults filled in where it has none (the input is not modified). */
export function withDefaults<T extends TSchema>(schema: T, value: unknown): unknown {
  return Value.Default(schema, copyTree(value));
}

/** The message of a failed check: `source: problem; problem`. */
export function problemsMessage(source: string, problems: readonly string[]): string {
  return `${source !== '' ? `${source}: ` : ''}${problems.join('; ')}`;
}

/**
 * Checks `value` as given (no defaults: overlays, partial options). `source` names where it came from in the error
 * (a file path, "flags", a model name). Throws InvalidInputError listing every problem.
 */
export function checkValue<T extends TSchema>(schema: T, value: unknown, source: string, wording: ProblemWording = {}): Static<T> {
  const problems = schemaProblems(schema, value, wording);
  if (problems.length > 0) throw new InvalidInputError(problemsMessage(source, problems));
  return value as Static<T>;
}

/** Applies the schema's defaults, then checks; returns the complete typed value. */
export function parseValue<T extends TSchema>(schema: T, value: unknown, source: string, wording: ProblemWording = {}): Static<T> {
  return checkValue(schema, withDefaults(schema, value), source, wording);
}
