// When storage fails (issue 15, finding 14): every endpoint answers 503 with Retry-After in its
// caller's own form, logs one JSON line, notes it in the audit trail, and leaves nothing half
// done — the same code and refresh token work once afterwards, an admin create leaves no row.
//
// Storage is made to fail on purpose with the development-only switch: this file starts its own
// Worker with SIMULATED_STORAGE_FAULTS=on, and a request asks with `X-Clavex-Fail-Storage:
// d1_primary@2` (its second call to the D1 primary fails) and the like (src/edge/store/fault.rs).
// One test also holds a real exclusive lock on the local D1 database file, as an outage or an
// overload looks to the Worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startWorker } from './support/worker.mjs';
import { base32Decode, totp } from './support/totp.mjs';

const FAULT = 'X-Clavex-Fail-Storage';
// The Worker tests/run.mjs started for every file (no fault switch), before this file points the
// shared helpers at its own.
const SHARED = { url: process.env.CLAVEX_URL, token: process.env.CLAVEX_ADMIN_TOKEN };
const adminToken = `faults-${randomBytes(18).toString('base64url')}`;
let W;
let o; // ./support/oidc.mjs, imported once the Worker's URL is known
let fx;

before(async () => {
  W = await startWorker({
    vars: {
      ADMIN_TOKEN: adminToken,
      KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
      STORAGE_TIMING: 'on',
      SIMULATED_STORAGE_FAULTS: 'on',
    },
  });
  // The shared helpers read the Worker's address and admin token when first imported.
  process.env.CLAVEX_URL = W.url;
  process.env.CLAVEX_ADMIN_TOKEN = adminToken;
  o = await import('./support/oidc.mjs');
  fx = await o.createFixture('faults', { name: 'Faulty Corp' });
});
after(() => W?.stop());

const fail = (spec) => ({ [FAULT]: spec });

/** Storage calls by kind, from Server-Timing (STORAGE_TIMING is on). */
function storage(res) {
  const counts = {};
  for (const metric of (res.headers.get('server-timing') ?? '').split(',')) {
    const [name, ...params] = metric.trim().split(';');
    const count = params.map((p) => p.trim().split('=')).find(([k]) => k === 'count');
    if (count) counts[name] = Number(count[1]);
  }
  return counts;
}
const total = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);
/**
 * Clients are cached per isolate (src/oidc/client_cache.rs), so a warm authorize or token request
 * may make no storage call at all. Any admin write under the organization drops its cached
 * clients on this isolate (and only them: the organization stays cached, so pages stay branded):
 * the next request reads the client again, and that read can be failed.
 */
