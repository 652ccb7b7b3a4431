// Acceptance of `kt gateway` (issue 8): the issue's YAML as written (server port made free) with a folder camera and a
// real RTSP camera (rtsp-server-perl fed a moving face video by ffmpeg); faces events of both reach the real Mosquitto;
// the RTSP server killed: that camera goes offline while the folder camera keeps flowing; restarted: it comes back.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../src/core/log-types.js';
import { loadGatewayConfig } from '../src/gateway/config.js';
import { Gateway } from '../src/gateway/gateway.js';
import type { RunningServer } from '../src/server/server.js';
import { demoPhotoPath } from './helpers/faces.js';
import { json, recordTopic, type ReceivedMessage, type TopicRecorder } from './helpers/mqtt.js';
import { startRtspCamera, type RtspCamera } from './helpers/rtsp.js';
import { startTestServer } from './helpers/server-fixture.js';

const broker = 'mqtt://127.0.0.1:1883';

/** The issue's file, word for word but for the two ports a test must choose. */
function issueYaml(serverAddress: string, rtspUrl: string): string {
  return `server: ${serverAddress}
cameras:
  - id: door
    source: { type: folder, path: ./frames, fps: 2 }
    tasks: [age, gender, emotion]
  - id: lobby
    source: { type: rtsp, url: ${rtspUrl}, fps: 5 }
    tasks: [age, emotion, identity]
sinks:
  - { type: mqtt, url: mqtt://127.0.0.1:1883 }
`;
}

describe('kt gateway with the issue config: folder + RTSP cameras to MQTT', () => {
  let server: RunningServer;
  let camera: RtspCamera;
  let gateway: Gateway | undefined;
  let recorder: TopicRecorder;
  let dir: string;
  const startedMs = Date.now();

  beforeAll(async () => {
    server = await startTestServer({ tasks: ['age', 'gender', 'emotion', 'identity'] });
    camera = await startRtspCamera('lobby');
    dir = await mkdtemp(join(tmpdir(), 'kt-gateway-'));
    await mkdir(join(dir, 'frames'));
    await copyFile(demoPhotoPath(2), join(dir, 'frames', '001.jpg'));
    await copyFile(demoPhotoPath(3), join(dir, 'frames', '002.jpg'));
    await writeFile(join(dir, 'gateway.yaml'), issueYaml(server.address, camera.url));
    recorder = await recordTopic(broker, 'kt-gateway/+/+/faces');
  });

  afterAll(async () => {
    await gateway?.stop();
    await recorder?.end();
    await camera?.stop();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const eventsOf = (messages: ReceivedMessage[], stream: string): { stream: string; faces: unknown[]; captureTimeMs: number }[] =>
    messages
      .filter((m) => m.topic.endsWith(`/${stream}/faces`))
      .map((m) => json<{ stream: string; faces: unknown[]; captureTimeMs: number }>(m))
      .filter((e) => e.captureTimeMs >= startedMs);

  it('publishes faces events of both cameras, survives the RTSP server going away and picks the camera up again', async () => {
    const config = await loadGatewayConfig(join(dir, 'gateway.yaml'));
    expect(config.cameras.map((c) => [c.id, c.source.type])).toEqual([
      ['door', 'folder'],
      ['lobby', 'rtsp'],
    ]);
    gateway = await Gateway.start(config, { log: silentLogger });
    const gw = gateway;
    const cameraState = (id: string): string | undefined => gw.status().cameras.find((c) => c.id === id)?.state;

    const both = await recorder.waitFor(
      (m) => eventsOf(m, 'door').length >= 1 && eventsOf(m, 'lobby').length >= 3,
      'faces events from door and lobby',
      60_000,
    );
    for (const stream of ['door', 'lobby']) {
      const events = eventsOf(both, stream);
      expect(events.every((e) => e.stream === stream && e.faces.length > 0)).toBe(true);
    }
    // A moving picture: the lobby's faces are not at one place in every event.
    const boxes = new Set(eventsOf(both, 'lobby').map((e) => JSON.stringify((e.faces[0] as { box: unknown }).box)));
    expect(boxes.size).toBeGreaterThan(1);
    expect(cameraState('lobby')).toBe('online');

    await camera.kill();
    await vi.waitFor(() => expect(cameraState('lobby')).toBe('offline'), { timeout: 30_000, interval: 200 });
    const lobby = gw.status().cameras.find((c) => c.id === 'lobby')!;
    expect(lobby.reason).toContain(camera.url);
    expect(cameraState('door')).toBe('online');

    // The folder camera keeps flowing while the lobby is away: a new file is picked up and analysed.
    const doorBefore = eventsOf(recorder.messages, 'door').length;
    await copyFile(demoPhotoPath(4), join(dir, 'frames', '003.jpg'));
    await recorder.waitFor((m) => eventsOf(m, 'door').length > doorBefore, 'a door event while the lobby is offline', 30_000);
    expect(cameraState('lobby')).toBe('offline');

    const lobbyBefore = eventsOf(recorder.messages, 'lobby').length;
    await camera.restart();
    await vi.waitFor(() => expect(cameraState('lobby')).toBe('online'), { timeout: 45_000, interval: 200 });
    await recorder.waitFor((m) => eventsOf(m, 'lobby').length > lobbyBefore, 'lobby events after the restart', 30_000);
    const status = gw.status();
    expect(status.cameras.find((c) => c.id === 'lobby')!.counters.resultsWithFaces).toBeGreaterThan(3);
    expect(status.sinks[0]!.failures).toBe(0);
  });
});
