// `make soak`: one Clavex under `wrangler dev --local`, driven for a bounded time by a fixed number
// of virtual users that never pause, each looping over a fixed weighted mix of what a deployment
// sees at once: password sign-ins, SSO sign-ins, code exchanges, refreshes, userinfo and admin
// writes. The benchmark measures each request alone; the soak asks whether they hold up together
// (no 5xx, no timeouts, no wrong answers while D1/KV are written from every side).
// Writes bench/results/soak-latest.md and .json; exits non-zero on any 5xx, timeout or wrong answer.
//
// SOAK_SECONDS (default 120, capped at 300), SOAK_CONCURRENCY (8, capped at 64), SOAK_USERS
// (2 per virtual user), SOAK_SEED (1: the same sequence of actions per virtual user every run).
// Loopback only: the client refuses any other host (bench/loadgen.mjs).
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorker, ROOT } from '../tests/support/worker.mjs';
import { makeClient, Jar, parseLoginForm, percentile } from './loadgen.mjs';
import { authorizePath } from './flows.mjs';

const num = (v, d) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : d);
const SECONDS = Math.min(num(process.env.SOAK_SECONDS, 120), 300);
const CONCURRENCY = Math.min(Math.floor(num(process.env.SOAK_CONCURRENCY, 8)), 64);
const USERS = Math.floor(num(process.env.SOAK_USERS, CONCURRENCY * 2));
const SEED = Math.floor(num(process.env.SOAK_SEED, 1));
const TIMEOUT_MS = 10_000;
const GROUPS = ['soak-eng', 'soak-ops', 'soak-sales', 'soak-support'];
const ORG = 'acme';
const CLIENT_ID = 'rocketchat';
const REDIRECT_URI = 'http://127.0.0.1:3000/_oauth/clavex';
const BROWSER = { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'User-Agent': 'Mozilla/5.0 (clavex-soak)' };
const rand = () => randomBytes(12).toString('base64url');

// The fixed mix: one action per loop turn, drawn with these weights. Reads outnumber sign-ins and
// writes as they do in a chat deployment, but every kind comes often enough to be seen thousands
// of times in two minutes. A sign-in always ends in its code exchange (codes are one-shot and short-lived).
const MIX = [
  ['password sign-in + token', 2],
  ['SSO sign-in + token', 3],
  ['refresh', 4],
  ['userinfo', 6],
  ['admin: create user', 1],
  ['admin: rename user', 1],
  ['admin: add group member', 1],
];
const MIX_TOTAL = MIX.reduce((a, [, w]) => a + w, 0);

// mulberry32: a seeded PRNG, so a failing run can be replayed with the same action sequence.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- per-request-kind accounting ----------------------------------------------------------------

