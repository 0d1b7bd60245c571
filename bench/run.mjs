// `make bench` (scripts/bench.sh builds first, then runs this): Clavex under `wrangler dev --local`,
// the floor Worker on the same workerd, and oidc-provider on Node, measured in one run with the
// same load generator and the same requests. Writes bench/results/latest.{md,json} and a dated copy.
//
// Bounds (environment): BENCH_SECONDS (measured seconds per server, scenario and concurrency;
// default 5), BENCH_MAX_REQUESTS (default 2000), BENCH_MAX_FLOWS (default 400), BENCH_WARMUP
// (iterations, default 20), BENCH_MAX_TOTAL_SECONDS (whole run; default 900: later scenarios are
// skipped and marked so). Selection: BENCH_SERVERS=clavex,floor,peer  BENCH_SCENARIOS=discovery,…
// BENCH_CONCURRENCY=1,8. BENCH_OUT=dir (default bench/results). Only 127.0.0.1 is ever targeted.
// The "user far from the D1 primary" section (bench/far.mjs) runs after the scenarios above:
// BENCH_FAR=0 skips it, BENCH_SCENARIOS=far runs it alone, BENCH_FAR_ITERATIONS (default 30) per row.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../tests/support/worker.mjs';
import { makeClient, runLoad, mergeRuns, summarize, CLK_TCK } from './loadgen.mjs';
import { startWorkerTimed, startPeer, snapshotWorker } from './servers.mjs';
import * as F from './flows.mjs';
import { connectProfiler, summarizeProfiles } from './profile.mjs';
import { runFar, farReport } from './far.mjs';

const num = (name, dflt) => (process.env[name] ? Number(process.env[name]) : dflt);
const list = (name, dflt) => (process.env[name] ? process.env[name].split(',').map((s) => s.trim()).filter(Boolean) : dflt);
const CFG = {
  seconds: num('BENCH_SECONDS', 5),
  maxRequests: num('BENCH_MAX_REQUESTS', 2000),
  maxFlows: num('BENCH_MAX_FLOWS', 400),
  warmup: num('BENCH_WARMUP', 20),
  maxTotalSeconds: num('BENCH_MAX_TOTAL_SECONDS', 900),
  servers: list('BENCH_SERVERS', ['floor', 'clavex', 'peer']),
  scenarios: list('BENCH_SCENARIOS', null),
  concurrency: list('BENCH_CONCURRENCY', ['1', '8']).map(Number),
  out: process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results'),
  profileSeconds: num('BENCH_PROFILE_SECONDS', 2),
};
CFG.far = process.env.BENCH_FAR !== '0' && (!CFG.scenarios || CFG.scenarios.includes('far'));
const RUN_START = performance.now();
const log = (...a) => console.log(`[bench ${((performance.now() - RUN_START) / 1000).toFixed(0).padStart(4)}s]`, ...a);

// The fixtures: one organization, one client, one user — the same on Clavex and on the peer.
const ORG = 'acme';
const CLIENT_ID = 'rocketchat';
const REDIRECT_URI = 'https://chat.acme.eu/_oauth/clavex';
const USER = { username: 'alice', email: 'alice@acme.eu', name: 'Alice Example', picture: 'https://chat.acme.eu/avatar/alice.png' };
const PASSWORD = `bench-${randomBytes(9).toString('base64url')}`;

/** PBKDF2 iterations Clavex uses (read from its source) so the peer pays a comparable password cost. */
function clavexPbkdf2Iterations() {
  if (process.env.BENCH_PEER_PBKDF2_ITERATIONS) return { value: Number(process.env.BENCH_PEER_PBKDF2_ITERATIONS), source: 'BENCH_PEER_PBKDF2_ITERATIONS' };
  for (const f of ['src/edge/password.rs', 'src/crypto.rs', 'src/edge/webcrypto.rs']) {
    try {
      const m = /ITERATIONS\s*:\s*u32\s*=\s*([\d_]+)/.exec(readFileSync(join(ROOT, f), 'utf8'));
      if (m) return { value: Number(m[1].replace(/_/g, '')), source: f };
    } catch { /* next */ }
  }
  return { value: 100_000, source: 'default (workerd caps PBKDF2 at 100,000 iterations per call)' };
}

// --- machine and build facts --------------------------------------------------------------------

function sh(cmd, args, opts = {}) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts }).trim(); } catch (e) { return `(${cmd} failed: ${String(e.message).split('\n')[0]})`; }
}

/** CPU share of every process over `ms`, top consumers first: what else was running. */
async function busyProcesses(ms = 1000) {
  const read = () => {
    const m = new Map();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const s = readFileSync(`/proc/${d}/stat`, 'utf8');
        const close = s.lastIndexOf(')');
        const f = s.slice(close + 2).split(' ');
        m.set(d, { comm: s.slice(s.indexOf('(') + 1, close), t: Number(f[11]) + Number(f[12]) });
      } catch { /* gone */ }
    }
    return m;
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  const byComm = new Map();
  for (const [pid, v] of b) {
    const d = v.t - (a.get(pid)?.t ?? v.t);
    if (d > 0) byComm.set(v.comm, (byComm.get(v.comm) ?? 0) + d);
  }
  return [...byComm].map(([comm, t]) => ({ comm, pct: (100 * t) / CLK_TCK / (ms / 1000) }))
    .filter((p) => p.pct >= 5).sort((x, y) => y.pct - x.pct).slice(0, 8);
}

