// The ID token a client receives: signature against the JWKS, required claims, nonce, at_hash,
// and no profile/email claims unless asked for with the claims parameter.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, loginAndExchange, verifyJwt, atHash, nowSeconds, Browser, authorizeUrl, assertErrorRedirect, RP_REDIRECT,
} from './support/oidc.mjs';

let fx;
let jwks;
before(async () => {
  fx = await createFixture('idt');
  jwks = await fx.jwks();
});

test('ID token: RS256, kid in the JWKS, signature verifies', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const { header } = verifyJwt(tokens.id_token, jwks);
  assert.equal(header.alg, 'RS256');
  assert.ok(jwks.keys.some((k) => k.kid === header.kid));
  if (header.typ !== undefined) assert.equal(header.typ, 'JWT');
});

test('ID token claims: iss, sub, aud, azp, exp, iat, auth_time in seconds', async () => {
  const t0 = nowSeconds();
  const { tokens } = await loginAndExchange(fx, fx.web);
  const { payload: c } = verifyJwt(tokens.id_token, jwks);
  assert.equal(c.iss, fx.issuer);
  assert.equal(c.sub, fx.alice.sub);
  assert.match(c.sub, /^[\x21-\x7e]{1,255}$/, 'sub: ≤255 printable ASCII');
  const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
  assert.ok(aud.includes(fx.web.client_id), `aud contains the client_id (${JSON.stringify(c.aud)})`);
  assert.equal(c.azp, fx.web.client_id);
  for (const k of ['exp', 'iat', 'auth_time']) {
    assert.ok(Number.isInteger(c[k]), `${k} is an integer number of seconds`);
  }
  assert.ok(Math.abs(c.iat - nowSeconds()) <= 300, 'iat within 5 minutes of now (seconds, not ms)');
  assert.ok(c.exp > c.iat && c.exp > nowSeconds(), 'exp after iat and in the future');
  assert.ok(c.auth_time <= c.iat && c.auth_time >= t0 - 5, 'auth_time is the login just done');
});

test('nonce sent → nonce in the ID token; not sent → absent', async () => {
  const nonce = 'n-0S6_WzA2Mj+/=';
  const withNonce = await loginAndExchange(fx, fx.web, { params: { nonce } });
  assert.equal(withNonce.idToken.payload.nonce, nonce);
  const without = await loginAndExchange(fx, fx.web);
  assert.equal(without.idToken.payload.nonce, undefined);
});

test('at_hash matches the access token', async () => {
  const { tokens, idToken } = await loginAndExchange(fx, fx.web);
  assert.equal(idToken.payload.at_hash, atHash(tokens.access_token));
});

test('no profile or email claims in the ID token when they were not requested with claims', async () => {
  const { idToken } = await loginAndExchange(fx, fx.web, { params: { scope: 'openid profile email' } });
  for (const k of ['email', 'email_verified', 'name', 'preferred_username', 'picture', 'updated_at']) {
    assert.equal(idToken.payload[k], undefined, `${k} not in the ID token`);
  }
});

test('claims={"id_token":{"email":null}} puts email (only) into the ID token', async () => {
  const { idToken } = await loginAndExchange(fx, fx.web, {
    params: { scope: 'openid email', claims: JSON.stringify({ id_token: { email: null } }) },
  });
  assert.equal(idToken.payload.email, fx.alice.email);
  assert.equal(idToken.payload.name, undefined, 'name was not requested');
});

test('claims for profile in the ID token have the right JSON types', async () => {
  const { idToken } = await loginAndExchange(fx, fx.web, {
    params: {
      scope: 'openid profile email',
      claims: JSON.stringify({ id_token: { name: null, email_verified: { essential: true }, updated_at: null, preferred_username: null } }),
    },
  });
  const c = idToken.payload;
  assert.equal(c.name, fx.alice.name);
  assert.equal(c.preferred_username, fx.alice.username);
  assert.equal(c.email_verified, true, 'email_verified is a boolean');
  assert.ok(Number.isInteger(c.updated_at), 'updated_at is a number of seconds');
});

test('a malformed claims parameter → invalid_request', async () => {
  const res = await new Browser().get(authorizeUrl(fx, fx.web, { claims: '{not json', state: 'cl' }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', 'cl');
});

test('ID token for the public client has aud = its client_id', async () => {
  const { idToken } = await loginAndExchange(fx, fx.spa);
  const aud = Array.isArray(idToken.payload.aud) ? idToken.payload.aud : [idToken.payload.aud];
  assert.ok(aud.includes(fx.spa.client_id));
  assert.equal(idToken.payload.sub, fx.alice.sub);
});
