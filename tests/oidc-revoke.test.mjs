// Token revocation (RFC 7009) and introspection (RFC 7662), both client-authenticated.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, loginAndExchange, clientPost, endpoint, userinfo, tokenRequest, assertOAuthError, nowSeconds,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('revoke'); });

const revoke = (token, hint, client = fx.web, auth = 'basic') =>
  clientPost(fx, client, endpoint(fx, 'revocation_endpoint'), hint ? { token, token_type_hint: hint } : { token }, { auth });
const introspect = (token, client = fx.web, auth = 'basic', hint) =>
  clientPost(fx, client, endpoint(fx, 'introspection_endpoint'), hint ? { token, token_type_hint: hint } : { token }, { auth });

test('introspection of a live access token: active, with client_id, sub, scope, exp', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const res = await introspect(tokens.access_token);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.json.active, true);
  assert.equal(res.json.client_id, fx.web.client_id);
  assert.equal(res.json.sub, fx.alice.sub);
  assert.deepEqual(res.json.scope.split(' ').sort(), ['email', 'openid', 'profile']);
  assert.ok(Number.isInteger(res.json.exp) && res.json.exp > nowSeconds(), 'exp in seconds, in the future');
  if (res.json.token_type !== undefined) assert.match(res.json.token_type, /^(Bearer|access_token)$/i);
  if (res.json.iss !== undefined) assert.equal(res.json.iss, fx.issuer);
});

test('introspection of a live refresh token: active', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const res = await introspect(tokens.refresh_token, fx.web, 'basic', 'refresh_token');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.active, true);
  assert.equal(res.json.client_id, fx.web.client_id);
});

test('introspection of an unknown token → exactly {"active": false}', async () => {
  const res = await introspect('never-issued-0123456789abcdef');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { active: false });
});

test('introspection requires client authentication', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const noAuth = await introspect(tokens.access_token, fx.web, false);
  assertOAuthError(noAuth, 401, 'invalid_client', 'no credentials');
  const wrong = await introspect(tokens.access_token, { ...fx.web, secret: 'cs_wrong' });
  assertOAuthError(wrong, 401, 'invalid_client', 'wrong secret');
  const pub = await introspect(tokens.access_token, fx.spa, 'none');
  assert.ok([401, 403].includes(pub.status), `a public client cannot introspect: ${pub.status}`);
  assert.notEqual(pub.json?.active, true);
});

test('revoking an access token (with token_type_hint) → 200; userinfo 401, introspection inactive', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const res = await revoke(tokens.access_token, 'access_token');
  assert.equal(res.status, 200, res.text);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401);
  assert.deepEqual((await introspect(tokens.access_token)).json, { active: false });
});

test('revoking an access token without a hint works too', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  assert.equal((await revoke(tokens.access_token)).status, 200);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401);
});

test('revoking an access token with the wrong hint (refresh_token) still revokes it', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  assert.equal((await revoke(tokens.access_token, 'refresh_token')).status, 200);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401);
});

test('revoking a refresh token → refresh fails with invalid_grant, introspection inactive', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  assert.equal((await revoke(tokens.refresh_token, 'refresh_token')).status, 200);
  const res = await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assertOAuthError(res, 400, 'invalid_grant');
  assert.deepEqual((await introspect(tokens.refresh_token)).json, { active: false });
});

test('revoking an unknown token → 200', async () => {
  const res = await revoke('never-issued-0123456789abcdef', 'access_token');
  assert.equal(res.status, 200, res.text);
});

test('revocation with client_secret_post works', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  assert.equal((await revoke(tokens.access_token, undefined, fx.web, 'post')).status, 200);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401);
});

test('revocation requires client authentication', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  assertOAuthError(await revoke(tokens.access_token, undefined, fx.web, false), 401, 'invalid_client', 'no credentials');
  assertOAuthError(await revoke(tokens.access_token, undefined, { ...fx.web, secret: 'cs_wrong' }), 401, 'invalid_client', 'wrong secret');
  assert.equal((await userinfo(fx, tokens.access_token)).status, 200, 'the token survives unauthenticated revocation attempts');
});

test('a client cannot revoke another client\'s token', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const res = await revoke(tokens.access_token, undefined, fx.other, 'post');
  assert.ok(res.status < 500, `status ${res.status}`);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 200, 'still valid after another client\'s attempt');
});

test('the public client can revoke its own token with client_id only', async () => {
  const { tokens } = await loginAndExchange(fx, fx.spa);
  const res = await revoke(tokens.access_token, 'access_token', fx.spa, 'none');
  assert.equal(res.status, 200, res.text);
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401);
});

test('revocation without the token parameter → 400 invalid_request', async () => {
  const res = await clientPost(fx, fx.web, endpoint(fx, 'revocation_endpoint'), {});
  assertOAuthError(res, 400, 'invalid_request');
});
