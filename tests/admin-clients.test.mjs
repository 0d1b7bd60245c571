import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { admin, unique, BASE, ADMIN_TOKEN } from './support/client.mjs';
import { newOrg, newClient, assertError, GUIDE_CLIENT } from './admin-fixtures.mjs';

// Step 1 of the Rocket.Chat guide, byte for byte; only host, organization and token substituted.
const GUIDE_CURL = `curl -X POST https://id.acme.eu/api/v1/organizations/acme/clients \\
  -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' \\
  -d '{"client_id":"rocketchat","client_name":"Rocket.Chat",
       "grant_types":["authorization_code","refresh_token"],
       "redirect_uris":["https://chat.acme.eu/_oauth/clavex"],
       "scopes":["openid","profile","email"],
       "token_endpoint_auth_method":"client_secret_post"}'`;

test("the Rocket.Chat guide's curl call registers the client and returns its secret", async () => {
  const org = await newOrg();
  const command = GUIDE_CURL
    .replace('https://id.acme.eu', BASE)
    .replace('/organizations/acme/', `/organizations/${org.slug}/`)
    .replace('$ADMIN_TOKEN', ADMIN_TOKEN);
  assert.notEqual(command, GUIDE_CURL);
  // Run through a shell exactly as a reader pastes it (line continuations, quoting and all).
  const out = execFileSync('sh', ['-c', `${command} -s -w '\\n%{http_code}'`], { encoding: 'utf8' });
  const [text, status] = [out.slice(0, out.lastIndexOf('\n')), out.slice(out.lastIndexOf('\n') + 1)];
  assert.equal(status, '201', text);
  const body = JSON.parse(text);
  assert.equal(body.client_id, 'rocketchat');
  assert.equal(body.client_name, 'Rocket.Chat');
  assert.deepEqual(body.grant_types, ['authorization_code', 'refresh_token']);
  assert.deepEqual(body.redirect_uris, ['https://chat.acme.eu/_oauth/clavex']);
  assert.deepEqual(body.scopes, ['openid', 'profile', 'email']);
  assert.equal(body.token_endpoint_auth_method, 'client_secret_post');
  assert.match(body.client_secret, /^cs_[A-Za-z0-9_-]{43}$/);
  assert.ok(!('secret_hash' in body));

  const got = await admin('GET', `/organizations/${org.slug}/clients/rocketchat`);
  assert.equal(got.status, 200);
  assert.equal(got.body.client_name, 'Rocket.Chat');
  assert.ok(!('client_secret' in got.body) && !('secret_hash' in got.body));
  assert.ok(!JSON.stringify(got.body).includes(body.client_secret));
});

