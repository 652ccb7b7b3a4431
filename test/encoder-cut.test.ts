// The encoder cut point is the spatial embedding (GAP then the remaining head reproduces the model), and merge works.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { cutAtEncoder } from '../src/models/encoder-cut.js';
import { listRepository } from '../src/models/repository.js';
import { prepareFaceBatch } from '../src/models/runner.js';
import { GraphBuilder, attr } from '../src/onnx/graph-builder.js';
import { mergeModels } from '../src/onnx/merge.js';
import { decodeModel, encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat } from '../src/onnx/runtime.js';
import { demoFaces } from './helpers/faces.js';
import { maxAbsDiff } from './helpers/compare.js';

/** GAP of an NCHW map in plain JS, independent of any graph code under test. */
function gap(data: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(n! * c!);
  for (let i = 0; i < n! * c!; i++) {
    let s = 0;
    for (let k = 0; k < h! * w!; k++) s += data[i * h! * w! + k]!;
    out[i] = s / (h! * w!);
  }
  return out;
}

const entries = (await listRepository()).filter((e) => e.manifest.encoder && !e.manifest.precision);

describe('encoder cut', () => {
  it('covers every task model in the repository', () => {
    expect(entries.map((e) => e.manifest.name).sort()).toEqual(expect.arrayContaining(['emotion', 'expression', 'faceres', 'landmarks68']));
  });

  for (const entry of entries) {
    const m = entry.manifest;
    it(`${m.name}: encoder + head reproduce the model; GAP(features) through the head ${m.encoder!.head === 'gap-dense' ? 'reproduces it within 1e-4' : 'does not (conv head)'}`, async () => {
      const model = decodeModel(await readFile(entry.modelPath));
      const cut = cutAtEncoder(model, m);
      const { frame, faces } = await demoFaces(1);
      const { tensor } = prepareFaceBatch(m, frame, faces);
      const full = await runFloat((await createSession(entry.modelPath)).session, { [m.input.name]: tensor });
      const enc = await runFloat((await createSession(encodeModel(cut.encoder))).session, { [m.input.name]: tensor });
      const features = enc[m.encoder!.tensor]!;
      expect(features.dims).toEqual([faces.length, m.encoder!.width, ...m.encoder!.spatial]);
      // The spatial head on the encoder's map is the rest of the model: the cut lies on the path to every output.
      const spatialInput = cut.spatialHead.graph!.input![0]!.name!;
      const spatial = await runFloat((await createSession(encodeModel(cut.spatialHead))).session, { [spatialInput]: features });
      // Tolerance relative to the output's scale: facemesh answers in pixels (0..192), where float32 noise is ~1e-5.
      for (const o of m.outputs) {
        const scale = Math.max(1, ...Array.from(full[o.name]!.data, Math.abs));
        expect(maxAbsDiff(spatial[o.name]!.data, full[o.name]!.data)).toBeLessThan(1e-6 * scale + 1e-6);
      }
      if (m.encoder!.head === 'gap-dense') {
        expect(cut.gapHead).toBeDefined();
        const pooled = gap(features.data, features.dims);
        const head = await runFloat((await createSession(encodeModel(cut.gapHead!))).session, {
          [cut.pooledTensor!]: { data: pooled, dims: [faces.length, m.encoder!.width] },
        });
        const diffs = m.outputs.map((o) => maxAbsDiff(head[o.name]!.data, full[o.name]!.data));
        console.log(`${m.name}: GAP(${m.encoder!.tensor}) -> head, max abs diff ${diffs.map((d) => d.toExponential(2)).join(', ')}`);
        for (const d of diffs) expect(d).toBeLessThan(1e-4);
      } else {
        // A conv head does not commute with GAP; the manifest must say so (training then fits a decoder first).
        expect(cut.gapHead).toBeUndefined();
      }
    });
  }

  it('merge: the faceres encoder plus a generated GAP+dense head, merged into one file, equals running the two separately', async () => {
    const entry = entries.find((e) => e.manifest.name === 'faceres')!;
    const m = entry.manifest;
    const cut = cutAtEncoder(decodeModel(await readFile(entry.modelPath)), m);
    const width = m.encoder!.width;
    const classes = 5;
    const b = new GraphBuilder('generated-head');
    b.input('features', ['N', width, ...m.encoder!.spatial]);
    const pooled = b.op('Flatten', [b.op('GlobalAveragePool', ['features'])], { axis: attr.int(1) });
    const w = Float32Array.from({ length: width * classes }, (_, i) => Math.sin(i * 0.7) * 0.05);
    const logits = b.op('Gemm', [pooled, b.constF('w', w, [width, classes]), b.constF('b', [0.1, -0.2, 0.3, 0, 0.05])]);
    b.node('Softmax', [logits], ['probs'], { axis: attr.int(-1) });
    b.output('probs', ['N', classes]);
    const head = b.build();
    const merged = mergeModels(cut.encoder, head, { connect: [[m.encoder!.tensor, 'features']] });
    const mergedBytes = encodeModel(merged);
    const { frame, faces } = await demoFaces(1);
    const { tensor } = prepareFaceBatch(m, frame, faces);
    const enc = await runFloat((await createSession(encodeModel(cut.encoder))).session, { [m.input.name]: tensor });
    const separate = await runFloat((await createSession(encodeModel(head))).session, { features: enc[m.encoder!.tensor]! });
    const together = await runFloat((await createSession(mergedBytes)).session, { [m.input.name]: tensor });
    const out = together['head/probs']!;
    expect(out.dims).toEqual([faces.length, classes]);
    expect(maxAbsDiff(out.data, separate['probs']!.data)).toBeLessThan(1e-6);
    // Different faces give different outputs: the merged graph really reads the image.
    expect(maxAbsDiff(out.data.subarray(0, classes), out.data.subarray(classes, 2 * classes))).toBeGreaterThan(1e-4);
  });
});