function machine() {
  const model = cpus()[0]?.model ?? 'unknown';
  return {
    cores: cpus().length,
    cpuModel: model,
    memoryGiB: (totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    workerd: sh(join(ROOT, 'node_modules', '.bin', 'workerd'), ['--version']),
    wrangler: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'wrangler', 'package.json'), 'utf8')).version,
    oidcProvider: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'oidc-provider', 'package.json'), 'utf8')).version,
    rustc: sh('rustc', ['--version'], { env: { ...process.env, PATH: `${process.env.HOME}/.cargo/bin:${process.env.PATH}` } }),
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    dirty: sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock', 'migrations', 'templates']) !== '',
    builtAt: existsSync(join(ROOT, 'build', 'index_bg.wasm')) ? statSync(join(ROOT, 'build', 'index_bg.wasm')).mtime.toISOString().replace(/\.\d+Z$/, 'Z') : 'not built',
  };
}

function sizes(name, dir, config) {
  const wasm = join(dir, 'build', 'index_bg.wasm');
  const out = { name };
  if (existsSync(wasm)) {
    const buf = readFileSync(wasm);
    out.wasmRaw = buf.length;
    out.wasmGzip = gzipSync(buf, { level: 9 }).length;
  }
  const outdir = mkdtempSync(join(tmpdir(), `clavex-bench-dry-${name}-`));
  try {
    const text = execFileSync(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', outdir, '--config', config],
      { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' } });
    const m = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(text);
    if (m) { out.uploadKiB = Number(m[1]); out.uploadGzipKiB = Number(m[2]); } else out.uploadError = 'no "Total Upload" line in wrangler output';
  } catch (e) {
    out.uploadError = String(e.stderr || e.message).split('\n').filter(Boolean).slice(-3).join(' ').slice(0, 300);
  } finally { rmSync(outdir, { recursive: true, force: true }); }
  return out;
}

// --- servers --------------------------------------------------------------------------------------

async function adminCall(base, token, method, path, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (res.status !== 201 && res.status !== 200) throw new Error(`admin ${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return json;
}

async function clavexFixtures(server, adminToken) {
  const org = await adminCall(server.url, adminToken, 'POST', '/organizations', { slug: ORG, name: 'Acme Europe' });
  const client = await adminCall(server.url, adminToken, 'POST', `/organizations/${ORG}/clients`, {
    client_id: CLIENT_ID, client_name: 'Rocket.Chat', grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI], scopes: ['openid', 'profile', 'email'], token_endpoint_auth_method: 'client_secret_post',
  });
  await adminCall(server.url, adminToken, 'POST', `/organizations/${ORG}/users`, { ...USER, password: PASSWORD, email_verified: true });
  if (!client?.client_secret) throw new Error('client creation returned no client_secret');
  const issuer = org?.issuer ?? `${server.url}/${ORG}`;
  return { path: new URL(issuer).pathname.replace(/\/$/, ''), clientSecret: client.client_secret };
}

function target(server, path, clientSecret, sockets) {
  return {
    client: makeClient(server.url, sockets), path, clientId: CLIENT_ID, clientSecret, redirectUri: REDIRECT_URI,
    username: USER.username, password: PASSWORD,
  };
}

/** One SSO session and one token set per virtual user (a login flow each). */
async function sessions(t, count) {
  const vus = [];
  for (let i = 0; i < count; i += 1) {
    const { code, jar } = await F.loginToCode(t);
    const tok = await F.exchangeCode(t, code);
    if (!tok.refresh_token) throw new Error('code exchange returned no refresh_token');
    if (!tok.id_token) throw new Error('code exchange returned no id_token');
    vus.push({ jar, accessToken: tok.access_token, refreshToken: tok.refresh_token });
  }
  return vus;
}

// --- scenarios ------------------------------------------------------------------------------------

async function pool(n, concurrency, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

/**
 * Scenarios whose requests need something minted right before (single-use codes, login forms):
 * mint a batch untimed, then time only the requests that consume it; repeat within the bounds.
 */
async function runRounds({ conc, maxItems, seconds, batch, mint, consume, cpuPids, hooks, sent }) {
  const runs = [];
  let done = 0;
  let measured = 0;
  const wallDeadline = performance.now() + 4 * seconds * 1000;
  while (done < maxItems && measured < seconds && performance.now() < wallDeadline) {
    const items = await pool(Math.min(batch, maxItems - done), 4, mint);
    const r = await runLoad({ concurrency: conc, maxIterations: items.length, maxSeconds: seconds - measured, cpuPids, hooks, sent, iteration: (_vu, i) => consume(items[i]) });
    runs.push(r);
    done += items.length;
    measured += r.elapsed;
    if (r.errors > r.ok) break;
  }
  return mergeRuns(runs);
}

const okStatus = (res, what) => { if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${res.body.slice(0, 200)}`); };
const floorForm = (grant) => ({ grant_type: grant, code: randomBytes(24).toString('base64url'), redirect_uri: REDIRECT_URI, client_id: CLIENT_ID, client_secret: randomBytes(32).toString('base64url') });

/** kind single: one HTTP request per op; flow: several. requests = HTTP requests per op (Clavex). */
const SCENARIOS = [
  {
    key: 'discovery', label: 'discovery', kind: 'single', floor: true, budgetMs: 0.5,
    op: async (s) => {
      const res = await s.t.client.request('GET', `${s.t.path}/.well-known/openid-configuration`);
      okStatus(res, 'discovery');
      if (s.name !== 'floor' && !JSON.parse(res.body).issuer) throw new Error('discovery without issuer');
    },
  },
  {
    key: 'jwks', label: 'JWKS', kind: 'single', floor: true, budgetMs: 0.5,
    op: async (s) => {
      const res = await s.t.client.request('GET', `${s.t.path}/jwks`);
      okStatus(res, 'jwks');
      if (s.name !== 'floor' && !JSON.parse(res.body).keys?.length) throw new Error('JWKS without keys');
    },
  },
  {
    key: 'token', label: 'code exchange (token)', kind: 'single', floor: true, budgetMs: 2, rounds: true, batch: 100,
    mint: (s, i) => F.ssoCode(s.t, s.vus[i % s.vus.length].jar),
    consume: (s, code) => F.exchangeCode(s.t, code),
    op: async (s) => okStatus(await s.t.client.request('POST', `${s.t.path}/token`, { form: floorForm('authorization_code') }), 'token'),
  },
  {
    key: 'refresh', label: 'refresh (token)', kind: 'single', floor: true, budgetMs: 2,
    op: async (s, vu) => {
      if (s.name === 'floor') return okStatus(await s.t.client.request('POST', `${s.t.path}/token`, { form: floorForm('refresh_token') }), 'refresh');
      const v = s.vus[vu];
      const tok = await F.refresh(s.t, v.refreshToken);
      if (tok.refresh_token) v.refreshToken = tok.refresh_token;
      v.accessToken = tok.access_token;
    },
  },
  {
    key: 'userinfo', label: 'userinfo', kind: 'single', floor: true, budgetMs: 0.5,
    op: async (s, vu) => {
      if (s.name === 'floor') return okStatus(await s.t.client.request('GET', `${s.t.path}/userinfo`, { headers: { Authorization: `Bearer ${randomBytes(32).toString('base64url')}` } }), 'userinfo');
      await F.userinfo(s.t, s.vus[vu].accessToken);
    },
  },
  {
    key: 'sso', label: 'SSO flow (authorize → code → token → userinfo)', kind: 'flow',
    op: async (s, vu) => {
      const code = await F.ssoCode(s.t, s.vus[vu].jar);
      const tok = await F.exchangeCode(s.t, code);
      await F.userinfo(s.t, tok.access_token);
    },
  },
  {
    key: 'login', label: 'password login flow (authorize → login form → code → token)', kind: 'flow',
    op: async (s) => {
      const { code } = await F.loginToCode(s.t);
      await F.exchangeCode(s.t, code);
    },
  },
  {
    key: 'loginPost', label: 'login POST alone (password hash)', kind: 'flow', rounds: true, batch: 40,
    mint: (s) => F.openLoginForm(s.t),
    consume: (s, opened) => F.postLogin(s.t, opened),
  },
  {
    key: 'calD1', label: 'floor + one D1 query (SELECT 1)', kind: 'single', floor: true, floorOnly: true,
    op: async (s) => okStatus(await s.t.client.request('GET', '/_calibrate/d1'), 'calibrate d1'),
  },
  {
    key: 'calKV', label: 'floor + one KV read', kind: 'single', floor: true, floorOnly: true,
    op: async (s) => okStatus(await s.t.client.request('GET', '/_calibrate/kv'), 'calibrate kv'),
  },
];
const MAIN = SCENARIOS.filter((x) => !x.floorOnly);

async function healthy(s) {
  try {
    const res = await s.t.client.request('GET', '/healthz', { timeoutMs: 5000 });
    return res.status === 200;
  } catch { return false; }
}

/** One measured run (after its warm-up). `hooks` ({before, after}) wrap each timed part only. */
async function measure(scn, s, conc, { seconds = CFG.seconds, hooks } = {}) {
  const cpuPids = s.cpuPids();
  const single = scn.kind === 'single';
  const maxItems = single ? CFG.maxRequests : CFG.maxFlows;
  if (scn.rounds && s.name !== 'floor') {
    if (CFG.warmup > 0) await runRounds({ conc, maxItems: Math.min(CFG.warmup, 20), seconds: 2, batch: 20, mint: (i) => scn.mint(s, i), consume: (x) => scn.consume(s, x), cpuPids: [] });
    return runRounds({ conc, maxItems, seconds, batch: scn.batch, mint: (i) => scn.mint(s, i), consume: (x) => scn.consume(s, x), cpuPids, hooks, sent: s.t.client.sent });
  }
  if (CFG.warmup > 0) {
    const w = await runLoad({ concurrency: conc, maxIterations: CFG.warmup, maxSeconds: 2, iteration: (vu) => scn.op(s, vu), maxErrors: CFG.warmup });
    if (w.ok === 0 && w.errors > 0) throw new Error(`warm-up failed: ${w.errorSamples.join(' / ')}`);
  }
  return runLoad({ concurrency: conc, maxIterations: maxItems, maxSeconds: seconds, cpuPids, hooks, sent: s.t.client.sent, iteration: (vu) => scn.op(s, vu) });
}

/**
 * A separate pass after the measured runs: each Clavex scenario again at c=1 for a few seconds
 * with the V8 sampling profiler on (its overhead never touches the measured numbers).
 */
async function profilePass(servers, results) {
  const out = {};
  for (const name of ['clavex', 'floor']) {
    const s = servers[name];
    if (!s?.server || s.failed || !(await healthy(s))) continue;
    let prof = s.profiler;
    if (!prof) {
      try {
        prof = await connectProfiler(s.server.pid);
      } catch (e) { out[name] = { failed: `${s.profilerError ?? ''} ${e.message}`.trim() }; continue; }
    }
    out[name] = {};
    try {
      for (const scn of MAIN) {
        if (name === 'floor' && (!scn.floor || scn.key !== 'discovery')) continue;
        if (!results[scn.key] || (name === 'clavex' && ['token', 'refresh', 'userinfo', 'sso'].includes(scn.key) && s.sessionError)) continue;
        const profiles = [];
        try {
          const run = await measure(scn, s, 1, {
            seconds: CFG.profileSeconds,
            hooks: { before: () => prof.start(), after: async () => { profiles.push(await prof.stop()); } },
          });
          out[name][scn.key] = summarizeProfiles(profiles.filter(Boolean), run.ok);
          log(`profile ${scn.key} ${name}: sampled busy ${fms(out[name][scn.key].busyMsPerOp)} ms/op over ${run.ok} ops`);
        } catch (e) {
          out[name][scn.key] = { failed: e.message.split('\n')[0] };
        }
      }
      await prof.nameAnonymous(Object.values(out[name]));
    } finally { prof.close(); }
  }
  return out;
}

// --- report ---------------------------------------------------------------------------------------

const f1 = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '—');
const fms = (x) => (Number.isFinite(x) ? (x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '—');
const fratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—');
const kib = (b) => (b === undefined ? '—' : `${(b / 1024).toFixed(1)} KiB`);

function cell(r) {
  if (!r) return { rate: '—', p50: '—', p99: '—' };
  if (r.failed) return { rate: `FAILED: ${r.failed.replace(/\|/g, '/').slice(0, 120)}`, p50: '—', p99: '—' };
  const err = r.errors ? ` (${r.errors} err)` : '';
  return { rate: `${f1(r.rate)}${err}`, p50: fms(r.p50), p99: fms(r.p99) };
}
const good = (r) => r && !r.failed && r.ok > 0;

function report({ results, profiles = {}, far, info, sizeInfo, starts, iterations, busyBefore, busyAfter, notes, elapsed }) {
  const L = [];
  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  L.push(`# Clavex benchmark — ${when}`, '');
  L.push(`Machine: ${info.cores} cores, ${info.cpuModel}, ${info.memoryGiB} GiB; Node ${info.node}, workerd ${info.workerd.replace(/^workerd\s*/, '')}, wrangler ${info.wrangler}, oidc-provider ${info.oidcProvider}, ${info.rustc}.`);
  L.push(`Clavex commit ${info.commit}${info.dirty ? ' (with uncommitted changes in the work tree)' : ''}, release build of ${info.builtAt}, served from a frozen copy of build/ made at the start of the run. Whole run ${elapsed.toFixed(0)} s.`);
  L.push(`Bounds per server, scenario and concurrency: ${CFG.seconds} s or ${CFG.maxRequests} requests / ${CFG.maxFlows} flows, whichever first, after ${CFG.warmup} warm-up iterations. Load generator: one Node process (bench/loadgen.mjs, keep-alive HTTP/1.1), c = virtual users.`);
  const busy = (b) => (b.length ? b.map((p) => `${p.comm} ${p.pct.toFixed(0)}%`).join(', ') : 'nothing above 5%');
  L.push(`Other processes on the machine (CPU share over 1 s): before the run: ${busy(busyBefore)}; after: ${busy(busyAfter)}. Load average before/after: ${notes.loadBefore} / ${notes.loadAfter}.`);
  if (busyBefore.length || busyAfter.length) L.push('**Other processes were running during the run: absolute numbers are noisy; compare the columns of one run, not across runs.**');
  L.push('');

  L.push('## Throughput and latency', '');
  L.push('Requests per second for single requests, flows per second for flows; latency of one request or one whole flow. ÷ = Clavex throughput divided by the floor\'s / the peer\'s.', '');
  L.push('| scenario | c | Clavex /s | p50 ms | p99 ms | floor /s | p50 ms | p99 ms | peer /s | p50 ms | p99 ms | Clavex ÷ floor | Clavex ÷ peer |');
  L.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const scn of MAIN) {
    for (const c of CFG.concurrency) {
      const r = results[scn.key]?.[c];
      if (!r) continue;
      const [a, b, p] = [cell(r.clavex), scn.floor ? cell(r.floor) : { rate: 'n/a', p50: '', p99: '' }, cell(r.peer)];
      L.push(`| ${scn.label} | ${c} | ${a.rate} | ${a.p50} | ${a.p99} | ${b.rate} | ${b.p50} | ${b.p99} | ${p.rate} | ${p.p50} | ${p.p99} | ${good(r.clavex) && good(r.floor) ? fratio(r.clavex.rate, r.floor.rate) : '—'} | ${good(r.clavex) && good(r.peer) ? fratio(r.clavex.rate, r.peer.rate) : '—'} |`);
    }
  }
  const rpf = MAIN.filter((x) => x.kind === 'flow' && !x.rounds).map((scn) => {
    const per = (srv) => {
      const r = CFG.concurrency.map((c) => results[scn.key]?.[c]?.[srv]).find(good);
      return r && Number.isFinite(r.requestsPerOp) ? r.requestsPerOp.toFixed(1) : '—';
    };
    return `${scn.label.split(' (')[0]}: Clavex ${per('clavex')}, peer ${per('peer')}`;
  });
  L.push('', `HTTP requests per flow, as sent: ${rpf.join('; ')}.`);
  L.push('');

  L.push('## CPU per request', '');
  L.push('Process CPU time (utime + stime from /proc/<pid>/stat, before/after each measured run) divided by the requests (or flows) served: "op" is one request, or one whole flow for the flow rows. Clavex and the floor: both workerd processes of `wrangler dev` (the dev proxy that owns the port and the runtime that runs the Worker); "runtime" is the latter alone. Net = Clavex − floor for the same request shape: what Clavex\'s own code costs above the cheapest possible Worker. Peer: the Node process. Budgets are from issue #5 and are reported, not asserted; "within?" is judged on the measured value and on the net value. Caveat: locally the runtime process also runs Miniflare\'s D1 and KV simulators (SQLite), so Clavex\'s numbers include storage work that production does outside the Worker and does not bill as its CPU time; the floor does no storage, so net-of-floor still contains it.', '');
  L.push('| scenario | c | Clavex ms/op | runtime ms/op | floor ms/op | Clavex net ms/op | peer ms/op | budget | within? (measured / net) |');
  L.push('|---|--:|--:|--:|--:|--:|--:|--:|--|');
  for (const scn of MAIN) {
    for (const c of CFG.concurrency) {
      const r = results[scn.key]?.[c];
      if (!r) continue;
      const a = good(r.clavex) ? r.clavex : null;
      const fl = scn.floor && good(r.floor) ? r.floor : null;
      const net = a && fl ? a.cpuPerOpMs - fl.cpuPerOpMs : NaN;
      let within = '';
      if (scn.budgetMs) {
        within = a ? `${a.cpuPerOpMs <= scn.budgetMs ? 'yes' : 'no'} / ${Number.isFinite(net) ? (net <= scn.budgetMs ? 'yes' : 'no') : '—'}` : 'FAILED';
      }
      L.push(`| ${scn.label} | ${c} | ${a ? fms(a.cpuPerOpMs) : (r.clavex?.failed ? 'FAILED' : '—')} | ${a ? fms(a.runtimeCpuPerOpMs) : '—'} | ${fl ? fms(fl.cpuPerOpMs) : (scn.floor ? '—' : 'n/a')} | ${fms(net)} | ${good(r.peer) ? fms(r.peer.cpuPerOpMs) : '—'} | ${scn.budgetMs ? `≤ ${scn.budgetMs} ms` : ''} | ${within} |`);
    }
  }
  const cal = SCENARIOS.filter((x) => x.floorOnly && results[x.key]);
  if (cal.length) {
    L.push('', 'Storage calibration (the floor Worker, same workerd): what one local D1 query or KV read adds to a request under `wrangler dev` — to read the net values above against Clavex\'s storage calls per request.', '');
    L.push('| calibration | c | requests/s | p50 ms | CPU ms/request | added over the plain floor (discovery shape) |');
    L.push('|---|--:|--:|--:|--:|--:|');
    for (const scn of cal) {
      for (const c of CFG.concurrency) {
        const r = results[scn.key]?.[c]?.floor;
        const base = results.discovery?.[c]?.floor;
        L.push(`| ${scn.label} | ${c} | ${good(r) ? f1(r.rate) : 'FAILED'} | ${good(r) ? fms(r.p50) : '—'} | ${good(r) ? fms(r.cpuPerOpMs) : '—'} | ${good(r) && good(base) ? fms(r.cpuPerOpMs - base.cpuPerOpMs) : '—'} |`);
      }
    }
  }
  L.push('', `CPU time is read in clock ticks of ${1000 / CLK_TCK} ms, over a whole measured run (hundreds of requests), so per-request values finer than that are averages, not single samples.`, '');

  const pc = profiles.clavex;
  if (pc && !pc.failed && Object.keys(pc).length) {
    L.push('## Where Clavex\'s isolate spends its time', '');
    L.push(`A separate pass after the measured runs: each scenario again at c=1 for ${CFG.profileSeconds} s with V8\'s sampling profiler attached through \`wrangler dev\`\'s inspector, timed parts only. It sees the Worker\'s own isolate only — not the dev proxy, not the local D1/KV simulators, but the JS side of the bindings (D1/KV client wrappers, Miniflare\'s middleware) and the wasm. "Sampled busy" is the time between non-idle samples: the profiler inflates it (compare with the floor\'s figure below, and read the split and the top functions rather than the absolute value). Self time in ms per request (per flow for flows); wasm functions carry their Rust names, minified JS its short names.`, '');
    const fl = profiles.floor?.discovery;
    if (fl && !fl.failed) L.push(`For reference, the floor Worker\'s isolate, profiled the same way: ${fms(fl.busyMsPerOp)} ms sampled busy per request (discovery shape; wasm ${fms(fl.categories.wasm ?? 0)}, JS ${fms(fl.categories.js ?? 0)}).`, '');
    L.push('| scenario | profiled ops | sampled busy ms/op | wasm | wasm↔JS | JS | GC | program | top self time (ms/op) |');
    L.push('|---|--:|--:|--:|--:|--:|--:|--:|---|');
    for (const scn of MAIN) {
      const p = pc[scn.key];
      if (!p) continue;
      if (p.failed) { L.push(`| ${scn.label} | FAILED: ${p.failed.replace(/\|/g, '/').slice(0, 100)} | | | | | | | |`); continue; }
      const c = p.categories;
      const top = p.top.slice(0, 6).map((t) => `\`${t.name.replace(/[|`]/g, '').replace(/::h[0-9a-f]{16}$/, '')}\` ${fms(t.msPerOp)}`).join('; ');
      L.push(`| ${scn.label} | ${p.ops} | ${fms(p.busyMsPerOp)} | ${fms(c.wasm ?? 0)} | ${fms(c['wasm↔js'] ?? 0)} | ${fms(c.js ?? 0)} | ${fms(c.gc ?? 0)} | ${fms(c['runtime (program)'] ?? 0)} | ${top} |`);
    }
    L.push('');
  } else if (pc?.failed) {
    L.push('## Where Clavex\'s isolate spends its time', '', `Profiling failed: ${pc.failed}`, '');
  }

  L.push('## Password hash', '');
  L.push(`Login deliberately pays for a password hash (Clavex: PBKDF2-HMAC-SHA256 through WebCrypto; the peer was given PBKDF2-HMAC-SHA256 with ${iterations.value.toLocaleString('en')} iterations through node:crypto, the count read from ${iterations.source}). It bounds login throughput on purpose.`, '');
  L.push('| measure | c | Clavex | peer |');
  L.push('|---|--:|--:|--:|');
  for (const c of CFG.concurrency) {
    const lp = results.loginPost?.[c];
    const lg = results.login?.[c];
    const ss = results.sso?.[c];
    const v = (r, k, fmt = fms) => (good(r) ? fmt(r[k]) : r?.failed ? 'FAILED' : '—');
    L.push(`| login POST alone: p50 / p99 ms | ${c} | ${v(lp?.clavex, 'p50')} / ${v(lp?.clavex, 'p99')} | ${v(lp?.peer, 'p50')} / ${v(lp?.peer, 'p99')} |`);
    L.push(`| login POST alone: CPU ms/request | ${c} | ${v(lp?.clavex, 'cpuPerOpMs')} | ${v(lp?.peer, 'cpuPerOpMs')} |`);
    L.push(`| login POST alone: requests/s | ${c} | ${v(lp?.clavex, 'rate', f1)} | ${v(lp?.peer, 'rate', f1)} |`);
    const diff = (srv) => (good(lg?.[srv]) && good(ss?.[srv]) ? fms(lg[srv].cpuPerOpMs - ss[srv].cpuPerOpMs) : '—');
    L.push(`| CPU ms/flow: login flow − SSO flow | ${c} | ${diff('clavex')} | ${diff('peer')} |`);
  }
  L.push('');

  if (far) L.push(...farReport(far));

  L.push('## Size and start-up', '');
  const [cz, fz] = [sizeInfo.clavex ?? {}, sizeInfo.floor ?? {}];
  const up = (z) => (z.uploadKiB !== undefined ? `${z.uploadKiB} KiB / gzip ${z.uploadGzipKiB} KiB` : `FAILED: ${z.uploadError ?? 'not measured'}`);
  const st = (s) => (s?.startMs !== undefined ? `${s.startMs.toFixed(0)} ms` : s?.failed ? `FAILED: ${s.failed.slice(0, 100)}` : '—');
  L.push('| | Clavex | floor | peer |');
  L.push('|---|--:|--:|--:|');
  L.push(`| wasm raw | ${kib(cz.wasmRaw)} | ${kib(fz.wasmRaw)} | n/a |`);
  L.push(`| wasm gzip -9 | ${kib(cz.wasmGzip)} | ${kib(fz.wasmGzip)} | n/a |`);
  L.push(`| upload (\`wrangler deploy --dry-run\`) | ${up(cz)} | ${up(fz)} | n/a |`);
  L.push(`| start → first answer | ${st(starts.clavex)} | ${st(starts.floor)} | ${st(starts.peer)} |`);
  L.push('', 'Start → first answer: from spawning `wrangler dev --local` (D1 migrations already applied) to the first 200 from /healthz, polled every 20 ms; for the peer, from spawning `node` to the first 200 from discovery.', '');

  L.push('## Budgets (issue #5)', '');
  L.push('| budget | value | within? |');
  L.push('|---|--:|--|');
  for (const scn of MAIN.filter((x) => x.budgetMs)) {
    for (const c of CFG.concurrency) {
      const a = results[scn.key]?.[c]?.clavex;
      const fl = results[scn.key]?.[c]?.floor;
      const net = good(a) && good(fl) ? a.cpuPerOpMs - fl.cpuPerOpMs : NaN;
      const netText = Number.isFinite(net) ? `; net of floor ${fms(net)} ms` : '';
      const netOk = Number.isFinite(net) ? ` (net: ${net <= scn.budgetMs ? 'yes' : 'no'})` : '';
      L.push(`| CPU/request ${scn.label}, c=${c} ≤ ${scn.budgetMs} ms | ${good(a) ? `${fms(a.cpuPerOpMs)} ms${netText}` : 'FAILED'} | ${good(a) ? `${a.cpuPerOpMs <= scn.budgetMs ? 'yes' : 'no'}${netOk}` : 'no (failed)'} |`);
    }
  }
  for (const c of CFG.concurrency) {
    const r = results.sso?.[c];
    const ok = good(r?.clavex) && good(r?.peer);
    L.push(`| SSO flows/s ≥ 3× peer, c=${c} | ${ok ? fratio(r.clavex.rate, r.peer.rate) : 'FAILED'} | ${ok ? (r.clavex.rate >= 3 * r.peer.rate ? 'yes' : 'no') : 'no (failed)'} |`);
  }
  const ceilings = CFG.concurrency.map((c) => {
    const floorRates = MAIN.filter((x) => x.floor).map((x) => results[x.key]?.[c]?.floor).filter(good).map((r) => r.rate);
    const peer = results.sso?.[c]?.peer;
    if (!floorRates.length || !good(peer)) return null;
    const ceiling = Math.max(...floorRates) / 3;
    return `c=${c}: ${f1(ceiling)} flows/s = ${fratio(ceiling, peer.rate)} the peer`;
  }).filter(Boolean);
  if (ceilings.length) notes.ssoCeiling = `An SSO flow is 3 requests to Clavex; under \`wrangler dev\` on this machine even the floor Worker would top out at (its best requests/s) ÷ 3 — ${ceilings.join('; ')}. That is the most any Worker could show here against the 3× budget.`;
  L.push(`| gzipped upload ≤ 1 MiB | ${cz.uploadGzipKiB !== undefined ? `${cz.uploadGzipKiB} KiB` : 'FAILED'} | ${cz.uploadGzipKiB !== undefined ? (cz.uploadGzipKiB <= 1024 ? 'yes' : 'no') : 'no (failed)'} |`);
  L.push('');

  if (notes.ssoCeiling) L.push(notes.ssoCeiling, '');
  L.push('## How the three servers were set up', '');
  L.push('- **Clavex**: `scripts/build.sh` (worker-build --release), `wrangler dev --local` with fresh local D1/KV; organization, client and user created through the admin API.');
  L.push('- **floor**: bench/floor — a Rust Worker answering a fixed JSON body to every request, built the same way (worker-build --release, same toolchain and versions), same workerd. It gets the same request shapes (paths, methods, bodies) for the single-request scenarios.');
  L.push('- **peer**: bench/peer/oidc-provider-server.mjs — oidc-provider on this Node, issuer mounted at /acme with the same routes, the same client (client_secret_post, same redirect URI), the same user, RS256, refresh tokens rotated on every use, in-memory store, no consent page (first-party grant), a minimal login page of our own. Its login flow takes one more redirect hop than Clavex\'s (authorize → /interaction/… page → POST → resume → code), which is how oidc-provider works.');
  L.push('- Code exchange: codes are minted through the SSO path right before each batch and only the token requests are timed. Login POST alone: login pages are fetched right before each batch and only the POSTs are timed.');
  if (notes.extra.length) { L.push('', '## Notes', ''); for (const n of notes.extra) L.push(`- ${n}`); }
  L.push('');
  return L.join('\n');
}