const stats = new Map(); // kind → { count, s5xx, timeouts, wrong, connErrors, ms: [], samples: [] }
const timeline = []; // responses per 10 s window, to see throughput drift over the run
let t0 = 0;
let loadStart = 0;
function stat(kind) {
  if (!stats.has(kind)) stats.set(kind, { count: 0, s5xx: 0, timeouts: 0, wrong: 0, connErrors: 0, ms: [], samples: [] });
  return stats.get(kind);
}
// Error pages are HTML: keep their words, not their markup, so a sample names the error.
const words = (text) => text.replace(/<(style|script)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ');
function sample(s, text) { if (s.samples.length < 3) s.samples.push(words(text).slice(0, 300)); }

/** Thrown to end an action early (its later steps depend on this one); already counted. */
class Abort extends Error {}

/**
 * Send one request and classify it. `expect(res)` returns true for the right answer. Returns the
 * response when it is right; otherwise counts it (5xx, wrong answer, timeout, connection error)
 * and throws Abort so the action stops there.
 */
async function call(client, kind, method, path, opts, expect) {
  const s = stat(kind);
  let res;
  try {
    res = await client.request(method, path, { timeoutMs: TIMEOUT_MS, ...opts });
  } catch (err) {
    if (/^timeout after/.test(err.message)) s.timeouts += 1; else s.connErrors += 1;
    sample(s, `${method} ${path.split('?')[0]}: ${err.message}`);
    throw new Abort();
  }
  s.count += 1;
  s.ms.push(res.ms);
  const w = Math.floor((performance.now() - t0) / 10_000);
  timeline[w] = (timeline[w] ?? 0) + 1;
  if (res.status >= 500) {
    s.s5xx += 1;
    sample(s, `${method} ${path.split('?')[0]}: HTTP ${res.status} ${res.body}`);
    throw new Abort();
  }
  let ok = false;
  try { ok = expect(res); } catch { ok = false; }
  if (!ok) {
    s.wrong += 1;
    sample(s, `${method} ${path.split('?')[0]}: HTTP ${res.status} ${res.headers.location ?? ''} ${res.body}`);
    throw new Abort();
  }
  return res;
}

const isRedirect = (res) => res.status >= 300 && res.status < 400 && !!res.headers.location;
const json = (res) => JSON.parse(res.body);

// --- the OpenID Connect steps, each request under its own kind ------------------------------------

/** The code in a redirect to the client, or null when the redirect stays on Clavex. */
function codeIn(t, res, state) {
  const loc = res.headers.location;
  if (!loc.startsWith(REDIRECT_URI)) return null;
  const u = new URL(loc);
  if (u.searchParams.get('state') !== state || !u.searchParams.get('code')) throw new Error('bad redirect');
  return u.searchParams.get('code');
}

/** Same-origin redirects (e.g. authorize → login page), each hop under `kind`, until a page or the code. */
async function follow(t, res, jar, state, kind) {
  for (let hop = 0; hop < 5; hop += 1) {
    if (res.status === 200) return { page: res.body };
    const code = codeIn(t, res, state);
    if (code) return { code };
    const next = new URL(res.headers.location, t.client.base);
    res = await call(t.client, kind, 'GET', next.pathname + next.search, { jar, headers: BROWSER },
      (r) => r.status === 200 || isRedirect(r));
  }
  throw new Error('too many redirects');
}

/** A browser without a session: authorize → login page → POST login → code. */
async function passwordSignIn(t, user) {
  const jar = new Jar();
  const state = rand();
  let res = await call(t.client, 'authorize (no session)', 'GET', authorizePath(t, state, rand()), { jar, headers: BROWSER },
    (r) => r.status === 200 || (isRedirect(r) && !r.headers.location.startsWith(REDIRECT_URI)));
  const { page } = await follow(t, res, jar, state, 'login page');
  const form = page && parseLoginForm(page);
  if (!form?.action) { stat('login page').wrong += 1; throw new Abort(); }
  res = await call(t.client, 'login POST', 'POST', form.action,
    { jar, headers: BROWSER, form: { ...form.hidden, username: user.username, password: user.password } }, isRedirect);
  const r = await follow(t, res, jar, state, 'authorize (after login)');
  if (!r.code) { stat('login POST').wrong += 1; throw new Abort(); }
  return { code: r.code, jar };
}

/** A browser with an SSO session: authorize → code at once, no page. */
async function ssoSignIn(t, jar) {
  const state = rand();
  const res = await call(t.client, 'authorize (SSO)', 'GET', authorizePath(t, state, rand()), { jar, headers: BROWSER },
    (r) => isRedirect(r) && !!codeIn(t, r, state));
  return codeIn(t, res, state);
}

const tokenOk = (r) => r.status === 200 && !!json(r).access_token && !!json(r).refresh_token;

async function exchange(t, code) {
  const res = await call(t.client, 'token (code)', 'POST', `${t.path}/token`, {
    form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: CLIENT_ID, client_secret: t.clientSecret },
  }, (r) => tokenOk(r) && !!json(r).id_token);
  return json(res);
}

