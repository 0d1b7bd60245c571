// Integration test runner: one real Worker under `wrangler dev`, then every tests/*.test.mjs
// against it with Node's test runner. The Worker is stopped afterwards, also when a test fails.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startWorker, ROOT } from './support/worker.mjs';

const adminToken = `test-admin-${randomBytes(24).toString('base64url')}`;
const worker = await startWorker({
  // STORAGE_TIMING: every response counts its storage calls (Server-Timing), for the round-trip
  // budget tests (tests/storage-budgets.test.mjs).
  vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'), STORAGE_TIMING: 'on' },
});
const cleanup = () => worker.stop();
process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('SIGTERM', () => { cleanup(); process.exit(143); });

const only = process.argv.slice(2);
const files = (only.length ? only : readdirSync(join(ROOT, 'tests')).filter((f) => f.endsWith('.test.mjs')).sort())
  .map((f) => (f.includes('/') ? f : join(ROOT, 'tests', f)));
console.log(`clavex under wrangler dev at ${worker.url}; running ${files.length} test files`);
let status = 1;
try {
  // Not spawnSync: that would stop this process's event loop for the whole run, and with it the
  // reading of the Worker's output. Once `wrangler dev` has written a pipe's worth (64 KiB) of
  // log lines nobody reads, its next write blocks and every later request to the Worker hangs
  // (seen with the Worker's console at a verbose level; at `warn` the pipe fills more slowly).
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
    stdio: 'inherit',
    env: {
      ...process.env,
      CLAVEX_URL: worker.url,
      CLAVEX_ADMIN_TOKEN: adminToken,
      // Every test process asks wrangler again for a request it lost (see that file).
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(join(ROOT, 'tests', 'support', 'lost-requests.mjs')).href}`.trim(),
    },
  });
  status = await new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
} finally {
  cleanup();
}
process.exit(status);