async function coldClients() {
  const res = await o.admin('PATCH', `/organizations/${fx.slug}/clients/${fx.web.client_id}`, { require_mfa: false });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

/** The Worker's log lines (ANSI colours removed); the last one may still be growing. */
const logLines = () => W.output().replace(/\x1b\[[0-9;]*m/g, '').split('\n');
/** Where the next line will start. */
const logMark = () => logLines().length - 1;

/** The storage failure lines logged after line `from`, parsed. */
function failureLines(from) {
  return logLines().slice(from)
    .map((line) => line.match(/\{"error":"(storage_unavailable|internal_error)".*\}/)?.[0])
    .filter(Boolean)
    .map((text) => ({ text, json: JSON.parse(text) }));
}

async function waitFor(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** 503 + Retry-After + the RFC 6749 JSON error, never cached. */
function assertJson503(res, what) {
  assert.equal(res.status, 503, `${what}: 503, got ${res.status} ${res.text}`);
  const retry = Number(res.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 30, `${what}: Retry-After of a few seconds, got ${res.headers.get('retry-after')}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what}: JSON`);
  assert.equal(res.json?.error, 'temporarily_unavailable', `${what}: ${res.text}`);
  assert.ok(res.json.error_description, `${what}: an error_description`);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/, `${what}: no-store`);
  assert.doesNotMatch(res.text, /D1|SQLITE|sql|stack|at \w+ \(/i, `${what}: no storage detail leaks`);
  assert.equal(res.json.access_token, undefined);
}

/** 503 + Retry-After + the branded HTML error page in plain words. */
function assertPage503(res, what, { brand = 'Faulty Corp' } = {}) {
  assert.equal(res.status, 503, `${what}: 503, got ${res.status} ${res.text.slice(0, 300)}`);
  assert.ok(Number(res.headers.get('retry-after')) >= 1, `${what}: Retry-After`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/, `${what}: an HTML page`);
  assert.equal(res.location ?? res.headers.get('location'), null, `${what}: no redirect`);
  const text = o.pageText(res.text);
  assert.match(text, /Sign-in is briefly unavailable\. Try again in a moment\./, `${what}: ${text.slice(0, 300)}`);
  assert.match(text, new RegExp(brand), `${what}: the organization's page (${brand})`);
  assert.doesNotMatch(res.text, /D1_|SQLITE|database is locked|stack|\.rs:|simulated/i, `${what}: no stack, no SQL`);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);
}

async function events(slug, type) {
  const res = await o.admin('GET', `/organizations/${slug}/events?type=${type}&limit=100`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.events;
}

test('the switch is honoured only with SIMULATED_STORAGE_FAULTS on, and a bad plan is refused', async () => {
  const res = await fetch(`${fx.issuer}/jwks`, { headers: fail('nonsense') });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /X-Clavex-Fail-Storage/);
  // Without the header nothing fails.
  assert.equal((await fetch(`${fx.issuer}/jwks`)).status, 200);
});

test('code exchange: every storage call failing in turn → 503 JSON; the same code then works exactly once', async () => {
  // Two exchanges warm the isolate's caches (organization, signing key); the second says how
  // many storage calls a warm one takes. Caches only expire, so a later one takes as many or more.
  let calls;
  for (let i = 0; i < 2; i++) {
    const { code: warm } = await o.authorize(fx, fx.web);
    await coldClients(); // counted with the client's read, as every faulted request below makes it
    const ok = await o.exchangeCode(fx, fx.web, warm);
    o.assertTokenSuccess(ok, 'a warm-up exchange');
    calls = total(storage(ok));
  }
  assert.ok(calls >= 2, 'an exchange reads the (uncached) client and claims the code');

  const { code } = await o.authorize(fx, fx.web);
  const form = { grant_type: 'authorization_code', code, redirect_uri: fx.web.redirect_uri };
  const from = logMark();
  // The claim is the exchange's one call to the primary, and its last: failing it, or anything
  // before it, consumes nothing.
  const specs = [...Array.from({ length: calls }, (_, i) => `any@${i + 1}`), 'd1_primary@1', 'd1_replica@1+', 'd1@1:overloaded'];
  for (const spec of specs) {
    await coldClients();
    const r = await o.tokenRequest(fx, fx.web, form, { headers: fail(spec) });
    assertJson503(r, `exchange with ${spec}`);
    assert.equal(r.headers.get('access-control-allow-origin'), '*', `${spec}: the token endpoint's CORS header`);
  }
  const redeemed = o.assertTokenSuccess(await o.tokenRequest(fx, fx.web, form), 'the same code after the faults');
  assert.ok(redeemed.access_token && redeemed.id_token && redeemed.refresh_token);
  assert.equal((await o.userinfo(fx, redeemed.access_token)).status, 200, 'its access token works');
  o.assertOAuthError(await o.tokenRequest(fx, fx.web, form), 400, 'invalid_grant', 'the code a second time');

  // One JSON line per failed request, naming the route, organization and store; no code in it.
  const lines = await waitFor(() => {
    const l = failureLines(from);
    return l.length >= specs.length && l;
  }, () => `the failure log lines (${failureLines(from).length} of ${specs.length}): ${logLines().slice(from).join('\n').slice(-3000)}`);
  assert.equal(lines.length, specs.length, `one line per failed request:\n${lines.map((l) => l.text).join('\n')}`);
  for (const { json, text } of lines) {
    assert.equal(json.error, 'storage_unavailable');
    assert.equal(json.route, 'token');
    assert.equal(json.org, fx.slug);
    assert.match(json.kind, /^(d1-primary|d1-replica|kv-read|kv-write)$/);
    assert.equal(json.simulated, true);
    assert.ok(json.message, text);
    assert.ok(!text.includes(code) && !text.includes(fx.web.secret), 'no code or secret in the log');
  }
});

test('exchange: 50 concurrent redemptions of one code under faults, then a clean one: exactly one success', async () => {
  const { code } = await o.authorize(fx, fx.web);
  const form = { grant_type: 'authorization_code', code, redirect_uri: fx.web.redirect_uri };
  // Half fail at the claim, half at their first storage call (the client's read where this
  // isolate has no copy yet, else the claim): all 503, nothing consumed.
  await coldClients();
  const faulted = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    o.tokenRequest(fx, fx.web, form, { headers: fail(i % 2 ? 'd1_primary@1' : 'any@1') })));
  for (const r of faulted) assertJson503(r, 'a faulted concurrent redemption');
  const clean = await Promise.all(Array.from({ length: 10 }, () => o.tokenRequest(fx, fx.web, form)));
  assert.equal(clean.filter((r) => r.status === 200).length, 1, clean.map((r) => r.status).join(','));
});

