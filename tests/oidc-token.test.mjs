// The token endpoint: response shape, client authentication (basic raw / urlencoded, post, none),
// PKCE verification, redirect_uri binding and RFC 6749 §5.2 errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, createClient, authorize, exchangeCode, tokenRequest, assertTokenSuccess, assertOAuthError,
  pkce, basicAuth, endpoint, readJson, loginAndExchange, RP_REDIRECT, RP_REDIRECT_2, userinfo,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('token'); });

const codeFor = async (client = fx.web, params = {}) => (await authorize(fx, client, { params })).code;

/** Asserts a 401 invalid_client with a WWW-Authenticate challenge. */
function assertInvalidClient(res, what) {
  assertOAuthError(res, 401, 'invalid_client', what);
  assert.ok(res.headers.get('www-authenticate'), `${what}: WWW-Authenticate header on 401`);
}

test('successful exchange: JSON, no-store, Bearer, numeric expires_in, id_token, scope, refresh_token', async () => {
  const res = await exchangeCode(fx, fx.web, await codeFor());
  const t = assertTokenSuccess(res);
  assert.equal(typeof t.access_token, 'string');
  assert.match(t.access_token, /^[\x20-\x7e]{22,}$/, 'access token: ≥22 printable ASCII characters');
  assert.notEqual(t.access_token.split('.').length, 3, 'access tokens are opaque, not JWTs');
  assert.equal(t.token_type, 'Bearer');
  assert.equal(typeof t.expires_in, 'number');
  assert.ok(t.expires_in > 0 && t.expires_in <= 31536000, `expires_in ${t.expires_in}`);
  assert.equal(typeof t.id_token, 'string');
  assert.equal(typeof t.scope, 'string');
  assert.deepEqual(t.scope.split(' ').sort(), ['email', 'openid', 'profile']);
  assert.equal(typeof t.refresh_token, 'string', 'refresh_token for a client with the refresh_token grant');
  assert.match(t.refresh_token, /^[\x20-\x7e]{22,}$/, 'refresh token: ≥128 bits of printable ASCII');
  assert.notEqual(t.refresh_token, t.access_token);
  assert.match(res.headers.get('pragma') ?? 'no-cache', /no-cache/);
});

test('scope in the response is what was granted (openid email)', async () => {
  const t = assertTokenSuccess(await exchangeCode(fx, fx.web, await codeFor(fx.web, { scope: 'openid email' })));
  assert.deepEqual(t.scope.split(' ').sort(), ['email', 'openid']);
});

test('client_secret_basic with raw credentials works', async () => {
  assertTokenSuccess(await exchangeCode(fx, fx.web, await codeFor(), { auth: 'basic-raw' }), 'basic raw');
});

test('client_secret_basic with form-urlencoded credentials works', async () => {
  assertTokenSuccess(await exchangeCode(fx, fx.web, await codeFor(), { auth: 'basic' }), 'basic urlencoded');
});

test('Basic with form-urlencoded credentials that differ from raw (client_id with ~ sent as %7E)', async () => {
  // Client ids are letters, digits, - . _ ~ and secrets URL-safe, so the RFC 6749 §2.3.1 encoding is
  // usually the identity; Java-style form encoders still percent-encode "~". Both must be accepted.
  const client = await createClient(fx, {
    client_id: 'svc~partner.example', client_name: 'Tilde id', grant_types: ['authorization_code'],
    redirect_uris: [RP_REDIRECT], scopes: ['openid'], token_endpoint_auth_method: 'client_secret_basic',
  });
  const variants = {
    raw: `${client.client_id}:${client.secret}`,
    'percent-encoded ~': `${client.client_id.replace('~', '%7E')}:${client.secret}`,
  };
  for (const [label, credentials] of Object.entries(variants)) {
    const code = await codeFor(client, { scope: 'openid' });
    const res = await tokenRequest(fx, client, { grant_type: 'authorization_code', code, redirect_uri: RP_REDIRECT },
      { auth: false, headers: { Authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } });
    assertTokenSuccess(res, `Basic ${label} (${credentials.split(':')[0]})`);
  }
});

