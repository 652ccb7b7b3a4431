// The operations HTTP listener: GET /metrics before and after analysing frames (the series change), /health/ready and /live.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, StreamRequest, type FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import {
  analyze,
  analyzeRequest,
  demoJpeg,
  encodedImage,
  faceAnalysisClient,
  runStream,
  startTestServer,
} from './helpers/server-fixture.js';
import { samples, sampleValue } from './helpers/prometheus.js';

let server: RunningServer;
let client: FaceAnalysisClient;

const get = async (path: string): Promise<{ status: number; type: string; body: string }> => {
  const res = await fetch(`http://${server.metricsAddress}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
};

const value = sampleValue;

beforeAll(async () => {
  server = await startTestServer({ tasks: ['emotion'], taskModels: { emotion: 'emotion' }, metricsAddress: '127.0.0.1:0' });
  client = faceAnalysisClient(server);
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

describe('ops HTTP listener', () => {
  it('answers /health/live and /health/ready (SERVING), 404 elsewhere', async () => {
    expect(server.metricsAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await get('/health/live')).toMatchObject({ status: 200 });
    const ready = await get('/health/ready');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'SERVING' });
    expect((await get('/nope')).status).toBe(404);
  });

  it('serves /metrics whose inference series change as frames are analysed', async () => {
    const before = await get('/metrics');
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const b = samples(before.body);
    expect(value(b, 'kt_model_state{model="emotion",version="1",state="loaded"}')).toBe(1);
    expect(value(b, 'kt_model_state{model="blazeface",version="1",state="loaded"}')).toBe(1);

    const request = analyzeRequest(encodedImage(demoJpeg(1)), [Task.TASK_EMOTION]);
    for (let i = 0; i < 3; i++) await analyze(client, request);
    // A burst into a one-frame latest-wins queue: frames are dropped and counted for this stream.
    const frames = Array.from({ length: 12 }, (_, i) =>
      StreamRequest.fromPartial({ request: { $case: 'frame', value: { sequence: i + 1, image: encodedImage(demoJpeg(1)) } } }),
    );
    const config = StreamRequest.fromPartial({
      request: {
        $case: 'config',
        value: {
          streamId: 'metrics-cam',
          queueDepth: 1,
          dropPolicy: DropPolicy.DROP_POLICY_LATEST_WINS,
          analysis: { tasks: [Task.TASK_EMOTION] },
        },
      },
    });
    const streamed = await runStream(client, [config, ...frames]);
    expect(streamed.error).toBeUndefined();
    const analysed = streamed.responses.filter((r) => r.result && !r.result.error).length;

    const after = await get('/metrics');
    const a = samples(after.body);
    const delta = (key: string): number => value(a, key) - value(b, key);
    expect(delta('kt_inference_request_success')).toBe(3 + analysed);
    expect(delta('kt_inference_count{model="emotion",version="1"}')).toBe(3 + analysed);
    expect(delta('kt_inference_count{model="blazeface",version="1"}')).toBe(3 + analysed);
    expect(delta('kt_inference_compute_duration_seconds_count{model="emotion"}')).toBe(3 + analysed);
    expect(delta('kt_inference_queue_duration_seconds_count{model="blazeface"}')).toBe(3 + analysed);
    expect(value(a, 'kt_inference_compute_duration_seconds_sum{model="blazeface"}')).toBeGreaterThan(0);
    expect(value(a, 'kt_stream_frames_dropped{stream="metrics-cam"}')).toBe(12 - analysed);
    expect(value(a, 'kt_frames_received')).toBe(12);
    expect(value(a, 'kt_streams_open')).toBe(0);
    // The stream tracked the faces of the demo photos; its tracks ended with it.
    expect(after.body).toMatch(/^kt_tracks_live 0$/m);
    expect(after.body).toMatch(/^# TYPE kt_inference_compute_duration_seconds histogram$/m);
    expect(after.body).toMatch(/^kt_process_resident_memory_bytes \d+/m);
    // The excerpt quoted in the closing note.
    console.log(
      after.body
        .split('\n')
        .filter((l) =>
          /^kt_(inference_(request|count)|stream_frames|model_state\{model="emotion".*loaded|inference_compute_duration_seconds_(sum|count))/.test(
            l,
          ),
        )
        .join('\n'),
    );
  });
});
