// `kt models quantize NAME`: writes the int8 version of a repository model (from its stored calibration, or
// re-calibrated and measured on the shared face data with --data) and prints what changed.
import { parse } from '../../core/cli-args.js';
import { InvalidInputError } from '../../core/errors.js';
import type { PrecisionSpec } from '../manifest.js';
import type { QuantizableOp } from './qdq-graph.js';

export const quantizeHelp = `kt models quantize NAME [options]
  Writes a new version of model NAME with static QDQ int8 quantization: per-channel symmetric int8 weights and
  uint8 activations for Conv and residual Add (fused by ONNX Runtime into QLinearConv / QLinearAdd), Conv+Mul/Add
  folded first, ReLU/ReLU6 after quantized ops replaced by the activation range. The fp32 version stays; servers use
  the int8 one only where the config / device profile says so (modelPrecision).

  Without --data: rebuilds the int8 graph from the stored activation ranges (src/models/quantize/calibration/NAME.json).
  With --data:    re-calibrates on face crops of the shared data (made like the server makes them), stores the ranges,
                  then measures speed (batch 1 and 4) and the accuracy change on every task the model answers
                  (paired, same faces, 95 % bootstrap CI) and writes them into the manifest and the calibration file.

  --precision P          int8 (default) | fp16 (float16 graph for the CUDA / TensorRT profiles; no calibration)
  --data DIR             shared data root (age-utkface, emotion-fer2013, landmarks-wflw, identity-orl)
  --limit N              at most N faces per dataset for the accuracy change (default: all)
  --faces N              calibration faces per dataset (default 64)
  --ranges M             percentile (default: 99.99 % of values) | minmax
  --ops a,b              quantized op types (default Conv,Add; also Gemm, MatMul)
  --keep-float t1,t2     keep the nodes producing these tensors in float (sensitive layers)
  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --help                 print this help
`;

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInputError(`${flag} expects a positive integer, got "${value}"`);
  return n;
}

const knownOps: readonly QuantizableOp[] = ['Conv', 'Add', 'Gemm', 'MatMul'];

function parseOps(value: string | undefined): QuantizableOp[] | undefined {
  if (value === undefined) return undefined;
  const ops = value.split(',').map((s) => s.trim());
  const bad = ops.filter((o) => !(knownOps as readonly string[]).includes(o));
  if (bad.length) throw new InvalidInputError(`--ops: unknown op ${bad.join(', ')} (known: ${knownOps.join(', ')})`);
  return ops as QuantizableOp[];
}

/** One line per measured figure of a PrecisionSpec. */
export function precisionLines(name: string, version: number, p: PrecisionSpec): string[] {
  const lines = [`${name} v${version}: ${p.type} from v${p.fromVersion}; ${p.method}`];
  for (const s of p.speed ?? [])
    lines.push(
      `  batch ${s.batch}: ${s.sourceMsPerFace.toFixed(2)} -> ${s.msPerFace.toFixed(2)} ms/face (x${(s.sourceMsPerFace / s.msPerFace).toFixed(2)})`,
    );
  for (const a of p.accuracy ?? []) {
    const ci = a.ci95 ? ` [${a.ci95[0].toFixed(2)}, ${a.ci95[1].toFixed(2)}]` : '';
    const tol = a.tolerance !== undefined ? `; tolerance ${a.tolerance}: ${a.withinTolerance ? 'within' : 'OUTSIDE'}` : '';
    lines.push(
      `  ${a.task} ${a.dataset} ${a.metric}: ${a.source.toFixed(2)} -> ${a.value.toFixed(2)} ${a.unit ?? ''} change ${a.change >= 0 ? '+' : ''}${a.change.toFixed(2)}${ci} (n ${a.n})${tol}`,
    );
  }
  return lines;
}

export async function runModelsQuantize(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      data: { type: 'string' },
      limit: { type: 'string' },
      faces: { type: 'string' },
      ranges: { type: 'string' },
      ops: { type: 'string' },
      precision: { type: 'string', default: 'int8' },
      'keep-float': { type: 'string' },
      repo: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(quantizeHelp);
    return 0;
  }
  if (positionals.length !== 1)
    throw new InvalidInputError('kt models quantize needs exactly one model name, e.g. `kt models quantize faceres`');
  if (values.ranges !== undefined && values.ranges !== 'percentile' && values.ranges !== 'minmax')
    throw new InvalidInputError(`--ranges expects percentile or minmax, got "${values.ranges}"`);
  if (values.precision !== 'int8' && values.precision !== 'fp16')
    throw new InvalidInputError(`--precision expects int8 or fp16, got "${values.precision}"`);
  if (values.precision === 'fp16') return writeFp16Version(values.repo, positionals[0]!);
  if (!values.data && (values.limit || values.faces || values.ranges || values.ops || values['keep-float']))
    throw new InvalidInputError(
      '--limit, --faces, --ranges, --ops and --keep-float need --data (without it the stored calibration is used as it is)',
    );
  const { defaultRepositoryPath } = await import('../repository.js');
  const { quantizeModel } = await import('./quantize-model.js');
  const limit = positive(values.limit, '--limit');
  const faces = positive(values.faces, '--faces');
  const ops = parseOps(values.ops);
  const entry = await quantizeModel({
    repo: values.repo ?? defaultRepositoryPath(),
    name: positionals[0]!,
    ...(values.data ? { data: values.data } : {}),
    ...(limit ? { limit } : {}),
    ...(faces ? { facesPerDataset: faces } : {}),
    ...(values.ranges ? { rangeMethod: values.ranges } : {}),
    ...(ops ? { ops } : {}),
    ...(values['keep-float'] ? { keepFloat: values['keep-float'].split(',').map((t) => t.trim()) } : {}),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(
    `wrote ${entry.dir}\n${precisionLines(entry.manifest.name, entry.manifest.version, entry.manifest.precision!).join('\n')}\n`,
  );
  return 0;
}

async function writeFp16Version(repo: string | undefined, name: string): Promise<number> {
  const { defaultRepositoryPath } = await import('../repository.js');
  const { writeFp16 } = await import('./quantize-model.js');
  const { entry } = await writeFp16(repo ?? defaultRepositoryPath(), name);
  process.stdout.write(
    `wrote ${entry.dir}\n${precisionLines(entry.manifest.name, entry.manifest.version, entry.manifest.precision!).join('\n')}\n`,
  );
  return 0;
}
