// ONNX graph surgery (subgraph extraction, added outputs, model merging) and model round trips, checked by running the
// graphs in ONNX Runtime; the checks that need no runtime are in onnx-toolkit.unit.test.ts.
import { describe, expect, it } from 'vitest';
import { GraphBuilder, makeValueInfo } from '../src/onnx/graph-builder.js';
import { onnx, decodeModel, encodeModel, tensorToFloat32, type ModelProto } from '../src/onnx/proto.js';
import { createSession, ort, runFloat } from '../src/onnx/runtime.js';
import { addOutputs, extractSubgraph } from '../src/onnx/subgraph.js';
import { mergeModels } from '../src/onnx/merge.js';
import { createRandom } from '../src/train/seeded-random.js';
import { maxAbsDiff } from './helpers/compare.js';
import {
  buildEncoder,
  buildHead,
  buildIfModel,
  graphOf,
  imageInput,
  names,
  opTypes,
  randomValues,
  type Feeds,
} from './helpers/onnx-graphs.js';

async function run(model: ModelProto, feeds: Feeds, outputs?: readonly string[]) {
  const { session } = await createSession(encodeModel(model));
  try {
    return await runFloat(session, feeds, outputs);
  } finally {
    await session.release();
  }
}

describe('extractSubgraph / addOutputs / listTensors', () => {
  it('a subgraph cut at an intermediate tensor computes exactly what the full model computes there', async () => {
    const encoder = buildEncoder();
    const full = await run(addOutputs(encoder, ['feat', 'embedding']), imageInput());
    expect(Object.keys(full).sort()).toEqual(['embedding', 'feat', 'probs']);
    const feat = full['feat']!;
    expect(feat.dims).toEqual([1, 6, 8, 8]);
    // A tensor of zeros would make the comparison below meaningless.
    expect(feat.data.some((v) => v > 0)).toBe(true);

    const sub = extractSubgraph(encoder, { outputs: ['feat'] });
    expect(opTypes(sub)).toEqual(['Conv', 'Relu', 'Conv', 'Relu']);
    expect(names(graphOf(sub).initializer)).toEqual(['conv1.w', 'conv1.b', 'conv2.w', 'conv2.b']);
    expect(names(graphOf(sub).input)).toEqual(['x']);
    expect(names(graphOf(sub).output)).toEqual(['feat']);
    expect(graphOf(sub).output![0]!.type?.tensorType?.elemType).toBe(onnx.TensorProto.DataType.FLOAT);
    // The source model is left as it was.
    expect(opTypes(encoder)).toHaveLength(9);

    const cut = await run(sub, imageInput());
    expect(Object.keys(cut)).toEqual(['feat']);
    expect(cut['feat']!.dims).toEqual(feat.dims);
    expect(Array.from(cut['feat']!.data)).toEqual(Array.from(feat.data));
  });

  it('a cut between named inputs and outputs keeps only the nodes in between', async () => {
    const encoder = buildEncoder();
    const full = await run(addOutputs(encoder, ['embedding']), imageInput());
    const head = extractSubgraph(encoder, { inputs: ['embedding'], outputs: ['probs'] });
    expect(opTypes(head)).toEqual(['Gemm', 'Softmax']);
    expect(names(graphOf(head).input)).toEqual(['embedding']);
    expect(names(graphOf(head).initializer)).toEqual(['fc.w', 'fc.b']);
    const out = await run(head, { embedding: full['embedding']! });
    expect(maxAbsDiff(out['probs']!.data, full['probs']!.data)).toBeLessThan(1e-7);
  });

  it('gives outputs the element type of the tensor (int64 for ArgMax) and keeps declared shapes', async () => {
    const encoder = buildEncoder();
    graphOf(encoder).valueInfo = [makeValueInfo('feat', 'float32', [1, 6, 8, 8])];
    const withFeat = extractSubgraph(encoder, { outputs: ['feat'] });
    const featDims = graphOf(withFeat).output![0]!.type?.tensorType?.shape?.dim?.map((d) => Number(d.dimValue));
    expect(featDims).toEqual([1, 6, 8, 8]);

    const labelModel = extractSubgraph(encoder, { inputs: ['embedding'], outputs: ['label', 'probs'] });
    const labelInfo = graphOf(labelModel).output![0]!;
    expect(labelInfo.name).toBe('label');
    expect(labelInfo.type?.tensorType?.elemType).toBe(onnx.TensorProto.DataType.INT64);
    expect(labelInfo.type?.tensorType?.shape).toBeFalsy();

    const embedding = Float32Array.from([0.3, -1, 2, 0.5, 0, 1]);
    const { session } = await createSession(encodeModel(labelModel));
    const res = await session.run({ embedding: new ort.Tensor('float32', embedding, [1, 6]) });
    await session.release();
    const probs = res['probs']!.data as Float32Array;
    const argmax = probs.indexOf(Math.max(...probs));
    expect(res['label']!.type).toBe('int64');
    expect(Array.from(res['label']!.data as BigInt64Array)).toEqual([BigInt(argmax)]);
  });

  it('keeps producers that a control-flow branch reads from the outer scope', async () => {
    const model = buildIfModel();
    const sub = extractSubgraph(model, { outputs: ['y'] });
    // "scaled" is read only inside the branches, so a cut that ignores subgraph captures would drop its Mul.
    expect(opTypes(sub)).toEqual(['Mul', 'ReduceSum', 'Greater', 'If']);
    const feeds: Feeds = { x: { data: Float32Array.from([1, -2, 3, 0.5]), dims: [1, 4] } };
    const full = await run(model, feeds);
    const cut = await run(sub, feeds);
    expect(Array.from(cut['y']!.data)).toEqual(Array.from(full['y']!.data));
    expect(Array.from(cut['y']!.data)).toEqual([2 * 0.5, -2 * 2 * 0.5, 2 * 3 * 0.5, 2 * 0.5 * 0.5].map((v) => Math.fround(v)));
  });
});

