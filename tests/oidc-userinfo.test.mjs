// Userinfo: every way of presenting the token, claims per scope, the keys it must never carry,
// and RFC 6750 errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, createUser, admin, loginAndExchange, endpoint, readJson, userinfo,
} from './support/oidc.mjs';

const FORBIDDEN = ['id', '_id', 'ID', 'user_id', 'userid', 'phid', 'CharacterID', 'result', 'user', 'metadata', 'ocs'];

let fx;
let full; // tokens for scope openid profile email
before(async () => {
  fx = await createFixture('ui');
  full = await loginAndExchange(fx, fx.web);
});

function assertUserinfo(res, what) {
  assert.equal(res.status, 200, `${what}: exactly 200, got ${res.status} ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what}: application/json`);
  assert.equal(typeof res.json, 'object', `${what}: a JSON object, not a JWT`);
  assert.equal(res.json.sub, fx.alice.sub, `${what}: sub`);
  for (const k of FORBIDDEN) assert.ok(!(k in res.json), `${what}: no top-level "${k}"`);
  return res.json;
}

test('GET with the Bearer header: all claims of openid profile email, typed correctly', async () => {
  const u = assertUserinfo(await userinfo(fx, full.tokens.access_token), 'GET Bearer');
  assert.equal(u.sub, full.idToken.payload.sub, 'sub equals the ID token\'s sub');
  assert.equal(u.name, fx.alice.name);
  assert.equal(u.preferred_username, fx.alice.username);
  assert.equal(u.picture, fx.alice.picture);
  assert.ok(Number.isInteger(u.updated_at), 'updated_at is a number of seconds');
  assert.ok(Math.abs(u.updated_at - Date.now() / 1000) < 86400, 'updated_at in seconds, recent');
  assert.equal(u.email, fx.alice.email);
  assert.equal(u.email_verified, true);
});

test('POST with the Bearer header', async () => {
  assertUserinfo(await userinfo(fx, full.tokens.access_token, { method: 'POST' }), 'POST Bearer');
});

test('POST with access_token in the form body', async () => {
  const res = await fetch(endpoint(fx, 'userinfo_endpoint'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ access_token: full.tokens.access_token }),
  });
  assertUserinfo(await readJson(res), 'POST form body');
});

test('GET with ?access_token= in the query', async () => {
  const url = new URL(endpoint(fx, 'userinfo_endpoint'));
  url.searchParams.set('access_token', full.tokens.access_token);
  assertUserinfo(await readJson(await fetch(url, { headers: { Accept: 'application/json' } })), 'GET query');
});

test('scope openid only → sub and nothing from profile or email', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web, { params: { scope: 'openid' } });
  const u = assertUserinfo(await userinfo(fx, tokens.access_token), 'openid only');
  for (const k of ['name', 'preferred_username', 'picture', 'updated_at', 'email', 'email_verified']) {
    assert.equal(u[k], undefined, `${k} not served without its scope`);
  }
});

test('scope openid email → email claims only', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web, { params: { scope: 'openid email' } });
  const u = assertUserinfo(await userinfo(fx, tokens.access_token), 'openid email');
  assert.equal(u.email, fx.alice.email);
  assert.equal(typeof u.email_verified, 'boolean');
  assert.equal(u.name, undefined);
  assert.equal(u.preferred_username, undefined);
});

test('scope openid profile → profile claims only', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web, { params: { scope: 'openid profile' } });
  const u = assertUserinfo(await userinfo(fx, tokens.access_token), 'openid profile');
  assert.equal(u.name, fx.alice.name);
  assert.equal(u.preferred_username, fx.alice.username);
  assert.equal(u.email, undefined);
});

test('an invalid token → 401 with WWW-Authenticate: Bearer error="invalid_token"', async () => {
  const res = await userinfo(fx, 'not-a-valid-token-0123456789');
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b.*error="invalid_token"/);
});

test('no token → 401 with a Bearer challenge', async () => {
  const res = await readJson(await fetch(endpoint(fx, 'userinfo_endpoint')));
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
});

test('a token of another organization → 401', async () => {
  const fx2 = await createFixture('ui2');
  const other = await loginAndExchange(fx2, fx2.web);
  const res = await userinfo(fx, other.tokens.access_token);
  assert.equal(res.status, 401, `org 1's userinfo must not accept org 2's token: ${res.status} ${res.text}`);
});

test('the ID token is not accepted as an access token', async () => {
  const res = await userinfo(fx, full.tokens.id_token);
  assert.equal(res.status, 401);
});

test('the refresh token is not accepted as an access token', async () => {
  const res = await userinfo(fx, full.tokens.refresh_token);
  assert.equal(res.status, 401);
});


test('the Bearer scheme name is case-insensitive (RFC 7235 §2.1)', async () => {
  const res = await readJson(await fetch(endpoint(fx, 'userinfo_endpoint'), { headers: { Authorization: `bearer ${full.tokens.access_token}` } }));
  assertUserinfo(res, 'lower-case bearer');
});

test('a disabled user\'s access token stops working at userinfo', async () => {
  const frank = await createUser(fx, { username: 'frank-disabled' });
  const { tokens } = await loginAndExchange(fx, fx.web, { user: frank });
  assert.equal((await userinfo(fx, tokens.access_token)).status, 200);
  const patch = await admin('PATCH', `/organizations/${fx.slug}/users/${frank.id}`, { disabled: true });
  assert.ok(patch.status >= 200 && patch.status < 300, `disable → ${patch.status}`);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401);
});

test('absent profile values are omitted, never null or empty (OIDC Core §5.3.2); email_verified false stays a boolean', async () => {
  const res = await admin('POST', `/organizations/${fx.slug}/users`, {
    username: 'gina-minimal', email: 'gina@example.test', password: 'Pw-minimal-123!', email_verified: false,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const gina = { username: 'gina-minimal', password: 'Pw-minimal-123!' };
  const { tokens } = await loginAndExchange(fx, fx.web, { user: gina });
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.equal(u.sub, res.body.id);
  assert.equal(u.email_verified, false);
  assert.equal(u.preferred_username, 'gina-minimal');
  for (const [k, v] of Object.entries(u)) {
    assert.ok(v !== null && v !== '', `claim ${k} is not null/empty (${JSON.stringify(v)})`);
  }
  assert.ok(!('picture' in u), 'no picture claim for a user without a picture');
});
