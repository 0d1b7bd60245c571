// Two Cloudflare locations (issue #8): two `wrangler dev` instances that share one D1 database but
// each have their own KV — the user's browser at location A, the relying party's server at B,
// before KV has propagated between them. Same secrets, same PUBLIC_BASE_URL, so one issuer.
// This file starts its own pair of Workers (it does not use the one tests/run.mjs starts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, freePort } from './support/worker.mjs';
import {
  Browser, isLoginPage, loginForm, formFields, parseRedirect, basicAuth, readJson, decodeJwt, verifyJwt, randomString,
} from './support/oidc.mjs';

const REDIRECT = 'https://chat.acme.test/_oauth/clavex';
const adminToken = `two-locations-${randomBytes(18).toString('base64url')}`;
let A; let B; let issuerBase;

before(async () => {
  const portA = await freePort();
  issuerBase = `http://127.0.0.1:${portA}`;
  const vars = {
    ADMIN_TOKEN: adminToken,
    KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
    PUBLIC_BASE_URL: issuerBase,
    STORAGE_TIMING: 'on',
  };
  A = await startWorker({ vars, port: portA });
  B = await startWorker({ vars, d1From: A.persistDir });
});
after(() => { A?.stop(); B?.stop(); });

async function adminAt(at, method, path, body) {
  const res = await fetch(`${at.url}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return readJson(res);
}

/** An organization, a confidential client and a user, all created through A's admin API. */
async function setup(at = A) {
  const slug = `loc-${randomBytes(5).toString('hex')}`;
  const org = await adminAt(at, 'POST', '/organizations', { slug, name: `Two locations ${slug}` });
  assert.equal(org.status, 201, org.text);
  const client = await adminAt(at, 'POST', `/organizations/${slug}/clients`, {
    client_id: 'rocketchat', client_name: 'Rocket.Chat', redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic',
  });
  assert.equal(client.status, 201, client.text);
  const password = `Pw-${randomString(12)}!`;
  const user = await adminAt(at, 'POST', `/organizations/${slug}/users`, {
    username: 'jane', email: 'jane@acme.test', name: 'Jane Doe', password,
  });
  assert.equal(user.status, 201, user.text);
  return { slug, secret: client.json.client_secret, user: { ...user.json, password } };
}

function authorizeUrl(at, fx, state) {
  const url = new URL(`${at.url}/${fx.slug}/authorize`);
  for (const [k, v] of Object.entries({ client_id: 'rocketchat', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile email', state })) url.searchParams.set(k, v);
  return url;
}

/** The browser signs in at `at` and is sent back with a code. */
async function signIn(at, fx, browser = new Browser()) {
  const state = randomString(8);
  let res = await browser.get(authorizeUrl(at, fx, state));
  if (isLoginPage(res)) {
    const form = loginForm(res);
    res = await browser.post(form.action, formFields(form, { username: fx.user.username, password: fx.user.password }));
  }
  assert.ok([302, 303].includes(res.status), `a redirect back to the client, got ${res.status}: ${res.text.slice(0, 300)}`);
  const { params } = parseRedirect(res.location);
  assert.equal(params.state, state);
  assert.ok(params.code, `a code: ${res.location}`);
  assert.equal(params.iss, `${issuerBase}/${fx.slug}`, 'iss is the shared issuer');
  return { code: params.code, browser };
}

async function token(at, fx, form) {
  return readJson(await fetch(`${at.url}/${fx.slug}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basicAuth('rocketchat', fx.secret) },
    body: new URLSearchParams(form),
  }));
}
const redeem = (at, fx, code) => token(at, fx, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });

async function userinfo(at, fx, accessToken) {
  return readJson(await fetch(`${at.url}/${fx.slug}/userinfo`, { headers: { Authorization: `Bearer ${accessToken}` } }));
}

test('a code minted at A (where the browser is) redeems at B (where the client is) at once', async () => {
  const fx = await setup();
  const { code } = await signIn(A, fx);
  const res = await redeem(B, fx, code);
  assert.equal(res.status, 200, `redeemed at B: ${res.text}`);
  const claims = decodeJwt(res.json.id_token).payload;
  assert.equal(claims.iss, `${issuerBase}/${fx.slug}`);
  assert.equal(claims.sub, fx.user.id);
  const jwks = await (await fetch(`${B.url}/${fx.slug}/jwks`)).json();
  assert.ok(verifyJwt(res.json.id_token, jwks), 'the ID token verifies with the JWKS served at B');
  assert.match(res.headers.get('server-timing') ?? '', /kv-read;count=0/, 'redeeming reads nothing from KV');
});

test('a code redeemed at A is refused at B, and the replay revokes what A issued', async () => {
  const fx = await setup();
  const { code } = await signIn(A, fx);
  const first = await redeem(A, fx, code);
  assert.equal(first.status, 200, first.text);
  const replay = await redeem(B, fx, code);
  assert.equal(replay.status, 400, replay.text);
  assert.equal(replay.json.error, 'invalid_grant');
  for (const at of [A, B]) {
    const info = await userinfo(at, fx, first.json.access_token);
    assert.equal(info.status, 401, `the first redemption's access token is revoked (${at === A ? 'A' : 'B'}): ${info.text}`);
  }
  const refresh = await token(A, fx, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token });
  assert.equal(refresh.json?.error, 'invalid_grant', `its refresh token is revoked: ${refresh.text}`);
});

