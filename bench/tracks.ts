// `npm run bench:tracks`: analysis reuse within face tracks, one run, same frames for every mode.
// 1. Persisting faces (real demo-photo faces moving slowly on a canvas): task-model runs per frame and frames/s with
//    tracking off, tracking without reuse, and tracking with reuse, over a real gRPC stream to an in-process server.
// 2. A labelled sequence (UTKFace faces with their ages, FER2013 faces with their expressions, pasted onto a moving
//    canvas, each frame jittered in size and brightness like a camera): per-track age MAE and emotion accuracy against
//    the per-frame answers of the same frames.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, resizeRgb, type RgbImage } from '../src/core/image.js';
import { silentLogger } from '../src/core/log-types.js';
import { writeBarChart, type BarPanel } from './chart.js';
import { meanWithCi } from '../src/models/eval/bootstrap.js';
import { Task } from '../src/gen/kt/v1/common.js';
import {
  DropPolicy,
  FacesTopicMode,
  TrackingMode,
  type FaceAnalysisClient,
  type StreamRequest,
  type StreamResponse,
  type TrackingConfig,
} from '../src/gen/kt/v1/face_analysis.js';
import { taskOfEnum } from '../src/contract/tasks.js';
import type { RunningServer } from '../src/server/server.js';
import { faceAnalysisClient, runStream, startTestServer } from '../test/helpers/server-fixture.js';
import {
  demoFaceImage,
  personAt,
  rawImage,
  renderSequence,
  type SequenceFrame,
  type SequencePerson,
} from '../test/helpers/track-sequence.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '40' },
    data: { type: 'string', default: resolve('..', 'shared', 'data') },
    people: { type: 'string', default: '24' },
    rounds: { type: 'string', default: '3' },
    'emotion-every': { type: 'string', default: '1' },
    out: { type: 'string', default: 'out/bench' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench:tracks -- [--frames 40 per sequence] [--people 24 labelled per task] [--rounds 3] [--emotion-every 1] [--data ../shared/data] [--out out/bench]\n',
  );
  process.exit(0);
}
const frameCount = Number(values.frames);

type Mode = 'tracking off' | 'tracks, no reuse' | 'tracks + reuse' | 'reuse + detect/3';
const modes: Mode[] = ['tracking off', 'tracks, no reuse', 'tracks + reuse', 'reuse + detect/3'];
const reuseModes: ReadonlySet<Mode> = new Set(['tracks + reuse', 'reuse + detect/3']);

function trackingOf(mode: Mode): TrackingConfig {
  return {
    mode: mode === 'tracking off' ? TrackingMode.TRACKING_MODE_OFF : TrackingMode.TRACKING_MODE_ON,
    maxAgeFrames: 10,
    minHits: 2,
    reuse: reuseModes.has(mode)
      ? {
          enabled: true,
          refreshAfterMs: 2000,
          betterFaceRatio: 1.25,
          minObservations: 3,
          emotionEveryFrames: Number(values['emotion-every']),
          // DeepStream's detector interval: the detector runs on every third frame, the Kalman filter predicts between.
          detectEveryFrames: mode === 'reuse + detect/3' ? 3 : 1,
        }
      : undefined,
    facesTopic: FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED,
  };
}

function messages(stream: string, frames: readonly SequenceFrame[], tasks: Task[], tracking: TrackingConfig): StreamRequest[] {
  const analysis = { tasks, modelOverrides: [], minFaceSizePx: 0, maxFaces: 0, minScore: 0, identityThreshold: 0 };
  return [
    {
      request: {
        $case: 'config',
        value: { streamId: stream, analysis, dropPolicy: DropPolicy.DROP_POLICY_BLOCK, queueDepth: 2, tracking },
      },
    },
    ...frames.map((f, i): StreamRequest => ({
      // 10 fps capture times: reuse's refresh-after-time runs on the camera's clock.
      request: { $case: 'frame', value: { image: rawImage(f.image), sequence: i + 1, captureTimeUnixMs: 1_700_000_000_000 + i * 100 } },
    })),
  ];
}

/** Face-model runs of a response: per face, the models whose answers are fresh (age 0; every answer without tracking). */
function modelRuns(r: StreamResponse, tasks: readonly Task[], modelOf: (t: Task) => string): number {
  let runs = 0;
  for (const f of r.result?.faces ?? []) {
    const fresh = f.answerAges.length > 0 ? f.answerAges.filter((a) => a.frames === 0).map((a) => a.task) : tasks;
    runs += new Set(fresh.map(modelOf)).size;
  }
  return runs;
}

interface Row {
  mode: Mode;
  tasks: string;
  frames: number;
  faces: number;
  runsPerFrame: number;
  fps: number;
  /** Process CPU time (all threads: gRPC, ONNX Runtime) per frame: less sensitive to neighbours on a shared machine. */
  cpuMsPerFrame: number;
}

