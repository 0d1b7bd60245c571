// Starting the three benchmarked servers and timing each from its start to its first answer.
// Workers start like tests/support/worker.mjs starts them (wrangler dev --local, free port, fresh
// --persist-to dir), but timed from the spawn of `wrangler dev` (after the D1 migrations) and
// polled every 20 ms so the start-up time is measured, not rounded to the poll interval.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT, shareD1, snapshotWorker } from '../tests/support/worker.mjs';

// Frozen copies of built Workers come from the test harness (snapshotWorker): `wrangler dev`
// reloads when what it serves changes, and the work tree may be rebuilt mid-run.
export { snapshotWorker };
import { descendants, cmdline } from './loadgen.mjs';

const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForAnswer(url, child, output, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited early:\n${output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) { await res.arrayBuffer(); return; }
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} in ${timeoutMs} ms:\n${output()}`);
    await sleep(20);
  }
}

function spawnGroup(cmd, args, opts) {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; if (out.length > 200_000) out = out.slice(-100_000); });
  child.stderr.on('data', (d) => { out += d; if (out.length > 200_000) out = out.slice(-100_000); });
  const stop = () => {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 2000).unref();
  };
  return { child, output: () => out, stop };
}

/**
 * Start a Worker under `wrangler dev --local`. `d1From` (another running Worker's persistDir):
 * share that Worker's D1 database, keep a KV of its own, apply no migrations — a second Cloudflare
 * location in front of the same D1 primary. Returns { url, pid, persistDir, startMs, cpuPids(), stop() }.
 */
export async function startWorkerTimed({ name, config, cwd, vars = {}, migrate = true, d1From }) {
  const port = await freePort();
  const persistDir = mkdtempSync(join(tmpdir(), `clavex-bench-${name}-`));
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: process.env.CI ?? '1' };
  if (d1From) shareD1(persistDir, d1From);
  if (migrate && !d1From) {
    execFileSync(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--config', config, '--persist-to', persistDir],
      { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  const t0 = performance.now();
  const g = spawnGroup(WRANGLER, ['dev', '--local', '--config', config, '--ip', '127.0.0.1', '--port', String(port),
    '--persist-to', persistDir, '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false',
    '--log-level', 'warn', ...varArgs], { cwd, env });
  const url = `http://127.0.0.1:${port}`;
  const stop = () => { g.stop(); rmSync(persistDir, { recursive: true, force: true }); };
  try {
    await waitForAnswer(`${url}/healthz`, g.child, g.output, 180_000);
  } catch (err) { stop(); throw err; }
  const startMs = performance.now() - t0;
  // wrangler dev runs two workerd processes: the dev proxy that owns the port and the runtime
  // that runs the Worker (the one with the inspector). Both serve every request.
  const workerds = () => descendants(g.child.pid, 'workerd');
  const roles = () => Object.fromEntries(workerds().map((p) => [p, cmdline(p).includes('--inspector-addr') ? 'runtime' : 'proxy']));
  return { name, url, pid: g.child.pid, persistDir, startMs, cpuPids: workerds, roles, stop, output: g.output };
}

/** Start the oidc-provider peer on Node. Returns { url, issuer, pid, startMs, cpuPids(), stop() }. */
export async function startPeer({ org, clientId, clientSecret, redirectUri, user, password, iterations }) {
  const port = await freePort();
  const env = {
    ...process.env, NODE_ENV: 'production', PEER_PORT: String(port), PEER_ORG: org, PEER_CLIENT_ID: clientId,
    PEER_CLIENT_SECRET: clientSecret, PEER_REDIRECT_URI: redirectUri, PEER_USERNAME: user.username,
    PEER_PASSWORD: password, PEER_EMAIL: user.email, PEER_NAME: user.name, PEER_PICTURE: user.picture,
    PEER_PBKDF2_ITERATIONS: String(iterations),
  };
  const t0 = performance.now();
  const g = spawnGroup(process.execPath, [join(ROOT, 'bench', 'peer', 'oidc-provider-server.mjs')], { cwd: ROOT, env });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForAnswer(`${url}/${org}/.well-known/openid-configuration`, g.child, g.output, 60_000);
  } catch (err) { g.stop(); throw err; }
  const startMs = performance.now() - t0;
  return { name: 'peer', url, pid: g.child.pid, startMs, cpuPids: () => [g.child.pid], roles: () => ({ [g.child.pid]: 'node' }), stop: g.stop, output: g.output };
}
