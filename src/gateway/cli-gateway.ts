// `kt gateway --config gateway.yaml`: runs every camera of the config until SIGINT/SIGTERM; `--check` only validates.
import { parse, type RegisterCommand } from '../core/cli-args.js';
import { InvalidInputError, errorMessage } from '../core/errors.js';

const help = `kt gateway --config FILE [options]
  Streams cameras to a kt server and routes the results: per camera source -> filters -> server stream (stream id =
  camera id) -> sinks. Sources: rtsp, http, v4l2, file (ffmpeg), folder, snapshot; filters: fps, motion, zones,
  min-face-size; sinks: mqtt, webhook, jsonl, snapshot and plugins loaded from the config. A camera that fails goes
  offline and is retried with backoff; the others keep running. Stops cleanly on SIGINT/SIGTERM.

  --config FILE          gateway config, YAML or JSON (see docs/deployment.md and schemas/)
  --check                validate the config and every plugin's options, print a summary and exit
  --help                 print this help
`;

export function registerGatewayCommand(register: RegisterCommand): void {
  register('gateway', 'stream cameras (RTSP, HTTP, V4L2, files, folders, snapshots) to the server and route results', async (argv) => {
    const { values } = parse(argv, {
      config: { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    if (values.config === undefined) throw new InvalidInputError('kt gateway needs --config FILE (YAML or JSON)');
    const [{ loadGatewayConfig }, { Gateway, loadThirdParty, resolvePlugins }, { gatewayRegistry }, { createLogger }] = await Promise.all([
      import('./config.js'),
      import('./gateway.js'),
      import('./builtins.js'),
      import('../core/log.js'),
    ]);
    const config = await loadGatewayConfig(values.config);
    const log = createLogger('gateway');
    if (values.check) {
      const registry = gatewayRegistry();
      await loadThirdParty(config, registry, log);
      resolvePlugins(config, registry);
      process.stdout.write(
        `${values.config}: OK, ${config.cameras.length} camera(s) (${config.cameras.map((c) => `${c.id}: ${c.source.type}`).join(', ')}), ${config.sinks.length} sink(s), server ${config.server.address}\n`,
      );
      return 0;
    }
    const gateway = await Gateway.start(config, { log });
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        log.info({ signal }, 'gateway stopping');
        gateway.stop().then(resolve, (e: unknown) => {
          log.error({ error: errorMessage(e) }, 'gateway stop failed');
          resolve();
        });
      };
      const onInt = (): void => stop('SIGINT');
      const onTerm = (): void => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    return 0;
  });
}
