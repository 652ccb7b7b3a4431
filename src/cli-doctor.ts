// `kt doctor`: checks what a gateway needs (runtime, execution providers, model repository, MQTT broker, TF.js backend).
import { parse, type RegisterCommand } from './core/cli-args.js';
import { errorMessage } from './core/errors.js';

interface Check {
  name: string;
  /** 'warn' is informative (an optional accelerator that is not there); only 'fail' fails the command. */
  state: 'ok' | 'warn' | 'fail';
  detail: string;
}

const help = `kt doctor [options]
  Checks what a gateway needs and prints one line per check (OK, WARN or FAIL); exits 1 when a check fails.
  A missing optional accelerator is a WARN; a missing model or CPU provider is a FAIL.

  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --providers a,b,...    execution providers to try, each alone (default tensorrt,cuda,cpu)
  --mqtt HOST:PORT       MQTT broker to probe (default 127.0.0.1:1883)
  --gateway FILE         check a gateway box instead: the gateway config, ffmpeg, each camera (one frame) and the server
  --help                 print this help
`;

export function registerDoctorCommand(register: RegisterCommand): void {
  register('doctor', 'check the runtime, execution providers, model repository, MQTT broker and training backend', async (argv) => {
    const { values } = parse(argv, {
      repo: { type: 'string' },
      providers: { type: 'string', default: 'tensorrt,cuda,cpu' },
      mqtt: { type: 'string', default: '127.0.0.1:1883' },
      gateway: { type: 'string' },
      help: { type: 'boolean', default: false },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    const checks: Check[] = [];
    const add: AddCheck = (name, ok, detail) => {
      checks.push({ name, state: ok === 'warn' ? 'warn' : ok ? 'ok' : 'fail', detail });
    };

    const major = Number(process.versions.node.split('.')[0]);
    add('node', major >= 20, `v${process.versions.node} (>= 20 required)`);

    // A gateway box needs no models: only the node check and the gateway's own.
    if (values.gateway !== undefined) {
      const { gatewayChecks } = await import('./gateway/doctor.js');
      checks.push(...(await gatewayChecks(values.gateway)));
      for (const c of checks) process.stdout.write(`${c.state.toUpperCase().padEnd(4)}  ${c.name.padEnd(28)} ${c.detail}\n`);
      return checks.some((c) => c.state === 'fail') ? 1 : 0;
    }

    const { listRepository, defaultRepositoryPath } = await import('./models/repository.js');
    const repo = values.repo ?? defaultRepositoryPath();
    const skipped: string[] = [];
    const entries = await listRepository(repo, (dir) => skipped.push(dir));
    if (skipped.length > 0) add('manifests', false, `${skipped.length} version(s) skipped, invalid model.json: ${skipped.join(', ')}`);
    const tasksCovered = new Set(entries.flatMap((e) => e.manifest.tasks));
    const needed = ['detection', 'age', 'gender', 'emotion', 'landmarks', 'embedding'];
    const missing = needed.filter((t) => !tasksCovered.has(t as never));
    add(
      'model repository',
      entries.length > 0 && missing.length === 0,
      `${repo}: ${entries.length} model versions${missing.length ? `; no model for ${missing.join(', ')} (run \`kt models build\`)` : ''}`,
    );

    await checkProviders(entries, values.providers.split(',') as ('tensorrt' | 'cuda' | 'cpu')[], add);

    const { probeMqttBroker } = await import('./server/mqtt/embedded-broker.js');
    const [host, port] = values.mqtt.split(':');
    const broker = await probeMqttBroker(host ?? '127.0.0.1', Number(port ?? 1883));
    add(
      'MQTT broker',
      broker || 'warn',
      broker ? `answers on ${values.mqtt}` : `nothing on ${values.mqtt}: kt serve will start an embedded broker`,
    );

    const { loadTf } = await import('./train/tfjs-backend.js');
    try {
      const { backend, skipped } = await loadTf();
      add('TF.js training backend', true, `${backend}${skipped.length ? ` (skipped: ${skipped.map((s) => s.backend).join(', ')})` : ''}`);
    } catch (e) {
      add('TF.js training backend', false, errorMessage(e));
    }

    for (const c of checks) process.stdout.write(`${c.state.toUpperCase().padEnd(4)}  ${c.name.padEnd(28)} ${c.detail}\n`);
    return checks.some((c) => c.state === 'fail') ? 1 : 0;
  });
}

type AddCheck = (name: string, ok: boolean | 'warn', detail: string) => void;

/** Tries each execution provider alone on the detector model; a missing accelerator is a warning, a missing CPU provider a failure. */
async function checkProviders(
  entries: readonly { manifest: { kind: string }; modelPath: string }[],
  providers: readonly ('tensorrt' | 'cuda' | 'cpu')[],
  add: AddCheck,
): Promise<void> {
  const { createSession, ort } = await import('./onnx/runtime.js');
  // The native library logs every failed provider load at error level; the table below says it once.
  ort.env.logLevel = 'fatal';
  const detector = entries.find((e) => e.manifest.kind === 'detector');
  if (detector) {
    for (const p of providers) {
      try {
        const { session } = await createSession(detector.modelPath, { providers: [p] });
        await session.release();
        add(`execution provider ${p}`, true, 'initialises');
      } catch (e) {
        add(
          `execution provider ${p}`,
          p === 'cpu' ? false : 'warn',
          `unavailable: ${errorMessage(e).split(':').slice(-1)[0]!.trim().slice(0, 160)}`,
        );
      }
    }
  }
  add(
    'onnxruntime-node',
    true,
    `${ort.env.versions.common ?? 'unknown'} (${process.platform}/${process.arch}; the npm binary has CUDA only on linux/x64 with its provider libraries installed)`,
  );
}
