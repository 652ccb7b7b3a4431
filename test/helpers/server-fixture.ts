// In-process server fixtures for the gRPC tests: start on 127.0.0.1:0, generated clients, promise wrappers, demo frames.
import { readFileSync } from 'node:fs';
import { credentials, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { Image, Task } from '../../src/gen/kt/v1/common.js';
import {
  AnalyzeRequest,
  FaceAnalysisClient,
  type AnalyzeResponse,
  type AnalysisOptions,
  type StreamRequest,
  type StreamResponse,
} from '../../src/gen/kt/v1/face_analysis.js';
import { startServer, type RunningServer, type StartServerOptions } from '../../src/server/server.js';
import type { ServerConfigOverlay } from '../../src/server/config.js';
import { probeMqttBroker } from '../../src/server/mqtt/embedded-broker.js';
import { demoPhotoPath } from './faces.js';
import { recordTopic, type TopicRecorder } from './mqtt.js';

/** A quiet test server: loopback, free port, no MQTT unless asked, throw-away gallery, given tasks warmed. */
/** A server on a free loopback port with no MQTT, an in-memory gallery and no repository watching. */
export function startTestServer(overrides: ServerConfigOverlay = {}, options: StartServerOptions = {}): Promise<RunningServer> {
  return startServer(
    {
      listenAddress: '127.0.0.1:0',
      mqttEnabled: false,
      galleryPath: ':memory:',
      repositoryRescanMs: 0,
      watchRepository: false,
      ...overrides,
    },
    options,
  );
}

export function demoJpeg(n: number): Buffer {
  return readFileSync(demoPhotoPath(n));
}

export function encodedImage(data: Uint8Array): Image {
  return Image.fromPartial({ source: { $case: 'encoded', value: { data: Buffer.from(data) } } });
}

export const faceTasks = [Task.TASK_AGE, Task.TASK_GENDER, Task.TASK_EMOTION, Task.TASK_LANDMARKS];

export function analyzeRequest(
  image: Image,
  tasks: Task[] = faceTasks,
  sequence = 1,
  analysis: Partial<AnalysisOptions> = {},
): AnalyzeRequest {
  return AnalyzeRequest.fromPartial({ frame: { image, sequence }, analysis: { tasks, ...analysis } });
}

export function analyze(client: FaceAnalysisClient, request: AnalyzeRequest): Promise<AnalyzeResponse> {
  return new Promise((resolve, reject) => client.analyze(request, (e, r) => (e ? reject(e) : resolve(r))));
}

/** The error of a call expected to fail. */
export async function analyzeError(client: FaceAnalysisClient, request: AnalyzeRequest): Promise<ServiceError> {
  try {
    await analyze(client, request);
  } catch (e) {
    return e as ServiceError;
  }
  throw new Error('expected the call to fail');
}

export function faceAnalysisClient(server: RunningServer): FaceAnalysisClient {
  return new FaceAnalysisClient(server.address, credentials.createInsecure());
}

/** Writes the messages, half-closes and collects every response and the final status. */
export function runStream(
  client: FaceAnalysisClient,
  messages: StreamRequest[],
  writeDelayMs = 0,
): Promise<{ responses: StreamResponse[]; error: ServiceError | undefined }> {
  return new Promise((resolve) => {
    const call: ClientDuplexStream<StreamRequest, StreamResponse> = client.streamAnalyze();
    const responses: StreamResponse[] = [];
    let error: ServiceError | undefined;
    call.on('data', (r: StreamResponse) => responses.push(r));
    call.on('error', (e: ServiceError) => (error = e));
    call.on('status', () => setImmediate(() => resolve({ responses, error })));
    void (async () => {
      for (const m of messages) {
        call.write(m);
        if (writeDelayMs > 0) await new Promise((r) => setTimeout(r, writeDelayMs));
      }
      call.end();
    })();
  });
}

export const mosquittoUrl = 'mqtt://127.0.0.1:1883';

/**
 * A test server publishing to the machine's Mosquitto (checked first) under `topicPrefix`/`nodeId`, a client for it,
 * and a recorder of every stream's track events.
 */
export async function startMosquittoEventServer(
  tasks: NonNullable<ServerConfigOverlay['tasks']>,
  topicPrefix: string,
  nodeId: string,
): Promise<{ server: RunningServer; client: FaceAnalysisClient; recorder: TopicRecorder }> {
  if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) throw new Error(`Mosquitto is not answering MQTT on ${mosquittoUrl}`);
  const server = await startTestServer({
    tasks,
    mqttEnabled: true,
    mqttUrl: mosquittoUrl,
    mqttTopicPrefix: topicPrefix,
    mqttNodeId: nodeId,
    statsIntervalMs: 0,
  });
  const client = faceAnalysisClient(server);
  const recorder = await recordTopic(mosquittoUrl, `${topicPrefix}/${nodeId}/+/events`);
  return { server, client, recorder };
}
