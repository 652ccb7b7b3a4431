// The `kt` command: one entry point for `models build|list`, `train`, `eval`, `serve`, `analyze`, `doctor` and `certs`, plus `--version`.
import { readFileSync } from 'node:fs';
import { isKtError } from './core/errors.js';
import type { CommandHandler } from './core/cli-args.js';
import { registerModelCommands } from './models/cli-models.js';
import { registerTrainCommands } from './train/cli-train.js';
import { registerServeCommands } from './server/cli-serve.js';
import { registerGalleryCommands } from './server/cli-gallery.js';
import { registerDoctorCommand } from './cli-doctor.js';
import { registerAnalyzeCommand } from './cli-analyze.js';
import { registerCertsCommand } from './cli-certs.js';
import { registerGatewayCommand } from './gateway/cli-gateway.js';

interface Command {
  summary: string;
  run: CommandHandler;
}

const commands: Record<string, Command> = {};

/** Registers a sub-command; `name` may have a space ("models build"). */
function registerCommand(name: string, summary: string, run: CommandHandler): void {
  commands[name] = { summary, run };
}

/** The version in package.json, which sits one level above both src/ and dist/. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** The command table; `group` ("models") narrows it to that group's sub-commands. */
function usage(group?: string): string {
  const names = Object.keys(commands).filter((n) => group === undefined || n.startsWith(`${group} `));
  const rows = names.map((n) => `  kt ${n.padEnd(16)} ${commands[n]!.summary}`);
  const what = group === undefined ? '<command>' : `${group} <command>`;
  return `usage: kt ${what} [options]\n\ncommands:\n${rows.join('\n')}\n\nRun \`kt <command> --help\` for a command's options, \`kt --version\` for the version.`;
}

/** True when some command is `<word> <sub-command>` ("models" for "models build"). */
function isGroup(word: string | undefined): word is string {
  return word !== undefined && Object.keys(commands).some((n) => n.startsWith(`${word} `));
}

/** Built-ins are registered here, at the entry point; each module defers its heavy imports to its handlers. */
function registerBuiltinCommands(): void {
  registerModelCommands(registerCommand);
  registerTrainCommands(registerCommand);
  registerServeCommands(registerCommand);
  registerGalleryCommands(registerCommand);
  registerDoctorCommand(registerCommand);
  registerAnalyzeCommand(registerCommand);
  registerCertsCommand(registerCommand);
  registerGatewayCommand(registerCommand);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  // `kt help serve` is `kt serve --help`.
  if (argv[0] === 'help' && argv.length > 1) return main([...argv.slice(1), '--help']);
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${usage()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const twoWordName = `${argv[0]} ${argv[1] ?? ''}`.trim();
  const cmd = commands[twoWordName]
    ? { name: twoWordName, rest: argv.slice(2) }
    : commands[argv[0]!]
      ? { name: argv[0]!, rest: argv.slice(1) }
      : undefined;
  if (!cmd && isGroup(argv[0]) && (argv.length === 1 || argv[1] === '--help' || argv[1] === '-h')) {
    process.stdout.write(`${usage(argv[0])}\n`);
    return argv.length === 1 ? 2 : 0;
  }
  if (!cmd) {
    process.stderr.write(`kt: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${usage()}\n`);
    return 2;
  }
  return commands[cmd.name]!.run(cmd.rest);
}

registerBuiltinCommands();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Usage errors (a KtError or a bad flag) are one line and exit 1; anything else is a bug: stack trace, exit 70.
    const badFlag = e instanceof Error && String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    const msg = isKtError(e) ? `${e.name}: ${e.message}` : badFlag ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    process.stderr.write(`kt: error: ${msg}\n`);
    process.exitCode = isKtError(e) || badFlag ? 1 : 70;
  },
);
