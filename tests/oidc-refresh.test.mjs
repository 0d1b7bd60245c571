// Refresh tokens: rotation on every use, the reuse grace window (REFRESH_REUSE_GRACE_SECONDS in
// src/protocol/lifetimes.rs), family revocation on reuse after it, client binding, refreshed ID tokens.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, loginAndExchange, tokenRequest, assertTokenSuccess, assertOAuthError, userinfo,
  decodeJwt, verifyJwt, lifetime, sleep, createUser, admin,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('refresh'); });

const refresh = (token, client = fx.web, extra = {}) =>
  tokenRequest(fx, client, { grant_type: 'refresh_token', refresh_token: token, ...extra }, { auth: client === fx.other ? 'post' : 'basic' });

test('refresh → new access and refresh tokens; the refreshed ID token keeps sub, auth_time, iss, aud with a new iat', async () => {
  const { tokens, idToken } = await loginAndExchange(fx, fx.web);
  await sleep(1100);
  const t = assertTokenSuccess(await refresh(tokens.refresh_token), 'refresh');
  assert.equal(t.token_type, 'Bearer');
  assert.equal(typeof t.expires_in, 'number');
  assert.ok(t.access_token && t.access_token !== tokens.access_token, 'a new access token');
  assert.ok(t.refresh_token && t.refresh_token !== tokens.refresh_token, 'a new (rotated) refresh token');
  assert.ok(t.id_token, 'an ID token on refresh (scope openid)');
  const { payload: c } = verifyJwt(t.id_token, await fx.jwks());
  const c0 = idToken.payload;
  assert.equal(c.iss, c0.iss);
  assert.equal(c.sub, c0.sub);
  assert.deepEqual(c.aud, c0.aud);
  assert.equal(c.auth_time, c0.auth_time);
  assert.ok(c.iat > c0.iat, `new iat (${c.iat} > ${c0.iat})`);
  assert.equal((await userinfo(fx, t.access_token)).status, 200, 'the new access token works');
});

test('the rotated refresh token can be refreshed again (a chain of three)', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  let rt = tokens.refresh_token;
  for (let i = 0; i < 3; i++) {
    const t = assertTokenSuccess(await refresh(rt), `refresh #${i + 1}`);
    assert.notEqual(t.refresh_token, rt);
    rt = t.refresh_token;
  }
});

test('refresh token of client A presented by client B → 400 invalid_grant', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  assertOAuthError(await refresh(tokens.refresh_token, fx.other), 400, 'invalid_grant');
});

test('refresh with wrong client credentials → 401 invalid_client', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const res = await tokenRequest(fx, { ...fx.web, secret: 'cs_wrong' }, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assertOAuthError(res, 401, 'invalid_client');
});

test('an unknown refresh token → 400 invalid_grant', async () => {
  assertOAuthError(await refresh('rt-that-was-never-issued-0123456789abcdef'), 400, 'invalid_grant');
});

test('missing refresh_token parameter → 400 invalid_request', async () => {
  assertOAuthError(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token' }), 400, ['invalid_request', 'invalid_grant']);
});

test('refresh may narrow the scope (RFC 6749 §6)', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const t = assertTokenSuccess(await refresh(tokens.refresh_token, fx.web, { scope: 'openid' }), 'narrowed refresh');
  assert.deepEqual(t.scope.split(' '), ['openid']);
  const ui = await userinfo(fx, t.access_token);
  assert.equal(ui.status, 200);
  assert.equal(ui.json.email, undefined, 'email no longer granted to the narrowed token');
});

test('refresh cannot widen the scope', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web, { params: { scope: 'openid email' } });
  const res = await refresh(tokens.refresh_token, fx.web, { scope: 'openid email profile' });
  assertOAuthError(res, 400, 'invalid_scope');
});

test('reuse of the just-rotated token within the grace window → a fresh pair, no revocation', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const first = assertTokenSuccess(await refresh(tokens.refresh_token), 'first refresh');
  const retry = assertTokenSuccess(await refresh(tokens.refresh_token), 'retry within the grace window');
  assert.ok(retry.access_token && retry.refresh_token, 'a fresh pair');
  assert.notEqual(retry.refresh_token, first.refresh_token);
  assert.notEqual(retry.access_token, first.access_token);
  assert.equal((await userinfo(fx, retry.access_token)).status, 200, 'the retried pair works');
  assertTokenSuccess(await refresh(retry.refresh_token), 'the retried refresh token refreshes');
});

