// Dataset readers on fixtures built in a temp dir (problems report included), image header checks, and seeded splits.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkImageFile,
  formatProblems,
  parseCsv,
  readClassFolders,
  readCsvManifest,
  readIbugPts,
  readWflw,
  splitDataset,
  type FaceDataset,
  type FaceSample,
  type ProblemKind,
} from '../src/train/datasets/index.js';

let dir: string;

async function jpeg(path: string, width = 16, height = 16, grey = 128): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: grey, g: grey, b: grey } } })
    .jpeg()
    .toFile(path);
}

async function text(path: string, content: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

function count(ds: FaceDataset, kind: ProblemKind, severity?: 'excluded' | 'warning'): number {
  return ds.problems.groups
    .filter((g) => g.kind === kind && (severity === undefined || g.severity === severity))
    .reduce((a, g) => a + g.count, 0);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kt-datasets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Properties every reader's result must have, written once and run against each reader (shared contract suite). */
function readerContract(name: string, build: () => Promise<FaceDataset>): void {
  describe(`${name}: reader contract`, () => {
    it('returns unique ids, existing images, labels that fit the task, and consistent problem totals', async () => {
      const ds = await build();
      expect(ds.samples.length).toBeGreaterThan(0);
      expect(new Set(ds.samples.map((s) => s.id)).size).toBe(ds.samples.length);
      for (const s of ds.samples) {
        expect(existsSync(s.imagePath)).toBe(true);
        if (ds.taskType === 'landmarks') {
          expect(Array.isArray(s.label)).toBe(true);
          expect((s.label as number[]).length).toBe(2 * ds.pointCount!);
          expect(s.box).toHaveLength(4);
        } else {
          expect(typeof s.label).toBe('number');
          if (ds.taskType !== 'regression') expect(ds.classNames[s.label as number]).toBeDefined();
        }
      }
      const p = ds.problems;
      expect(p.kept).toBe(ds.samples.length);
      expect(p.excluded).toBe(p.groups.filter((g) => g.severity === 'excluded').reduce((a, g) => a + g.count, 0));
      expect(p.warnings).toBe(p.groups.filter((g) => g.severity === 'warning').reduce((a, g) => a + g.count, 0));
      expect(formatProblems(p, ds.name)).toContain(`${p.kept} kept`);
    });
  });
}

// ------------------------------------------------------------ class folders (FER2013 style)

async function buildEmotion(): Promise<FaceDataset> {
  const root = join(dir, 'emotion');
  if (!existsSync(root)) {
    for (const f of ['happy/a.jpg', 'happy/b.jpg', 'happy/c.jpg', 'happy/f.jpg', 'sad/d.jpg', 'sad/e.jpg', 'sad/unlisted.jpg'])
      await jpeg(join(root, f));
    await text(join(root, 'sad/empty.jpg'), '');
    await text(
      join(root, 'labels.csv'),
      'file,emotion,idx\nhappy/a.jpg,happy,0\nhappy/b.jpg,happy,0\nhappy/c.jpg,sad,1\nhappy/f.jpg,happy,0\nsad/d.jpg,sad,1\nsad/e.jpg,sad,1\nsad/empty.jpg,sad,1\nsad/gone.jpg,sad,1\nhappy/x.jpg,bored,2\n',
    );
    await text(
      join(root, 'pixel_duplicate_groups.csv'),
      'group,file,emotion\n0,happy/a.jpg,happy\n0,happy/b.jpg,happy\n1,sad/d.jpg,sad\n1,happy/c.jpg,sad\n2,sad/e.jpg,sad\n2,happy/f.jpg,happy\n3,happy/a2.jpg,happy\n',
    );
  }
  return readClassFolders({ root, classNames: ['happy', 'sad'], classIndexColumn: 'idx' });
}

describe('readClassFolders', () => {
  it('honours labels.csv and reports missing, empty, unknown-class, unlisted and mismatched entries', async () => {
    const ds = await buildEmotion();
    expect(ds.taskType).toBe('classification');
    expect(ds.classNames).toEqual(['happy', 'sad']);
    expect(ds.samples.map((s) => [s.id, s.label])).toEqual([
      ['happy/a.jpg', 0],
      ['happy/b.jpg', 0],
      ['happy/c.jpg', 1], // manifest wins over the folder
      ['happy/f.jpg', 0],
      ['sad/d.jpg', 1],
      ['sad/e.jpg', 1],
    ]);
    expect(count(ds, 'missing-file', 'excluded')).toBe(1); // gone.jpg
    expect(count(ds, 'missing-file', 'warning')).toBe(1); // duplicate-group member a2.jpg
    expect(count(ds, 'empty-file')).toBe(1);
    expect(count(ds, 'unknown-class')).toBe(1);
    expect(count(ds, 'unlisted-file')).toBe(1);
    expect(count(ds, 'label-mismatch')).toBe(1);
    expect(ds.problems.excluded).toBe(4); // gone, empty, bored, unlisted
    expect(ds.problems.checked).toBe(10); // 9 manifest rows + 1 unlisted image
    const summary = formatProblems(ds.problems, ds.name);
    expect(summary).toMatch(/empty-file \(excluded\): 1/);
    expect(summary).toContain('sad/empty.jpg');
    expect(summary).toContain('gone.jpg');
  });

  it('maps duplicate groups to `group` and reports groups whose labels conflict', async () => {
    const ds = await buildEmotion();
    const group = Object.fromEntries(ds.samples.map((s) => [s.id, s.group]));
    expect(group['happy/a.jpg']).toBe('dup-0');
    expect(group['happy/b.jpg']).toBe('dup-0');
    expect(group['sad/d.jpg']).toBe('dup-1');
    expect(group['sad/e.jpg']).toBe('dup-2');
    expect(group['happy/f.jpg']).toBe('dup-2');
    // dup-1 agrees (c.jpg is 'sad' in the manifest, like d.jpg); dup-2 does not.
    expect(count(ds, 'conflicting-duplicate-labels')).toBe(1);
    expect(ds.problems.groups.find((g) => g.kind === 'conflicting-duplicate-labels')!.examples[0]!.message).toMatch(
      /dup-2.*sad\/e\.jpg=sad.*happy\/f\.jpg=happy/,
    );
  });

  it('uses folder names as classes without a manifest; identity folders give subjects', async () => {
    const root = join(dir, 'orl-folders');
    for (const f of ['s1/1.jpg', 's1/2.jpg', 's2/1.jpg', 's10/1.jpg']) await jpeg(join(root, f));
    const ds = await readClassFolders({ root, taskType: 'identity' });
    expect(ds.classNames).toEqual(['s1', 's2', 's10']);
    expect(ds.samples.find((s) => s.id === 's10/1.jpg')).toMatchObject({ label: 2, subject: 's10' });
    expect(ds.problems.groups).toEqual([]);
  });
});
readerContract('readClassFolders', buildEmotion);

// ------------------------------------------------------------ CSV manifests

async function buildAge(): Promise<FaceDataset> {
  const root = join(dir, 'age');
  if (!existsSync(root)) {
    for (const f of ['images/a.jpg', 'images/b.jpg', 'images/c.jpg', 'images/bad-age.jpg', 'images/old.jpg']) await jpeg(join(root, f));
    await text(join(root, 'images/empty.jpg'), '');
    await text(join(root, 'images/garbage.jpg'), 'this is not an image at all');
    await text(
      join(root, 'labels.csv'),
      'file,age,gender\nimages/a.jpg,23,0\nimages/b.jpg,5,1\nimages/c.jpg,61,0\nimages/bad-age.jpg,abc,0\nimages/old.jpg,150,1\nimages/missing.jpg,30,0\nimages/empty.jpg,40,1\nimages/garbage.jpg,50,0\n',
    );
  }
  return readCsvManifest({
    csvPath: join(root, 'labels.csv'),
    taskType: 'regression',
    labelColumn: 'age',
    labelRange: [0, 120],
    integerLabels: true,
    attributeColumns: ['gender'],
  });
}

describe('readCsvManifest', () => {
  it('reads ages and reports a bad label, an out-of-range age, a missing, an empty and an unreadable file', async () => {
    const ds = await buildAge();
    expect(ds.samples.map((s) => [s.id, s.label])).toEqual([
      ['images/a.jpg', 23],
      ['images/b.jpg', 5],
      ['images/c.jpg', 61],
    ]);
    expect(ds.samples[1]!.attributes).toEqual({ gender: 1 });
    for (const kind of ['bad-label', 'out-of-range', 'missing-file', 'empty-file', 'unreadable-image'] as const)
      expect(count(ds, kind)).toBe(1);
    expect(ds.problems).toMatchObject({ checked: 8, kept: 3, excluded: 5, warnings: 0 });
    const bad = ds.problems.groups.find((g) => g.kind === 'bad-label')!;
    expect(bad.examples[0]).toMatchObject({ line: 5 });
    expect(bad.examples[0]!.message).toContain('"abc"');
  });

  it('reads identities (ORL style: file, subject_id) with subjects and natural class order', async () => {
    const root = join(dir, 'orl');
    const rows = ['file,subject_id'];
    for (const s of [1, 2, 10]) {
      for (const k of [1, 2]) {
        await jpeg(join(root, `s${s}/${k}.jpg`));
        rows.push(`s${s}/${k}.jpg,${s}`);
      }
    }
    await text(join(root, 'labels.csv'), `${rows.join('\n')}\n`);
    const ds = await readCsvManifest({ csvPath: join(root, 'labels.csv'), taskType: 'identity', labelColumn: 'subject_id' });
    expect(ds.classNames).toEqual(['1', '2', '10']);
    expect(ds.samples.find((s) => s.id === 's10/2.jpg')).toMatchObject({ label: 2, subject: '10' });
    expect(ds.problems.excluded).toBe(0);
  });

  it('rejects a manifest without the configured column', async () => {
    await expect(readCsvManifest({ csvPath: join(dir, 'age/labels.csv'), taskType: 'regression', labelColumn: 'years' })).rejects.toThrow(
      /no column "years"/,
    );
  });
});
readerContract('readCsvManifest', buildAge);

// ------------------------------------------------------------ WFLW

function wflwLine(offsetX: number, image: string, flags = '1 0 0 0 1 0', count = 98): string {
  const coords: string[] = [];
  for (let i = 0; i < count; i++) coords.push((offsetX + (i % 10) * 3).toFixed(3), (20 + Math.floor(i / 10) * 3).toFixed(3));
  return `${coords.join(' ')} ${flags} ${image}`;
}

async function buildWflw(): Promise<FaceDataset> {
  const root = join(dir, 'wflw');
  if (!existsSync(root)) {
    await jpeg(join(root, 'images/0--Parade/a.jpg'), 100, 80);
    await jpeg(join(root, 'images/1--Handshaking/b.jpg'), 100, 80);
    const lines = [
      '# x0 y0 ... image_name',
      wflwLine(10, '0--Parade/a.jpg'),
      wflwLine(50, '0--Parade/a.jpg', '0 0 0 0 0 1'),
      wflwLine(10, '1--Handshaking/b.jpg', '0 0 0 0 0 0', 75), // wrong coordinate count
      wflwLine(10, '1--Handshaking/b.jpg').replace(/^\S+/, 'NaNx'), // not a number
      wflwLine(10, 'missing/c.jpg'),
      wflwLine(90, '1--Handshaking/b.jpg'), // x up to 117 on a 100 px wide image
    ];
    await text(join(root, 'annotations_98pt.txt'), `${lines.join('\n')}\n`);
  }
  return readWflw({ annotationFile: join(root, 'annotations_98pt.txt') });
}

describe('readWflw', () => {
  it('reads 98 points, flags, landmark boxes and scene groups; reports bad lines and truncated faces', async () => {
    const ds = await buildWflw();
    expect(ds).toMatchObject({ taskType: 'landmarks', landmarkScheme: 'wflw98', pointCount: 98 });
    expect(ds.samples.map((s) => s.id)).toEqual(['0--Parade/a.jpg#0', '0--Parade/a.jpg#1', '1--Handshaking/b.jpg#0']);
    const first = ds.samples[0]!;
    expect((first.label as number[]).slice(0, 4)).toEqual([10, 20, 13, 20]);
    expect(first.box).toEqual([10, 20, 27, 27]);
    expect(first.attributes).toEqual({ pose: 1, expression: 0, illumination: 0, makeup: 0, occlusion: 1, blur: 0 });
    expect(first.group).toBe('0--Parade/a.jpg');
    expect(count(ds, 'wrong-coordinate-count')).toBe(1);
    expect(count(ds, 'bad-label')).toBe(1);
    expect(count(ds, 'missing-file')).toBe(1);
    expect(count(ds, 'points-outside-image')).toBe(1);
    expect(ds.problems).toMatchObject({ checked: 6, kept: 3, excluded: 3, warnings: 1 });
    expect(ds.problems.groups.find((g) => g.kind === 'wrong-coordinate-count')!.examples[0]).toMatchObject({ line: 4 });
  });
});
readerContract('readWflw', buildWflw);

// ------------------------------------------------------------ iBUG .pts

function pts(n: number, declared = n): string {
  const rows = Array.from({ length: n }, (_, i) => `${5 + (i % 17)}.5 ${10 + Math.floor(i / 17) * 4}.25`);
  return `version: 1\nn_points: ${declared}\n{\n${rows.join('\n')}\n}\n`;
}

async function buildIbug(): Promise<FaceDataset> {
  const root = join(dir, 'ibug');
  if (!existsSync(root)) {
    await jpeg(join(root, 'helen/1.jpg'), 40, 40);
    await text(join(root, 'helen/1.pts'), pts(68));
    await sharp({ create: { width: 40, height: 40, channels: 3, background: '#808080' } })
      .png()
      .toFile(join(root, 'helen/2.png'));
    await text(join(root, 'helen/2.pts'), pts(68));
    await jpeg(join(root, 'lfpw/3.jpg'));
    await text(join(root, 'lfpw/3.pts'), pts(60));
    await text(join(root, 'lfpw/4.pts'), pts(68)); // no image
    await text(join(root, 'lfpw/5.pts'), 'version: 1\nn_points: 68\n1 2\n');
  }
  return readIbugPts({ root });
}

describe('readIbugPts', () => {
  it('reads 68-point files next to their images and reports wrong counts, missing images and malformed files', async () => {
    const ds = await buildIbug();
    expect(ds).toMatchObject({ landmarkScheme: 'ibug68', pointCount: 68 });
    expect(ds.samples.map((s) => s.id)).toEqual(['helen/1', 'helen/2']);
    expect(ds.samples[1]!.imagePath.endsWith('2.png')).toBe(true);
    expect((ds.samples[0]!.label as number[]).slice(0, 2)).toEqual([5.5, 10.25]);
    expect(count(ds, 'wrong-coordinate-count')).toBe(1);
    expect(count(ds, 'missing-file')).toBe(1);
    expect(count(ds, 'malformed-line')).toBe(1);
  });
});
readerContract('readIbugPts', buildIbug);

// ------------------------------------------------------------ image checks and CSV

describe('checkImageFile', () => {
  it('parses JPEG, PNG, WebP and PGM headers', async () => {
    const base = sharp({ create: { width: 37, height: 23, channels: 3, background: '#336699' } });
    await base.clone().jpeg().toFile(join(dir, 'h.jpg'));
    await base.clone().png().toFile(join(dir, 'h.png'));
    await base.clone().webp().toFile(join(dir, 'h.webp'));
    await writeFile(join(dir, 'h.pgm'), Buffer.concat([Buffer.from('P5\n# comment\n37 23\n255\n'), Buffer.alloc(37 * 23, 9)]));
    for (const [ext, format] of [
      ['jpg', 'jpeg'],
      ['png', 'png'],
      ['webp', 'webp'],
      ['pgm', 'pgm'],
    ] as const) {
      const r = await checkImageFile(join(dir, `h.${ext}`));
      expect(r).toMatchObject({ ok: true, header: { format, width: 37, height: 23 } });
      expect(r.ok && r.warning).toBeFalsy();
    }
  });

  it('warns about a truncated JPEG and a short PGM; `exists` level skips header parsing', async () => {
    const full = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#aa5500' } })
      .jpeg()
      .toBuffer();
    await writeFile(join(dir, 'cut.jpg'), full.subarray(0, full.length - 40));
    expect(await checkImageFile(join(dir, 'cut.jpg'))).toMatchObject({ ok: true, warning: { kind: 'truncated-image' } });
    await writeFile(join(dir, 'short.pgm'), Buffer.concat([Buffer.from('P5 10 10 255\n'), Buffer.alloc(20)]));
    expect(await checkImageFile(join(dir, 'short.pgm'))).toMatchObject({ ok: true, warning: { kind: 'truncated-image' } });
    await writeFile(join(dir, 'junk.png'), 'junk');
    expect(await checkImageFile(join(dir, 'junk.png'), 'exists')).toMatchObject({ ok: true });
    expect(await checkImageFile(join(dir, 'junk.png'), 'header')).toMatchObject({ ok: false, kind: 'unreadable-image' });
  });
});

describe('parseCsv', () => {
  it('handles quotes, embedded commas and newlines, CRLF and a BOM, with line numbers', () => {
    const t = parseCsv('\ufefffile,note\r\n"a, b.jpg","say ""hi""\nthere"\r\n\r\nc.jpg,x\n');
    expect(t.header).toEqual(['file', 'note']);
    expect(t.rows.map((r) => [r.line, r.values['file'], r.values['note']])).toEqual([
      [2, 'a, b.jpg', 'say "hi"\nthere'],
      [5, 'c.jpg', 'x'],
    ]);
  });
});

// ------------------------------------------------------------ splits

function syntheticSamples(): FaceSample[] {
  const samples: FaceSample[] = [];
  for (let subject = 0; subject < 60; subject++) {
    for (let k = 0; k < 5; k++) {
      const i = samples.length;
      const s: FaceSample = { id: `p${subject}/${k}`, imagePath: `/x/${i}.jpg`, label: subject % 4, subject: `p${subject}` };
      samples.push(s);
    }
  }
  return samples;
}

describe('splitDataset', () => {
  const fractions: [number, number, number] = [0.7, 0.15, 0.15];

  it('is deterministic for a seed, independent of input order, and changes with the seed', () => {
    const samples = syntheticSamples();
    const ids = (r: { train: FaceSample[]; val: FaceSample[]; test: FaceSample[] }): string[][] =>
      [r.train, r.val, r.test].map((side) => side.map((s) => s.id).sort());
    const a = splitDataset(samples, { seed: 42, fractions, by: 'subject' });
    const b = splitDataset([...samples].reverse(), { seed: 42, fractions, by: 'subject' });
    const c = splitDataset(samples, { seed: 43, fractions, by: 'subject' });
    expect(ids(a)).toEqual(ids(b));
    expect(ids(a)).not.toEqual(ids(c));
    expect(a.train.length + a.val.length + a.test.length).toBe(samples.length);
  });

  it('by subject: no person on two sides, and sizes follow the fractions', () => {
    const r = splitDataset(syntheticSamples(), { seed: 7, fractions, by: 'subject' });
    const sides = [r.train, r.val, r.test].map((side) => new Set(side.map((s) => s.subject)));
    for (let i = 0; i < 3; i++) for (let j = i + 1; j < 3; j++) expect([...sides[i]!].filter((x) => sides[j]!.has(x))).toEqual([]);
    expect(r.units).toEqual({ train: 42, val: 9, test: 9 });
  });

  it('keeps duplicate groups together, also when they join different subjects', () => {
    const samples = syntheticSamples();
    // Group links p0 and p1 (e.g. one image filed under two people): both must land on the same side.
    samples[0]!.group = 'dup-a';
    samples[5]!.group = 'dup-a';
    for (let i = 100; i < 300; i += 7) samples[i]!.group = `dup-${Math.floor(i / 20)}`;
    for (const by of ['subject', 'group'] as const) {
      for (let seed = 0; seed < 20; seed++) {
        const r = splitDataset(samples, { seed, fractions, by });
        const sideOf = new Map<string, string>();
        for (const side of ['train', 'val', 'test'] as const) {
          for (const s of r[side]) {
            if (!s.group) continue;
            expect(sideOf.get(s.group) ?? side).toBe(side);
            sideOf.set(s.group, side);
          }
        }
        if (by === 'subject') expect(r.train.includes(samples[0]!)).toBe(r.train.includes(samples[5]!));
      }
    }
  });

  it('stratifies classes by sample and leaves regression unstratified', () => {
    const samples: FaceSample[] = Array.from({ length: 1000 }, (_, i) => ({
      id: `s${i}`,
      imagePath: '',
      label: i < 100 ? 0 : i < 400 ? 1 : 2,
    }));
    const r = splitDataset(samples, { seed: 1, fractions: [0.8, 0.1, 0.1], by: 'sample' });
    expect(r.stratified).toBe(true);
    const perClass = (side: FaceSample[]): number[] => [0, 1, 2].map((c) => side.filter((s) => s.label === c).length);
    expect(perClass(r.train)).toEqual([80, 240, 480]);
    expect(perClass(r.val)).toEqual([10, 30, 60]);
    expect(perClass(r.test)).toEqual([10, 30, 60]);
    const ages = samples.map((s, i) => ({ ...s, label: 20.5 + (i % 50) }));
    expect(splitDataset(ages, { seed: 1, fractions: [0.8, 0.1, 0.1], by: 'sample' }).stratified).toBe(false);
    // Regression stratified by a custom stratum (age decade).
    const byDecade = splitDataset(ages, {
      seed: 1,
      fractions: [0.8, 0.1, 0.1],
      by: 'sample',
      strataOf: (s) => Math.floor((s.label as number) / 10),
    });
    expect(byDecade.stratified).toBe(true);
    const decades = (side: FaceSample[]): number[] =>
      [2, 3, 4, 5, 6].map((d) => side.filter((s) => Math.floor((s.label as number) / 10) === d).length);
    expect(decades(byDecade.val)).toEqual(decades(ages).map((n) => n / 10));
  });

  it('rejects bad fractions and repeated ids', () => {
    const samples = syntheticSamples();
    expect(() => splitDataset(samples, { seed: 1, fractions: [0.7, 0.2, 0.2], by: 'sample' })).toThrow(/summing to 1/);
    expect(() => splitDataset([samples[0]!, samples[0]!], { seed: 1, fractions: [1, 0, 0], by: 'sample' })).toThrow(/twice/);
  });
});
