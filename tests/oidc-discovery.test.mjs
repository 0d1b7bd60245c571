// Discovery (OIDC Discovery 1.0, RFC 8414) and the JWKS, including signing-key rotation.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, admin, createFixture, loginAndExchange, verifyJwt, decodeJwt,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('disco'); });

async function fetchJson(url) {
  const res = await fetch(url);
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { res, json, text };
}

test('discovery document: 200 JSON, issuer exactly the URL minus the suffix', async () => {
  const { res, json, text } = await fetchJson(`${BASE}/${fx.slug}/.well-known/openid-configuration`);
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.equal(json.issuer, `${BASE}/${fx.slug}`);
});

test('discovery names every endpoint under the issuer', () => {
  const d = fx.discovery;
  const expected = {
    authorization_endpoint: '/authorize',
    token_endpoint: '/token',
    userinfo_endpoint: '/userinfo',
    jwks_uri: '/jwks',
    revocation_endpoint: '/revoke',
    introspection_endpoint: '/introspect',
    end_session_endpoint: '/logout',
  };
  for (const [key, path] of Object.entries(expected)) {
    assert.equal(d[key], `${fx.issuer}${path}`, `${key}`);
  }
});

test('discovery advertises exactly the code flow with S256 PKCE', () => {
  const d = fx.discovery;
  assert.deepEqual(d.response_types_supported, ['code']);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  // query (the default) and form_post (OAuth 2.0 Form Post Response Mode); fragment is refused.
  assert.deepEqual(d.response_modes_supported, ['query', 'form_post']);
  assert.ok(Array.isArray(d.grant_types_supported) && d.grant_types_supported.length > 0, 'grant_types_supported non-empty');
  assert.deepEqual([...d.grant_types_supported].sort(), ['authorization_code', 'refresh_token']);
});

test('discovery: client authentication methods, subject types, signing algorithms, scopes', () => {
  const d = fx.discovery;
  for (const m of ['client_secret_basic', 'client_secret_post', 'none']) {
    assert.ok(d.token_endpoint_auth_methods_supported?.includes(m), `token_endpoint_auth_methods_supported includes ${m}`);
  }
  for (const m of d.token_endpoint_auth_methods_supported) {
    assert.ok(['client_secret_basic', 'client_secret_post', 'none'].includes(m), `no unimplemented auth method (${m})`);
  }
  assert.ok(d.subject_types_supported?.includes('public'), 'subject_types_supported includes public');
  assert.ok(d.id_token_signing_alg_values_supported?.includes('RS256'), 'RS256 advertised');
  assert.ok(!d.id_token_signing_alg_values_supported.includes('none'), 'alg none never advertised');
  for (const s of ['openid', 'profile', 'email']) assert.ok(d.scopes_supported?.includes(s), `scopes_supported includes ${s}`);
});

test('discovery: claims_supported lists the claims Clavex issues', () => {
  const claims = fx.discovery.claims_supported;
  assert.ok(Array.isArray(claims), 'claims_supported present');
  for (const c of ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'name', 'preferred_username',
    'picture', 'updated_at', 'email', 'email_verified']) {
    assert.ok(claims.includes(c), `claims_supported includes ${c}`);
  }
});

test('discovery: RFC 9207 iss parameter and the claims request parameter are advertised', () => {
  assert.equal(fx.discovery.authorization_response_iss_parameter_supported, true);
  // The claims parameter is implemented (claims={"id_token":{"email":null}}), so it is advertised.
  assert.equal(fx.discovery.claims_parameter_supported, true);
});

test('RFC 8414 metadata at /.well-known/oauth-authorization-server/{org} matches discovery', async () => {
  const { res, json, text } = await fetchJson(`${BASE}/.well-known/oauth-authorization-server/${fx.slug}`);
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.equal(json.issuer, fx.issuer);
  for (const key of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'revocation_endpoint',
    'introspection_endpoint', 'response_types_supported', 'code_challenge_methods_supported',
    'token_endpoint_auth_methods_supported']) {
    assert.deepEqual(json[key], fx.discovery[key], key);
  }
});

test('discovery and JWKS of an unknown organization are 404', async () => {
  for (const path of [`/no-such-org-${Date.now()}/.well-known/openid-configuration`, `/no-such-org-${Date.now()}/jwks`,
    `/.well-known/oauth-authorization-server/no-such-org-${Date.now()}`]) {
    const res = await fetch(`${BASE}${path}`);
    await res.arrayBuffer();
    assert.equal(res.status, 404, path);
  }
});

test('JWKS: public RSA keys only, distinct non-empty kids, unpadded base64url, cacheable', async () => {
  const res = await fetch(fx.discovery.jwks_uri);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type'), /^application\/(jwk-set\+)?json/);
  assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/, 'Cache-Control with max-age');
  const jwks = JSON.parse(text);
  assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 1, 'at least one key');
  const kids = jwks.keys.map((k) => k.kid);
  assert.equal(new Set(kids).size, kids.length, 'kids are distinct');
  for (const k of jwks.keys) {
    assert.equal(typeof k.kid, 'string');
    assert.ok(k.kid.length > 0, 'kid non-empty');
    assert.equal(k.kty, 'RSA');
    if (k.use !== undefined) assert.equal(k.use, 'sig');
    if (k.alg !== undefined) assert.equal(k.alg, 'RS256');
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) assert.equal(k[priv], undefined, `no private member ${priv}`);
    for (const m of ['n', 'e']) assert.match(k[m], /^[A-Za-z0-9_-]+$/, `${m} is base64url without padding`);
    assert.ok(Buffer.from(k.n, 'base64url').length >= 256, 'RSA modulus of at least 2048 bits');
  }
});

test('key rotation: new ID tokens use the new kid; the old kid stays published and old tokens verify', async () => {
  const before = await loginAndExchange(fx, fx.web);
  const oldKid = before.idToken.header.kid;
  verifyJwt(before.tokens.id_token, await fx.jwks());

  const rot = await admin('POST', `/organizations/${fx.slug}/keys/rotate`);
  assert.ok([200, 201].includes(rot.status), `rotate → ${rot.status} ${JSON.stringify(rot.body)}`);

  const jwks = await fx.jwks();
  const kids = jwks.keys.map((k) => k.kid);
  assert.ok(kids.includes(oldKid), `the retired kid ${oldKid} is still in the JWKS (${kids})`);
  assert.ok(jwks.keys.length >= 2, 'old and new keys are both published');

  const after = await loginAndExchange(fx, fx.web);
  const newKid = decodeJwt(after.tokens.id_token).header.kid;
  assert.notEqual(newKid, oldKid, 'new ID tokens are signed with the new key');
  verifyJwt(after.tokens.id_token, jwks);
  verifyJwt(before.tokens.id_token, jwks);
});
