// The benchmark's "user far from the D1 primary" section (run by bench/run.mjs; BENCH_FAR=0 skips
// it, BENCH_SCENARIOS=far runs it alone).
//
// The story: the user's browser is far from the D1 primary; the relying party's server
// (Rocket.Chat's back end) is near it. Clavex runs at the Cloudflare location nearest each caller:
// instance U at the user's location, instance R at the RP's (sharing U's D1 database, with a KV of
// its own). Each sits behind a 5 ms edge hop. The peer (oidc-provider) is a central provider at the
// primary's location: every browser request pays the 150 ms to get there, every server request 5 ms.
// Distances are a delaying proxy (bench/delay-proxy.mjs); storage distances are the Worker's own
// SIMULATED_STORAGE_LATENCY timers; every Clavex response counts its storage calls in
// Server-Timing (STORAGE_TIMING=on). Latency only, c=1, BENCH_FAR_ITERATIONS per row (default 30).
import { randomBytes } from 'node:crypto';
import { freePort } from '../tests/support/worker.mjs';
import { makeClient } from './loadgen.mjs';
import { startWorkerTimed } from './servers.mjs';
import { startDelayProxy } from './delay-proxy.mjs';
import * as F from './flows.mjs';

export const FAR = {
  hopMs: 5, // the edge hop in front of each Clavex instance
  peerBrowserMs: 150, // browser → the central peer at the primary's location
  peerServerMs: 5, // RP server → the central peer (it is near it)
  latency: {
    U: { d1_primary: 150, d1_replica: 10, kv: 5 }, // the user's location
    R: { d1_primary: 10, d1_replica: 10, kv: 5 }, // the RP's location, near the primary
  },
};
const latencyVar = (l) => `d1_primary=${l.d1_primary},d1_replica=${l.d1_replica},kv=${l.kv}`;

// The storage round trips a request cannot avoid, whoever implements it — the physical floor of
// each row is the edge hop plus these, at the latencies of the location that serves it
// (floor = hop + Σ count × latency). Everything else (client, key, organization) can be served
// from a per-isolate cache or a replica read that is not on the critical path.
//   discovery, JWKS: nothing (static per organization, cacheable);
//   authorize without a session: nothing (no cookie, nothing to look up; the login page is its answer);
//   authorize with an SSO session: the session (1 KV read, where the browser is);
//   login POST: the user's password hash (1 replica read; the session write can follow the answer),
//     and the sign-in gate of issue 15: the attempt is reserved at the D1 primary before the
//     password is checked (1 primary round trip) — every location's guesses are counted in one
//     place before any is answered, which no replica read can do;
//   code exchange, refresh: the single-use claim / the rotation (1 write at the primary);
//   userinfo: the token and the user (1 replica read).
const MIN = {
  discovery: {},
  jwks: {},
  authorizeNoSession: {},
  ssoAuthorize: { kv: 1 },
  loginPost: { d1_replica: 1, d1_primary: 1 },
  token: { d1_primary: 1 },
  refresh: { d1_primary: 1 },
  userinfo: { d1_replica: 1 },
};
/** [[request kind, location]] → ms: one hop per request plus its unavoidable storage. */
const floorOf = (reqs) => reqs.reduce((sum, [kind, at]) => sum + FAR.hopMs
  + Object.entries(MIN[kind]).reduce((s, [k, n]) => s + n * FAR.latency[at][k], 0), 0);

const SIGNIN_BROWSER = [['authorizeNoSession', 'U'], ['loginPost', 'U']];
const SIGNIN_SERVER = [['token', 'R'], ['userinfo', 'R']];
export const FAR_ROWS = [
  { key: 'discovery', label: 'discovery', at: 'U', floor: floorOf([['discovery', 'U']]) },
  { key: 'jwks', label: 'JWKS', at: 'R', floor: floorOf([['jwks', 'R']]) },
  { key: 'ssoAuthorize', label: 'authorize with SSO session', at: 'U', floor: floorOf([['ssoAuthorize', 'U']]) },
  { key: 'loginPost', label: 'login POST', at: 'U', floor: floorOf([['loginPost', 'U']]) },
  { key: 'token', label: 'code exchange', at: 'R', floor: floorOf([['token', 'R']]) },
  { key: 'refresh', label: 'refresh', at: 'R', floor: floorOf([['refresh', 'R']]) },
  { key: 'userinfo', label: 'userinfo', at: 'R', floor: floorOf([['userinfo', 'R']]) },
  { key: 'signinBrowser', label: 'Rocket.Chat sign-in: browser\'s requests (authorize → login page → login POST → redirect with code)', at: 'U', floor: floorOf(SIGNIN_BROWSER) },
  { key: 'signinServer', label: 'Rocket.Chat sign-in: server\'s requests (token + userinfo)', at: 'R', floor: floorOf(SIGNIN_SERVER) },
  { key: 'signinTotal', label: 'Rocket.Chat sign-in: total', at: 'U + R', floor: floorOf([...SIGNIN_BROWSER, ...SIGNIN_SERVER]) },
];