async function refresh(t, vu) {
  const res = await call(t.client, 'token (refresh)', 'POST', `${t.path}/token`, {
    form: { grant_type: 'refresh_token', refresh_token: vu.tokens.refresh_token, client_id: CLIENT_ID, client_secret: t.clientSecret },
  }, tokenOk);
  vu.tokens = json(res); // refresh tokens rotate: the old one is spent
}

async function userinfo(t, vu) {
  await call(t.client, 'userinfo', 'GET', `${t.path}/userinfo`, { headers: { Authorization: `Bearer ${vu.tokens.access_token}` } },
    (r) => r.status === 200 && json(r).sub === vu.user.id);
}

// --- admin writes ---------------------------------------------------------------------------------

const admin = (t) => ({ Authorization: `Bearer ${t.adminToken}` });
let created = 0;

async function createUser(t) {
  const n = created++;
  const body = { username: `soak-new-${n}`, email: `soak-new-${n}@acme.test`, name: `New ${n}`, password: rand(), email_verified: true };
  const res = await call(t.client, 'admin: POST user', 'POST', `/api/v1/organizations/${ORG}/users`, { headers: admin(t), json: body },
    (r) => r.status === 201 && !!json(r).id);
  t.pool.push(json(res).id);
}

async function renameUser(t, random) {
  const id = t.pool[Math.floor(random() * t.pool.length)];
  const name = `Renamed ${rand()}`;
  await call(t.client, 'admin: PATCH user', 'PATCH', `/api/v1/organizations/${ORG}/users/${id}`, { headers: admin(t), json: { name } },
    (r) => r.status === 200 && json(r).name === name);
}

async function addMember(t, random) {
  const id = t.pool[Math.floor(random() * t.pool.length)];
  const group = GROUPS[Math.floor(random() * GROUPS.length)];
  await call(t.client, 'admin: PUT member', 'PUT', `/api/v1/organizations/${ORG}/groups/${group}/members/${id}`, { headers: admin(t) },
    (r) => r.status === 204);
}

// --- set-up, the loop, the report -----------------------------------------------------------------

