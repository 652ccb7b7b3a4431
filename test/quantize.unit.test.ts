// int8 quantization without running a graph: per-channel weight and activation arithmetic, Conv constant folding,
// and the QDQ rewrite of a small graph built with the toolkit (which tensors are quantized, what is removed).
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr } from '../src/onnx/graph-builder.js';
import { DataType, tensorDims, tensorToFloat32, type ModelProto } from '../src/onnx/proto.js';
import { foldConvConstants } from '../src/models/quantize/fold.js';
import { applyQdq, planQdq } from '../src/models/quantize/qdq-graph.js';
import {
  activationParams,
  dequantizeWeights,
  fakeQuantize,
  quantizeBias,
  quantizeWeightsPerChannel,
} from '../src/models/quantize/qdq-math.js';
import { preferredVersion } from '../src/models/repository.js';
import { createRandom } from '../src/train/seeded-random.js';
import { InvalidInputError, NotFoundError } from '../src/core/errors.js';

const random = createRandom(7);
const values = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);

describe('per-channel weights and activation parameters', () => {
  it('gives each output channel scale max|w|/127 and a round-trip error of at most half a step', () => {
    // Channels of very different magnitude: one per-tensor scale would wipe out the small one.
    const dims = [3, 2, 3, 3];
    const w = new Float32Array(54);
    w.set(values(18, 0.01), 0);
    w.set(values(18, 5), 18);
    w.set(values(18, 0.5), 36);
    const q = quantizeWeightsPerChannel(w, dims, 0);
    for (let c = 0; c < 3; c++) {
      const maxAbs = Math.max(...w.subarray(c * 18, (c + 1) * 18).map(Math.abs));
      expect(q.scales[c]).toBeCloseTo(maxAbs / 127, 7);
    }
    const back = dequantizeWeights(q, dims);
    w.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(q.scales[Math.floor(i / 18)]! / 2 + 1e-9));
    expect(Math.max(...q.values)).toBeLessThanOrEqual(127);
    expect(Math.min(...q.values)).toBeGreaterThanOrEqual(-127);
  });

  it('quantizes along axis 1 (Gemm B without transpose) and keeps an all-zero channel at scale 1', () => {
    const w = Float32Array.from([1, 0, -2, 0, 4, 0]); // [3, 2]: column 1 is all zeros
    const q = quantizeWeightsPerChannel(w, [3, 2], 1);
    expect([...q.scales]).toEqual([4 / 127, 1].map((v) => Math.fround(v)));
    expect([...q.values]).toEqual([32, 0, -64, 0, 127, 0]);
    expect(() => quantizeWeightsPerChannel(w, [3, 2], 2)).toThrow(InvalidInputError);
    expect(() => quantizeWeightsPerChannel(w, [4, 2], 0)).toThrow(/do not fill/);
  });

  it('maps ranges to uint8 with zero exactly representable, ReLU ranges to zero point 0', () => {
    const relu = activationParams(0, 2.55);
    expect(relu.scale).toBeCloseTo(0.01, 12);
    expect(relu.zeroPoint).toBe(0);
    const sym = activationParams(-1, 1);
    expect(sym.scale).toBeCloseTo(2 / 255, 12);
    expect(sym.zeroPoint).toBe(128);
    // A range that does not include 0 is widened to it (padding zeros must stay zeros).
    expect(activationParams(2, 4).zeroPoint).toBe(0);
    expect(activationParams(-3, -1).zeroPoint).toBe(255);
    expect(fakeQuantize(0, sym)).toBe(0);
    expect(() => activationParams(1, 0)).toThrow(InvalidInputError);
    expect(() => activationParams(0, NaN)).toThrow(InvalidInputError);
  });

  it('fake quantization errs by at most half a step inside the range and clips outside it (a free ReLU at zero point 0)', () => {
    const p = activationParams(-0.7, 3.1);
    for (const v of values(1000, 0.7)) expect(Math.abs(fakeQuantize(v, p) - v)).toBeLessThanOrEqual(p.scale / 2 + 1e-7);
    expect(fakeQuantize(100, p)).toBeCloseTo((255 - p.zeroPoint) * p.scale, 6);
    const relu = activationParams(0, 6);
    expect(fakeQuantize(-2, relu)).toBe(0);
  });

  it('quantizes a bias to int32 at input scale times each weight scale', () => {
    const { values: q, scales } = quantizeBias(Float32Array.from([0.5, -1]), 0.1, Float32Array.from([0.01, 0.02]));
    expect([...scales].map((s) => Number(s.toFixed(6)))).toEqual([0.001, 0.002]);
    expect([...q]).toEqual([500, -500]);
    expect(() => quantizeBias(Float32Array.from([1]), 0.1, Float32Array.from([1, 2]))).toThrow(/bias of 1 values/);
  });
});

/** input [1,3,8,8] -> Conv(4, bias) -> Mul(per channel) -> Add(per channel) -> Relu -> Min(6) -> Max(0)... as a converter writes batch norm + ReLU6. */
function tinyNet(): ModelProto {
  const b = new GraphBuilder('tiny');
  const x = b.input('x', [1, 3, 8, 8]);
  const w1 = b.initializer('w1', values(4 * 3 * 9, 0.5), [4, 3, 3, 3]);
  const c1 = b.op('Conv', [x, w1, b.constF('b1', values(4, 0.1))], { pads: attr.ints([1, 1, 1, 1]) }, 'conv1');
  const m = b.op('Mul', [c1, b.initializer('bn_mul', values(4, 2), [1, 4, 1, 1])], {}, 'bn_mul');
  const a = b.op('Add', [m, b.initializer('bn_add', values(4, 1), [1, 4, 1, 1])], {}, 'bn_add');
  const r = b.op('Relu', [a], {}, 'relu');
  const r6 = b.op('Min', [r, b.initializer('six', Float32Array.of(6), [])], {}, 'relu6');
  const c2 = b.op('Conv', [r6, b.initializer('w2', values(2 * 4, 0.5), [2, 4, 1, 1])], {}, 'conv2');
  const res = b.op('Add', [c2, b.op('Conv', [r6, b.initializer('w3', values(2 * 4, 0.5), [2, 4, 1, 1])], {}, 'conv3')], {}, 'residual');
  b.node('GlobalAveragePool', [res], ['pooled']);
  b.output('pooled', [1, 2, 1, 1]);
  return b.build({ opset: 17 });
}

