// `kt doctor --gateway gateway.yaml`: checks what a gateway needs: the config and plugin options, ffmpeg, each camera
// (one frame decoded, the folder readable, the snapshot URL answering) and the server (health over the configured TLS/token).
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { FaceAnalysisClient } from '../sdk/client.js';
import { gatewayRegistry } from './builtins.js';
import { loadGatewayConfig, type GatewayConfig } from './config.js';
import { StderrSummary, normaliseStderrLine } from './ffmpeg.js';
import { loadThirdParty, resolvePlugins } from './gateway.js';
import { silentLogger } from '../core/log-types.js';
import { videoPlanOf } from './sources/video.js';

export interface DoctorCheck {
  name: string;
  state: 'ok' | 'warn' | 'fail';
  detail: string;
}

interface ProcessOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  spawnError?: NodeJS.ErrnoException;
  timedOut: boolean;
}

function runProcess(command: string, args: readonly string[], timeoutMs: number): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-20_000)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
      if (child.pid === undefined) {
        clearTimeout(timer);
        resolve({ code: null, stdout, stderr, spawnError: e, timedOut });
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ...(spawnError ? { spawnError } : {}), timedOut });
    });
  });
}

async function checkFfmpeg(ffmpegPath: string): Promise<DoctorCheck> {
  const r = await runProcess(ffmpegPath, ['-hide_banner', '-version'], 10_000);
  if (r.spawnError)
    return {
      name: 'ffmpeg',
      state: 'fail',
      detail: `not found: ffmpegPath "${ffmpegPath}" (${r.spawnError.code ?? r.spawnError.message})`,
    };
  const first = r.stdout.split('\n')[0] ?? '';
  return { name: 'ffmpeg', state: r.code === 0 ? 'ok' : 'fail', detail: `${ffmpegPath}: ${first.trim() || `exit code ${r.code}`}` };
}

/** Decodes one frame of a video camera with ffmpeg (its size from the banner). */
async function probeVideo(ffmpegPath: string, type: string, options: Record<string, unknown>, timeoutMs: number): Promise<string> {
  const plan = videoPlanOf(type, options)!;
  const input = plan.input;
  const args = [
    '-hide_banner',
    '-nostdin',
    ...((options['decoderArgs'] as string[] | undefined) ?? []),
    ...(input.inputArgs ?? []).filter((a) => a !== '-re' && a !== '-stream_loop' && a !== '-1'),
    ...(input.format !== undefined ? ['-f', input.format] : []),
    '-i',
    input.url,
    '-frames:v',
    '1',
    '-f',
    'null',
    '-',
  ];
  const r = await runProcess(ffmpegPath, args, timeoutMs);
  if (r.spawnError) throw new Error(`ffmpeg not found: ffmpegPath "${ffmpegPath}"`);
  if (r.timedOut) throw new Error(`${plan.field}: no frame within ${timeoutMs} ms`);
  const summary = new StderrSummary();
  summary.push(r.stderr);
  if (r.code !== 0) throw new Error(`${plan.field}: ${summary.text(300) || `ffmpeg exit code ${r.code}`}`);
  const video = /Stream #\d+:\d+[^\n]*: Video: ([^\n]*)/.exec(r.stderr);
  return `${plan.field}: 1 frame decoded${video ? ` (${normaliseStderrLine(video[1]!).split(', ').slice(0, 3).join(', ')})` : ''}`;
}

async function probeFolder(options: Record<string, unknown>): Promise<string> {
  const path = options['path'] as string;
  const extensions = (options['extensions'] as string[] | undefined) ?? ['.jpg', '.jpeg', '.png', '.webp'];
  if (!(await stat(path)).isDirectory()) throw new Error(`path "${path}" is not a folder`);
  const images = (await readdir(path)).filter((n) => extensions.includes(extname(n).toLowerCase()));
  return `path "${path}": ${images.length} image(s) now; new files are picked up`;
}

async function probeSnapshot(options: Record<string, unknown>, timeoutMs: number): Promise<string> {
  const url = options['url'] as string;
  const res = await fetch(url, {
    headers: (options['headers'] as Record<string, string> | undefined) ?? {},
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = new Uint8Array(await res.arrayBuffer());
  if (!res.ok) throw new Error(`url "${url}": HTTP ${res.status}`);
  return `url "${url}": ${body.byteLength} bytes (${res.headers.get('content-type') ?? 'no content-type'})`;
}

async function probeCamera(
  config: GatewayConfig,
  type: string,
  options: Record<string, unknown>,
  timeoutMs: number,
): Promise<DoctorCheck['state'] | string> {
  if (videoPlanOf(type, options))
    return probeVideo((options['ffmpegPath'] as string | undefined) ?? config.ffmpegPath, type, options, timeoutMs);
  if (type === 'folder') return probeFolder(options);
  if (type === 'snapshot') return probeSnapshot(options, timeoutMs);
  return 'warn';
}

async function checkServer(config: GatewayConfig): Promise<DoctorCheck> {
  const s = config.server;
  const client = new FaceAnalysisClient(s.address, { tls: s.tls, ...(s.token !== undefined ? { token: s.token } : {}), deadlineMs: 5000 });
  const how = `${s.tls === false ? 'plaintext' : 'TLS'}${s.token !== undefined ? ' + token' : ''}`;
  try {
    const health = await client.health('', { deadlineMs: 5000, waitForReady: true });
    return { name: 'server', state: health === 'SERVING' ? 'ok' : 'fail', detail: `${s.address} (${how}): ${health}` };
  } catch (e) {
    return { name: 'server', state: 'fail', detail: `${s.address} (${how}): ${errorMessage(e)}` };
  } finally {
    client.close();
  }
}

/** Every gateway check, in order: config, ffmpeg (when a camera needs it), each camera, the server. */
export async function gatewayChecks(configPath: string, probeTimeoutMs = 15_000): Promise<DoctorCheck[]> {
  let config: GatewayConfig;
  let plan: ReturnType<typeof resolvePlugins>;
  try {
    config = await loadGatewayConfig(configPath);
    const registry = gatewayRegistry();
    await loadThirdParty(config, registry, silentLogger);
    plan = resolvePlugins(config, registry);
  } catch (e) {
    return [{ name: 'gateway config', state: 'fail', detail: errorMessage(e) }];
  }
  const checks: DoctorCheck[] = [
    { name: 'gateway config', state: 'ok', detail: `${configPath}: ${config.cameras.length} camera(s), ${config.sinks.length} sink(s)` },
  ];
  const ffmpegPaths = new Set(
    plan.cameras
      .filter((c) => videoPlanOf(c.camera.source.type, c.source.options))
      .map((c) => (c.source.options['ffmpegPath'] as string | undefined) ?? config.ffmpegPath),
  );
  for (const path of ffmpegPaths) checks.push(await checkFfmpeg(path));
  const probes = await Promise.all(
    plan.cameras.map(async (c) => {
      const name = `camera ${c.camera.id} (${c.camera.source.type})`;
      try {
        const options = c.source.factory.resolveOptions(c.source.options) as Record<string, unknown>;
        const outcome = await probeCamera(config, c.source.factory.pluginName, options, probeTimeoutMs);
        if (outcome === 'warn') return { name, state: 'warn' as const, detail: 'a third-party source: not probed' };
        return { name, state: 'ok' as const, detail: outcome as string };
      } catch (e) {
        return { name, state: 'fail' as const, detail: errorMessage(e) };
      }
    }),
  );
  checks.push(...probes, await checkServer(config));
  return checks;
}