test('client_secret_post works for a client registered with client_secret_basic', async () => {
  assertTokenSuccess(await exchangeCode(fx, fx.web, await codeFor(), { auth: 'post' }), 'post for a basic client');
});

test('client_secret_basic works for a client registered with client_secret_post', async () => {
  assertTokenSuccess(await exchangeCode(fx, fx.other, await codeFor(fx.other), { auth: 'basic-raw' }), 'basic for a post client');
});

test('Basic plus the same client_id in the body is fine', async () => {
  const res = await exchangeCode(fx, fx.web, await codeFor(), { auth: 'basic', extra: { client_id: fx.web.client_id } });
  assertTokenSuccess(res, 'basic + client_id');
});

test('Basic plus a different client_id in the body is refused', async () => {
  const res = await exchangeCode(fx, fx.web, await codeFor(), { auth: 'basic', extra: { client_id: fx.other.client_id } });
  assert.ok([400, 401].includes(res.status), `400/401 expected, got ${res.status} ${res.text}`);
  assert.ok(['invalid_request', 'invalid_client'].includes(res.json?.error), res.text);
});

test('wrong secret via Basic → 401 invalid_client with WWW-Authenticate', async () => {
  const code = await codeFor();
  const res = await tokenRequest(fx, fx.web, { grant_type: 'authorization_code', code, redirect_uri: RP_REDIRECT },
    { auth: false, headers: { Authorization: basicAuth(fx.web.client_id, `${fx.web.secret}x`) } });
  assertInvalidClient(res, 'wrong Basic secret');
  assert.match(res.headers.get('www-authenticate'), /^Basic/i);
});

test('wrong secret via post → 401 invalid_client', async () => {
  const res = await tokenRequest(fx, fx.web, {
    grant_type: 'authorization_code', code: await codeFor(), redirect_uri: RP_REDIRECT,
    client_id: fx.web.client_id, client_secret: 'cs_wrong',
  }, { auth: false });
  assertInvalidClient(res, 'wrong post secret');
});

test('confidential client with no secret at all (client_id only) → 401 invalid_client', async () => {
  const res = await exchangeCode(fx, fx.web, await codeFor(), { auth: 'none' });
  assertInvalidClient(res, 'no secret');
});

test('no client identification at all → 401 invalid_client', async () => {
  const res = await exchangeCode(fx, fx.web, await codeFor(), { auth: false });
  assertInvalidClient(res, 'no credentials');
});

test('unknown client → 401 invalid_client', async () => {
  const res = await tokenRequest(fx, { client_id: 'ghost', secret: 'cs_ghost' },
    { grant_type: 'authorization_code', code: 'x', redirect_uri: RP_REDIRECT }, { auth: 'basic' });
  assertInvalidClient(res, 'unknown client');
});

test('a public client secret-less exchange with PKCE works; no refresh_token without that grant', async () => {
  const pk = pkce();
  const a = await authorize(fx, fx.spa, { params: { code_challenge: pk.challenge, code_challenge_method: 'S256' } });
  const t = assertTokenSuccess(await exchangeCode(fx, fx.spa, a.code, { code_verifier: pk.verifier, auth: 'none' }));
  assert.ok(t.access_token && t.id_token);
  assert.equal(t.refresh_token, undefined, 'the spa client has no refresh_token grant');
});

test('public client: missing code_verifier → 400 invalid_grant/invalid_request', async () => {
  const pk = pkce();
  const a = await authorize(fx, fx.spa, { params: { code_challenge: pk.challenge, code_challenge_method: 'S256' } });
  assertOAuthError(await exchangeCode(fx, fx.spa, a.code, { auth: 'none' }), 400, ['invalid_grant', 'invalid_request']);
});

test('public client: wrong code_verifier → 400 invalid_grant', async () => {
  const pk = pkce();
  const a = await authorize(fx, fx.spa, { params: { code_challenge: pk.challenge, code_challenge_method: 'S256' } });
  assertOAuthError(await exchangeCode(fx, fx.spa, a.code, { code_verifier: pkce().verifier, auth: 'none' }), 400, 'invalid_grant');
});

