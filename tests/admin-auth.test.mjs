import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, BASE, ADMIN_TOKEN } from './support/client.mjs';
import { newOrg, assertError } from './admin-fixtures.mjs';

test('no Authorization header: 401 with a bare Bearer challenge (RFC 6750 §3.1)', async () => {
  const res = await fetch(`${BASE}/api/v1/organizations`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const challenge = res.headers.get('www-authenticate');
  assert.match(challenge, /^Bearer realm="clavex-admin"$/);
  assert.equal((await res.json()).error, 'unauthorized');
});

test('a wrong token: 401 invalid_token, also in the challenge', async () => {
  const res = await admin('GET', '/organizations', undefined, { token: `${ADMIN_TOKEN}x` });
  assertError(res, 401, 'invalid_token');
  assert.match(res.headers.get('www-authenticate'), /^Bearer realm="clavex-admin", error="invalid_token"$/);
  const truncated = await admin('GET', '/organizations', undefined, { token: ADMIN_TOKEN.slice(0, -1) });
  assertError(truncated, 401, 'invalid_token');
  const caseChanged = await admin('GET', '/organizations', undefined, { token: ADMIN_TOKEN.toUpperCase() });
  assertError(caseChanged, 401, 'invalid_token');
});

test('other schemes are no credentials; the Bearer scheme name is case-insensitive', async () => {
  const basic = await fetch(`${BASE}/api/v1/organizations`, { headers: { Authorization: `Basic ${ADMIN_TOKEN}` } });
  assert.equal(basic.status, 401);
  assert.equal((await basic.json()).error, 'unauthorized');
  const lower = await fetch(`${BASE}/api/v1/organizations`, { headers: { Authorization: `bearer ${ADMIN_TOKEN}` } });
  assert.equal(lower.status, 200);
});

test('every operation except the OpenAPI document needs the token, and nothing is written without it', async () => {
  const org = await newOrg();
  const doc = await (await fetch(`${BASE}/api/v1/openapi.json`)).json();
  let checked = 0;
  for (const [template, item] of Object.entries(doc.paths)) {
    const path = template.replace('{org}', org.slug).replace('{client_id}', 'c').replace('{user_id}', 'u');
    for (const method of Object.keys(item).filter((k) => k !== 'parameters')) {
      const res = await fetch(`${BASE}/api/v1${path}`, {
        method: method.toUpperCase(),
        headers: { 'Content-Type': 'application/json' },
        body: ['post', 'put', 'patch'].includes(method) ? '{}' : undefined,
      });
      if (template === '/openapi.json') {
        assert.equal(res.status, 200);
      } else {
        assert.equal(res.status, 401, `${method} ${template}`);
        assert.ok(res.headers.get('www-authenticate'), `${method} ${template} challenge`);
        checked += 1;
      }
    }
  }
  assert.ok(checked >= 20, `checked ${checked} operations`);
  const still = await admin('GET', `/organizations/${org.slug}/keys`);
  assert.equal(still.body.keys.length, 1, 'the unauthenticated rotate changed nothing');
  assert.equal((await admin('GET', `/organizations/${org.slug}`)).status, 200, 'the unauthenticated DELETE changed nothing');
});

test('wrong method on a known path: 405 with Allow (RFC 9110 §15.5.6)', async () => {
  const org = await newOrg();
  for (const [method, path, allow] of [
    ['PUT', '/organizations', 'GET, POST'],
    ['PUT', `/organizations/${org.slug}`, 'GET, PATCH, DELETE'],
    ['GET', `/organizations/${org.slug}/keys/rotate`, 'POST'],
    ['POST', `/organizations/${org.slug}/keys`, 'GET'],
    ['GET', `/organizations/${org.slug}/clients/x/secret`, 'POST'],
    ['POST', `/organizations/${org.slug}/users/x/password`, 'PUT'],
    ['DELETE', `/organizations/${org.slug}/users`, 'GET, POST'],
  ]) {
    const res = await admin(method, path);
    assertError(res, 405, 'method_not_allowed');
    assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
  }
});

test('unknown admin paths are 404 with or without a token', async () => {
  for (const path of ['/organization', '/organizations/a/b', '/organizations/a/clients/b/c', '/organizations/a/keys/b']) {
    assertError(await admin('GET', path), 404, 'not_found');
  }
});