async function setup(t) {
  const must = async (method, path, body, status) => {
    const res = await t.client.request(method, `/api/v1${path}`, { headers: admin(t), json: body, timeoutMs: 30_000 });
    if (res.status !== status) throw new Error(`set-up ${method} ${path}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
    return res.body ? json(res) : null;
  };
  const org = await must('POST', '/organizations', { slug: ORG, name: 'Acme Europe' }, 201);
  const client = await must('POST', `/organizations/${ORG}/clients`, {
    client_id: CLIENT_ID, client_name: 'Rocket.Chat', grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI], scopes: ['openid', 'profile', 'email'], token_endpoint_auth_method: 'client_secret_post',
  }, 201);
  t.clientSecret = client.client_secret;
  t.path = new URL(org?.issuer ?? `${t.client.base.origin}/${ORG}`).pathname.replace(/\/$/, '');
  for (const name of GROUPS) await must('POST', `/organizations/${ORG}/groups`, { name }, 201);
  t.users = [];
  for (let i = 0; i < USERS; i += 1) {
    const u = { username: `soak-${i}`, email: `soak-${i}@acme.test`, name: `Soak ${i}`, password: rand(), email_verified: true };
    const made = await must('POST', `/organizations/${ORG}/users`, u, 201);
    t.users.push({ ...u, id: made.id });
  }
  t.pool = t.users.map((u) => u.id);
}

async function virtualUser(t, id, deadline) {
  const random = prng(SEED * 1000 + id);
  const vu = { user: null, jar: null, tokens: null, signIns: 0 };
  const signIn = async () => {
    // Each virtual user signs in as its own users in turn, so sessions of one user do not pile up.
    const user = t.users[(id + CONCURRENCY * vu.signIns++) % t.users.length];
    const { code, jar } = await passwordSignIn(t, user);
    vu.tokens = await exchange(t, code);
    vu.user = user;
    vu.jar = jar;
  };
  while (performance.now() < deadline) {
    let r = random() * MIX_TOTAL;
    const action = MIX.find(([, w]) => (r -= w) < 0)[0];
    try {
      // Until its first sign-in has worked a virtual user has no session or tokens: it signs in.
      if (!vu.tokens || action === 'password sign-in + token') await signIn();
      else if (action === 'SSO sign-in + token') vu.tokens = await exchange(t, await ssoSignIn(t, vu.jar));
      else if (action === 'refresh') await refresh(t, vu);
      else if (action === 'userinfo') await userinfo(t, vu);
      else if (action === 'admin: create user') await createUser(t);
      else if (action === 'admin: rename user') await renameUser(t, random);
      else await addMember(t, random);
    } catch (err) {
      if (!(err instanceof Abort)) { stat('(client-side)').wrong += 1; sample(stat('(client-side)'), String(err?.stack ?? err)); }
      // Start over from a fresh sign-in: whatever failed may have left the session or tokens spent.
      vu.tokens = null;
    }
  }
}

function machine() {
  let commit = 'unknown';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { /* no git */ }
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, commit };
}

// Table order: a sign-in's requests in the order a browser sends them, then the server's, then admin.
const ORDER = ['authorize (no session)', 'login page', 'login POST', 'authorize (after login)', 'authorize (SSO)',
  'token (code)', 'token (refresh)', 'userinfo', 'admin: POST user', 'admin: PATCH user', 'admin: PUT member'];
const rank = (k) => (ORDER.includes(k) ? ORDER.indexOf(k) : ORDER.length);

function report(elapsed, notes) {
  const rows = [...stats.entries()].sort(([a], [b]) => rank(a) - rank(b)).map(([kind, s]) => {
    s.ms.sort((a, b) => a - b);
    return { kind, count: s.count, s5xx: s.s5xx, timeouts: s.timeouts, wrong: s.wrong, connErrors: s.connErrors,
      p50: percentile(s.ms, 50), p99: percentile(s.ms, 99), samples: s.samples };
  });
  const all = [...stats.values()].flatMap((s) => s.ms).sort((a, b) => a - b);
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  const total = { count: sum('count'), s5xx: sum('s5xx'), timeouts: sum('timeouts'), wrong: sum('wrong'), connErrors: sum('connErrors'),
    p50: percentile(all, 50), p99: percentile(all, 99) };
  const pass = total.count > 0 && total.s5xx + total.timeouts + total.wrong + total.connErrors === 0;
  const windows = timeline.slice(0, Math.floor(elapsed / 10)).map((n) => n ?? 0); // whole 10 s windows only
  const m = machine();
  const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
  const L = [];
  L.push('# Clavex soak — latest run', '');
  L.push(`${new Date().toISOString()} · commit ${m.commit} · ${m.cores} cores (${m.cpu}) · Node ${m.node} · \`wrangler dev --local\`, fresh local D1/KV, 127.0.0.1 only`, '');
  L.push(`Duration ${elapsed.toFixed(1)} s (asked ${SECONDS} s) · concurrency ${CONCURRENCY} virtual users, no think time · ${USERS} users signing in (each its own password) · per-request timeout ${TIMEOUT_MS / 1000} s · seed ${SEED}`, '');
  L.push('Mix (one action per loop turn, by weight): ' + MIX.map(([k, w]) => `${k} ${w} (${Math.round((100 * w) / MIX_TOTAL)} %)`).join(', ') + '.', '');
  L.push('| request kind | count | 5xx | timeouts | wrong answers | conn errors | p50 ms | p99 ms |', '|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) L.push(`| ${r.kind} | ${r.count} | ${r.s5xx} | ${r.timeouts} | ${r.wrong} | ${r.connErrors} | ${f(r.p50)} | ${f(r.p99)} |`);
  L.push(`| **total** | **${total.count}** | **${total.s5xx}** | **${total.timeouts}** | **${total.wrong}** | **${total.connErrors}** | **${f(total.p50)}** | **${f(total.p99)}** |`, '');
  // Other work on the machine (a compile) slows every row alike: say how busy it was.
  L.push(`Load average (1 min) at start ${loadStart.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}, on ${m.cores} cores: numbers from a busy machine compare only within this run.`, '');
  L.push(`Requests served: ${total.count} (${(total.count / elapsed).toFixed(1)}/s). Per 10 s window: ${windows.join(', ') || '–'}.`, '');
  for (const r of rows) for (const s of r.samples) L.push(`- ${r.kind}: \`${s.replace(/`/g, "'")}\``);
  for (const n of notes) L.push(`- ${n}`);
  L.push('', `**${pass ? 'PASS' : 'FAIL'}**: ${total.s5xx} 5xx, ${total.timeouts} timeouts, ${total.wrong} wrong answers, ${total.connErrors} connection errors.`);
  const md = L.join('\n') + '\n';
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'soak-latest.md'), md);
  writeFileSync(join(out, 'soak-latest.json'), JSON.stringify({
    date: new Date().toISOString(), machine: m, loadavg1: { start: loadStart, end: loadavg()[0] }, seconds: elapsed, askedSeconds: SECONDS, concurrency: CONCURRENCY, users: USERS,
    seed: SEED, timeoutMs: TIMEOUT_MS, mix: Object.fromEntries(MIX), rows, total, windows10s: windows, notes, pass,
  }, null, 2) + '\n');
  return { md, pass };
}