async function persistingFaces(client: FaceAnalysisClient, server: RunningServer): Promise<Row[]> {
  const faces = await Promise.all([demoFaceImage(1, 0, 128), demoFaceImage(3, 0, 128), demoFaceImage(6, 0, 128)]);
  const people: SequencePerson[] = faces.map((face, i) => ({
    name: `p${i}`,
    face,
    enter: 0,
    leave: frameCount,
    from: { x: 20 + i * 200, y: 60 + (i % 2) * 150 },
    velocity: { x: 1.5, y: i % 2 ? -1 : 1 },
  }));
  const frames = renderSequence(people, frameCount, 640, 480);
  const modelOf = (t: Task): string => server.config.taskModels[taskOfEnum(t)!];
  const rows: Row[] = [];
  const taskSets: [string, Task[]][] = [
    ['age, gender, emotion', [Task.TASK_AGE, Task.TASK_GENDER, Task.TASK_EMOTION]],
    ['age, gender, emotion, landmarks', [Task.TASK_AGE, Task.TASK_GENDER, Task.TASK_EMOTION, Task.TASK_LANDMARKS]],
  ];
  // Warm-up: every model once, outside the timing.
  await runStream(client, messages('warm', frames.slice(0, 2), taskSets[1]![1], trackingOf('tracking off')));
  // Rounds in alternating order; each mode reports its median round (the CPU is shared: one slow round measures the
  // neighbours as much as the mode).
  const rounds = Number(values.rounds);
  const fpsOf = new Map<string, number[]>();
  const cpuOf = new Map<string, number[]>();
  for (const [label, tasks] of taskSets) {
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
        process.stderr.write(`persisting faces: ${label}, ${mode}, round ${round + 1}/${rounds} (${frameCount} frames)...\n`);
        const start = performance.now();
        const cpuStart = process.cpuUsage();
        const { responses, error } = await runStream(
          client,
          messages(`persist-${label.length}-${mode.length}-${round}`, frames, tasks, trackingOf(mode)),
        );
        const seconds = (performance.now() - start) / 1000;
        const cpu = process.cpuUsage(cpuStart);
        if (error) throw error;
        const analysed = responses.filter((r) => r.result);
        const runs = analysed.reduce((n, r) => n + modelRuns(r, tasks, modelOf), 0);
        const faceCount = analysed.reduce((n, r) => n + r.result!.faces.length, 0);
        const row = {
          mode,
          tasks: label,
          frames: analysed.length,
          faces: faceCount,
          runsPerFrame: runs / analysed.length,
          fps: analysed.length / seconds,
          cpuMsPerFrame: (cpu.user + cpu.system) / 1000 / analysed.length,
        };
        const key = `${label}/${mode}`;
        fpsOf.set(key, [...(fpsOf.get(key) ?? []), row.fps]);
        cpuOf.set(key, [...(cpuOf.get(key) ?? []), row.cpuMsPerFrame]);
        if (round === 0) rows.push(row);
      }
    }
  }
  for (const row of rows) {
    const all = fpsOf.get(`${row.tasks}/${row.mode}`)!.sort((a, b) => a - b);
    row.fps = all[Math.floor(all.length / 2)]!;
    const cpu = cpuOf.get(`${row.tasks}/${row.mode}`)!.sort((a, b) => a - b);
    row.cpuMsPerFrame = cpu[Math.floor(cpu.length / 2)]!;
  }
  return rows;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

interface LabelledFace {
  face: RgbImage;
  age?: number;
  emotion?: string;
}

async function labelledFaces(dir: string, count: number): Promise<LabelledFace[]> {
  const pick = <T>(rows: T[], seed: number): T[] => {
    const random = rng(seed);
    return [...rows].sort(() => random() - 0.5).slice(0, count);
  };
  const csv = (file: string): string[][] =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
  const utk = pick(
    csv(join(dir, 'age-utkface', 'labels.csv')).filter((r) => Number(r[1]) >= 10 && Number(r[1]) <= 70),
    7,
  );
  const fer = pick(csv(join(dir, 'emotion-fer2013', 'labels.csv')), 11);
  const load = async (file: string): Promise<RgbImage> => {
    const image = await decodeImage(readFileSync(file));
    // A margin of background around the crop, so that the detector sees a whole face.
    return resizeRgb(image, 128, 128);
  };
  return [
    ...(await Promise.all(utk.map(async (r) => ({ face: await load(join(dir, 'age-utkface', r[0]!)), age: Number(r[1]) })))),
    ...(await Promise.all(fer.map(async (r) => ({ face: await load(join(dir, 'emotion-fer2013', r[0]!)), emotion: r[1]! })))),
  ];
}

