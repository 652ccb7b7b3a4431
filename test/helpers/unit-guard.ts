// Setup file of the `unit` project: a unit test that opens a socket or starts a process fails at once, saying what it tried.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

function refuse(what: string): never {
  throw new Error(`${what} in a unit test: tests that need sockets or processes are integration tests (test/<name>.test.ts)`);
}

net.Socket.prototype.connect = function connect(): never {
  refuse('a socket connection');
};
net.Server.prototype.listen = function listen(): never {
  refuse('a listening socket');
};
const processStarters = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;
for (const name of processStarters) {
  (childProcess as unknown as Record<string, unknown>)[name] = (): never => refuse(`child_process.${name}()`);
}
// Makes `import { spawn } from 'node:child_process'` in the code under test see the guarded functions too.
syncBuiltinESMExports();