async function main() {
  console.log(`== soak: ${SECONDS} s at concurrency ${CONCURRENCY}, ${USERS} users`);
  console.log('== mix: ' + MIX.map(([k, w]) => `${k} ×${w}`).join(', '));
  const adminToken = randomBytes(24).toString('base64url');
  const server = await startWorker({
    vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'), STORAGE_TIMING: 'off', PUBLIC_BASE_URL: '' },
  });
  // A watchdog: whatever hangs, the command ends (the brief is "at most a few minutes").
  const watchdog = setTimeout(() => { console.error('soak: watchdog fired, stopping'); server.stop(); process.exit(3); }, (SECONDS + 120) * 1000);
  process.on('SIGINT', () => { server.stop(); process.exit(130); });
  const client = makeClient(server.url, CONCURRENCY + 1);
  try {
    const t = { client, adminToken, clientId: CLIENT_ID, redirectUri: REDIRECT_URI };
    await setup(t);
    console.log(`== Clavex at ${server.url}, set up; running`);
    t0 = performance.now();
    loadStart = loadavg()[0];
    const deadline = t0 + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, id) => virtualUser(t, id, deadline)));
    const elapsed = (performance.now() - t0) / 1000;
    // What workerd said about failures, to name a 5xx's cause next to it.
    // (wrangler's own attempts to reach workers.cloudflare.com fail offline and are not Clavex's.)
    const logLines = server.output().split('\n')
      .filter((l) => /error|panic|exception|uncaught/i.test(l) && !/ENOTFOUND workers\.cloudflare\.com/.test(l));
    const notes = logLines.length ? [`wrangler output has ${logLines.length} error-looking lines; first: \`${logLines[0].slice(0, 300)}\``] : [];
    const { md, pass } = report(elapsed, notes);
    console.log('\n' + md);
    console.log('wrote bench/results/soak-latest.md and soak-latest.json');
    if (!pass && logLines.length) console.log('--- wrangler output (error lines) ---\n' + logLines.slice(0, 40).join('\n'));
    process.exitCode = pass ? 0 : 1;
  } finally {
    clearTimeout(watchdog);
    client.close();
    server.stop();
  }
}

main().catch((err) => { console.error(err); process.exit(2); });