test('several retries of the just-rotated token within the grace window each get a fresh pair', async () => {
  // A client whose responses were lost twice retries twice; every reuse inside the window is a retry.
  const { tokens } = await loginAndExchange(fx, fx.web);
  assertTokenSuccess(await refresh(tokens.refresh_token), 'rotation');
  const pairs = [];
  for (let i = 1; i <= 3; i++) {
    const r = await refresh(tokens.refresh_token);
    pairs.push(assertTokenSuccess(r, `retry #${i} within the grace window`));
  }
  for (const p of pairs) assert.equal((await userinfo(fx, p.access_token)).status, 200);
});

test('reuse of a rotated token after the grace window → invalid_grant and the whole family is revoked', async () => {
  const grace = lifetime('REFRESH_REUSE_GRACE_SECONDS');
  const { tokens } = await loginAndExchange(fx, fx.web);
  const r2 = assertTokenSuccess(await refresh(tokens.refresh_token), 'rotation');
  assert.equal((await userinfo(fx, r2.access_token)).status, 200);
  await sleep((grace + 2) * 1000);
  assertOAuthError(await refresh(tokens.refresh_token), 400, 'invalid_grant', 'the old token after the grace window');
  assertOAuthError(await refresh(r2.refresh_token), 400, 'invalid_grant', 'the newest refresh token after family revocation');
  const ui = await userinfo(fx, r2.access_token);
  assert.equal(ui.status, 401, `the newest access token after family revocation: expected 401, got ${ui.status}`);
  const ui0 = await userinfo(fx, tokens.access_token);
  assert.equal(ui0.status, 401, `the original access token after family revocation: expected 401, got ${ui0.status}`);
});

test('the public client (no refresh_token grant) gets no refresh token and cannot refresh', async () => {
  const { tokens } = await loginAndExchange(fx, fx.spa);
  assert.equal(tokens.refresh_token, undefined);
  const res = await tokenRequest(fx, fx.spa, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, { auth: 'none' });
  assertOAuthError(res, 400, ['unauthorized_client', 'invalid_grant']);
});

test('refreshed tokens keep the originally granted scope', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web, { params: { scope: 'openid email' } });
  const t = assertTokenSuccess(await refresh(tokens.refresh_token));
  assert.deepEqual(t.scope.split(' ').sort(), ['email', 'openid']);
  const ui = await userinfo(fx, t.access_token);
  assert.equal(ui.json.email, fx.alice.email);
  assert.equal(ui.json.name, undefined, 'no profile claims: profile was not granted');
  assert.equal(decodeJwt(t.id_token).payload.sub, fx.alice.sub);
});

test('concurrent refreshes with one token (client retries) do not revoke the family', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const results = await Promise.all(Array.from({ length: 5 }, () => refresh(tokens.refresh_token)));
  const statuses = results.map((r) => r.status);
  assert.ok(statuses.every((s) => s === 200), `all within the grace window: ${statuses.join(',')} ${results.map((r) => r.json?.error ?? '').join(',')}`);
  for (const r of results) {
    assert.equal((await userinfo(fx, r.json.access_token)).status, 200, 'every issued access token works');
  }
  const last = results[results.length - 1].json;
  assertTokenSuccess(await refresh(last.refresh_token), 'a refresh token from the race refreshes');
});

test('a refresh token of another organization is refused', async () => {
  const fx2 = await createFixture('refresh2');
  const { tokens } = await loginAndExchange(fx2, fx2.web);
  assertOAuthError(await refresh(tokens.refresh_token), 400, 'invalid_grant', 'org 2 refresh token at org 1 (same client_id)');
});

test('a disabled user\'s refresh token stops working', async () => {
  const erin = await createUser(fx, { username: 'erin-disabled' });
  const { tokens } = await loginAndExchange(fx, fx.web, { user: erin });
  const patch = await admin('PATCH', `/organizations/${fx.slug}/users/${erin.id}`, { disabled: true });
  assert.ok(patch.status >= 200 && patch.status < 300, `disable → ${patch.status}`);
  assertOAuthError(await refresh(tokens.refresh_token), 400, 'invalid_grant', 'refresh for a disabled user');
});
