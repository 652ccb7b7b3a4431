// `kt train --help` documents every flag the command accepts (the flag table and the help text live side by side).
import { describe, expect, it } from 'vitest';
import { TRAIN_FLAGS, TRAIN_HELP } from '../src/train/cli-train.js';

describe('kt train flags', () => {
  it('has every accepted flag described in --help', () => {
    const flags = Object.keys(TRAIN_FLAGS).filter((f) => f !== 'help');
    const undocumented = flags.filter((f) => !new RegExp(`^ {2}--${f}\\b`, 'm').test(TRAIN_HELP));
    expect(undocumented).toEqual([]);
  });

  it('describes no flag that it does not accept', () => {
    const described = [...TRAIN_HELP.matchAll(/^ {2}--([a-z][a-z-]*)/gm)].map((m) => m[1]!);
    expect(described.filter((f) => !(f in TRAIN_FLAGS))).toEqual([]);
  });
});
