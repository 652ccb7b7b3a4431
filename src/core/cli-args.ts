// Shared CLI plumbing for command modules: strict flag parsing and the register signature.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type CommandHandler = (argv: string[]) => Promise<number>;
export type RegisterCommand = (name: string, summary: string, run: CommandHandler) => void;

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  return parseArgs({ args: argv, options, allowPositionals, strict: true });
}
