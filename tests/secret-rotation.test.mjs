// Rotating KEY_ENCRYPTION_SECRET (README, "Rotating KEY_ENCRYPTION_SECRET"; issue 15, findings 7
// and 11): the operator's procedure end to end on one Worker's state (D1 and KV) across restarts
// with other secrets — set the new secret with the old one as previous, sign in with TOTP and
// recovery codes, re-seal, remove the old secret, sign in again: nothing lost. And what happens
// when the old secret is removed before the re-seal: a loud, clear configuration error, never
// "invalid code". This file starts its own Workers (not the one tests/run.mjs starts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync, randomBytes } from 'node:crypto';
import { startWorker, freePort } from './support/worker.mjs';
import {
  Browser, isLoginPage, loginForm, parseForms, formFields, pageText, parseRedirect, tokenRequest, decodeJwt,
  verifyJwt, randomString,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

const REDIRECT = 'https://rp.rotation.test/cb';
const adminToken = `rotation-${randomBytes(18).toString('base64url')}`;
const secret = () => randomBytes(32).toString('base64url');
const running = new Set();
after(async () => { await Promise.all([...running].map((w) => w.stop())); });

/** The key id sealed values carry for `s` (crypto/keyring.rs), computed independently. */
const keyId = (s) => Buffer.from(hkdfSync('sha256', s, 'clavex/v1', 'key-id', 6)).toString('base64url');

async function start(port, vars) {
  const w = await startWorker({ port, vars: base(port, vars) });
  running.add(w);
  return w;
}

async function restart(w, vars) {
  running.delete(w);
  const next = await w.restart({ vars: base(w.port, vars) });
  running.add(next);
  return next;
}

/** Same admin token and issuer across restarts: only the secrets change. */
function base(port, vars) {
  return { ADMIN_TOKEN: adminToken, PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, ...vars };
}

async function adminAt(w, method, path, body) {
  const res = await fetch(`${w.url}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

/** An organization (second factor required, or off) with one confidential client. */
/** An upstream connection of `org` (its client secret is sealed like a TOTP secret). */
async function connection(w, org) {
  const res = await adminAt(w, 'POST', `/organizations/${org.slug}/connections`, {
    issuer: 'https://idp.example.test', client_id: 'clavex', client_secret: 'upstream-secret', label: 'Upstream',
  });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function organization(w, mfa) {
  const slug = `rot-${randomBytes(4).toString('hex')}`;
  const org = await adminAt(w, 'POST', '/organizations', { slug, name: `Rotation ${slug}` });
  assert.equal(org.status, 201, org.text);
  assert.equal((await adminAt(w, 'PATCH', `/organizations/${slug}`, { mfa })).status, 200);
  const client = await adminAt(w, 'POST', `/organizations/${slug}/clients`, {
    client_id: 'rp', client_name: 'Relying party', redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic',
  });
  assert.equal(client.status, 201, client.text);
  return { slug, client_id: 'rp', secret: client.json.client_secret, redirect_uri: REDIRECT };
}

async function user(w, org) {
  const password = `Pw-${randomString(12)}!`;
  const username = `u${randomBytes(4).toString('hex')}`;
  const u = await adminAt(w, 'POST', `/organizations/${org.slug}/users`, { username, email: `${username}@rotation.test`, password });
  assert.equal(u.status, 201, u.text);
  return { ...u.json, username, password };
}

function authorizeUrl(w, org) {
  const url = new URL(`${w.url}/${org.slug}/authorize`);
  for (const [k, v] of Object.entries({ client_id: org.client_id, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile', state: randomString(8) })) url.searchParams.set(k, v);
  return url;
}

/** The page after the password. */
async function password(w, org, u, browser = new Browser()) {
  const page = await browser.get(authorizeUrl(w, org));
  assert.ok(isLoginPage(page), `a login page, got ${page.status}`);
  const form = loginForm(page);
  return { browser, page: await browser.post(form.action, formFields(form, { username: u.username, password: u.password })) };
}

function submit(browser, page, fields = {}) {
  const [form] = parseForms(page.text, page.url);
  assert.ok(form, `a form on the page: ${page.status} ${pageText(page.text).slice(0, 300)}`);
  return browser.post(form.action, formFields(form, fields));
}

function codeOf(res) {
  assert.equal(res.status, 303, `a redirect with a code, got ${res.status}: ${pageText(res.text).slice(0, 300)}`);
  const { params } = parseRedirect(res.location);
  assert.ok(params.code, res.location);
  return params.code;
}

function exchange(w, org, code) {
  return tokenRequest(null, org, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, { url: `${w.url}/${org.slug}/token` });
}

/** Tokens for `code`, the ID token verified with the organization's published keys. */
async function tokensVerified(w, org, code) {
  const res = await exchange(w, org, code);
  assert.equal(res.status, 200, `token exchange: ${res.text}`);
  const jwks = await (await fetch(`${w.url}/${org.slug}/jwks`)).json();
  const id = verifyJwt(res.json.id_token, jwks);
  assert.equal(id.payload.iss, `${w.url}/${org.slug}`);
  return { tokens: res.json, id: id.payload, kid: id.header.kid };
}

/** Enrol `u` (second factor required by the organization): its secret, recovery codes, step. */
async function enrol(w, org, u) {
  const { browser, page } = await password(w, org, u);
  assert.match(pageText(page.text), /Set up two-step verification/);
  const key = base32Decode(page.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const step = Math.floor(Date.now() / 1000 / 30);
  const codesPage = await submit(browser, page, { code: totp(key, step * 30) });
  assert.equal(codesPage.status, 200, pageText(codesPage.text).slice(0, 300));
  const recovery = [...codesPage.text.matchAll(/<li><code>([a-z2-7]{5}-[a-z2-7]{5})<\/code><\/li>/g)].map((m) => m[1]);
  assert.equal(recovery.length, 10);
  const done = await submit(browser, codesPage);
  Object.assign(u, { key, recovery, lastStep: step });
  return tokensVerified(w, org, codeOf(done));
}

/** A TOTP code for a step no earlier code of `u` used, within the server's window (waits if needed). */
async function freshCode(u) {
  const current = Math.floor(Date.now() / 1000 / 30);
  const step = Math.max(u.lastStep + 1, current);
  if (step > current + 1) await new Promise((r) => setTimeout(r, (step - 1) * 30_000 - Date.now() + 300));
  u.lastStep = step;
  return totp(u.key, step * 30);
}

/** Password, then the second-factor form posted with `code`: the response. */
async function secondFactor(w, org, u, code) {
  const { browser, page } = await password(w, org, u);
  assert.match(pageText(page.text), /Enter the 6-digit code/);
  return { browser, page, res: await submit(browser, page, { code }) };
}

async function reseal(w) {
  const res = await adminAt(w, 'POST', '/maintenance/reseal');
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);
  return res.json;
}

const counts = (resealed, unreadable, left) => ({ resealed, unreadable, left });

test('rotate, sign in with TOTP and recovery codes, re-seal, remove the old secret: nothing lost', async () => {
  const [s1, s2] = [secret(), secret()];
  let w = await start(await freePort(), { KEY_ENCRYPTION_SECRET: s1 });
  const org = await organization(w, 'required');
  const idle = await organization(w, 'off'); // its signing key is used by nobody until the re-seal
  const plainOrg = await organization(w, 'off');
  const [u1, u2, u3] = [await user(w, org), await user(w, org), await user(w, org)];
  const plain = await user(w, plainOrg);
  await connection(w, idle);
  const first = await enrol(w, org, u1);
  await enrol(w, org, u2);
  await enrol(w, org, u3);
  // A recovery code works after enrolment.
  const early = await secondFactor(w, org, u1, u1.recovery[0]);
  await tokensVerified(w, org, codeOf(early.res));
  // Short-lived values in flight at the rotation: a login form shown and a code issued under s1.
  const pending = new Browser();
  const formPage = await pending.get(authorizeUrl(w, plainOrg));
  const inFlight = codeOf((await password(w, plainOrg, plain)).page);

  // Rotate: s2 seals everything new, s1 still opens.
  w = await restart(w, { KEY_ENCRYPTION_SECRET: s2, KEY_ENCRYPTION_SECRET_PREVIOUS: s1 });
  await tokensVerified(w, plainOrg, inFlight);
  const form = loginForm(formPage);
  const posted = await pending.post(form.action, formFields(form, { username: plain.username, password: plain.password }));
  const fromOldForm = codeOf(posted);
  assert.ok(fromOldForm.startsWith(`${keyId(s2)}.`), 'codes are sealed under the new secret and name it');
  await tokensVerified(w, plainOrg, fromOldForm);

  // TOTP sign-in; the ID token verifies with the organization's JWKS, signed by the same key.
  const totpSignIn = await secondFactor(w, org, u1, await freshCode(u1));
  const afterRotation = await tokensVerified(w, org, codeOf(totpSignIn.res));
  assert.equal(afterRotation.kid, first.kid, 'the signing key survived the rotation');
  assert.deepEqual(afterRotation.id.amr, ['pwd', 'otp', 'mfa']);
  // A recovery code of a user whose factors are still sealed under s1.
  const recovered = await secondFactor(w, org, u2, u2.recovery[0]);
  await tokensVerified(w, org, codeOf(recovered.res));

  // The re-seal: what was used above was re-sealed on use; the rest now.
  const report = await reseal(w);
  assert.equal(report.key_id, keyId(s2));
  assert.deepEqual(report.previous_key_ids, [keyId(s1)]);
  assert.deepEqual(report.signing_keys, counts(1, 0, 0), `only the idle organization's key: ${JSON.stringify(report)}`);
  assert.deepEqual(report.totp_secrets, counts(1, 0, 0), 'only u3: u1 and u2 were re-sealed when used');
  assert.deepEqual(report.recovery_keys, counts(1, 0, 0));
  assert.deepEqual(report.connection_secrets, counts(1, 0, 0), 'the upstream connection\'s client secret');
  assert.deepEqual(report.unknown_key_ids, []);
  assert.equal(report.done, true);
  const again = await reseal(w);
  for (const kind of ['signing_keys', 'totp_secrets', 'recovery_keys', 'connection_secrets']) assert.deepEqual(again[kind], counts(0, 0, 0), `idempotent: ${kind}`);
  assert.equal(again.done, true);

  // The old secret removed: every user's factors and every key still work.
  w = await restart(w, { KEY_ENCRYPTION_SECRET: s2 });
  assert.deepEqual((await reseal(w)).previous_key_ids, []);
  for (const u of [u1, u3]) {
    const s = await secondFactor(w, org, u, await freshCode(u));
    const { kid } = await tokensVerified(w, org, codeOf(s.res));
    assert.equal(kid, first.kid);
  }
  await tokensVerified(w, idle, codeOf((await password(w, idle, await user(w, idle))).page));
  const viaRecovery = await secondFactor(w, org, u2, u2.recovery[1]);
  await tokensVerified(w, org, codeOf(viaRecovery.res));
  const replay = await secondFactor(w, org, u2, u2.recovery[1]);
  assert.equal(replay.res.status, 401, 'a recovery code works once');

  // One recovery code posted 20 times at once: exactly one sign-in.
  const left = (await adminAt(w, 'GET', `/organizations/${org.slug}/users/${u3.id}`)).json.recovery_codes_left;
  const { browser, page } = await password(w, org, u3);
  const burst = await Promise.all(Array.from({ length: 20 }, () => submit(browser, page, { code: u3.recovery[4] })));
  const won = burst.filter((r) => r.status === 303 && parseRedirect(r.location).params.code);
  assert.equal(won.length, 1, `exactly one success: ${burst.map((r) => r.status).join(' ')}`);
  for (const r of burst.filter((x) => x !== won[0])) assert.ok([401, 429].includes(r.status), `refused: ${r.status}`);
  await tokensVerified(w, org, codeOf(won[0]));
  assert.equal((await adminAt(w, 'GET', `/organizations/${org.slug}/users/${u3.id}`)).json.recovery_codes_left, left - 1);
});

test('the old secret removed before the re-seal: a clear configuration error, never a wrong answer; putting it back loses nothing', async () => {
  const [s1, s2] = [secret(), secret()];
  let w = await start(await freePort(), { KEY_ENCRYPTION_SECRET: s1 });
  const org = await organization(w, 'required');
  const plainOrg = await organization(w, 'off');
  const u = await user(w, org);
  const plain = await user(w, plainOrg);
  const before = await enrol(w, org, u);
  await connection(w, plainOrg);
  const { tokens: held } = await tokensVerified(w, plainOrg, codeOf((await password(w, plainOrg, plain)).page));
  const refresh = (w, token) => tokenRequest(null, plainOrg, { grant_type: 'refresh_token', refresh_token: token }, { url: `${w.url}/${plainOrg.slug}/token` });

  w = await restart(w, { KEY_ENCRYPTION_SECRET: s2 });
  // The TOTP secret cannot be opened: a page that says so, status 500 — not "invalid code".
  const denied = await secondFactor(w, org, u, await freshCode(u));
  assert.equal(denied.res.status, 500, pageText(denied.res.text).slice(0, 300));
  assert.match(pageText(denied.res.text), /configuration problem/);
  assert.doesNotMatch(pageText(denied.res.text), /not valid/);
  const byRecovery = await submit(denied.browser, denied.page, { code: u.recovery[0] });
  assert.equal(byRecovery.status, 500, 'the recovery-code key cannot be opened either');
  const lock = (await adminAt(w, 'GET', `/organizations/${org.slug}/users/${u.id}`)).json.login_lock;
  assert.ok(!lock || lock.failures === 0, `not counted as wrong codes: ${JSON.stringify(lock)}`);
  // The signing key cannot be opened: the token endpoint answers a JSON server_error.
  const code = codeOf((await password(w, plainOrg, plain)).page);
  const token = await exchange(w, plainOrg, code);
  assert.equal(token.status, 500, token.text);
  assert.equal(token.json?.error, 'server_error');
  assert.match(token.json.error_description, /KEY_ENCRYPTION_SECRET/);
  assert.match(token.headers.get('cache-control') ?? '', /no-store/);
  // A refresh fails the same way, before its token is rotated (else the client's retry after the
  // fix would look like a replay and revoke the grant).
  const refused = await refresh(w, held.refresh_token);
  assert.equal(refused.status, 500, refused.text);
  assert.equal(refused.json?.error, 'server_error');
  const refusedAt = Date.now();
  // The re-seal names what is missing and does not pretend to be done.
  const report = await reseal(w);
  assert.deepEqual(report.signing_keys, counts(0, 2, 2));
  assert.deepEqual(report.totp_secrets, counts(0, 1, 1));
  assert.deepEqual(report.recovery_keys, counts(0, 1, 1));
  assert.deepEqual(report.connection_secrets, counts(0, 1, 1));
  assert.deepEqual(report.unknown_key_ids, [keyId(s1)]);
  assert.equal(report.done, false);
  // The log says which secret is missing.
  await new Promise((r) => setTimeout(r, 300));
  assert.match(w.output(), /sealed_value_unreadable/);
  assert.ok(w.output().includes(keyId(s1)), 'the missing key id is in the log');

  // A misconfiguration is refused as such: the previous secret equal to the current one.
  w = await restart(w, { KEY_ENCRYPTION_SECRET: s2, KEY_ENCRYPTION_SECRET_PREVIOUS: s2 });
  const misconfigured = await fetch(`${w.url}/${org.slug}/.well-known/openid-configuration`);
  assert.equal(misconfigured.status, 500);
  assert.equal((await misconfigured.json()).error_description, 'the server is not configured');
  await new Promise((r) => setTimeout(r, 300));
  assert.match(w.output(), /KEY_ENCRYPTION_SECRET_PREVIOUS entry 1 is the same as KEY_ENCRYPTION_SECRET/);
  assert.ok(!w.output().includes(s2), 'no secret in the log');

  // The old secret back as previous: the cron re-seals everything, and nothing was lost.
  w = await restart(w, { KEY_ENCRYPTION_SECRET: s2, KEY_ENCRYPTION_SECRET_PREVIOUS: s1 });
  const cron = await fetch(`${w.url}/__scheduled?cron=${encodeURIComponent('17 * * * *')}`);
  assert.equal(cron.status, 200, await cron.text());
  const after = await reseal(w);
  for (const kind of ['signing_keys', 'totp_secrets', 'recovery_keys', 'connection_secrets']) assert.deepEqual(after[kind], counts(0, 0, 0), `the cron re-sealed ${kind}`);
  assert.equal(after.done, true);
  w = await restart(w, { KEY_ENCRYPTION_SECRET: s2 });
  const signedIn = await secondFactor(w, org, u, await freshCode(u));
  const { kid } = await tokensVerified(w, org, codeOf(signedIn.res));
  assert.equal(kid, before.kid);
  // The refresh token refused with the configuration error still refreshes — also after the
  // reuse grace window (REFRESH_REUSE_GRACE_SECONDS, 30 s), where a token rotated by the refused
  // request would be taken for a replay.
  await new Promise((r) => setTimeout(r, Math.max(0, refusedAt + 31_000 - Date.now())));
  const refreshed = await refresh(w, held.refresh_token);
  assert.equal(refreshed.status, 200, refreshed.text);
  verifyJwt(refreshed.json.id_token, await (await fetch(`${w.url}/${plainOrg.slug}/jwks`)).json());
  // The recovery code refused with the configuration error was not used up.
  const recovered = await secondFactor(w, org, u, u.recovery[0]);
  await tokensVerified(w, org, codeOf(recovered.res));
});
