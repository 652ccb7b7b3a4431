// Converted models must compute what their TF.js originals compute, on real faces: the converter's regression test.
import type { Tensor as TfTensor } from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { readTfjsGraphModel } from '../src/onnx/tfjs-artifacts.js';
import { runFloat } from '../src/onnx/runtime.js';
import { packageInfo } from '../src/models/build.js';
import { prepareFaceBatch } from '../src/models/runner.js';
import { prepareBlazefaceInput } from '../src/models/processing/index.js';
import { zoo, type TfjsZooEntry } from '../src/models/zoo.js';
import { loadTf } from '../src/train/tfjs-backend.js';
import { demoFaces, repositoryModel } from './helpers/faces.js';
import { join } from 'node:path';

const tfjsEntries = zoo.filter((z): z is TfjsZooEntry => z.source === 'tfjs-graph');

async function runOriginal(entry: TfjsZooEntry, data: Float32Array, dims: number[]): Promise<Float32Array[]> {
  const { tf } = await loadTf();
  const m = await readTfjsGraphModel(join(packageInfo(entry.package).dir, entry.file));
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({ modelTopology: m.json['modelTopology'] as object, weightSpecs: m.weightSpecs as never, weightData: m.weightData }),
  );
  const input = tf.tensor(data, dims);
  const out = model.execute(
    input,
    entry.outputs.map((o) => o.tfName.replace(/:0$/, '')),
  ) as TfTensor[] | TfTensor;
  const arr = Array.isArray(out) ? out : [out];
  const values = arr.map((t) => t.dataSync() as Float32Array);
  tf.dispose([input, ...arr]);
  model.dispose();
  return values;
}

/**
 * Max abs difference, and the worst excess over the tolerance 1e-3 + 1e-6·|reference|. The relative part only
 * matters for BlazeFace's background-anchor logits, which reach |x| ~ 8000 where one float32 step is 5e-4: two
 * float32 programs summing in different orders cannot agree to 1e-3 absolute there (they agree to 1e-6 relative).
 */
const compare = (a: ArrayLike<number>, b: ArrayLike<number>): { maxAbs: number; worstExcess: number } => {
  expect(a.length).toBe(b.length);
  let maxAbs = 0;
  let worstExcess = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    maxAbs = Math.max(maxAbs, d);
    worstExcess = Math.max(worstExcess, d - (1e-3 + 1e-6 * Math.abs(b[i]!)));
  }
  return { maxAbs, worstExcess };
};

describe('TF.js -> ONNX parity on the face-api demo photos', () => {
  for (const entry of tfjsEntries) {
    it(`${entry.name} matches its TF.js original within 1e-3 (+1e-6 relative)`, async () => {
      const model = await repositoryModel(entry.name);
      const { frame, faces } = await demoFaces(1);
      expect(faces.length).toBeGreaterThan(0);
      let input: { data: Float32Array; dims: number[] };
      if (entry.kind === 'detector') input = prepareBlazefaceInput(frame, {}, model.manifest.input).tensor;
      else {
        const fixed = entry.batch !== 'N';
        const { tensor } = prepareFaceBatch(model.manifest, frame, fixed ? faces.slice(0, 1) : faces);
        input = tensor;
      }
      const onnx = await runFloat(model.session, { [model.manifest.input.name]: input });
      const original = await runOriginal(entry, input.data, input.dims);
      const diffs = entry.outputs.map((o, i) => compare(onnx[o.tfName.replace(/:0$/, '')]!.data, original[i]!));
      console.log(
        `${entry.name}: ${input.dims[0]} input(s), max abs diff per output ${diffs.map((d) => d.maxAbs.toExponential(2)).join(', ')}`,
      );
      for (const d of diffs) expect(d.worstExcess).toBeLessThanOrEqual(0);
      // The outputs must carry information: a converter that zeroed everything would otherwise pass.
      for (const o of entry.outputs) expect(onnx[o.tfName.replace(/:0$/, '')]!.data.some((v) => v !== 0)).toBe(true);
    });
  }
});