// --- main -------------------------------------------------------------------------------------------

async function main() {
  const info = machine();
  const notes = { extra: [], loadBefore: loadavg().map((x) => x.toFixed(2)).join(' ') };
  log(`machine: ${info.cores} cores, ${info.cpuModel}; Clavex commit ${info.commit}${info.dirty ? ' (dirty)' : ''}`);
  const busyBefore = await busyProcesses();
  const iterations = clavexPbkdf2Iterations();

  // Serve frozen copies of both builds: the work tree may be rebuilt by someone else mid-run, and
  // `wrangler dev` would reload the Worker under load.
  const snaps = {};
  if (CFG.servers.includes('clavex')) snaps.clavex = snapshotWorker(ROOT, 'clavex');
  if (CFG.servers.includes('floor')) snaps.floor = snapshotWorker(join(ROOT, 'bench', 'floor'), 'floor');
  process.on('exit', () => { for (const x of Object.values(snaps)) x.remove(); });
  const sizeInfo = {};
  if (snaps.clavex) { log('sizes: Clavex (wrangler deploy --dry-run)'); sizeInfo.clavex = sizes('clavex', snaps.clavex.dir, snaps.clavex.config); }
  if (snaps.floor) { log('sizes: floor'); sizeInfo.floor = sizes('floor', snaps.floor.dir, snaps.floor.config); }

  const servers = {};
  const starts = {};
  const stopAll = () => { for (const s of Object.values(servers)) { try { s.server?.stop(); } catch { /* gone */ } } };
  process.on('SIGINT', () => { stopAll(); process.exit(130); });
  process.on('SIGTERM', () => { stopAll(); process.exit(143); });
  const maxConc = Math.max(...CFG.concurrency);

  try {
    if (CFG.servers.includes('floor')) {
      log('starting the floor Worker');
      try {
        const server = await startWorkerTimed({ name: 'floor', config: snaps.floor.config, cwd: snaps.floor.dir, migrate: false });
        starts.floor = { startMs: server.startMs };
        servers.floor = { name: 'floor', server, cpuPids: server.cpuPids, t: target(server, `/${ORG}`, 'x', maxConc) };
      } catch (e) { starts.floor = { failed: e.message }; servers.floor = { name: 'floor', failed: `start: ${e.message.split('\n')[0]}` }; }
    }
    if (CFG.servers.includes('clavex')) {
      log('starting Clavex');
      const adminToken = randomBytes(24).toString('base64url');
      try {
        const server = await startWorkerTimed({
          name: 'clavex', config: snaps.clavex.config, cwd: snaps.clavex.dir,
          vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'), PUBLIC_BASE_URL: '' },
        });
        starts.clavex = { startMs: server.startMs };
        servers.clavex = { name: 'clavex', server, cpuPids: server.cpuPids };
        try {
          const fx = await clavexFixtures(server, adminToken);
          servers.clavex.t = target(server, fx.path, fx.clientSecret, maxConc);
        } catch (e) {
          servers.clavex.failed = `fixtures: ${e.message}`;
          servers.clavex.t = target(server, `/${ORG}`, 'x', maxConc);
        }
      } catch (e) { starts.clavex = { failed: e.message }; servers.clavex = { name: 'clavex', failed: `start: ${e.message.split('\n')[0]}` }; }
    }
    if (CFG.servers.includes('peer')) {
      log(`starting the peer (oidc-provider, PBKDF2 ${iterations.value} iterations)`);
      const clientSecret = randomBytes(32).toString('base64url');
      try {
        const server = await startPeer({ org: ORG, clientId: CLIENT_ID, clientSecret, redirectUri: REDIRECT_URI, user: USER, password: PASSWORD, iterations: iterations.value });
        starts.peer = { startMs: server.startMs };
        servers.peer = { name: 'peer', server, cpuPids: server.cpuPids, t: target(server, `/${ORG}`, clientSecret, maxConc) };
      } catch (e) { starts.peer = { failed: e.message }; servers.peer = { name: 'peer', failed: `start: ${e.message.split('\n')[0]}` }; }
    }
    // The inspector connection for the profile pass is made now, while the Workers are fresh:
    // late in a long run wrangler's inspector proxy was seen not to accept new connections. Only
    // the Profiler domain is enabled; no profiling runs until the profile pass.
    if (CFG.profileSeconds > 0) {
      for (const name of ['clavex', 'floor']) {
        const s = servers[name];
        if (!s?.server || s.failed) continue;
        try { s.profiler = await connectProfiler(s.server.pid); } catch (e) { s.profilerError = `at start: ${e.message};`; }
      }
    }
    const scenarios = SCENARIOS.filter((x) => !CFG.scenarios || CFG.scenarios.includes(x.key));
    for (const name of ['clavex', 'peer']) {
      const s = servers[name];
      if (!s || s.failed || !scenarios.length) continue;
      try {
        s.vus = await sessions(s.t, maxConc);
      } catch (e) { s.sessionError = e.message; }
      const roles = s.server.roles();
      log(`${name}: ${s.sessionError ? `no sessions (${s.sessionError.slice(0, 160)})` : `${maxConc} sessions ready`}; processes measured: ${JSON.stringify(roles)}`);
    }

    const results = {};
    for (const scn of scenarios) {
      results[scn.key] = {};
      for (const c of CFG.concurrency) {
        const row = (results[scn.key][c] = {});
        for (const name of ['floor', 'clavex', 'peer']) {
          const s = servers[name];
          if (!s) continue;
          if (name === 'floor' && !scn.floor) continue;
          if (name !== 'floor' && scn.floorOnly) continue;
          if (s.failed) { row[name] = { failed: s.failed }; continue; }
          const needsSession = name !== 'floor' && ['token', 'refresh', 'userinfo', 'sso'].includes(scn.key);
          if (needsSession && s.sessionError) { row[name] = { failed: `setup: ${s.sessionError}` }; continue; }
          if ((performance.now() - RUN_START) / 1000 > CFG.maxTotalSeconds) { row[name] = { failed: 'skipped: whole-run time bound reached' }; continue; }
          if (!(await healthy(s))) {
            row[name] = { failed: 'server not answering /healthz (hung or crashed)' };
            s.unhealthy = (s.unhealthy ?? 0) + 1;
            log(`${scn.key} c=${c} ${name}: FAILED server not answering /healthz`);
            continue;
          }
          try {
            const roles = s.server.roles();
            const run = await measure(scn, s, c);
            const sum = summarize(run, roles);
            sum.runtimeCpuPerOpMs = sum.cpuPerOpMsByRole.runtime ?? NaN;
            if (sum.ok === 0) sum.failed = `every request failed: ${run.errorSamples.join(' / ')}`;
            else if (sum.errors > sum.ok) sum.failed = `${sum.errors} errors vs ${sum.ok} ok: ${run.errorSamples.join(' / ')}`;
            row[name] = sum;
            log(`${scn.key} c=${c} ${name}: ${sum.failed ? `FAILED ${sum.failed.slice(0, 200)}` : `${f1(sum.rate)}/s p50 ${fms(sum.p50)} p99 ${fms(sum.p99)} ms, cpu ${fms(sum.cpuPerOpMs)} ms/op, ${sum.ok} ok${sum.errors ? `, ${sum.errors} errors: ${sum.errorSamples[0]}` : ''}`}`);
          } catch (e) {
            row[name] = { failed: e.message.split('\n')[0] };
            log(`${scn.key} c=${c} ${name}: FAILED ${e.message.slice(0, 200)}`);
          }
        }
      }
    }

    let far = null;
    if (CFG.far) {
      log(`far-user section (c=1, ${process.env.BENCH_FAR_ITERATIONS ?? 30} iterations per row)`);
      const p = servers.peer;
      far = await runFar({
        clavex: snaps.clavex ? { config: snaps.clavex.config, cwd: snaps.clavex.dir, fixtures: clavexFixtures } : null,
        peer: p?.server && !p.failed ? { url: p.server.url, t: p.t } : null,
        base: { clientId: CLIENT_ID, redirectUri: REDIRECT_URI, username: USER.username, password: PASSWORD },
        timeLeft: () => CFG.maxTotalSeconds - (performance.now() - RUN_START) / 1000,
        log,
      });
    }

    let profiles = {};
    if (CFG.profileSeconds > 0) {
      log('profile pass (V8 sampling profiler through the inspector; not part of the measured numbers)');
      profiles = await profilePass(servers, results);
    }
    notes.loadAfter = loadavg().map((x) => x.toFixed(2)).join(' ');
    const busyAfter = await busyProcesses();
    for (const name of ['clavex', 'peer']) if (servers[name]?.failed) notes.extra.push(`${name} failed: ${servers[name].failed.slice(0, 300)}`);
    for (const name of ['clavex', 'floor', 'peer']) {
      const s = servers[name];
      const anyFailed = Object.values(results).some((byC) => Object.values(byC).some((row) => row[name]?.failed));
      if (s?.server && anyFailed) {
        const tail = s.server.output().split('\n').filter((l) => l.trim() && !/Request\.cf|ENOTFOUND workers\.cloudflare|GetAddrInfoReqWrap|WARNING: Unsupported runtime/.test(l)).slice(-12).join('\n');
        if (tail) notes.extra.push(`${name} had failures; last lines of its output:\n\n\`\`\`\n${tail.slice(-2500)}\n\`\`\``);
      }
    }
    if (servers.clavex?.sessionError) notes.extra.push(`Clavex login/session setup failed: ${servers.clavex.sessionError.slice(0, 300)}`);
    if (servers.peer?.sessionError) notes.extra.push(`peer login/session setup failed: ${servers.peer.sessionError.slice(0, 300)}`);
    const elapsed = (performance.now() - RUN_START) / 1000;
    const md = report({ results, profiles, far, info, sizeInfo, starts, iterations, busyBefore, busyAfter, notes, elapsed });
    mkdirSync(CFG.out, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
    writeFileSync(join(CFG.out, 'latest.md'), md);
    writeFileSync(join(CFG.out, 'latest.json'), `${JSON.stringify({ when: new Date().toISOString(), config: CFG, info, sizeInfo, starts, iterations, busyBefore, busyAfter, notes, results, far, profiles }, (k, v) => (k === 'latencies' ? undefined : v), 2)}\n`);
    copyFileSync(join(CFG.out, 'latest.md'), join(CFG.out, `${stamp}.md`));
    console.log(`\n${md}`);
    log(`wrote ${join(CFG.out, 'latest.md')} and ${stamp}.md`);
  } finally {
    if (process.env.BENCH_DEBUG) for (const s of Object.values(servers)) console.log(`--- ${s.name} output\n${s.server?.output().slice(-50000)}`);
    for (const s of Object.values(servers)) s.t?.client.close();
    stopAll();
  }
}

await main();
// The servers' process groups were told to stop; give them a moment, then leave.
setTimeout(() => process.exit(0), 500).unref();
