// `kt doctor` tells a newcomer what works and fails with a non-zero exit when something required is missing.
import { describe, expect, it } from 'vitest';
import { runKt } from './helpers/cli.js';

describe('kt doctor', () => {
  it('reports the installed repository, the CPU provider and the training backend', async () => {
    const r = await runKt(['doctor', '--providers', 'cuda,cpu']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^OK\s+model repository\s+.*\d+ model versions/m);
    expect(r.stdout).toMatch(/^OK\s+execution provider cpu\s+initialises/m);
    expect(r.stdout).toMatch(/^(OK|WARN)\s+execution provider cuda/m);
    expect(r.stdout).toMatch(/^OK\s+TF\.js training backend\s+(wasm|cpu|tensorflow)/m);
  });

  it('fails when the model repository is empty', async () => {
    const r = await runKt(['doctor', '--repo', '/nonexistent-kt-repo', '--providers', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+model repository\s+\/nonexistent-kt-repo: 0 model versions; no model for detection/m);
  });
});
