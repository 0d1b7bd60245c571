// The OpenAPI document and the served API agree: every documented operation is served, and on
// every documented path the methods served (Allow of a 405) are exactly the documented ones.
// (The native test in src/admin/routes.rs checks the route table against the same document.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, BASE } from './support/client.mjs';
import { newOrg, newClient, newUser } from './admin-fixtures.mjs';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const doc = await (await fetch(`${BASE}/api/v1/openapi.json`)).json();

async function fixture() {
  const org = await newOrg();
  const client = await newClient(org.slug);
  const user = await newUser(org.slug);
  const group = 'staff';
  assert.equal((await admin('POST', `/organizations/${org.slug}/groups`, { name: group })).status, 201);
  assert.equal((await admin('PUT', `/organizations/${org.slug}/groups/${group}/members/${user.id}`)).status, 204);
  const attribute = 'department';
  assert.equal((await admin('POST', `/organizations/${org.slug}/attributes`, { name: attribute, type: 'string', scope: 'profile' })).status, 201);
  const connection = await admin('POST', `/organizations/${org.slug}/connections`, {
    issuer: 'https://idp.example.test', client_id: 'clavex', client_secret: 'upstream-secret', label: 'Example',
  });
  assert.equal(connection.status, 201);
  return (template) => template
    .replace('{org}', org.slug).replace('{client_id}', client.client_id).replace('{user_id}', user.id)
    .replace('{group}', group).replace('{name}', attribute).replace('{connection_id}', connection.body.id);
}

test('GET /api/v1/openapi.json is public OpenAPI 3.1 JSON', async () => {
  const res = await fetch(`${BASE}/api/v1/openapi.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.match(doc.openapi, /^3\.1\./);
  assert.equal(doc.servers[0].url, '/api/v1');
  assert.ok(Object.keys(doc.paths).length >= 10);
});

test('every documented operation is served (no 404 for the route, no 405, no 5xx)', async () => {
  const shared = await fixture();
  let count = 0;
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of METHODS.filter((m) => m in item)) {
      // DELETE gets its own fixture so it cannot remove what later operations use.
      const fill = method === 'delete' ? await fixture() : shared;
      const body = ['post', 'put', 'patch'].includes(method) ? {} : undefined;
      const res = await admin(method.toUpperCase(), fill(template), body);
      const what = `${method.toUpperCase()} ${template} → ${res.status} ${JSON.stringify(res.body)}`;
      assert.ok(res.status < 500, what);
      assert.notEqual(res.status, 405, what);
      assert.notEqual(res.status, 404, what);
      assert.ok(res.status in item[method].responses, `${what}: status documented`);
      count += 1;
    }
  }
  assert.equal(count, 50);
});

test('on each documented path the served methods are exactly the documented ones', async () => {
  const fill = await fixture();
  for (const [template, item] of Object.entries(doc.paths)) {
    const res = await admin('OPTIONS', fill(template));
    assert.equal(res.status, 405, template);
    const served = res.headers.get('allow').split(', ').sort();
    const documented = METHODS.filter((m) => m in item).map((m) => m.toUpperCase()).sort();
    assert.deepEqual(served, documented, template);
  }
});
