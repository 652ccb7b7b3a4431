// Small ONNX graphs for the graph-surgery tests, built in code with deterministic weights so that a failure reproduces.
import { expect } from 'vitest';
import { GraphBuilder, attr, makeTensor, makeValueInfo } from '../../src/onnx/graph-builder.js';
import { onnx, type GraphProto, type ModelProto } from '../../src/onnx/proto.js';
import { createRandom, fillUniform, type UniformRandom } from '../../src/train/seeded-random.js';

export type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;

export function randomValues(rand: UniformRandom, count: number, scale = 1): Float32Array {
  return fillUniform(rand, new Float32Array(count), scale);
}

/** Conv -> Relu -> 1x1 Conv -> Relu ("feat") -> pooling -> "embedding" [1,6] -> Gemm -> Softmax ("probs"), plus an ArgMax "label". */
export function buildEncoder(options: { pooling?: 'gap' | 'reducemean'; opset?: number; seed?: number } = {}): ModelProto {
  const rand = createRandom(options.seed ?? 1);
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
export function buildHead(options: { opset?: number; seed?: number } = {}): ModelProto {
  const rand = createRandom(options.seed ?? 2);
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

/** x -> Mul(w) = "scaled"; If(sum(x) > 0) then 2*scaled else -scaled; the branches read "scaled" from the outer scope. */
export function buildIfModel(): ModelProto {
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

export function graphOf(model: ModelProto): GraphProto {
  expect(model.graph).toBeTruthy();
  return model.graph!;
}

export const names = (list: readonly { name?: string | null }[] | null | undefined) => (list ?? []).map((v) => v.name);
export const opTypes = (model: ModelProto) => (graphOf(model).node ?? []).map((n) => n.opType);
export const imageInput = (): Feeds => ({ x: { data: randomValues(createRandom(7), 3 * 8 * 8), dims: [1, 3, 8, 8] } });