test('defaults: generated client_id, client_secret_basic, authorization_code, openid profile email', async () => {
  const org = await newOrg();
  const c = await newClient(org.slug);
  assert.match(c.client_id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(c.token_endpoint_auth_method, 'client_secret_basic');
  assert.deepEqual(c.grant_types, ['authorization_code']);
  assert.deepEqual(c.scopes, ['openid', 'profile', 'email']);
  assert.deepEqual(c.post_logout_redirect_uris, []);
  assert.match(c.client_secret, /^cs_/);
  assert.equal(c.client_secret_expires_at, 0);
  const other = await newClient(org.slug);
  assert.notEqual(other.client_id, c.client_id);
  assert.notEqual(other.client_secret, c.client_secret);
});

test('a public client (none) gets no secret and cannot rotate one', async () => {
  const org = await newOrg();
  const c = await newClient(org.slug, { token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:4000/cb'] });
  assert.equal(c.token_endpoint_auth_method, 'none');
  assert.ok(!('client_secret' in c));
  assert.ok(!('client_secret_expires_at' in c));
  const rotate = await admin('POST', `/organizations/${org.slug}/clients/${c.client_id}/secret`);
  assertError(rotate, 400, 'invalid_request');
});

test('list clients, never with secrets', async () => {
  const org = await newOrg();
  const a = await newClient(org.slug, { client_id: 'a-app' });
  await newClient(org.slug, { client_id: 'b-app', token_endpoint_auth_method: 'none' });
  const res = await admin('GET', `/organizations/${org.slug}/clients`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.clients.map((c) => c.client_id), ['a-app', 'b-app']);
  const text = JSON.stringify(res.body);
  assert.ok(!text.includes('client_secret"') && !text.includes('secret_hash') && !text.includes(a.client_secret));
});

test('duplicate client_id in the same org is a 409; in another org it is fine', async () => {
  const org = await newOrg();
  await newClient(org.slug, { client_id: 'dup' });
  assertError(await admin('POST', `/organizations/${org.slug}/clients`, {
    client_id: 'dup', client_name: 'Again', redirect_uris: ['https://a.example/cb'],
  }), 409, 'conflict', 'client_id');
  const other = await newOrg();
  await newClient(other.slug, { client_id: 'dup' });
});

test('client validation rules each give 400 invalid_field naming the field', async () => {
  const org = await newOrg();
  const base = { client_name: 'App', redirect_uris: ['https://app.example/cb'] };
  const cases = [
    [{ redirect_uris: undefined }, 'redirect_uris'],
    [{ redirect_uris: [] }, 'redirect_uris'],
    [{ redirect_uris: ['http://app.example/cb'] }, 'redirect_uris'],
    [{ redirect_uris: ['https://app.example/cb#frag'] }, 'redirect_uris'],
    [{ redirect_uris: ['/relative/cb'] }, 'redirect_uris'],
    [{ redirect_uris: ['app.example/cb'] }, 'redirect_uris'],
    [{ redirect_uris: ['com.example.app:/cb'] }, 'redirect_uris'],
    [{ redirect_uris: 'https://app.example/cb' }, 'redirect_uris'],
    [{ redirect_uris: [42] }, 'redirect_uris'],
    [{ post_logout_redirect_uris: ['http://app.example/'] }, 'post_logout_redirect_uris'],
    [{ post_logout_redirect_uris: ['https://app.example/#x'] }, 'post_logout_redirect_uris'],
    [{ grant_types: ['implicit'] }, 'grant_types'],
    [{ grant_types: ['authorization_code', 'client_credentials'] }, 'grant_types'],
    [{ grant_types: ['refresh_token'] }, 'grant_types'],
    [{ grant_types: [] }, 'grant_types'],
    [{ scopes: ['openid', 'admin'] }, 'scopes'],
    [{ scopes: [] }, 'scopes'],
    [{ scopes: 'openid' }, 'scopes'],
    [{ token_endpoint_auth_method: 'private_key_jwt' }, 'token_endpoint_auth_method'],
    [{ token_endpoint_auth_method: 3 }, 'token_endpoint_auth_method'],
    [{ client_name: undefined }, 'client_name'],
    [{ client_name: '' }, 'client_name'],
    [{ client_name: ['x'] }, 'client_name'],
    [{ client_id: 'has space' }, 'client_id'],
    [{ client_id: 'rocket:chat' }, 'client_id'],
    [{ client_id: 7 }, 'client_id'],
    [{ redirect_uri: 'https://app.example/cb' }, 'redirect_uri'],
  ];
  for (const [override, field] of cases) {
    const res = await admin('POST', `/organizations/${org.slug}/clients`, { ...base, ...override });
    assertError(res, 400, 'invalid_field', field);
  }
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/clients`)).body.clients, [], 'nothing half-written');
});

test('loopback http redirect URIs are allowed for development', async () => {
  const org = await newOrg();
  const c = await newClient(org.slug, {
    redirect_uris: ['http://localhost:3000/cb', 'http://127.0.0.1/cb', 'http://[::1]:8080/cb'],
    post_logout_redirect_uris: ['https://app.example/bye'],
    scopes: ['openid', 'offline_access'],
  });
  assert.deepEqual(c.redirect_uris, ['http://localhost:3000/cb', 'http://127.0.0.1/cb', 'http://[::1]:8080/cb']);
  assert.deepEqual(c.post_logout_redirect_uris, ['https://app.example/bye']);
  assert.deepEqual(c.scopes, ['openid', 'offline_access']);
});

test('unknown client is 404', async () => {
  const org = await newOrg();
  for (const [method, path, body] of [
    ['GET', 'nope'], ['PUT', 'nope', { client_name: 'x', redirect_uris: ['https://a.example/'] }],
    ['PATCH', 'nope', { client_name: 'x' }], ['DELETE', 'nope'], ['POST', 'nope/secret'],
  ]) {
    assertError(await admin(method, `/organizations/${org.slug}/clients/${path}`, body), 404, 'not_found');
  }
  // A client of another organization is not found through this one.
  const other = await newOrg();
  await newClient(other.slug, { client_id: 'theirs' });
  assertError(await admin('GET', `/organizations/${org.slug}/clients/theirs`), 404, 'not_found');
});

test('PUT replaces every setting (absent ones back to defaults) and keeps the secret', async () => {
  const org = await newOrg();
  const c = await newClient(org.slug, {
    client_id: 'app', scopes: ['openid'], grant_types: ['authorization_code', 'refresh_token'],
    post_logout_redirect_uris: ['https://app.example/bye'],
  });
  const res = await admin('PUT', `/organizations/${org.slug}/clients/app`, {
    client_name: 'Replaced', redirect_uris: ['https://new.example/cb'],
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.client_name, 'Replaced');
  assert.deepEqual(res.body.redirect_uris, ['https://new.example/cb']);
  assert.deepEqual(res.body.scopes, ['openid', 'profile', 'email']);
  assert.deepEqual(res.body.grant_types, ['authorization_code']);
  assert.deepEqual(res.body.post_logout_redirect_uris, []);
  assert.ok(!('client_secret' in res.body), 'the existing secret is kept, not shown');
  assert.equal(res.body.created_at, c.created_at);
  const got = await admin('GET', `/organizations/${org.slug}/clients/app`);
  assert.deepEqual(got.body, res.body);

  assertError(await admin('PUT', `/organizations/${org.slug}/clients/app`, { client_name: 'x' }), 400, 'invalid_field', 'redirect_uris');
  assertError(await admin('PUT', `/organizations/${org.slug}/clients/app`, {
    client_id: 'other', client_name: 'x', redirect_uris: ['https://a.example/'],
  }), 400, 'invalid_field', 'client_id');
  const same = await admin('PUT', `/organizations/${org.slug}/clients/app`, {
    client_id: 'app', client_name: 'Same id', redirect_uris: ['https://a.example/'],
  });
  assert.equal(same.status, 200);
});

test('PATCH changes only the members sent; validation still applies', async () => {
  const org = await newOrg();
  await newClient(org.slug, { client_id: 'app', scopes: ['openid', 'email'] });
  const res = await admin('PATCH', `/organizations/${org.slug}/clients/app`, {
    client_name: 'Patched', post_logout_redirect_uris: ['https://app.example/bye'],
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.client_name, 'Patched');
  assert.deepEqual(res.body.scopes, ['openid', 'email']);
  assert.deepEqual(res.body.redirect_uris, ['https://app.example/cb']);
  assert.deepEqual(res.body.post_logout_redirect_uris, ['https://app.example/bye']);
  for (const [body, field] of [
    [{ redirect_uris: ['http://app.example/cb'] }, 'redirect_uris'],
    [{ redirect_uris: [] }, 'redirect_uris'],
    [{ scopes: ['root'] }, 'scopes'],
    [{ client_name: '' }, 'client_name'],
    [{ client_secret: 'cs_mine' }, 'client_secret'],
  ]) {
    assertError(await admin('PATCH', `/organizations/${org.slug}/clients/app`, body), 400, 'invalid_field', field);
  }
  assert.equal((await admin('GET', `/organizations/${org.slug}/clients/app`)).body.client_name, 'Patched');
});

test('switching to none drops the secret; switching back issues a new one, shown once', async () => {
  const org = await newOrg();
  const c = await newClient(org.slug, { client_id: 'app' });
  const pub = await admin('PATCH', `/organizations/${org.slug}/clients/app`, { token_endpoint_auth_method: 'none' });
  assert.equal(pub.status, 200);
  assert.ok(!('client_secret' in pub.body));
  const conf = await admin('PATCH', `/organizations/${org.slug}/clients/app`, { token_endpoint_auth_method: 'client_secret_post' });
  assert.equal(conf.status, 200);
  assert.match(conf.body.client_secret, /^cs_/);
  assert.notEqual(conf.body.client_secret, c.client_secret);
  const got = await admin('GET', `/organizations/${org.slug}/clients/app`);
  assert.ok(!('client_secret' in got.body));
});

test('POST …/secret rotates: a new secret each time, never shown again', async () => {
  const org = await newOrg();
  const c = await newClient(org.slug, { client_id: 'app' });
  const r1 = await admin('POST', `/organizations/${org.slug}/clients/app/secret`);
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.match(r1.body.client_secret, /^cs_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(r1.body.client_secret, c.client_secret);
  assert.equal(r1.body.client_id, 'app');
  const r2 = await admin('POST', `/organizations/${org.slug}/clients/app/secret`);
  assert.notEqual(r2.body.client_secret, r1.body.client_secret);
  const got = await admin('GET', `/organizations/${org.slug}/clients/app`);
  assert.ok(!JSON.stringify(got.body).includes('cs_'));
});

test('DELETE a client: 204, then gone; the id can be registered again', async () => {
  const org = await newOrg();
  await newClient(org.slug, { client_id: 'app' });
  const res = await admin('DELETE', `/organizations/${org.slug}/clients/app`);
  assert.equal(res.status, 204);
  assertError(await admin('GET', `/organizations/${org.slug}/clients/app`), 404, 'not_found');
  assertError(await admin('DELETE', `/organizations/${org.slug}/clients/app`), 404, 'not_found');
  await newClient(org.slug, { client_id: 'app' });
});