// --- Server-Timing ---------------------------------------------------------------------------------

const KINDS = { 'd1-primary': 'd1p', 'd1-replica': 'd1r', 'kv-read': 'kvr', 'kv-write': 'kvw' };
const zero = () => ({ d1p: 0, d1r: 0, kvr: 0, kvw: 0, dur: 0, responses: 0 });
function addServerTiming(acc, header) {
  acc.responses += 1;
  for (const entry of String(header ?? '').split(',')) {
    const [name, ...params] = entry.trim().split(';');
    const k = KINDS[name?.trim()];
    if (!k) continue;
    const count = params.map((p) => p.trim().split('=')).find(([n]) => n === 'count');
    if (count) acc[k] += Number(count[1]) || 0;
    // The time the Worker spent waiting on storage (its simulated distance included), so the
    // table can show how much of a row is storage and how much everything else.
    const dur = params.map((p) => p.trim().split('=')).find(([n]) => n === 'dur');
    if (dur) acc.dur += Number(dur[1]) || 0;
  }
  if (header) acc.metered = (acc.metered ?? 0) + 1;
}

/** A flows.mjs target on `url` whose responses add their Server-Timing to `meter.acc` (when set). */
function meteredTarget(url, base, meter) {
  const client = makeClient(url, 2);
  const request = async (...args) => {
    const res = await client.request(...args);
    if (meter.acc) addServerTiming(meter.acc, res.headers['server-timing']);
    return res;
  };
  return { ...base, client: { ...client, request } };
}

// --- measuring -------------------------------------------------------------------------------------

/** Time `fn` (the requests of one row), metering the storage calls of its responses. */
async function timed(side, fn) {
  side.meter.acc = zero();
  const t0 = performance.now();
  try {
    await fn();
    return { ms: performance.now() - t0, st: side.meter.acc };
  } finally { side.meter.acc = null; }
}

/** One iteration per row: untimed preparation, then timed(...). Returns { rowKey: sample }. */
const OPS = {
  discovery: async (s) => ({
    discovery: await timed(s, async () => {
      const d = await F.getJson(s.tb, `${s.tb.path}/.well-known/openid-configuration`, 'discovery');
      if (!d.issuer) throw new Error('discovery without issuer');
    }),
  }),
  jwks: async (s) => ({
    jwks: await timed(s, async () => {
      const d = await F.getJson(s.ts, `${s.ts.path}/jwks`, 'jwks');
      if (!d.keys?.length) throw new Error('JWKS without keys');
    }),
  }),
  ssoAuthorize: async (s) => ({ ssoAuthorize: await timed(s, () => F.ssoCode(s.tb, s.vu.jar)) }),
  loginPost: async (s) => {
    const opened = await F.openLoginForm(s.tb);
    return { loginPost: await timed(s, () => F.postLogin(s.tb, opened)) };
  },
  token: async (s) => {
    const code = await F.ssoCode(s.tb, s.vu.jar);
    return { token: await timed(s, () => F.exchangeCode(s.ts, code)) };
  },
  refresh: async (s) => ({
    refresh: await timed(s, async () => {
      const tok = await F.refresh(s.ts, s.vu.refreshToken);
      if (tok.refresh_token) s.vu.refreshToken = tok.refresh_token;
      s.vu.accessToken = tok.access_token;
    }),
  }),
  userinfo: async (s) => ({ userinfo: await timed(s, () => F.userinfo(s.ts, s.vu.accessToken)) }),
  signin: async (s) => {
    let code;
    const browser = await timed(s, async () => { ({ code } = await F.loginToCode(s.tb)); });
    const server = await timed(s, async () => {
      const tok = await F.exchangeCode(s.ts, code);
      await F.userinfo(s.ts, tok.access_token);
    });
    const st = zero();
    for (const k of Object.keys(st)) st[k] = browser.st[k] + server.st[k];
    st.metered = (browser.st.metered ?? 0) + (server.st.metered ?? 0);
    return { signinBrowser: browser, signinServer: server, signinTotal: { ms: browser.ms + server.ms, st } };
  },
};
const OP_ROWS = { signin: ['signinBrowser', 'signinServer', 'signinTotal'] };

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summarizeSamples(samples, errors, errorSamples) {
  const ms = samples.map((x) => x.ms).sort((a, b) => a - b);
  const out = { ok: samples.length, errors, p50: pct(ms, 50), p99: pct(ms, 99), mean: ms.reduce((a, b) => a + b, 0) / (ms.length || 1) };
  if (samples.length && samples.every((x) => x.st.metered)) {
    out.storage = {};
    for (const k of ['d1p', 'd1r', 'kvr', 'kvw', 'dur']) {
      const v = samples.map((x) => x.st[k]);
      out.storage[k] = { mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v) };
    }
  }
  if (errors) out.errorSamples = errorSamples;
  if (!samples.length) out.failed = `every iteration failed: ${errorSamples.join(' / ')}`;
  else if (errors > samples.length) out.failed = `${errors} errors vs ${samples.length} ok: ${errorSamples.join(' / ')}`;
  return out;
}