/** Per-frame camera jitter: brightness and contrast change a little every frame. */
function jitterFrame(frame: SequenceFrame, random: () => number): SequenceFrame {
  const gain = 0.8 + 0.4 * random();
  const offset = (random() - 0.5) * 30;
  const data = frame.image.data.map((v) => Math.max(0, Math.min(255, v * gain + offset + (random() - 0.5) * 16)));
  return { ...frame, image: { ...frame.image, data } };
}

/** Per answer source, per (person, frame): the age error (years) and whether the emotion was right. */
type Samples = Map<string, { ageError?: number; emotionHit?: number }>;
type AnswerSource = 'per frame' | 'per track' | 'per track, reuse' | 'per track, reuse + detect/3';
const answerSources: AnswerSource[] = ['per frame', 'per track', 'per track, reuse', 'per track, reuse + detect/3'];

/** Scores one stream's answers (the face's own, or its track's) into `target`, keyed by person and frame. */
function scoreAnswers(
  responses: readonly StreamResponse[],
  frames: readonly SequenceFrame[],
  people: readonly LabelledFace[],
  fromTrack: boolean,
  target: Samples,
): void {
  for (const r of responses) {
    if (!r.result) continue;
    const frame = frames[r.result.sequence - 1]!;
    for (const f of r.result.faces) {
      const who = personAt(frame, { x: f.box!.xPx, y: f.box!.yPx, width: f.box!.widthPx, height: f.box!.heightPx });
      if (who === undefined) continue;
      const label = people[Number(who)]!;
      const age = fromTrack ? f.track?.ageYears : f.age?.years;
      const emotion = fromTrack ? f.track?.emotion?.label : f.emotion?.label;
      const sample = {
        ...(label.age !== undefined && age ? { ageError: Math.abs(age - label.age) } : {}),
        ...(label.emotion !== undefined && emotion ? { emotionHit: emotion === label.emotion ? 1 : 0 } : {}),
      };
      target.set(`${who}/${r.result.sequence}`, sample);
    }
  }
}

async function labelledSequence(client: FaceAnalysisClient, dir: string): Promise<Map<AnswerSource, Samples>> {
  const people = await labelledFaces(dir, Number(values.people));
  const samples = new Map<AnswerSource, Samples>(answerSources.map((s) => [s, new Map()]));
  const tasks = [Task.TASK_AGE, Task.TASK_EMOTION];
  const random = rng(3);
  // Four people per sequence, in a 2 x 2 grid, drifting.
  for (let start = 0; start < people.length; start += 4) {
    const group = people.slice(start, start + 4);
    const seq: SequencePerson[] = group.map((p, i) => ({
      name: String(start + i),
      face: p.face,
      enter: 0,
      leave: frameCount,
      from: { x: 40 + (i % 2) * 300, y: 40 + Math.floor(i / 2) * 220 },
      velocity: { x: 1 + random(), y: random() - 0.5 },
    }));
    const frames = renderSequence(seq, frameCount, 640, 480).map((f) => jitterFrame(f, random));
    process.stderr.write(`labelled sequence ${start / 4 + 1}/${Math.ceil(people.length / 4)} (${frameCount} frames x 3 modes)...\n`);
    const run = (mode: Mode) => runStream(client, messages(`labelled-${mode.length}-${start}`, frames, tasks, trackingOf(mode)));
    const plain = await run('tracks, no reuse');
    const reused = await run('tracks + reuse');
    const interval = await run('reuse + detect/3');
    scoreAnswers(plain.responses, frames, people, false, samples.get('per frame')!);
    scoreAnswers(plain.responses, frames, people, true, samples.get('per track')!);
    scoreAnswers(reused.responses, frames, people, true, samples.get('per track, reuse')!);
    scoreAnswers(interval.responses, frames, people, true, samples.get('per track, reuse + detect/3')!);
  }
  return samples;
}

/** Mean of a metric with a person-bootstrap 95 % interval, and its paired difference to `base` on common (person, frame). */
function compare(
  samples: Samples,
  base: Samples,
  metric: 'ageError' | 'emotionHit',
): { value: number; n: number; diff: number; ci: [number, number] } {
  const values: number[] = [];
  const diffs: number[] = [];
  const people: string[] = [];
  for (const [key, s] of samples) {
    const v = s[metric];
    if (v === undefined) continue;
    values.push(v);
    const b = base.get(key)?.[metric];
    if (b === undefined) continue;
    diffs.push(v - b);
    people.push(key.split('/')[0]!);
  }
  const { value: diff, ci95 } = meanWithCi(diffs, people, { resamples: 2000, seed: 1 });
  return { value: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length), n: values.length, diff, ci: ci95 };
}

const pad = (s: string | number, n: number): string => String(s).padEnd(n);