test('refresh: every storage call failing in turn → 503 JSON; the refresh token is still unused and works once', async () => {
  const { tokens } = await o.loginAndExchange(fx, fx.web);
  let token = tokens.refresh_token;
  let calls;
  for (let i = 0; i < 2; i++) { // warm, then count
    const r = await o.tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: token });
    token = o.assertTokenSuccess(r, 'a warm-up refresh').refresh_token;
    calls = total(storage(r));
  }
  assert.ok(calls >= 2, 'a refresh reads the token and rotates it');
  const form = { grant_type: 'refresh_token', refresh_token: token };
  const introspect = () => o.clientPost(fx, fx.web, o.endpoint(fx, 'introspection_endpoint'), { token });
  const specs = [...Array.from({ length: calls }, (_, i) => `any@${i + 1}`), 'd1_primary@1', 'd1_replica@1+'];
  for (const spec of specs) {
    const r = await o.tokenRequest(fx, fx.web, form, { headers: fail(spec) });
    assertJson503(r, `refresh with ${spec}`);
    // Nothing rotated: introspection (at the primary) still calls it active.
    const i = await introspect();
    assert.equal(i.status, 200);
    assert.equal(i.json.active, true, `after ${spec}: the refresh token is not used up`);
  }
  const next = o.assertTokenSuccess(await o.tokenRequest(fx, fx.web, form), 'the same refresh token after the faults');
  assert.ok(next.refresh_token && next.refresh_token !== token);
  assert.equal((await introspect()).json.active, false, 'rotated now');
  o.assertTokenSuccess(await o.tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: next.refresh_token }), 'its successor');
});

/**
 * Fail the request's 1st storage call, then its 2nd, … until the failed call is the one at the
 * D1 primary (the write that uses something up); every attempt must be a 503. Returns the
 * storage counts of that last attempt: what was read before the write.
 */
async function failEachCallUntilTheWrite(send, what, cool = async () => {}) {
  for (let k = 1; k <= 12; k++) {
    // The caches an earlier attempt filled are emptied again, so that attempt k fails the k-th
    // call of the same cold request (the reads a cold isolate batches, oidc/prime.rs, are one).
    await cool();
    const r = await send(fail(`any@${k}`));
    assertJson503(r, `${what}, any@${k}`);
    const c = storage(r);
    if (c['d1-primary'] >= 1) return c;
  }
  return assert.fail(`${what}: no call to the primary within 12 calls`);
}