/** Run every op of one side at c=1, `iterations` each after `warmup`, within `timeLeft()`. */
async function measureSide(side, { iterations, warmup, timeLeft, log }) {
  const out = {};
  for (const [op, fn] of Object.entries(OPS)) {
    const rows = OP_ROWS[op] ?? [op];
    if (timeLeft() <= 0) { for (const r of rows) out[r] = { failed: 'skipped: whole-run time bound reached' }; continue; }
    const samples = Object.fromEntries(rows.map((r) => [r, []]));
    let errors = 0;
    const errorSamples = [];
    for (let i = 0; i < warmup + iterations && timeLeft() > 0; i += 1) {
      try {
        const got = await fn(side);
        if (i >= warmup) for (const r of rows) samples[r].push(got[r]);
      } catch (e) {
        if (i >= warmup) errors += 1;
        if (errorSamples.length < 3) errorSamples.push(e.message.split('\n')[0].slice(0, 200));
        if (e.fatal) { errors = Math.max(errors, iterations); break; }
      }
    }
    for (const r of rows) {
      out[r] = summarizeSamples(samples[r], errors, errorSamples);
      const x = out[r];
      log(`far ${r} ${side.name}: ${x.failed ? `FAILED ${x.failed.slice(0, 200)}` : `p50 ${x.p50.toFixed(1)} p99 ${x.p99.toFixed(1)} ms over ${x.ok}${x.errors ? `, ${x.errors} errors: ${x.errorSamples[0]}` : ''}`}`);
    }
  }
  return out;
}

/** One SSO session (browser, at U) and one token set (server, at R) for a side. */
async function session(side) {
  const { code, jar } = await F.loginToCode(side.tb);
  const tok = await F.exchangeCode(side.ts, code);
  if (!tok.refresh_token) throw new Error('code exchange returned no refresh_token');
  return { jar, accessToken: tok.access_token, refreshToken: tok.refresh_token, idToken: tok.id_token };
}

const jwtIss = (jwt) => JSON.parse(Buffer.from(String(jwt).split('.')[1] ?? '', 'base64url').toString('utf8')).iss;

/**
 * The far section. `clavex`: { config, cwd, fixtures(server, adminToken) → { path, clientSecret } }
 * or null; `peer`: { url, t (its run.mjs target) } or null. `base`: the target fields shared by
 * both (clientId, redirectUri, username, password). Returns { config, clavex, peer, checks }.
 */
