// ONNX graph surgery without running a graph: added outputs, tensor listing, naming errors, merge validation, bad model files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr } from '../src/onnx/graph-builder.js';
import { encodeModel, onnx, readModel } from '../src/onnx/proto.js';
import { addOutputs, extractSubgraph, listTensors } from '../src/onnx/subgraph.js';
import { mergeModels } from '../src/onnx/merge.js';
import { createRandom } from '../src/train/seeded-random.js';
import { InvalidInputError, ModelFormatError, NotFoundError } from '../src/core/errors.js';
import { buildEncoder, buildHead, graphOf, names, opTypes } from './helpers/onnx-graphs.js';

describe('extractSubgraph / addOutputs / listTensors', () => {
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

describe('mergeModels', () => {
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
    expect(() =>
      mergeModels(encoder, head, {
        connect: [
          ['embedding', 'x'],
          ['feat', 'x'],
        ],
      }),
    ).toThrow(/connected twice/);
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
  it('a corrupt or truncated model file is a ModelFormatError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-onnx-toolkit-'));
    try {
      const bytes = encodeModel(buildEncoder());
      const good = join(dir, 'good.onnx');
      await writeFile(good, bytes);
      expect(opTypes(await readModel(good))).toHaveLength(9);

      const rand = createRandom(3);
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
