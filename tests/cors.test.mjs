// Browser-based (public) clients call the token, userinfo and revocation endpoints, discovery and
// JWKS from their own origin: these answer CORS preflights and carry Access-Control-Allow-Origin.
// Cookie-bearing endpoints (authorize, login, logout) and introspection never do.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, createFixture, loginAndExchange, authorizeUrl } from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('cors'); });

const preflight = (path, method) => fetch(`${BASE}/${fx.slug}/${path}`, {
  method: 'OPTIONS',
  headers: { Origin: 'https://spa.example.test', 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'authorization, content-type' },
});

test('token, userinfo and revoke answer a CORS preflight', async () => {
  for (const [path, method] of [['token', 'POST'], ['userinfo', 'GET'], ['revoke', 'POST'], ['jwks', 'GET']]) {
    const res = await preflight(path, method);
    assert.equal(res.status, 204, `${path} preflight`);
    assert.equal(res.headers.get('access-control-allow-origin'), '*', path);
    assert.match(res.headers.get('access-control-allow-methods'), new RegExp(method), path);
    assert.match(res.headers.get('access-control-allow-headers'), /Authorization/i, path);
  }
});

test('a public client in the browser can read the token and userinfo responses', async () => {
  const { tokens } = await loginAndExchange(fx, fx.spa);
  assert.ok(tokens.access_token);
  const ui = await fetch(`${BASE}/${fx.slug}/userinfo`, {
    headers: { Authorization: `Bearer ${tokens.access_token}`, Origin: 'https://spa.example.test' },
  });
  assert.equal(ui.status, 200);
  assert.equal(ui.headers.get('access-control-allow-origin'), '*');
  const bad = await fetch(`${BASE}/${fx.slug}/token`, { method: 'POST', headers: { Origin: 'https://spa.example.test' } });
  assert.equal(bad.headers.get('access-control-allow-origin'), '*', 'errors are readable too');
  const discovery = await fetch(`${BASE}/${fx.slug}/.well-known/openid-configuration`);
  assert.equal(discovery.headers.get('access-control-allow-origin'), '*');
});

test('authorize, login and introspect get no CORS headers', async () => {
  const page = await fetch(authorizeUrl(fx, fx.web), { headers: { Origin: 'https://evil.example.test' } });
  assert.equal(page.headers.get('access-control-allow-origin'), null);
  const pre = await preflight('introspect', 'POST');
  assert.equal(pre.headers.get('access-control-allow-origin'), null);
  const login = await preflight('login', 'POST');
  assert.equal(login.headers.get('access-control-allow-origin'), null);
});