export async function runFar({ clavex, peer, base, timeLeft, log }) {
  const iterations = Number(process.env.BENCH_FAR_ITERATIONS ?? 30);
  const warmup = Number(process.env.BENCH_FAR_WARMUP ?? 3);
  const result = { config: { ...FAR, iterations, warmup, rows: FAR_ROWS.map(({ key, label, at, floor }) => ({ key, label, at, floor })) }, checks: [] };
  const cleanup = [];
  const skipped = () => Object.fromEntries(FAR_ROWS.map((row) => [row.key, { failed: 'skipped: whole-run time bound reached' }]));
  try {
    if (clavex && timeLeft() <= 0) result.clavex = skipped();
    else if (clavex) {
      try {
        const adminToken = randomBytes(24).toString('base64url');
        const secret = randomBytes(32).toString('base64url');
        const uPort = await freePort();
        // The issuer is U's public (edge) address, the same at both instances.
        const publicBase = `http://127.0.0.1:${uPort}`;
        const common = { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: secret, PUBLIC_BASE_URL: publicBase, STORAGE_TIMING: 'on' };
        log('far: starting Clavex U (user\'s location) and R (RP\'s location, sharing U\'s D1)');
        const u = await startWorkerTimed({ name: 'clavex-far-u', config: clavex.config, cwd: clavex.cwd, vars: { ...common, SIMULATED_STORAGE_LATENCY: latencyVar(FAR.latency.U) } });
        cleanup.push(() => u.stop());
        const r = await startWorkerTimed({ name: 'clavex-far-r', config: clavex.config, cwd: clavex.cwd, d1From: u.persistDir, vars: { ...common, SIMULATED_STORAGE_LATENCY: latencyVar(FAR.latency.R) } });
        cleanup.push(() => r.stop());
        const uEdge = await startDelayProxy({ upstream: u.url, delayMs: FAR.hopMs, port: uPort });
        cleanup.push(() => uEdge.close());
        const rEdge = await startDelayProxy({ upstream: r.url, delayMs: FAR.hopMs });
        cleanup.push(() => rEdge.close());
        const fx = await clavex.fixtures(u, adminToken);
        const meter = {};
        const t = { ...base, path: fx.path, clientSecret: fx.clientSecret };
        const side = { name: 'clavex', meter, tb: meteredTarget(uEdge.url, t, meter), ts: meteredTarget(rEdge.url, t, meter) };
        cleanup.push(() => { side.tb.client.close(); side.ts.client.close(); });
        // The issuer must be the same wherever the caller lands.
        const expected = `${publicBase}${fx.path}`;
        const issU = (await F.getJson(side.tb, `${fx.path}/.well-known/openid-configuration`, 'discovery at U')).issuer;
        const issR = (await F.getJson(side.ts, `${fx.path}/.well-known/openid-configuration`, 'discovery at R')).issuer;
        side.vu = await session(side);
        const issTok = jwtIss(side.vu.idToken);
        const same = issU === expected && issR === expected && issTok === expected;
        result.checks.push(`Clavex issuer: discovery at U ${issU}, at R ${issR}; the ID token issued at R for a code minted at U says ${issTok} — ${same ? 'the same' : 'MISMATCH'}.`);
        if (!same) throw new Error(`issuer mismatch: U ${issU}, R ${issR}, id_token ${issTok}, expected ${expected}`);
        log(`far: Clavex U ${u.url} (edge ${uEdge.url}), R ${r.url} (edge ${rEdge.url}); issuer ${expected} at both`);
        result.clavex = await measureSide(side, { iterations, warmup, timeLeft, log });
      } catch (e) {
        const msg = `setup: ${e.message.split('\n')[0].slice(0, 300)}`;
        log(`far: Clavex FAILED ${msg}`);
        result.clavex = Object.fromEntries(FAR_ROWS.map((row) => [row.key, { failed: msg }]));
      }
    }
    if (peer && timeLeft() <= 0) result.peer = skipped();
    else if (peer) {
      try {
        const far = await startDelayProxy({ upstream: peer.url, delayMs: FAR.peerBrowserMs });
        cleanup.push(() => far.close());
        const near = await startDelayProxy({ upstream: peer.url, delayMs: FAR.peerServerMs });
        cleanup.push(() => near.close());
        const t = { ...base, path: peer.t.path, clientSecret: peer.t.clientSecret };
        const meter = {};
        const side = { name: 'peer', meter, tb: meteredTarget(far.url, t, meter), ts: meteredTarget(near.url, t, meter) };
        cleanup.push(() => { side.tb.client.close(); side.ts.client.close(); });
        side.vu = await session(side);
        log(`far: peer ${peer.url}, browser through ${far.url} (+${FAR.peerBrowserMs} ms), server through ${near.url} (+${FAR.peerServerMs} ms)`);
        result.peer = await measureSide(side, { iterations, warmup, timeLeft, log });
      } catch (e) {
        const msg = `setup: ${e.message.split('\n')[0].slice(0, 300)}`;
        log(`far: peer FAILED ${msg}`);
        result.peer = Object.fromEntries(FAR_ROWS.map((row) => [row.key, { failed: msg }]));
      }
    }
  } finally {
    for (const f of cleanup.reverse()) { try { f(); } catch { /* gone */ } }
  }
  return result;
}