async function main(): Promise<void> {
  mkdirSync(values.out, { recursive: true });
  const server = await startTestServer({ tasks: ['age', 'gender', 'emotion', 'landmarks'] }, { logger: silentLogger });
  const client = faceAnalysisClient(server);
  try {
    const rows = await persistingFaces(client, server);
    console.log(
      `\nPersisting faces: 3 real faces on a 640x480 canvas, ${frameCount} frames, one stream per mode and round (BLOCK, in-process server; median of ${values.rounds} rounds)`,
    );
    console.log(
      `${pad('tasks', 34)}${pad('mode', 20)}${pad('faces/frame', 13)}${pad('model runs/frame', 18)}${pad('frames/s', 10)}${pad('x vs off', 10)}${pad('CPU ms/frame', 14)}x vs off (CPU)`,
    );
    for (const row of rows) {
      const off = rows.find((r) => r.tasks === row.tasks && r.mode === 'tracking off')!;
      console.log(
        `${pad(row.tasks, 34)}${pad(row.mode, 20)}${pad((row.faces / row.frames).toFixed(2), 13)}${pad(row.runsPerFrame.toFixed(2), 18)}${pad(row.fps.toFixed(2), 10)}${pad((row.fps / off.fps).toFixed(2), 10)}${pad(row.cpuMsPerFrame.toFixed(1), 14)}${(off.cpuMsPerFrame / row.cpuMsPerFrame).toFixed(2)}`,
      );
    }
    const taskLabels = [...new Set(rows.map((r) => r.tasks))];
    const panel = (title: string, unit: string, pick: (r: Row) => number): BarPanel => ({
      title,
      unit,
      // Short names: the chart's legend runs along one line.
      series: ['off', 'tracks', 'tracks+reuse', 'reuse+detect/3'],
      rows: taskLabels.map((label) => ({ label, values: modes.map((m) => pick(rows.find((r) => r.tasks === label && r.mode === m)!)) })),
    });
    const panels = [
      panel('frames/s (median round)', 'frames/s', (r) => r.fps),
      panel('CPU ms per frame (median round)', 'ms', (r) => r.cpuMsPerFrame),
      panel('task-model runs per frame', 'runs', (r) => r.runsPerFrame),
    ];
    if (!existsSync(join(values.data, 'age-utkface'))) {
      await writeBarChart(join(values.out, 'tracks.png'), 'Analysis reuse in face tracks (3 persisting faces)', panels);
      console.log(`\n${values.data} has no age-utkface/emotion-fer2013: the labelled part is skipped (pass --data).`);
      return;
    }
    const samples = await labelledSequence(client, values.data);
    const base = samples.get('per frame')!;
    console.log(`\nLabelled sequence: ${values.people} UTKFace + ${values.people} FER2013 faces, ${frameCount} jittered frames each`);
    console.log('paired differences to the per-frame answers on the same (person, frame), 95 % interval by person bootstrap');
    console.log(
      `${pad('answers', 30)}${pad('age MAE (years)', 17)}${pad('n', 6)}${pad('vs per frame', 24)}${pad('emotion acc.', 14)}${pad('n', 6)}vs per frame`,
    );
    const fmt = (c: { diff: number; ci: [number, number] }, digits: number): string =>
      `${c.diff >= 0 ? '+' : ''}${c.diff.toFixed(digits)} [${c.ci[0].toFixed(digits)}, ${c.ci[1].toFixed(digits)}]`;
    const table = answerSources.map((source) => {
      const s = samples.get(source)!;
      const age = compare(s, base, 'ageError');
      const emotion = compare(s, base, 'emotionHit');
      console.log(
        `${pad(source, 30)}${pad(age.value.toFixed(2), 17)}${pad(age.n, 6)}${pad(source === 'per frame' ? '' : fmt(age, 2), 24)}${pad(emotion.value.toFixed(3), 14)}${pad(emotion.n, 6)}${source === 'per frame' ? '' : fmt(emotion, 3)}`,
      );
      return { age, emotion };
    });
    const answerSeries = ['frame', 'track', 'track+reuse', 'reuse+detect/3'];
    panels.push(
      {
        title: 'age MAE, labelled UTKFace faces',
        unit: 'years',
        series: answerSeries,
        rows: [{ label: 'age', values: table.map((t) => t.age.value) }],
      },
      {
        title: 'emotion accuracy, labelled FER2013 faces',
        unit: '%',
        series: answerSeries,
        rows: [{ label: 'emotion', values: table.map((t) => 100 * t.emotion.value) }],
      },
    );
    const png = join(values.out, 'tracks.png');
    await writeBarChart(png, 'Analysis reuse in face tracks', panels);
    console.log(`chart: ${png}`);
  } finally {
    client.close();
    await server.close();
  }
}

await main();
