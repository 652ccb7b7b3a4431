// Awaits a call that must fail and returns what it threw (a call that succeeds fails the test).
export async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail');
}