test('cold caches: the signing key and the user are read before the claim and the rotation, never after', async () => {
  // A rotated key is dropped from this isolate's cache, so the next signature reads it; the
  // `claims` parameter makes the ID token need the user's profile, read from storage too.
  const rotate = async () => assert.equal((await o.admin('POST', `/organizations/${fx.slug}/keys/rotate`)).status, 201);
  const claims = JSON.stringify({ id_token: { email: null } });
  const { code } = await o.authorize(fx, fx.web, { params: { claims, scope: 'openid profile email' } });
  const form = { grant_type: 'authorization_code', code, redirect_uri: fx.web.redirect_uri };
  await rotate();
  const atClaim = await failEachCallUntilTheWrite((headers) => o.tokenRequest(fx, fx.web, form, { headers }), 'code exchange', rotate);
  // The client and the signing key (one batch), then the user — all before the claim, which failed last.
  assert.ok(atClaim['d1-replica'] >= 2, `the key and the user were read before the claim: ${JSON.stringify(atClaim)}`);
  const tokens = o.assertTokenSuccess(await o.tokenRequest(fx, fx.web, form), 'the code after every call failed in turn');
  assert.equal(o.decodeJwt(tokens.id_token).payload.email, fx.alice.email, 'the ID token has the claim asked for');
  o.assertOAuthError(await o.tokenRequest(fx, fx.web, form), 400, 'invalid_grant', 'and only once');

  // (The replay revoked that grant: a fresh one for the refresh.)
  const second = await o.authorize(fx, fx.web, { params: { claims, scope: 'openid profile email' } });
  const fresh = o.assertTokenSuccess(await o.exchangeCode(fx, fx.web, second.code), 'another exchange');
  await rotate();
  const refresh = { grant_type: 'refresh_token', refresh_token: fresh.refresh_token };
  const atRotation = await failEachCallUntilTheWrite((headers) => o.tokenRequest(fx, fx.web, refresh, { headers }), 'refresh', rotate);
  // The client, the signing key and the refresh token (one batch), then the user — all before the rotation.
  assert.ok(atRotation['d1-replica'] >= 2, `the key and the user were read before the rotation: ${JSON.stringify(atRotation)}`);
  const introspected = await o.clientPost(fx, fx.web, o.endpoint(fx, 'introspection_endpoint'), { token: fresh.refresh_token });
  assert.equal(introspected.json.active, true, 'the refresh token is not used up');
  o.assertTokenSuccess(await o.tokenRequest(fx, fx.web, refresh), 'the refresh token after every call failed in turn');
});

test('revocation and introspection: 503 JSON with Retry-After; the token is untouched', async () => {
  const { tokens } = await o.loginAndExchange(fx, fx.web);
  const revoke = o.endpoint(fx, 'revocation_endpoint');
  const introspect = o.endpoint(fx, 'introspection_endpoint');
  for (const spec of ['any@1', 'd1_primary@1', 'd1_replica@1+']) {
    await coldClients();
    const post = (url) => fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: o.basicAuth(fx.web.client_id, fx.web.secret),
        ...fail(spec),
      },
      body: new URLSearchParams({ token: tokens.access_token }),
    }).then(o.readJson);
    const r = await post(revoke);
    assertJson503(r, `revoke with ${spec}`);
    assert.equal(r.headers.get('access-control-allow-origin'), '*', 'revocation keeps its CORS header');
    await coldClients();
    const i = await post(introspect);
    assertJson503(i, `introspect with ${spec}`);
    assert.equal(i.headers.get('access-control-allow-origin'), null, 'introspection has no CORS header');
  }
  assert.equal((await o.userinfo(fx, tokens.access_token)).status, 200, 'the token still works');
});

