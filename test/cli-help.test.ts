// `kt --version` and every registered `kt <command> --help` work from the compiled CLI (bin/kt.js -> dist/cli.js).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runKt } from './helpers/cli.js';

// bin/kt.js runs dist/: compile first when a source is newer than the last build.
execFileSync(process.execPath, [join(repoRoot, 'scripts/build-dist.mjs'), '--if-stale'], { cwd: repoRoot, stdio: 'pipe' });

/** The command names in `kt --help`'s table ("models build", "serve", ...). */
function commandNames(usage: string): string[] {
  return [...usage.matchAll(/^ {2}kt (\S+(?: \S+)?) {2,}\S/gm)].map((m) => m[1]!);
}

const topHelp = await runKt(['--help']);
const commands = commandNames(topHelp.stdout);

describe('kt --help and --version', () => {
  it('lists the registered commands and exits 0', () => {
    expect(topHelp.code, topHelp.stderr).toBe(0);
    expect(commands).toEqual(expect.arrayContaining(['models build', 'models list', 'train', 'eval', 'serve', 'doctor']));
  });

  it('prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const r = await runKt(['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${version}\n`);
  });

  it('answers an unknown command with the usage and exit 2', async () => {
    const r = await runKt(['no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "no-such-command"');
    expect(r.stderr).toContain('usage: kt <command>');
  });

  it("lists a group's sub-commands for `kt models --help`", async () => {
    const r = await runKt(['models', '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(commandNames(r.stdout)).toEqual(commands.filter((c) => c.startsWith('models ')));
  });
});

describe.each(commands)('kt %s', (command) => {
  const words = command.split(' ');

  it("--help prints the command's usage and options and exits 0", async () => {
    const r = await runKt([...words, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.startsWith(`kt ${command}`), r.stdout).toBe(true);
    // Its options: `kt eval --run DIR` names its only one in the usage line, the others list them one per line.
    expect(r.stdout).toMatch(/ --[a-z][a-z-]+/);
  });

  it('`kt help <command>` is the same help', async () => {
    const [viaFlag, viaHelp] = [await runKt([...words, '--help']), await runKt(['help', ...words])];
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
  });

  it('rejects an unknown flag with a one-line error and exit 1', async () => {
    const r = await runKt([...words, '--no-such-flag']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^kt: error: .*--no-such-flag/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