const ops = (m: ModelProto): string[] => (m.graph!.node ?? []).map((n) => n.opType!);

describe('Conv constant folding and the QDQ rewrite', () => {
  it('folds the per-channel Mul and Add after a Conv into its weights and bias', () => {
    const source = tinyNet();
    const folded = foldConvConstants(source);
    expect(ops(folded)).toEqual(['Conv', 'Relu', 'Min', 'Conv', 'Conv', 'Add', 'GlobalAveragePool']);
    const inits = new Map(folded.graph!.initializer!.map((t) => [t.name!, t]));
    const conv = folded.graph!.node![0]!;
    const w = tensorToFloat32(inits.get(conv.input![1]!)!);
    const bias = tensorToFloat32(inits.get(conv.input![2]!)!);
    const srcInits = new Map(source.graph!.initializer!.map((t) => [t.name!, tensorToFloat32(t)]));
    const [w1, b1, mul, add] = ['w1', 'b1', 'bn_mul', 'bn_add'].map((n) => srcInits.get(n)!);
    expect(w[30]).toBeCloseTo(w1![30]! * mul![1]!, 6); // weight 30 is in output channel 1
    expect(bias[2]).toBeCloseTo(b1![2]! * mul![2]! + add![2]!, 6);
    expect(conv.output![0]).toBe(source.graph!.node![2]!.output![0]); // the Add's tensor name lives on
  });

  it('plans ranges for the Conv and Add inputs and outputs, and drops ReLU/ReLU6 chains after quantized ops', () => {
    const folded = foldConvConstants(tinyNet());
    const plan = planQdq(folded);
    const reluOut = folded.graph!.node![2]!.output![0]!; // Min's output: the end of the chain
    expect(plan.chains[folded.graph!.node![0]!.output![0]!]).toMatchObject({ last: reluOut, lo: 0, hi: 6 });
    expect(new Set(plan.tensors)).toEqual(new Set(['x', reluOut, 'conv2:out', 'conv3:out', 'residual:out']));
  });

  it('writes Q/DQ pairs with per-channel int8 weights, an int32 bias and every reader on the dequantized tensor', () => {
    const folded = foldConvConstants(tinyNet());
    const plan = planQdq(folded);
    const ranges = Object.fromEntries(plan.tensors.map((t) => [t, [-2, 7] as [number, number]]));
    const q = applyQdq(folded, plan, ranges);
    const nodes = q.graph!.node!;
    expect(nodes.filter((n) => n.opType === 'Relu' || n.opType === 'Min')).toHaveLength(0);
    expect(nodes.filter((n) => n.opType === 'QuantizeLinear')).toHaveLength(plan.tensors.length);
    const inits = new Map(q.graph!.initializer!.map((t) => [t.name!, t]));
    for (const conv of nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Add')) {
      for (const input of conv.input!) expect(nodes.find((n) => n.output![0] === input)?.opType).toBe('DequantizeLinear');
    }
    const wDq = nodes.find((n) => n.opType === 'DequantizeLinear' && inits.get(n.input![0]!)?.dataType === DataType.INT8)!;
    expect(wDq.attribute?.find((a) => a.name === 'axis')?.i).toBe(0);
    expect(tensorDims(inits.get(wDq.input![1]!)!)).toEqual([4]);
    const biasDq = nodes.find((n) => n.opType === 'DequantizeLinear' && inits.get(n.input![0]!)?.dataType === DataType.INT32);
    expect(biasDq).toBeDefined();
    // The chain's range is clamped to ReLU6: [0, 6], not the calibrated [-2, 7].
    const chainScale = tensorToFloat32(inits.get(`${plan.chains[folded.graph!.node![0]!.output![0]!]!.last}/scale`)!)[0]!;
    expect(chainScale).toBeCloseTo(6 / 255, 6);
  });

  it('names a tensor without a calibrated range', () => {
    const folded = foldConvConstants(tinyNet());
    expect(() => applyQdq(folded, planQdq(folded), {})).toThrow(NotFoundError);
  });
});

describe('which version serves by default', () => {
  const versions = [
    { version: 1 },
    { version: 2, precision: { type: 'int8' as const, fromVersion: 1, fromSha256: 'a'.repeat(64), method: 'qdq' } },
    { version: 3, precision: { type: 'fp16' as const, fromVersion: 1, fromSha256: 'a'.repeat(64), method: 'cast' } },
  ];
  it('is the newest fp32 version unless a precision is asked for, which falls back to fp32 when missing', () => {
    expect(preferredVersion(versions)).toBe(1);
    expect(preferredVersion(versions, 'int8')).toBe(2);
    expect(preferredVersion(versions, 'fp16')).toBe(3);
    expect(preferredVersion(versions.slice(0, 1), 'int8')).toBe(1);
    expect(preferredVersion([])).toBeUndefined();
  });
});
