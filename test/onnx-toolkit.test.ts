// ONNX graph surgery (subgraph extraction, added outputs, model merging) and model file round trips, checked by running real graphs in ONNX Runtime.
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, attr, makeTensor, makeValueInfo } from '../src/onnx/graph-builder.js';
import { onnx, decodeModel, encodeModel, readModel, tensorToFloat32, type GraphProto, type ModelProto } from '../src/onnx/proto.js';
import { createSession, ort, runFloat } from '../src/onnx/runtime.js';
import { addOutputs, extractSubgraph, listTensors } from '../src/onnx/subgraph.js';
import { mergeModels } from '../src/onnx/merge.js';
import { InvalidInputError, ModelFormatError, NotFoundError } from '../src/core/errors.js';
import { maxAbsDiff } from './helpers/compare.js';

type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;

/** Deterministic weights so a failure reproduces (mulberry32). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValues(rand: () => number, count: number, scale = 1): Float32Array {
  return Float32Array.from({ length: count }, () => (rand() * 2 - 1) * scale);
}

/** Conv -> Relu -> 1x1 Conv -> Relu ("feat") -> pooling -> "embedding" [1,6] -> Gemm -> Softmax ("probs"), plus an ArgMax "label". */
function buildEncoder(options: { pooling?: 'gap' | 'reducemean'; opset?: number; seed?: number } = {}): ModelProto {
  const rand = seededRandom(options.seed ?? 1);
  const b = new GraphBuilder('encoder');
  const x = b.input('x', [1, 3, 8, 8]);
  const w1 = b.constF('conv1.w', randomValues(rand, 4 * 3 * 3 * 3, 0.5), [4, 3, 3, 3]);
  const b1 = b.constF('conv1.b', randomValues(rand, 4, 0.1));
  b.node('Conv', [x, w1, b1], ['conv1'], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
  b.node('Relu', ['conv1'], ['relu1']);
  const w2 = b.constF('conv2.w', randomValues(rand, 6 * 4, 0.5), [6, 4, 1, 1]);
  const b2 = b.constF('conv2.b', randomValues(rand, 6, 0.1));
  b.node('Conv', ['relu1', w2, b2], ['conv2'], { kernel_shape: attr.ints([1, 1]) });
  b.node('Relu', ['conv2'], ['feat']);
  if (options.pooling === 'reducemean') {
    b.node('ReduceMean', ['feat'], ['embedding'], { axes: attr.ints([2, 3]), keepdims: attr.int(0) });
  } else {
    b.node('GlobalAveragePool', ['feat'], ['pooled']);
    b.node('Flatten', ['pooled'], ['embedding'], { axis: attr.int(1) });
  }
  const wfc = b.constF('fc.w', randomValues(rand, 5 * 6), [5, 6]);
  const bfc = b.constF('fc.b', randomValues(rand, 5, 0.1));
  b.node('Gemm', ['embedding', wfc, bfc], ['logits'], { transB: attr.int(1) });
  b.node('Softmax', ['logits'], ['probs'], { axis: attr.int(1) });
  b.node('ArgMax', ['probs'], ['label'], { axis: attr.int(1), keepdims: attr.int(0) });
  b.output('probs', [1, 5]);
  return b.build({ opset: options.opset ?? 13 });
}

/** A separately built task head whose names deliberately collide with the encoder's ("x", "logits", "probs"). */
function buildHead(options: { opset?: number; seed?: number } = {}): ModelProto {
  const rand = seededRandom(options.seed ?? 2);
  const b = new GraphBuilder('head');
  b.input('x', [1, 6]);
  b.input('temperature', [1]);
  const w = b.constF('mlp.w', randomValues(rand, 6 * 8), [6, 8]);
  const bias = b.constF('mlp.b', randomValues(rand, 8, 0.1));
  b.node('MatMul', ['x', w], ['hidden_mm']);
  b.node('Add', ['hidden_mm', bias], ['hidden']);
  b.node('Relu', ['hidden'], ['act']);
  const wOut = b.constF('out.w', randomValues(rand, 8 * 3), [8, 3]);
  const bOut = b.constF('out.b', randomValues(rand, 3, 0.1));
  b.node('Gemm', ['act', wOut, bOut], ['logits']);
  b.node('Div', ['logits', 'temperature'], ['scaled']);
  b.node('Softmax', ['scaled'], ['probs'], { axis: attr.int(1) });
  b.output('probs', [1, 3]);
  return b.build({ opset: options.opset ?? 17 });
}

async function run(model: ModelProto, feeds: Feeds, outputs?: readonly string[]) {
  const { session } = await createSession(encodeModel(model));
  try {
    return await runFloat(session, feeds, outputs);
  } finally {
    await session.release();
  }
}

function graphOf(model: ModelProto): GraphProto {
  expect(model.graph).toBeTruthy();
  return model.graph!;
}

const names = (list: readonly { name?: string | null }[] | null | undefined) => (list ?? []).map((v) => v.name);
const opTypes = (model: ModelProto) => (graphOf(model).node ?? []).map((n) => n.opType);
const imageInput = (): Feeds => ({ x: { data: randomValues(seededRandom(7), 3 * 8 * 8), dims: [1, 3, 8, 8] } });

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

  it('addOutputs keeps the existing outputs first and ignores ones already there', () => {
    const model = addOutputs(buildEncoder(), ['probs', 'conv1', 'label']);
    expect(names(graphOf(model).output)).toEqual(['probs', 'conv1', 'label']);
    expect(graphOf(model).output![2]!.type?.tensorType?.elemType).toBe(onnx.TensorProto.DataType.INT64);
  });

  it('listTensors names every node output with its op type', () => {
    const listing = listTensors(buildEncoder());
    expect(listing.map((t) => t.name)).toEqual(['conv1', 'relu1', 'conv2', 'feat', 'pooled', 'embedding', 'logits', 'probs', 'label']);
    expect(listing.find((t) => t.name === 'pooled')?.opType).toBe('GlobalAveragePool');
    expect(listing.find((t) => t.name === 'label')?.opType).toBe('ArgMax');
  });

  it('reports unknown names as NotFoundError naming them', () => {
    const encoder = buildEncoder();
    expect(() => extractSubgraph(encoder, { outputs: ['no_such_tensor'] })).toThrow(NotFoundError);
    expect(() => extractSubgraph(encoder, { outputs: ['no_such_tensor'] })).toThrow(/no_such_tensor/);
    expect(() => extractSubgraph(encoder, { inputs: ['missing_in'], outputs: ['probs'] })).toThrow(/missing_in/);
    expect(() => addOutputs(encoder, ['feat', 'ghost'])).toThrow(NotFoundError);
    expect(() => addOutputs(encoder, ['feat', 'ghost'])).toThrow(/"ghost"/);
    expect(() => extractSubgraph(encoder, { outputs: [] })).toThrow(InvalidInputError);
    expect(() => extractSubgraph(encoder, { outputs: ['x'] })).toThrow(InvalidInputError);
  });

  it('refuses a cut input that a node kept for its sibling output would compute again', () => {
    const b = new GraphBuilder('split');
    b.input('x', [1, 4]);
    b.node('Split', ['x'], ['left', 'right'], { axis: attr.int(1), num_outputs: attr.int(2) });
    b.node('Add', ['left', 'right'], ['sum']);
    b.output('sum', [1, 2]);
    const model = b.build({ opset: 18 });
    expect(() => extractSubgraph(model, { inputs: ['left'], outputs: ['sum'] })).toThrow(/"left"/);
    expect(opTypes(extractSubgraph(model, { inputs: ['left', 'right'], outputs: ['sum'] }))).toEqual(['Add']);
  });
});

