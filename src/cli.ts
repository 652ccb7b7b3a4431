// The `kt` command: one entry point for models, serve, train, eval, export, bench and doctor.
import { isKtError } from './core/errors.js';
import type { CommandHandler } from './core/cli-args.js';
import { registerModelCommands } from './models/cli-models.js';
import { registerTrainCommands } from './train/cli-train.js';
import { registerServeCommands } from './server/cli-serve.js';
import { registerDoctorCommand } from './cli-doctor.js';

interface Command {
  summary: string;
  run: CommandHandler;
}

const commands: Record<string, Command> = {};

/** Registers a sub-command; `name` may have a space ("models build"). */
function registerCommand(name: string, summary: string, run: CommandHandler): void {
  commands[name] = { summary, run };
}

function usage(): string {
  const rows = Object.entries(commands).map(([n, c]) => `  kt ${n.padEnd(16)} ${c.summary}`);
  return `usage: kt <command> [options]\n\ncommands:\n${rows.join('\n')}\n\nRun \`kt <command> --help\` for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  // Built-ins are registered here, at the entry point; each module defers its heavy imports to its handlers.
  registerModelCommands(registerCommand);
  registerTrainCommands(registerCommand);
  registerServeCommands(registerCommand);
  registerDoctorCommand(registerCommand);

  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${usage()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const two = `${argv[0]} ${argv[1] ?? ''}`.trim();
  const cmd = commands[two] ? { name: two, rest: argv.slice(2) } : commands[argv[0]!] ? { name: argv[0]!, rest: argv.slice(1) } : undefined;
  if (!cmd) {
    process.stderr.write(`kt: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${usage()}\n`);
    return 2;
  }
  return commands[cmd.name]!.run(cmd.rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const msg = isKtError(e) ? `${e.name}: ${e.message}` : e instanceof Error && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    process.stderr.write(`kt: error: ${msg}\n`);
    process.exitCode = isKtError(e) || (e as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS') ? 1 : 70;
  },
);
