// Starts the real Worker under `wrangler dev --local` (workerd, local KV and D1) on a free port
// with its own fresh state directory, and stops it again — the harness every integration test
// runs against. Used by tests/run.mjs and by the benchmark.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A frozen copy of a built Worker (build/, migrations/, wrangler.toml without any [build]
 * command) in a temporary directory. `wrangler dev` watches what it serves and reloads when it
 * changes, so a rebuild of the work tree during a run would restart the Worker mid-test; the copy
 * cannot change. Returns { dir, config, remove() }.
 */
export function snapshotWorker(srcDir = ROOT, name = 'clavex') {
  const dir = mkdtempSync(join(tmpdir(), `${name}-build-`));
  cpSync(join(srcDir, 'build'), join(dir, 'build'), { recursive: true });
  if (existsSync(join(srcDir, 'migrations'))) cpSync(join(srcDir, 'migrations'), join(dir, 'migrations'), { recursive: true });
  const toml = readFileSync(join(srcDir, 'wrangler.toml'), 'utf8').replace(/^\[build\][\s\S]*?(?=^\[|(?![\s\S]))/m, '');
  writeFileSync(join(dir, 'wrangler.toml'), toml);
  return { dir, config: join(dir, 'wrangler.toml'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Make `persistDir` use the D1 database of `fromPersistDir` (a symlink to its D1 folder) while
 * keeping its own KV: two `wrangler dev` instances set up so stand for two Cloudflare locations
 * before KV has propagated — one D1 primary, a KV of their own each.
 */
export function shareD1(persistDir, fromPersistDir) {
  mkdirSync(join(persistDir, 'v3'), { recursive: true });
  const source = join(fromPersistDir, 'v3', 'd1');
  if (!existsSync(source)) throw new Error(`no D1 database under ${fromPersistDir} to share (start that Worker first)`);
  symlinkSync(source, join(persistDir, 'v3', 'd1'), 'dir');
}

/** The development-only D1 binding a lagging replica is read from (src/edge/config.rs). */
export const LAGGING_REPLICA_BINDING = 'DB_LAGGING_REPLICA';

/**
 * Give a frozen copy's wrangler.toml a second local D1 database, the lagging replica. Only the
 * harness writes it: the deployed wrangler.toml never has it.
 */
function addLaggingReplica(config) {
  const toml = readFileSync(config, 'utf8');
  writeFileSync(config, `${toml}
[[d1_databases]]
# Development only (tests/support/worker.mjs): the replica that lags until a test syncs it.
binding = "${LAGGING_REPLICA_BINDING}"
database_name = "clavex-lagging-replica"
database_id = "clavex-lagging-replica"
migrations_dir = "migrations"
`);
}

/** The sender address the e-mail tests' Worker is given (src/edge/email.rs `EMAIL_FROM`). */
export const EMAIL_FROM = 'no-reply@clavex.test';

/**
 * Give a frozen copy's wrangler.toml the `send_email` binding Clavex sends e-mail through
 * (src/edge/email.rs). Under `wrangler dev` Miniflare simulates it: nothing is sent, each
 * message's text goes to a temporary file and its From, To and Subject are logged with that
 * file's path (tests/support/mail.mjs reads them back).
 */
function addEmail(config) {
  const toml = readFileSync(config, 'utf8');
  writeFileSync(config, `${toml}
[[send_email]]
# Tests only (tests/support/worker.mjs): simulated by wrangler dev.
name = "EMAIL"
`);
}

/** Resolves once nothing listens on 127.0.0.1:`port` (a stopped Worker's port is free again). */
async function portFree(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const free = await new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return;
    if (Date.now() > deadline) throw new Error(`port ${port} is still in use`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Start a Worker. Options: config (wrangler.toml path), vars (object of extra vars/secrets),
 * cwd, port (default: a free one), d1From (the persistDir of a running Worker whose D1 this one shares; it then applies no
 * migrations and keeps its own KV), laggingReplica (replica reads go to a second database that
 * only `syncReplica` brings up to date), persistDir (the state directory of a stopped Worker to
 * start on again — D1 and KV as it left them, no migrations applied; see `restart`).
 * Returns { url, port, stop({ keepState }), restart({ vars }), pid, persistDir, output() }:
 * `stop` resolves once the Worker has exited and removes its state unless keepState is true;
 * `restart` stops it and starts a new Worker on the same port and state with other vars.
 */
export async function startWorker({ config, vars = {}, cwd, migrate = true, log, d1From, port: wanted, laggingReplica = false, email = false, persistDir: reuse, snapshot: inherited } = {}) {
  // Clavex itself is served from a frozen copy of build/ (see snapshotWorker); a restart keeps
  // serving the same copy.
  const snapshot = inherited ?? (config ? null : snapshotWorker(ROOT));
  if (inherited) { config = undefined; cwd = undefined; }
  if (laggingReplica) {
    if (!snapshot) throw new Error('laggingReplica needs the frozen copy of build/ (no config option)');
    if (!inherited) addLaggingReplica(snapshot.config);
    vars = { ...vars, SIMULATED_LAGGING_REPLICA: 'on' };
  }
  if (email) {
    if (!snapshot) throw new Error('email needs the frozen copy of build/ (no config option)');
    if (!inherited) addEmail(snapshot.config);
    vars = { EMAIL_FROM, ...vars };
  }
  config ??= snapshot.config;
  cwd ??= snapshot ? snapshot.dir : ROOT;
  const port = wanted ?? await freePort();
  if (wanted !== undefined) await portFree(wanted);
  const persistDir = reuse ?? mkdtempSync(join(tmpdir(), 'clavex-state-'));
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: process.env.CI ?? '1' };
  if (d1From) shareD1(persistDir, d1From);
  if (migrate && !d1From && !reuse) {
    for (const binding of laggingReplica ? ['DB', LAGGING_REPLICA_BINDING] : ['DB']) {
      execFileSync(WRANGLER, ['d1', 'migrations', 'apply', binding, '--local', '--config', config, '--persist-to', persistDir], {
        cwd, env, stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
  }
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  const child = spawn(
    WRANGLER,
    ['dev', '--local', '--config', config, '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistDir,
      '--inspector-port', String(await freePort()), '--test-scheduled', '--show-interactive-dev-session=false',
      // The simulated e-mail binding logs each message at the info level.
      '--log-level', email ? 'info' : 'warn', ...varArgs],
    { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (d) => { output += d; if (log) log(String(d)); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = ({ keepState = false } = {}) => {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 2000).unref();
    // The state is removed at once (as before) unless it is kept for a restart, which must wait
    // for the exit: local D1 and KV are only complete on disk once workerd has stopped.
    if (!keepState) {
      rmSync(persistDir, { recursive: true, force: true });
      snapshot?.remove();
    }
    return exited;
  };
  const restart = async ({ vars: next = vars, log: nextLog = log } = {}) => {
    await stop({ keepState: true });
    return startWorker({ config, cwd, snapshot, laggingReplica, email, vars: next, log: nextLog, port, persistDir });
  };
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { stop(); throw new Error(`wrangler dev did not answer in time:\n${output}`); }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, port, pid: child.pid, persistDir, stop, restart, output: () => output };
}

/**
 * Bring a `laggingReplica` Worker's replica up to date with its primary (one consistent copy of
 * every table, through the Worker's development-only endpoint). Returns the tables copied.
 */
export async function syncReplica(worker, adminToken) {
  const res = await fetch(`${worker.url}/_development/replica/sync`, {
    method: 'POST', headers: { Authorization: `Bearer ${adminToken}` },
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`replica sync: ${res.status} ${text}`);
  return JSON.parse(text).synced_tables;
}