test('userinfo: 503 with a WWW-Authenticate error and a JSON body', async () => {
  const { tokens } = await o.loginAndExchange(fx, fx.web);
  const r = await o.userinfo(fx, tokens.access_token, { headers: fail('any@1+') });
  assertJson503(r, 'userinfo');
  const challenge = r.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /);
  assert.match(challenge, /error="temporarily_unavailable"/);
  assert.match(challenge, /error_description="[^"]+"/);
  assert.match(challenge, new RegExp(`realm="${fx.issuer}"`));
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.equal((await o.userinfo(fx, tokens.access_token)).status, 200, 'the token still works');
});

test('discovery and JWKS: 503 JSON, never cached', async () => {
  // A new organization: this isolate has not cached it, its key set or its JWKS yet.
  const slug = o.unique('fresh').toLowerCase();
  assert.equal((await o.admin('POST', '/organizations', { slug, name: 'Fresh' })).status, 201);
  for (const path of ['/.well-known/openid-configuration', '/jwks']) {
    const res = await fetch(`${W.url}/${slug}${path}`, { headers: fail('any@1+') }).then(o.readJson);
    assertJson503(res, `GET ${path}`);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal((await fetch(`${W.url}/${slug}${path}`)).status, 200, `${path} afterwards`);
  }
});