// --- report ----------------------------------------------------------------------------------------

const fms = (x) => (Number.isFinite(x) ? (x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '—');
const good = (r) => r && !r.failed && r.ok > 0;
function storageCell(r) {
  if (!good(r) || !r.storage) return '—';
  const one = ({ mean, min, max }) => (min === max ? String(min) : mean.toFixed(1));
  return ['d1p', 'd1r', 'kvr', 'kvw'].map((k) => one(r.storage[k])).join(' / ');
}
const storageMs = (r) => (good(r) && r.storage?.dur ? fms(r.storage.dur.mean) : '—');

/**
 * The local overheads of a run: per storage call (Server-Timing time beyond the simulated
 * latency, over the single-request rows that made calls) and per request (JWKS p50 minus the
 * hop); and the sign-in rows' floors with them added. Null when a row it needs is missing.
 */
function localCosts(far) {
  const c = far.clavex ?? {};
  const lat = far.config.latency;
  const single = [['ssoAuthorize', 'U'], ['loginPost', 'U'], ['token', 'R'], ['refresh', 'R'], ['userinfo', 'R']];
  let extra = 0; let calls = 0;
  for (const [key, at] of single) {
    const r = c[key];
    if (!good(r) || !r.storage?.dur) continue;
    const n = { d1_primary: r.storage.d1p.mean, d1_replica: r.storage.d1r.mean, kv: r.storage.kvr.mean + r.storage.kvw.mean };
    const simulated = Object.entries(n).reduce((sum, [k, v]) => sum + v * lat[at][k], 0);
    extra += r.storage.dur.mean - simulated;
    calls += n.d1_primary + n.d1_replica + n.kv;
  }
  if (!calls || !good(c.jwks) || !good(c.signinServer) || !good(c.signinBrowser)) return null;
  const perCall = Math.max(0, extra / calls);
  const perRequest = Math.max(0, c.jwks.p50 - far.config.hopMs);
  const callsOf = (r) => r.storage.d1p.mean + r.storage.d1r.mean + r.storage.kvr.mean + r.storage.kvw.mean;
  const floorOfRow = (key) => FAR_ROWS.find((r) => r.key === key).floor;
  const serverCalls = callsOf(c.signinServer);
  const browserCalls = callsOf(c.signinBrowser);
  // The browser's part is 2 requests to Clavex (authorize, login POST; the login page is authorize's answer).
  const serverFloor = floorOfRow('signinServer') + 2 * perRequest + serverCalls * perCall;
  const browserFloor = floorOfRow('signinBrowser') + 2 * perRequest + browserCalls * perCall;
  return {
    perCall, perRequest, serverCalls, browserCalls, serverFloor, browserFloor,
    serverRatio: `${(c.signinServer.p50 / serverFloor).toFixed(2)}×`,
    browserRatio: `${(c.signinBrowser.p50 / browserFloor).toFixed(2)}×`,
  };
}

/** Markdown lines of the section. */
export function farReport(far) {
  const L = [];
  const { latency: lat, hopMs, peerBrowserMs, peerServerMs, iterations } = far.config;
  L.push('## User far from the D1 primary', '');
  L.push('The user\'s browser is far from the D1 primary; the relying party\'s server (Rocket.Chat\'s back end) is near it. Clavex runs at the location nearest each caller: instance **U** at the user\'s location, instance **R** at the RP\'s, sharing U\'s D1 database (its own KV). The peer (oidc-provider) is a central provider at the primary\'s location, so the browser\'s requests travel all the way to it.', '');
  L.push(`- U: \`SIMULATED_STORAGE_LATENCY=${latencyVar(lat.U)}\` (ms per storage call: a timer in the Worker before each one); R: \`${latencyVar(lat.R)}\`. Both \`STORAGE_TIMING=on\`, the same secrets and \`PUBLIC_BASE_URL\` (U's edge address), so the issuer is the same at both.`);
  L.push(`- A ${hopMs} ms edge hop in front of each Clavex instance; the peer gets ${peerBrowserMs} ms added to every browser request and ${peerServerMs} ms to every server request (bench/delay-proxy.mjs, a delaying HTTP proxy on 127.0.0.1).`);
  L.push('- Browser requests (authorize, login page, login POST) go to U (or the peer\'s far proxy); server requests (token, refresh, userinfo, JWKS) go to R (or the peer\'s near proxy). Codes are minted at U and redeemed at R. The peer keeps its state in memory at the primary\'s location, so it pays the network distance but no storage latency.');
  L.push(`- Physical floor = edge hop per request + only the storage round trips no implementation can avoid, at that location\'s latency: discovery/JWKS none; authorize with a session 1 KV read; login POST 1 replica read and 1 primary round trip (the sign-in gate of issue 15 reserves each attempt at the primary before the password is checked: guesses from every location are counted in one place before any is answered); code exchange and refresh 1 primary write (at R); userinfo 1 replica read (at R); the sign-in is authorize (page) + login POST at U, token + userinfo at R.`);
  L.push(`- c=1, latency only: ${iterations} iterations per row (BENCH_FAR_ITERATIONS) after ${far.config.warmup} unmeasured warm-up iteration(s)${iterations < 100 ? `; with ${iterations} samples the p99 is their maximum` : ''}. Storage calls are counted from Clavex\'s Server-Timing headers, summed over a row\'s requests (a mean where they varied).`, '');
  L.push('| request | called at | Clavex p50 ms | Clavex p99 ms | Clavex storage calls d1p / d1r / kvr / kvw | Clavex storage ms (mean) | physical floor ms | Clavex p50 ÷ floor | peer p50 ms | Clavex ÷ peer p50 |');
  L.push('|---|--|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const row of FAR_ROWS) {
    const a = far.clavex?.[row.key];
    const p = far.peer?.[row.key];
    const aCell = good(a) ? [fms(a.p50), fms(a.p99)] : a?.failed ? [`FAILED: ${a.failed.replace(/\|/g, '/').slice(0, 160)}`, '—'] : ['—', '—'];
    const err = good(a) && a.errors ? ` (${a.errors} err)` : '';
    const pCell = good(p) ? fms(p.p50) : p?.failed ? `FAILED: ${p.failed.replace(/\|/g, '/').slice(0, 80)}` : '—';
    const ratio = good(a) && good(p) ? `${(a.p50 / p.p50).toFixed(2)}×` : '—';
    const toFloor = good(a) ? `${(a.p50 / row.floor).toFixed(2)}×` : '—';
    L.push(`| ${row.label} | ${row.at} | ${aCell[0]}${err} | ${aCell[1]} | ${storageCell(a)} | ${storageMs(a)} | ${row.floor} | ${toFloor} | ${pCell} | ${ratio} |`);
  }
  L.push('');
  // What the floor does not count but every local run pays: measured in this run, not assumed.
  const local = localCosts(far);
  if (local) {
    L.push(`Local costs the physical floor leaves out, measured in this run: one D1 call takes ${fms(local.perCall)} ms beyond its simulated latency (workerd's local D1 simulator, mean over the single-request rows: Server-Timing \`dur\` minus the simulated latency of each call), and the cheapest request Clavex answers (JWKS, from the isolate's cache) takes ${fms(local.perRequest)} ms beyond the hop (the local dev server and proxies). With these, the server's part of the sign-in (2 requests, ${fms(local.serverCalls)} storage calls) would have a local floor of ${fms(local.serverFloor)} ms, and Clavex's p50 is ${local.serverRatio} of it; the browser's part (${fms(local.browserCalls)} calls) ${fms(local.browserFloor)} ms, Clavex ${local.browserRatio} of it.`, '');
  }
  for (const c of far.checks ?? []) L.push(c);
  if (far.checks?.length) L.push('');
  return L;
}
