import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

/**
 * Setup file of the `unit` project (vitest.config.ts): a unit test may not open a network
 * connection, listen on a port or start a process. Each test file runs in its own worker process
 * (vitest's default isolation), so this only ever affects the unit project's files.
 */

function refuse(what: string) {
  return function refused(): never {
    const err = new Error(
      `${what} in a unit test. Unit tests use no network, no child processes and no database beyond an in-memory one: ` +
        'list this file in INTEGRATION or EXTERNAL in vitest.config.ts (see test/README.md).',
    );
    // Thrown to the caller, and again outside it: a library that catches the first (a database
    // driver retrying its connection) would otherwise leave the test waiting instead of failing.
    setImmediate(() => {
      throw err;
    });
    throw err;
  };
}

net.Socket.prototype.connect = refuse('A network connection') as typeof net.Socket.prototype.connect;
net.Server.prototype.listen = refuse('A listening server') as typeof net.Server.prototype.listen;
const processes = childProcess as unknown as Record<string, unknown>;
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  processes[name] = refuse(`child_process.${name}()`);
}
// `import { spawn } from 'node:child_process'` reads the ESM view of the module: update it too.
syncBuiltinESMExports();
