import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, unique, BASE } from './support/client.mjs';
import { newOrg, newClient, newUser, assertError } from './admin-fixtures.mjs';

test('POST /organizations creates the org with its issuer and an active RS256 key', async () => {
  const slug = unique('acme');
  const res = await admin('POST', '/organizations', { slug, name: 'Acme Corp' });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), `/api/v1/organizations/${slug}`);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.body.slug, slug);
  assert.equal(res.body.name, 'Acme Corp');
  assert.equal(res.body.issuer, `${BASE}/${slug}`);
  assert.equal(res.body.logo_url, null);
  assert.equal(typeof res.body.created_at, 'number');

  const keys = await admin('GET', `/organizations/${slug}/keys`);
  assert.equal(keys.status, 200);
  assert.equal(keys.body.keys.length, 1);
  const [key] = keys.body.keys;
  assert.equal(key.alg, 'RS256');
  assert.equal(key.status, 'active');
  assert.equal(key.published, true);
  assert.match(key.kid, /^[A-Za-z0-9_-]{43}$/, 'kid is a base64url SHA-256 thumbprint');
  assert.ok(!('private_key_sealed' in key) && !('public_jwk' in key));
});

test('each organization gets its own key', async () => {
  const a = await newOrg();
  const b = await newOrg();
  const ka = (await admin('GET', `/organizations/${a.slug}/keys`)).body.keys[0].kid;
  const kb = (await admin('GET', `/organizations/${b.slug}/keys`)).body.keys[0].kid;
  assert.notEqual(ka, kb);
});

test('GET, list and PATCH an organization', async () => {
  const org = await newOrg();
  const got = await admin('GET', `/organizations/${org.slug}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, org);

  const list = await admin('GET', '/organizations');
  assert.equal(list.status, 200);
  assert.ok(list.body.organizations.some((o) => o.slug === org.slug));

  const patched = await admin('PATCH', `/organizations/${org.slug}`, {
    name: 'Renamed', logo_url: 'https://cdn.example/logo.png', primary_color: '#1A2B3C',
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.name, 'Renamed');
  assert.equal(patched.body.logo_url, 'https://cdn.example/logo.png');
  assert.equal(patched.body.primary_color, '#1a2b3c');
  assert.equal(patched.body.slug, org.slug);

  const cleared = await admin('PATCH', `/organizations/${org.slug}`, { logo_url: null });
  assert.equal(cleared.status, 200);
  assert.equal(cleared.body.logo_url, null);
  assert.equal(cleared.body.primary_color, '#1a2b3c', 'absent members are kept');
  assert.equal((await admin('GET', `/organizations/${org.slug}`)).body.name, 'Renamed');
});

test('organization validation: slug rules, reserved slugs, name, branding', async () => {
  const cases = [
    [{ name: 'No slug' }, 'slug'],
    [{ slug: 'Upper', name: 'x' }, 'slug'],
    [{ slug: 'has space', name: 'x' }, 'slug'],
    [{ slug: 'under_score', name: 'x' }, 'slug'],
    [{ slug: 'a'.repeat(64), name: 'x' }, 'slug'],
    [{ slug: '', name: 'x' }, 'slug'],
    [{ slug: 'api', name: 'x' }, 'slug'],
    [{ slug: 'healthz', name: 'x' }, 'slug'],
    [{ slug: unique('o') }, 'name'],
    [{ slug: unique('o'), name: '   ' }, 'name'],
    [{ slug: unique('o'), name: 42 }, 'name'],
    [{ slug: unique('o'), name: 'x', logo_url: 'http://cdn.example/logo.png' }, 'logo_url'],
    [{ slug: unique('o'), name: 'x', logo_url: 'logo.png' }, 'logo_url'],
    [{ slug: unique('o'), name: 'x', primary_color: 'red' }, 'primary_color'],
    [{ slug: unique('o'), name: 'x', primary_color: '#12345' }, 'primary_color'],
    [{ slug: unique('o'), name: 'x', colour: '#123456' }, 'colour'],
  ];
  for (const [body, field] of cases) {
    const res = await admin('POST', '/organizations', body);
    assertError(res, 400, 'invalid_field', field);
  }
  const org = await newOrg();
  assertError(await admin('PATCH', `/organizations/${org.slug}`, { primary_color: 'blue' }), 400, 'invalid_field', 'primary_color');
  assertError(await admin('PATCH', `/organizations/${org.slug}`, { slug: 'other' }), 400, 'invalid_field', 'slug');
});

test('a slug of 63 characters is accepted', async () => {
  const slug = `${unique('o')}-`.padEnd(63, 'x');
  const res = await admin('POST', '/organizations', { slug, name: 'Long' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
});

test('duplicate slug is a 409 and leaves the first org and its key untouched', async () => {
  const org = await newOrg();
  const keysBefore = (await admin('GET', `/organizations/${org.slug}/keys`)).body.keys;
  const res = await admin('POST', '/organizations', { slug: org.slug, name: 'Again' });
  assertError(res, 409, 'conflict', 'slug');
  assert.equal((await admin('GET', `/organizations/${org.slug}`)).body.name, org.name);
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/keys`)).body.keys, keysBefore);
});

test('unknown organizations are 404 everywhere', async () => {
  const ghost = unique('ghost');
  for (const [method, path, body] of [
    ['GET', `/organizations/${ghost}`],
    ['PATCH', `/organizations/${ghost}`, { name: 'x' }],
    ['DELETE', `/organizations/${ghost}`],
    ['GET', `/organizations/${ghost}/clients`],
    ['POST', `/organizations/${ghost}/clients`, { client_name: 'x', redirect_uris: ['https://a.example/cb'] }],
    ['GET', `/organizations/${ghost}/users`],
    ['POST', `/organizations/${ghost}/users`, { username: 'x', email: 'x@example.test' }],
    ['GET', `/organizations/${ghost}/keys`],
    ['POST', `/organizations/${ghost}/keys/rotate`],
  ]) {
    const res = await admin(method, path, body);
    assertError(res, 404, 'not_found');
  }
});

test('DELETE removes the organization with its clients, users and keys', async () => {
  const org = await newOrg();
  await newClient(org.slug, { client_id: 'app' });
  const user = await newUser(org.slug, { username: 'alice', email: 'alice@example.test' });
  const res = await admin('DELETE', `/organizations/${org.slug}`);
  assert.equal(res.status, 204);
  assertError(await admin('GET', `/organizations/${org.slug}`), 404, 'not_found');
  assertError(await admin('DELETE', `/organizations/${org.slug}`), 404, 'not_found');
  assert.ok(!(await admin('GET', '/organizations')).body.organizations.some((o) => o.slug === org.slug));

  // Recreated under the same slug, nothing of the old one survives: the D1 cascade removed the
  // rows (otherwise the same client id, username and email would now be 409s).
  const again = await admin('POST', '/organizations', { slug: org.slug, name: 'Reborn' });
  assert.equal(again.status, 201);
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/clients`)).body.clients, []);
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/users`)).body.users, []);
  assertError(await admin('GET', `/organizations/${org.slug}/users/${user.id}`), 404, 'not_found');
  const keys = (await admin('GET', `/organizations/${org.slug}/keys`)).body.keys;
  assert.equal(keys.length, 1, 'only the new organization key');
  await newClient(org.slug, { client_id: 'app' });
  await newUser(org.slug, { username: 'alice', email: 'alice@example.test' });
});
