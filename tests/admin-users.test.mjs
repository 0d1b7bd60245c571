import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, unique } from './support/client.mjs';
import { newOrg, newUser, assertError } from './admin-fixtures.mjs';

function assertNoPassword(body) {
  const text = JSON.stringify(body);
  assert.ok(!text.includes('"password"') && !text.includes('password_hash') && !text.includes('pbkdf2'), text);
}

test('POST /users creates a user with an opaque id; GET returns it without any password', async () => {
  const org = await newOrg();
  const res = await admin('POST', `/organizations/${org.slug}/users`, {
    username: 'Jane.Doe', email: 'jane@acme.test', name: 'Jane Doe', password: 'correct horse battery',
    picture: 'https://cdn.acme.test/jane.png', email_verified: true,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const user = res.body;
  assert.match(user.id, /^usr_[A-Za-z0-9_-]{22}$/);
  assert.equal(res.headers.get('location'), `/api/v1/organizations/${org.slug}/users/${user.id}`);
  assert.equal(user.username, 'Jane.Doe');
  assert.equal(user.email, 'jane@acme.test');
  assert.equal(user.name, 'Jane Doe');
  assert.equal(user.picture, 'https://cdn.acme.test/jane.png');
  assert.equal(user.email_verified, true);
  assert.equal(user.disabled, false);
  assert.equal(user.has_password, true);
  assertNoPassword(user);

  const got = await admin('GET', `/organizations/${org.slug}/users/${user.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, user);
  assertNoPassword(got.body);
});

test('a password is optional at creation', async () => {
  const org = await newOrg();
  const user = await newUser(org.slug);
  assert.equal(user.has_password, false);
  assert.equal(user.email_verified, false);
  assert.equal(user.name, null);
});

test('username and email are unique per org, ignoring case (409 naming the field)', async () => {
  const org = await newOrg();
  await newUser(org.slug, { username: 'alice', email: 'alice@acme.test' });
  assertError(await admin('POST', `/organizations/${org.slug}/users`, { username: 'ALICE', email: 'other@acme.test' }),
    409, 'conflict', 'username');
  assertError(await admin('POST', `/organizations/${org.slug}/users`, { username: 'alice2', email: 'Alice@ACME.test' }),
    409, 'conflict', 'email');
  const other = await newOrg();
  await newUser(other.slug, { username: 'alice', email: 'alice@acme.test' });
});

test('user validation rules each give 400 invalid_field', async () => {
  const org = await newOrg();
  const base = { username: unique('v'), email: 'v@acme.test' };
  const cases = [
    [{ username: undefined }, 'username'],
    [{ username: '' }, 'username'],
    [{ username: 'has space' }, 'username'],
    [{ username: 'at@sign' }, 'username'],
    [{ username: 'a'.repeat(65) }, 'username'],
    [{ username: 12 }, 'username'],
    [{ email: undefined }, 'email'],
    [{ email: 'not-an-email' }, 'email'],
    [{ email: 'a@b' }, 'email'],
    [{ email: 'a b@acme.test' }, 'email'],
    [{ password: 'short' }, 'password'],
    [{ password: 12345678 }, 'password'],
    [{ picture: 'http://cdn.acme.test/a.png' }, 'picture'],
    [{ picture: 'avatar.png' }, 'picture'],
    [{ email_verified: 'yes' }, 'email_verified'],
    [{ name: '' }, 'name'],
    [{ password_hash: '$pbkdf2-sha256$i=1$x$y' }, 'password_hash'],
    [{ id: 'usr_chosen' }, 'id'],
  ];
  for (const [override, field] of cases) {
    const res = await admin('POST', `/organizations/${org.slug}/users`, { ...base, ...override });
    assertError(res, 400, 'invalid_field', field);
  }
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/users`)).body.users, [], 'nothing half-written');
  const ok = await newUser(org.slug, { username: 'a'.repeat(64), password: '12345678' });
  assert.equal(ok.has_password, true);
});

test('unknown user is 404', async () => {
  const org = await newOrg();
  for (const [method, path, body] of [
    ['GET', 'usr_nope'], ['PATCH', 'usr_nope', { name: 'x' }], ['DELETE', 'usr_nope'],
    ['PUT', 'usr_nope/password', { password: 'long enough' }],
  ]) {
    assertError(await admin(method, `/organizations/${org.slug}/users/${path}`, body), 404, 'not_found');
  }
  const other = await newOrg();
  const theirs = await newUser(other.slug);
  assertError(await admin('GET', `/organizations/${org.slug}/users/${theirs.id}`), 404, 'not_found');
});
