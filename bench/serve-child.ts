// A `kt serve` child process for benches that measure the server from outside: its own event loop and its own RSS,
// as in production (an in-process server would share both with the bench's clients).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { Image } from '../src/gen/kt/v1/common.js';
import { AnalyzeRequest, FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import type { ServerConfigOverlay } from '../src/server/config.js';

export const encoded = (data: Buffer): Image => Image.fromPartial({ source: { $case: 'encoded', value: { data } } });

const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });

export interface ServeChild {
  child: ChildProcess;
  address: string;
  /** Peak resident memory of the server process so far (VmHWM), bytes. */
  peakRssBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts `kt serve` (compiled dist/) with the config overlay, ready once an Analyze of `probeImage` answers. */
export async function startServeChild(
  probeImage: Buffer,
  config: ServerConfigOverlay,
  tasks = 'age,gender,emotion,landmarks',
): Promise<ServeChild> {
  const port = await freePort();
  const file = join(await mkdtemp(join(tmpdir(), 'kt-bench-')), 'config.json');
  await writeFile(file, JSON.stringify(config));
  const args = ['bin/kt.js', 'serve', '--listen', `127.0.0.1:${port}`, '--no-mqtt', '--tasks', tasks, '--config', file];
  const child = spawn(process.execPath, args, { env: { ...process.env, KT_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const address = `127.0.0.1:${port}`;
  const probe = new FaceAnalysisClient(address, credentials.createInsecure());
  let ready = false;
  for (let i = 0; i < 600 && !ready && child.exitCode === null; i++) {
    ready = await new Promise<boolean>((done) =>
      probe.analyze(AnalyzeRequest.fromPartial({ frame: { image: encoded(probeImage) } }), (err) => done(!err)),
    );
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  probe.close();
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`kt serve did not become ready on ${address}`);
  }
  return {
    child,
    address,
    peakRssBytes: async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}
