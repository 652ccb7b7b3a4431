// A real RTSP camera for tests: Debian's rtsp-server-perl on loopback (publishers on one port, clients on another) fed
// by ffmpeg with a MOVING video made from a face photo (a crop window panning and zooming over it), restartable.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { demoPhotoPath } from './faces.js';
import { freePort } from './net.js';

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portAnswers(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The ffmpeg filter that turns a still photo into a moving picture: a 75 % crop window circling over it (the crop size is fixed at configuration time, so the motion is a pan). */
export const panFilter = "crop=w=iw*0.75:h=ih*0.75:x='(iw-ow)*(0.5+0.5*sin(t*1.3))':y='(ih-oh)*(0.5+0.5*cos(t*1.1))',scale=640:-2";

/**
 * Writes a short H.264 video (10 fps) of a still photo: panned with `panFilter` (a moving picture) or still at 640 px.
 * `preset` trades encode time for size (ultrafast for tests).
 */
export function makePhotoVideo(
  photo: string,
  out: string,
  options: { moving: boolean; seconds: number; preset?: 'ultrafast' | 'veryfast' },
): void {
  execFileSync('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-loop',
    '1',
    '-framerate',
    '10',
    '-t',
    String(options.seconds),
    '-i',
    photo,
    '-vf',
    options.moving ? panFilter : 'scale=640:-2',
    '-c:v',
    'libx264',
    '-preset',
    options.preset ?? 'ultrafast',
    '-pix_fmt',
    'yuv420p',
    '-y',
    out,
  ]);
}

export interface RtspCamera {
  /** What a client (the gateway) opens: rtsp://127.0.0.1:<clientPort>/<path>. */
  url: string;
  /** Kills the publisher and the server (the camera disappears). */
  kill(): Promise<void>;
  /** Starts the server and the publisher again on the same ports. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Last lines of the publisher's stderr (for failure messages). */
  publisherLog(): string;
}

/**
 * Starts rtsp-server-perl on two free loopback ports and an ffmpeg publisher sending `photo` (a demo photo number)
 * panned at `fps`, H.264, endless. Resolves once the stream is published.
 */
export async function startRtspCamera(path = 'lobby', photo = 1, fps = 10): Promise<RtspCamera> {
  const clientPort = await freePort();
  const serverPort = await freePort();
  let server: ChildProcess | undefined;
  let publisher: ChildProcess | undefined;
  let publisherText = '';
  const start = async (): Promise<void> => {
    server = spawn(
      'rtsp-server-perl',
      [
        '--clientport',
        String(clientPort),
        '--serverport',
        String(serverPort),
        '--client_listen_address',
        '127.0.0.1',
        '--source_listen_address',
        '127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitForPort(serverPort, 10_000, 'rtsp-server-perl');
      await waitForPort(clientPort, 10_000, 'rtsp-server-perl (clients)');
    } catch (e) {
      await stopChild(server);
      throw e;
    }
    publisher = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-nostats',
        '-loglevel',
        'warning',
        '-re',
        '-loop',
        '1',
        '-framerate',
        String(fps),
        '-i',
        demoPhotoPath(photo),
        '-vf',
        panFilter,
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-tune',
        'zerolatency',
        '-g',
        String(fps),
        '-pix_fmt',
        'yuv420p',
        '-f',
        'rtsp',
        `rtsp://127.0.0.1:${serverPort}/${path}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    publisher.stderr!.on('data', (d: Buffer) => (publisherText = (publisherText + d.toString()).slice(-4000)));
    // The publisher has announced the stream once it has sent a second of frames.
    await new Promise((r) => setTimeout(r, 1500));
    if (publisher.exitCode !== null) {
      await stopChild(server); // no orphaned server when the publisher cannot start
      throw new Error(`the RTSP publisher exited: ${publisherText}`);
    }
  };
  const kill = async (): Promise<void> => {
    await stopChild(publisher);
    await stopChild(server);
  };
  await start();
  return {
    url: `rtsp://127.0.0.1:${clientPort}/${path}`,
    kill,
    restart: start,
    stop: kill,
    publisherLog: () => publisherText,
  };
}