/** x -> Mul(w) = "scaled"; If(sum(x) > 0) then 2*scaled else -scaled; the branches read "scaled" from the outer scope. */
function buildIfModel(): ModelProto {
  const b = new GraphBuilder('if-model');
  b.input('x', [1, 4]);
  const w = b.constF('w', [0.5, 0.5, 0.5, 0.5], [1, 4]);
  b.node('Mul', ['x', w], ['scaled']);
  b.node('ReduceSum', ['x'], ['sum'], { keepdims: attr.int(0) });
  const zero = b.constF('zero', [0], []);
  b.node('Greater', ['sum', zero], ['cond']);
  b.node('Sub', ['x', w], ['unused']);
  const branch = (name: string, op: string, extra: string[]): GraphProto => ({
    name,
    node: [{ opType: op, input: ['scaled', ...extra], output: [`${name}_out`], name: `${name}_node` }],
    initializer: extra.length ? [makeTensor(extra[0]!, Float32Array.from([2]), [])] : [],
    input: [],
    output: [makeValueInfo(`${name}_out`, 'float32', [1, 4])],
  });
  b.nodes.push({
    name: 'branch',
    opType: 'If',
    input: ['cond'],
    output: ['y'],
    attribute: [
      { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('then', 'Mul', ['two']) },
      { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('else', 'Neg', []) },
    ],
  });
  b.output('y', [1, 4]);
  b.output('unused', [1, 4]);
  return b.build({ opset: 17 });
}

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
    const other = await run(merged, { x: { data: randomValues(seededRandom(99), 3 * 8 * 8), dims: [1, 3, 8, 8] }, 'head/temperature': temperature });
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

  it('validates connections and names with clear errors', () => {
    const encoder = buildEncoder();
    const head = buildHead();
    expect(() => mergeModels(encoder, head, { connect: [['nope', 'x']] })).toThrow(NotFoundError);
    expect(() => mergeModels(encoder, head, { connect: [['nope', 'x']] })).toThrow(/"nope"/);
    expect(() => mergeModels(encoder, head, { connect: [['embedding', 'absent']] })).toThrow(NotFoundError);
    expect(() => mergeModels(encoder, head, { connect: [['embedding', 'absent']] })).toThrow(/"absent"/);
    // "hidden" exists in the head but is computed there, not a graph input.
    expect(() => mergeModels(encoder, head, { connect: [['embedding', 'hidden']] })).toThrow(/not a graph input/);
    expect(() => mergeModels(encoder, head, { connect: [] })).toThrow(InvalidInputError);
    expect(() => mergeModels(encoder, head, { connect: [['embedding', 'x'], ['feat', 'x']] })).toThrow(/connected twice/);
    expect(() => mergeModels(encoder, head, { connect: [['label', 'x']] })).toThrow(/INT64/);
    expect(() => mergeModels(encoder, head, { connect: [['embedding', 'x']], prefix2: '' })).toThrow(/choose another prefix2/);
    expect(() => mergeModels(encoder, head, { connect: [['embedding', 'x']], outputs: ['head/nothing'] })).toThrow(NotFoundError);
  });

  it('refuses to raise an opset across a change that alters an op of the older model', () => {
    const encoder = buildEncoder({ pooling: 'reducemean', opset: 13 });
    expect(() => mergeModels(encoder, buildHead({ opset: 18 }), { connect: [['embedding', 'x']] })).toThrow(/ReduceMean/);
    expect(() => mergeModels(encoder, buildHead({ opset: 17 }), { connect: [['embedding', 'x']] })).not.toThrow();
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

  it('a corrupt or truncated model file is a ModelFormatError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-onnx-toolkit-'));
    try {
      const bytes = encodeModel(buildEncoder());
      const good = join(dir, 'good.onnx');
      await writeFile(good, bytes);
      expect(opTypes(await readModel(good))).toHaveLength(9);

      const rand = seededRandom(3);
      const garbage = Uint8Array.from({ length: 4096 }, () => Math.floor(rand() * 256));
      const garbagePath = join(dir, 'garbage.onnx');
      await writeFile(garbagePath, garbage);
      await expect(readModel(garbagePath)).rejects.toThrow(ModelFormatError);
      await expect(readModel(garbagePath)).rejects.toThrow(/garbage\.onnx/);

      const textPath = join(dir, 'text.onnx');
      await writeFile(textPath, 'this is not an onnx model\n');
      await expect(readModel(textPath)).rejects.toThrow(ModelFormatError);

      const emptyPath = join(dir, 'empty.onnx');
      await writeFile(emptyPath, new Uint8Array(0));
      await expect(readModel(emptyPath)).rejects.toThrow(ModelFormatError);

      const cuts = [1, 7, 16, ...Array.from({ length: 12 }, (_, i) => Math.floor((bytes.length * (i + 1)) / 13)), bytes.length - 1];
      for (const cut of cuts) {
        const path = join(dir, `truncated-${cut}.onnx`);
        await writeFile(path, bytes.subarray(0, cut));
        await expect(readModel(path), `truncated at ${cut} of ${bytes.length} bytes`).rejects.toThrow(ModelFormatError);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