test('admin API: 503 in its JSON shape; a create that failed left no row, and succeeds when retried', async () => {
  for (const g of ['staff', 'chat-admins']) {
    assert.equal((await o.admin('POST', `/organizations/${fx.slug}/groups`, { name: g })).status, 201);
  }
  const body = (id) => ({
    client_id: id, client_name: 'Atomic', redirect_uris: ['https://atomic.example.test/cb'],
    role_mappings: [{ group: 'chat-admins', role: 'admin' }], allowed_groups: ['staff'],
  });
  // How many primary round trips a create takes: its last one is the batch that writes.
  const probe = await o.admin('POST', `/organizations/${fx.slug}/clients`, body('probe'));
  assert.equal(probe.status, 201, JSON.stringify(probe.body));
  const primary = storage(probe)['d1-primary'];
  assert.ok(primary >= 1);
  for (const spec of [`d1_primary@${primary}`, 'any@1', 'd1_primary@1', 'd1@1+']) {
    const res = await o.admin('POST', `/organizations/${fx.slug}/clients`, body('atomic'), { headers: fail(spec) });
    assert.equal(res.status, 503, `${spec}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error, 'temporarily_unavailable');
    assert.ok(res.body.error_description);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.match(res.headers.get('cache-control') ?? '', /no-store/);
    assert.equal((await o.admin('GET', `/organizations/${fx.slug}/clients/atomic`)).status, 404, `${spec}: no client row`);
  }
  const list = await o.admin('GET', `/organizations/${fx.slug}/clients`);
  assert.ok(!list.body.clients.some((c) => c.client_id === 'atomic'), 'not listed either');
  const created = await o.admin('POST', `/organizations/${fx.slug}/clients`, body('atomic'));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual(created.body.allowed_groups, ['staff']);
  // A user create and an update under a fault: 503, nothing written.
  const user = await o.admin('POST', `/organizations/${fx.slug}/users`, { username: 'ghost', email: 'ghost@x.test', password: 'a long enough password' },
    { headers: fail('d1_primary@2') });
  assert.equal(user.status, 503, JSON.stringify(user.body));
  const found = await o.admin('GET', `/organizations/${fx.slug}/users?username=ghost`);
  assert.deepEqual(found.body.users, []);
});

test('browser pages: the branded error page with 503 and Retry-After, never a stack or SQL', async () => {
  const browser = new o.Browser();
  // Warm: the isolate knows the organization (the page is branded from its copy).
  const login = await browser.get(o.authorizeUrl(fx, fx.web));
  assert.ok(o.isLoginPage(login));
  await coldClients();
  assertPage503(await browser.get(o.authorizeUrl(fx, fx.web), { headers: fail('any@1+') }), 'authorize');
  const form = o.loginForm(login);
  const fields = o.formFields(form, { username: fx.alice.username, password: fx.alice.password });
  assertPage503(await browser.post(form.action, fields, { headers: fail('any@1+') }), 'login POST');
  // The same form works once storage is back: nothing was half done.
  const ok = await browser.post(form.action, fields);
  assert.equal(ok.status, 303, `the login after the fault: ${ok.status} ${ok.text.slice(0, 200)}`);
  // Signed in now: these read or delete the SSO session in KV.
  assertPage503(await browser.get(o.authorizeUrl(fx, fx.web), { headers: fail('kv_read@1') }), 'authorize, the session read failing');
  assertPage503(await browser.get(`${fx.issuer}/account/mfa`, { headers: fail('any@1+') }), 'account page');
  assertPage503(await browser.get(`${fx.issuer}/logout`, { headers: fail('any@1+') }), 'logout');
  const again = await browser.get(o.authorizeUrl(fx, fx.web));
  assert.equal(again.status, 302, 'the session survived the failed logout: silent sign-in');
});

test('a locked database at the first storage call of /authorize shows the HTML page', async () => {
  const browser = new o.Browser();
  await coldClients();
  const res = await browser.get(o.authorizeUrl(fx, fx.web), { headers: fail('any@1:locked') });
  assertPage503(res, 'authorize, first call locked');
  // Where the isolate has not seen the organization yet, the page cannot be branded but is
  // still the page.
  const slug = o.unique('cold').toLowerCase();
  assert.equal((await o.admin('POST', '/organizations', { slug, name: 'Cold Org' })).status, 201);
  const cold = await browser.get(`${W.url}/${slug}/authorize?client_id=x&response_type=code`, { headers: fail('any@1:locked') });
  assertPage503(cold, 'authorize of an organization not cached', { brand: 'Clavex' });
});

test('a storage failure is in the organization\'s audit trail, and so is what the request noted before it', async () => {
  const before = (await events(fx.slug, 'storage.unavailable')).length;
  const { code } = await o.authorize(fx, fx.web);
  const r = await o.tokenRequest(fx, fx.web, { grant_type: 'authorization_code', code, redirect_uri: fx.web.redirect_uri },
    { headers: fail('d1_primary@1:lost') });
  assertJson503(r, 'exchange, connection lost');
  const found = await waitFor(async () => {
    const list = await events(fx.slug, 'storage.unavailable');
    return list.length > before && list;
  }, 'the storage.unavailable event');
  const e = found[0];
  assert.equal(e.detail.route, 'token');
  assert.equal(e.detail.kind, 'd1-primary');
  assert.equal(e.detail.simulated, true);
  assert.ok(!JSON.stringify(e).includes(code), 'no code in the event');

  // A second factor accepted, then the SSO session could not be written: the page says to
  // retry, and the event the request noted before it failed is kept (events were stored only
  // for requests that succeeded).
  const mfx = await o.createFixture('faultsmfa', { name: 'Faulty MFA' });
  assert.equal((await o.admin('PATCH', `/organizations/${mfx.slug}`, { mfa: 'required' })).status, 200);
  const browser = new o.Browser();
  const submit = (page, fields = {}, opts = {}) => {
    const [form] = o.parseForms(page.text, page.url);
    assert.ok(form, `a form: ${page.status} ${o.pageText(page.text).slice(0, 200)}`);
    return browser.post(form.action, o.formFields(form, fields), opts);
  };
  const enrolPage = await o.submitLogin(browser, await browser.get(o.authorizeUrl(mfx, mfx.web)), mfx.alice.username, mfx.alice.password);
  const secret = base32Decode(enrolPage.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const codes = await submit(enrolPage, { code: totp(secret) });
  assert.equal((await submit(codes)).status, 303, 'enrolled and signed in');
  // Again, in a new browser: password, then the code, with the session write failing.
  const second = new o.Browser(undefined, browser.ip);
  const challenge = await o.submitLogin(second, await second.get(o.authorizeUrl(mfx, mfx.web)), mfx.alice.username, mfx.alice.password);
  assert.equal(challenge.status, 200, o.pageText(challenge.text).slice(0, 200));
  // The enrolment used this step's code; the next step's is accepted (one step of drift).
  const [form] = o.parseForms(challenge.text, challenge.url);
  const res = await second.post(form.action, o.formFields(form, { code: totp(secret, Date.now() / 1000 + 30) }), { headers: fail('kv_write@1') });
  assertPage503(res, 'second factor accepted, session write failing', { brand: 'Faulty MFA' });
  const mine = await waitFor(async () => {
    const all = (await o.admin('GET', `/organizations/${mfx.slug}/events?limit=100`)).body.events.filter((x) => x.ip === browser.ip);
    return all.some((x) => x.type === 'storage.unavailable') && all;
  }, "the sign-in's events");
  assert.ok(mine.some((x) => x.type === 'signin.second_factor_passed'),
    `what the request noted before it failed: ${JSON.stringify(mine.map((x) => x.type))}`);
  assert.equal(mine.find((x) => x.type === 'storage.unavailable').detail.kind, 'kv-write');
});

test('a real lock on the local D1 database: 503 in each form, and everything works once it is released', async (t) => {
  let python = true;
  try { execFileSync('python3', ['-c', 'import sqlite3']); } catch { python = false; }
  if (!python) { t.skip('python3 with sqlite3 is not installed'); return; }
  const dir = join(W.persistDir, 'v3', 'd1', 'miniflare-D1DatabaseObject');
  const file = readdirSync(dir).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
  assert.ok(file, `the local D1 database under ${dir}`);
  const { tokens } = await o.loginAndExchange(fx, fx.web);
  const { code } = await o.authorize(fx, fx.web);
  await coldClients();
  const lock = spawn('python3', ['-c', [
    'import sqlite3, sys, time',
    `c = sqlite3.connect(${JSON.stringify(join(dir, file))}, isolation_level=None)`,
    "c.execute('BEGIN EXCLUSIVE')",
    "print('locked', flush=True)",
    'sys.stdin.read()',
    "c.execute('COMMIT')",
  ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => { lock.stdout.once('data', resolve); lock.once('exit', reject); });
    const exchange = await o.exchangeCode(fx, fx.web, code);
    assertJson503(exchange, 'code exchange while the database is locked');
    const refresh = await o.tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    assertJson503(refresh, 'refresh while locked');
    const info = await o.userinfo(fx, tokens.access_token);
    assertJson503(info, 'userinfo while locked');
    const adm = await o.admin('POST', `/organizations/${fx.slug}/clients`, { client_id: 'locked', client_name: 'L', redirect_uris: ['https://l.example.test/cb'] });
    assert.equal(adm.status, 503, JSON.stringify(adm.body));
    assert.equal(adm.body.error, 'temporarily_unavailable');
    const page = await new o.Browser().get(o.authorizeUrl(fx, fx.web));
    assertPage503(page, 'authorize while locked');
  } finally {
    lock.stdin.end();
    await new Promise((r) => lock.once('exit', r));
  }
  o.assertTokenSuccess(await o.exchangeCode(fx, fx.web, code), 'the same code after the lock');
  o.assertTokenSuccess(await o.tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), 'the same refresh token');
  assert.equal((await o.admin('GET', `/organizations/${fx.slug}/clients/locked`)).status, 404, 'the admin create left no row');
});

test('the header is ignored where the switch is off (the production default)', async (t) => {
  // The Worker tests/run.mjs shares runs without SIMULATED_STORAGE_FAULTS.
  if (!SHARED.url) { t.skip('run through tests/run.mjs to have the shared Worker'); return; }
  const res = await fetch(`${SHARED.url}/api/v1/organizations`, {
    headers: { Authorization: `Bearer ${SHARED.token}`, ...fail('any@1+') },
  });
  assert.equal(res.status, 200, await res.text());
});