test('confidential client with PKCE: correct verifier works, wrong or missing verifier fails', async () => {
  const pk = pkce();
  const params = { code_challenge: pk.challenge, code_challenge_method: 'S256' };
  assertTokenSuccess(await exchangeCode(fx, fx.web, await codeFor(fx.web, params), { code_verifier: pk.verifier }), 'right verifier');
  assertOAuthError(await exchangeCode(fx, fx.web, await codeFor(fx.web, params), { code_verifier: pkce().verifier }), 400, 'invalid_grant', 'wrong verifier');
  assertOAuthError(await exchangeCode(fx, fx.web, await codeFor(fx.web, params)), 400, ['invalid_grant', 'invalid_request'], 'missing verifier');
});

test('confidential client without PKCE works (PKCE is optional for it)', async () => {
  assertTokenSuccess(await exchangeCode(fx, fx.web, await codeFor()));
});

test('redirect_uri at the token endpoint must equal the one in the authorization request', async () => {
  const code = await codeFor(fx.web, { redirect_uri: RP_REDIRECT_2 });
  assertOAuthError(await exchangeCode(fx, fx.web, code, { redirect_uri: RP_REDIRECT }), 400, 'invalid_grant', 'other registered URI');
  const code2 = await codeFor();
  assertOAuthError(await exchangeCode(fx, fx.web, code2, { redirect_uri: `${RP_REDIRECT}/x` }), 400, 'invalid_grant', 'unregistered URI');
});

test('missing redirect_uri at the token endpoint → 400 invalid_request/invalid_grant', async () => {
  const code = await codeFor();
  const res = await tokenRequest(fx, fx.web, { grant_type: 'authorization_code', code });
  assertOAuthError(res, 400, ['invalid_request', 'invalid_grant']);
});

test('a code issued to one client cannot be redeemed by another → invalid_grant', async () => {
  const code = await codeFor(fx.web);
  const res = await exchangeCode(fx, fx.other, code, { redirect_uri: RP_REDIRECT, auth: 'post' });
  assertOAuthError(res, 400, 'invalid_grant');
});

test('an unknown code → 400 invalid_grant', async () => {
  assertOAuthError(await exchangeCode(fx, fx.web, 'not-a-real-code-aaaaaaaaaaaaaaaaaaaaaaaa'), 400, 'invalid_grant');
});

test('missing code → 400 invalid_request', async () => {
  assertOAuthError(await tokenRequest(fx, fx.web, { grant_type: 'authorization_code', redirect_uri: RP_REDIRECT }), 400, ['invalid_request', 'invalid_grant']);
});

test('unsupported grant types → 400 unsupported_grant_type', async () => {
  for (const grant_type of ['password', 'urn:ietf:params:oauth:grant-type:device_code', 'implicit']) {
    const res = await tokenRequest(fx, fx.web, { grant_type, username: 'alice', password: 'x' });
    assertOAuthError(res, 400, 'unsupported_grant_type', grant_type);
  }
});

test('client_credentials is not a supported grant', async () => {
  const res = await tokenRequest(fx, fx.web, { grant_type: 'client_credentials' });
  assertOAuthError(res, 400, ['unsupported_grant_type', 'unauthorized_client']);
});

test('missing grant_type → 400 invalid_request', async () => {
  assertOAuthError(await tokenRequest(fx, fx.web, { code: 'x' }), 400, ['invalid_request', 'unsupported_grant_type']);
});

test('refresh_token grant from a client without that grant → 400 unauthorized_client', async () => {
  const client = await createClient(fx, {
    client_id: 'code-only', client_name: 'Code only', grant_types: ['authorization_code'], redirect_uris: [RP_REDIRECT],
    scopes: ['openid'], token_endpoint_auth_method: 'client_secret_basic',
  });
  const t = assertTokenSuccess(await exchangeCode(fx, client, await codeFor(client, { scope: 'openid' })));
  assert.equal(t.refresh_token, undefined, 'no refresh_token for a client without the grant');
  const res = await tokenRequest(fx, client, { grant_type: 'refresh_token', refresh_token: 'anything-at-all-1234567890' });
  assertOAuthError(res, 400, 'unauthorized_client');
});