describe('mergeModels', () => {
  const temperature = { data: Float32Array.from([1.7]), dims: [1] };

  it('an encoder merged with a separately built head equals running the two one after the other', async () => {
    const encoder = buildEncoder({ pooling: 'reducemean', opset: 13 });
    const head = buildHead({ opset: 17 });
    const merged = mergeModels(encoder, head, { connect: [['embedding', 'x']], outputs: ['embedding'] });

    expect(merged.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
    expect(names(graphOf(merged).input)).toEqual(['x', 'head/temperature']);
    expect(names(graphOf(merged).output)).toEqual(['head/probs', 'embedding']);
    // The encoder's own classifier feeds nothing any more and is pruned.
    expect(opTypes(merged)).toEqual(['Conv', 'Relu', 'Conv', 'Relu', 'ReduceMean', 'MatMul', 'Add', 'Relu', 'Gemm', 'Div', 'Softmax']);
    expect(names(graphOf(merged).initializer)).not.toContain('fc.w');
    expect(names(graphOf(merged).initializer)).toContain('head/mlp.w');

    const encoded = await run(addOutputs(encoder, ['embedding']), imageInput());
    const separate = await run(head, { x: encoded['embedding']!, temperature });
    const together = await run(merged, { ...imageInput(), 'head/temperature': temperature });
    expect(together['head/probs']!.dims).toEqual([1, 3]);
    expect(maxAbsDiff(together['head/probs']!.data, separate['probs']!.data)).toBeLessThan(1e-6);
    expect(maxAbsDiff(together['embedding']!.data, encoded['embedding']!.data)).toBeLessThan(1e-6);
    // The head's result depends on the encoder's features: a different image changes it.
    const other = await run(merged, {
      x: { data: randomValues(createRandom(99), 3 * 8 * 8), dims: [1, 3, 8, 8] },
      'head/temperature': temperature,
    });
    expect(maxAbsDiff(other['head/probs']!.data, separate['probs']!.data)).toBeGreaterThan(1e-4);
  });

  it('renames names inside control-flow branches of the second model consistently', async () => {
    const b = new GraphBuilder('pre');
    b.input('image', [1, 4]);
    b.node('Relu', ['image'], ['features']);
    b.output('features', [1, 4]);
    const pre = b.build({ opset: 17 });
    const second = buildIfModel();
    const merged = mergeModels(pre, second, { connect: [['features', 'x']], prefix2: 'm2.' });
    expect(names(graphOf(merged).output)).toEqual(['m2.y', 'm2.unused']);
    const ifNode = graphOf(merged).node!.find((n) => n.opType === 'If')!;
    expect(ifNode.attribute![0]!.g!.node![0]!.input).toEqual(['m2.scaled', 'm2.two']);

    const image = { data: Float32Array.from([1, -2, 3, 0.5]), dims: [1, 4] };
    const features = (await run(pre, { image }))['features']!;
    const separate = await run(second, { x: features });
    const together = await run(merged, { image });
    expect(maxAbsDiff(together['m2.y']!.data, separate['y']!.data)).toBeLessThan(1e-6);
    expect(maxAbsDiff(together['m2.unused']!.data, separate['unused']!.data)).toBeLessThan(1e-6);
  });
});

describe('model bytes', () => {
  it('encode/decode round trip preserves the model', async () => {
    for (const model of [buildEncoder(), mergeModels(buildEncoder(), buildHead(), { connect: [['embedding', 'x']] }), buildIfModel()]) {
      const bytes = encodeModel(model);
      const decoded = decodeModel(bytes, 'round-trip');
      expect(Buffer.compare(Buffer.from(encodeModel(decoded)), Buffer.from(bytes))).toBe(0);
      expect(opTypes(decoded)).toEqual(opTypes(model));
      expect(names(graphOf(decoded).input)).toEqual(names(graphOf(model).input));
      expect(names(graphOf(decoded).output)).toEqual(names(graphOf(model).output));
      const originalInits = graphOf(model).initializer ?? [];
      graphOf(decoded).initializer!.forEach((t, i) => {
        expect(t.name).toBe(originalInits[i]!.name);
        expect(Array.from(tensorToFloat32(t))).toEqual(Array.from(tensorToFloat32(originalInits[i]!)));
      });
    }
    const encoder = buildEncoder();
    const before = await run(encoder, imageInput());
    const after = await run(decodeModel(encodeModel(encoder)), imageInput());
    expect(Array.from(after['probs']!.data)).toEqual(Array.from(before['probs']!.data));
  });
});
