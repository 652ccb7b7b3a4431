// kt train's own-CSV path: absolute image paths, subject/group columns and the split by them, the repeated-people hint.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCsvManifest, repeatedPeopleHint, type FaceSample } from '../src/train/datasets/index.js';
import { readTaskData, splitTaskData, splitUnitFor, TASKS } from '../src/train/pipeline-tasks.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kt-train-data-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const sample = (id: string): FaceSample => ({ id, imagePath: `/data/${id}`, label: 30 });
/** A valid 1x1 PNG: readTaskData checks image headers. */
const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC', 'base64');

describe('CSV manifests written by a script', () => {
  it('reads absolute image paths as they are and relative ones under the CSV folder', async () => {
    const dir = join(root, 'abs');
    await mkdir(join(dir, 'rel'), { recursive: true });
    const elsewhere = await mkdtemp(join(tmpdir(), 'kt-train-images-'));
    await writeFile(join(elsewhere, 'a.png'), 'x');
    await writeFile(join(dir, 'rel', 'b.png'), 'x');
    await writeFile(join(dir, 'labels.csv'), `file,age\n${join(elsewhere, 'a.png')},30\nrel/b.png,40\n`);
    const ds = await readCsvManifest({
      csvPath: join(dir, 'labels.csv'),
      taskType: 'regression',
      labelColumn: 'age',
      imageCheck: 'exists',
    });
    expect(ds.problems.excluded).toBe(0);
    expect(ds.samples.map((s) => s.imagePath)).toEqual([join(elsewhere, 'a.png'), join(dir, 'rel', 'b.png')]);
    await rm(elsewhere, { recursive: true, force: true });
  });

  it('splits by the subject column: no person on two sides, stratified by age decade', async () => {
    const dir = join(root, 'subjects');
    await mkdir(dir, { recursive: true });
    const rows = ['file,age,person'];
    for (let p = 0; p < 40; p++) {
      for (let k = 0; k < 3; k++) {
        await writeFile(join(dir, `p${p}_${k}.png`), png);
        rows.push(`${join(dir, `p${p}_${k}.png`)},${20 + (p % 4) * 10},person${p}`);
      }
    }
    await writeFile(join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
    const options = { subjectColumn: 'person' };
    const ds = await readTaskData(TASKS.age, join(dir, 'labels.csv'), options);
    expect(ds.samples).toHaveLength(120);
    const split = splitTaskData(TASKS.age, ds, 1, splitUnitFor(TASKS.age, options));
    expect(split.by).toBe('subject');
    expect(split.units.train + split.units.val + split.units.test).toBe(40);
    const sideOf = new Map<string, string>();
    for (const side of ['train', 'val', 'test'] as const) {
      for (const s of split[side]) {
        expect(sideOf.get(s.subject!) ?? side, `${s.subject} on two sides`).toBe(side);
        sideOf.set(s.subject!, side);
      }
    }
    // Every age decade is on every side.
    for (const side of ['train', 'val', 'test'] as const) expect(new Set(split[side].map((s) => s.label)).size).toBe(4);
  });

  it('splits by the group column when one is named', () => {
    expect(splitUnitFor(TASKS.age, { groupColumn: 'g' })).toBe('group');
    expect(splitUnitFor(TASKS.age, {})).toBe('sample');
    expect(splitUnitFor(TASKS.emotion, {})).toBe('group');
  });

  it('rejects subject and group columns where there is no CSV to read them from', async () => {
    await expect(readTaskData(TASKS.age, 'age-utkface', { subjectColumn: 'person' })).rejects.toThrow(/--subject-column apply to a CSV/);
    await mkdir(join(root, 'emotion'), { recursive: true });
    await expect(readTaskData(TASKS.emotion, join(root, 'emotion'), { groupColumn: 'g' })).rejects.toThrow(
      /--group-column apply to a CSV manifest/,
    );
  });

  it('names a missing subject column with the columns the CSV has', async () => {
    await expect(readTaskData(TASKS.age, join(root, 'abs', 'labels.csv'), { subjectColumn: 'person' })).rejects.toThrow(
      /no column "person" \(have file, age\)/,
    );
  });
});

describe('repeatedPeopleHint', () => {
  it('warns when file names repeat per person', () => {
    const ids = ['alice_0001.jpg', 'alice_0002.jpg', 'bob (1).jpg', 'bob (2).jpg', 'carol.jpg', 'person3_1.png', 'person3_2.png'];
    const hint = repeatedPeopleHint(ids.map(sample), 'labels.csv');
    expect(hint).toContain('labels.csv has no subject column');
    expect(hint).toContain('3 names repeat');
    expect(hint).toContain('--subject-column');
  });

  it('warns for one folder per person with numbered files', () => {
    expect(repeatedPeopleHint(['s1/1.pgm', 's1/2.pgm', 's2/1.pgm', 's2/2.pgm'].map(sample), 'x.csv')).toContain('2 names repeat');
  });

  it('stays quiet for one image per person, a single counter stem and UTKFace-style names', () => {
    expect(repeatedPeopleHint(['alice.jpg', 'bob.jpg', 'carol.jpg'].map(sample), 'x.csv')).toBeUndefined();
    expect(
      repeatedPeopleHint(
        Array.from({ length: 20 }, (_, i) => sample(`images/face${i}.png`)),
        'x.csv',
      ),
    ).toBeUndefined();
    const utk = ['26_0_2_20170104023102422.jpg.chip.jpg', '26_0_2_20170104023102423.jpg.chip.jpg', '1_0_0_20161219140623097.jpg.chip.jpg'];
    expect(repeatedPeopleHint(utk.map(sample), 'x.csv')).toBeUndefined();
    expect(repeatedPeopleHint(['1.png', '2.png', '3.png'].map(sample), 'x.csv')).toBeUndefined();
  });
});