test('error responses are JSON with no-store', async () => {
  const res = await exchangeCode(fx, fx.web, 'bogus');
  assertOAuthError(res, 400, 'invalid_grant');
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);
});

test('extra body parameters are ignored (state, nonce, foo)', async () => {
  const res = await exchangeCode(fx, fx.web, await codeFor(), { extra: { state: 'abc+/=', nonce: 'n', foo: 'bar' } });
  assertTokenSuccess(res);
});

test('GET on the token endpoint does not issue tokens', async () => {
  const res = await readJson(await fetch(`${endpoint(fx, 'token_endpoint')}?grant_type=authorization_code&code=x`));
  assert.ok([400, 405].includes(res.status), `400/405 expected, got ${res.status}`);
  assert.equal(res.json?.access_token, undefined);
});

test('the access token works at userinfo right after the exchange', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const res = await userinfo(fx, tokens.access_token);
  assert.equal(res.status, 200);
  assert.equal(res.json.sub, fx.alice.sub);
});

// --- hardening ----------------------------------------------------------------------------------

test('PKCE downgrade: a code_verifier for a code issued without a challenge is refused (RFC 9700 §2.1.1)', async () => {
  const code = await codeFor();
  assertOAuthError(await exchangeCode(fx, fx.web, code, { code_verifier: pkce().verifier }), 400, ['invalid_grant', 'invalid_request']);
});

test('a repeated token request parameter → 400 invalid_request (RFC 6749 §3.2)', async () => {
  const code = await codeFor();
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: RP_REDIRECT });
  body.append('code', 'another-code-0123456789abcdef');
  const res = await tokenRequest(fx, fx.web, body);
  assertOAuthError(res, 400, ['invalid_request', 'invalid_grant']);
});

test('a JSON body instead of a form → 400, no tokens', async () => {
  const code = await codeFor();
  const res = await readJson(await fetch(endpoint(fx, 'token_endpoint'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: basicAuth(fx.web.client_id, fx.web.secret) },
    body: JSON.stringify({ grant_type: 'authorization_code', code, redirect_uri: RP_REDIRECT }),
  }));
  assertOAuthError(res, 400, ['invalid_request', 'unsupported_grant_type']);
});

test('malformed Authorization headers → 401 invalid_client, never 5xx', async () => {
  for (const header of ['Basic', 'Basic !!!not-base64!!!', `Basic ${Buffer.from('no-colon').toString('base64')}`,
    `Basic ${Buffer.from(':').toString('base64')}`, 'Bearer abc', `Basic ${Buffer.from('webapp:%zz').toString('base64')}`]) {
    const res = await tokenRequest(fx, fx.web, { grant_type: 'authorization_code', code: 'x', redirect_uri: RP_REDIRECT },
      { auth: false, headers: { Authorization: header } });
    assert.ok(res.status < 500, `${header}: ${res.status}`);
    assertOAuthError(res, [400, 401], ['invalid_client', 'invalid_request'], header);
  }
});

test('the Basic scheme name is case-insensitive (RFC 7235 §2.1)', async () => {
  const res = await tokenRequest(fx, fx.web, { grant_type: 'authorization_code', code: await codeFor(), redirect_uri: RP_REDIRECT },
    { auth: false, headers: { Authorization: basicAuth(fx.web.client_id, fx.web.secret).replace('Basic', 'basic') } });
  assertTokenSuccess(res, 'lower-case basic');
});

test('a code from another organization is refused even for a same-named client', async () => {
  const fx2 = await createFixture('token2');
  const code = (await authorize(fx2, fx2.web)).code; // org 2's "webapp"
  assertOAuthError(await exchangeCode(fx, fx.web, code), 400, 'invalid_grant', 'org 2 code at org 1');
  // And org 2's credentials are not valid at org 1.
  const res = await exchangeCode(fx, fx2.web, code);
  assertOAuthError(res, 401, 'invalid_client', 'org 2 secret at org 1');
});

test('a form Content-Type with a charset parameter is accepted', async () => {
  const res = await tokenRequest(fx, fx.web, { grant_type: 'authorization_code', code: await codeFor(), redirect_uri: RP_REDIRECT },
    { headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' } });
  assertTokenSuccess(res, 'charset=UTF-8');
});
