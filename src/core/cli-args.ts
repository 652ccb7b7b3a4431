// Shared CLI plumbing for command modules: strict flag parsing and the register signature.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type CommandHandler = (argv: string[]) => Promise<number>;
export type RegisterCommand = (name: string, summary: string, run: CommandHandler) => void;

export type CommandOptions = NonNullable<ParseArgsConfig['options']>;
interface StrictParseConfig<T extends CommandOptions> {
  args: string[];
  options: T;
  allowPositionals: boolean;
  strict: true;
}
/** Spelled out so the declaration emit can name it (node:util does not export its result type). */
export type ParsedFlags<T extends CommandOptions> = ReturnType<typeof parseArgs<StrictParseConfig<T>>>;

export function parse<T extends CommandOptions>(argv: string[], options: T, allowPositionals = false): ParsedFlags<T> {
  return parseArgs({ args: argv, options, allowPositionals, strict: true });
}
