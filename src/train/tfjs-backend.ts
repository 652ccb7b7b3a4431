// The one adapter over TF.js: a prioritised backend registry (tfjs-node-gpu, tfjs-node, wasm, cpu) with lazy init.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import { errorMessage } from '../core/errors.js';

export type Tf = typeof tfjs;
export type TrainingBackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

interface BackendCandidate {
  name: TrainingBackendName;
  priority: number;
  /** Returns the tf namespace with this backend active, or throws with the reason it is unavailable. */
  init: () => Promise<Tf>;
}

const require = createRequire(import.meta.url);
const candidates: BackendCandidate[] = [];

export function registerTrainingBackend(name: TrainingBackendName, init: () => Promise<Tf>, priority: number): void {
  candidates.push({ name, init, priority });
  candidates.sort((a, b) => b.priority - a.priority);
}

// Optional native packages are imported by a computed name so that bundlers and tsc do not require them to exist.
const optional = async (pkg: string): Promise<Tf> => (await import(/* @vite-ignore */ pkg)) as Tf;

registerTrainingBackend(
  'tensorflow-gpu',
  async () => {
    const tf = await optional('@tensorflow/tfjs-node-gpu');
    await tf.setBackend('tensorflow');
    await tf.ready();
    return tf;
  },
  40,
);
registerTrainingBackend(
  'tensorflow',
  async () => {
    const tf = await optional('@tensorflow/tfjs-node');
    await tf.setBackend('tensorflow');
    await tf.ready();
    return tf;
  },
  30,
);
registerTrainingBackend(
  'wasm',
  async () => {
    const tf = await import('@tensorflow/tfjs');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    wasm.setWasmPaths(`${join(dir, 'dist')}/`);
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
    await tf.ready();
    return tf;
  },
  20,
);
registerTrainingBackend(
  'cpu',
  async () => {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    await tf.ready();
    return tf;
  },
  10,
);

export interface LoadedTf {
  tf: Tf;
  backend: TrainingBackendName;
  skipped: { backend: TrainingBackendName; reason: string }[];
}

let loaded: Promise<LoadedTf> | undefined;

/**
 * Initialises the best available backend once (or the one named by `prefer` / KT_TF_BACKEND).
 * Fails with one error that names every backend's reason.
 */
export function loadTf(
  prefer: TrainingBackendName | undefined = process.env['KT_TF_BACKEND'] as TrainingBackendName | undefined,
): Promise<LoadedTf> {
  loaded ??= (async () => {
    const skipped: LoadedTf['skipped'] = [];
    const order = prefer ? candidates.filter((c) => c.name === prefer).concat(candidates.filter((c) => c.name !== prefer)) : candidates;
    for (const c of order) {
      try {
        const tf = await c.init();
        return { tf, backend: c.name, skipped };
      } catch (e) {
        skipped.push({ backend: c.name, reason: errorMessage(e).split('\n')[0]! });
      }
    }
    throw new Error(`no TF.js backend could start: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
  })();
  return loaded;
}