test('tokens issued at A work at B, and refreshed tokens from B work at A', async () => {
  const fx = await setup();
  const { code } = await signIn(A, fx);
  const tokens = (await redeem(A, fx, code)).json;
  const info = await userinfo(B, fx, tokens.access_token);
  assert.equal(info.status, 200, info.text);
  assert.equal(info.json.sub, fx.user.id);
  assert.equal(info.json.preferred_username, 'jane');
  const refreshed = await token(B, fx, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assert.equal(refreshed.status, 200, refreshed.text);
  assert.equal((await userinfo(A, fx, refreshed.json.access_token)).status, 200, 'the refreshed access token works at A');
});

test('an organization, client and user created at A sign in at B at once', async () => {
  const fx = await setup(A);
  const { code } = await signIn(B, fx); // the browser is at B this time, the admin was at A
  const res = await redeem(B, fx, code);
  assert.equal(res.status, 200, res.text);
  const discovery = await (await fetch(`${B.url}/${fx.slug}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.issuer, `${issuerBase}/${fx.slug}`, 'B serves the new organization with the shared issuer');
});

test('the SSO session lives where the browser signed in: a login page at B for a session made at A', async () => {
  const fx = await setup();
  const { browser } = await signIn(A, fx);
  // Back at A with its cookie: no login page, straight back to the client with a code.
  const again = await browser.get(authorizeUrl(A, fx, 'again'));
  assert.ok(!isLoginPage(again), 'A does not show its login page to a browser with a session there');
  assert.ok([302, 303].includes(again.status), `A redirects back to the client: ${again.status} ${again.text.slice(0, 200)}`);
  assert.ok(parseRedirect(again.location).params.code, `A signs the browser in from its session: ${again.location}`);
  // The same cookie sent to B (KV not shared, as before propagation): B does not know the session.
  const cookie = browser.jar.header(new URL(`${A.url}/${fx.slug}/authorize`));
  assert.match(cookie ?? '', /clavex_session=/, 'the browser holds a session cookie from A');
  const url = authorizeUrl(B, fx, 's');
  const res = await fetch(url, { headers: { Cookie: cookie }, redirect: 'manual' });
  const page = { status: res.status, headers: res.headers, text: await res.text(), url: String(url) };
  assert.ok(isLoginPage(page), `B shows its login page: ${page.status}`);
});

test('guesses for one account spread over two locations: at most the threshold answered in all, the right one inside the lock refused', async () => {
  const fx = await setup();
  const page = await fetch(authorizeUrl(A, fx, 'burst'));
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const html = await page.text();
  const field = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
  const form = { request: field('request'), csrf_token: field('csrf_token') };
  const ip = () => `198.18.${Math.floor(Math.random() * 255)}.${1 + Math.floor(Math.random() * 253)}`;
  // The login form sealed at A opens at B too: same secret, same issuer.
  const post = (at, password) => fetch(`${at.url}/${fx.slug}/login`, {
    method: 'POST', redirect: 'manual',
    headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded', 'CF-Connecting-IP': ip() },
    body: new URLSearchParams({ ...form, username: 'jane', password }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  // Waves of one guess at each location at once: concurrent across the two locations. (All at
  // once, the two local processes mostly meet each other's SQLite file lock, a local artefact.)
  const t0 = Date.now();
  const statuses = [];
  for (let i = 0; i < 15; i += 1) statuses.push(...await Promise.all([post(A, `wrong-at-a-${i}`), post(B, `wrong-at-b-${i}`)]));
  statuses.push(await post(B, fx.user.password));
  const ms = Date.now() - t0;
  const wrong = statuses.slice(0, 30);
  const answered = wrong.filter((s) => s === 401).length;
  const tally = {}; for (const s of wrong) tally[s] = (tally[s] ?? 0) + 1;
  console.log(`two-location burst of 30 wrong + right: ${JSON.stringify(tally)}, right ${statuses[30]}`);
  // The threshold, plus one for each wait (1 s, 2 s, …) that ran out while the waves went on.
  const may = 5 + Math.floor(Math.log2(ms / 1000 + 1));
  assert.ok(answered <= may, `at most the threshold answered across both locations: ${answered} in ${ms} ms`);
  // Locally the two "locations" are two processes writing one SQLite file, which refuses a
  // writer while the other holds it; past a few short retries that is a 503 (unanswered, like a
  // 429). Real D1 has one primary and no such file lock.
  assert.ok(wrong.every((s) => [401, 429, 503].includes(s)), JSON.stringify(tally));
  // Enough were decided for the threshold to have been reached, so the bound above means something.
  assert.ok((tally[401] ?? 0) + (tally[429] ?? 0) >= 6, `the lock was reached: ${JSON.stringify(tally)}`);
  assert.ok([303, 429, 503].includes(statuses[30]), String(statuses[30]));
});
