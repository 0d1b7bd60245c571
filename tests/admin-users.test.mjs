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
  const ok = await newUser(org.slug, { username: 'a'.repeat(64), password: 'Zq7-kpw4' });
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

test('list: pages of `limit` users linked by next_cursor, covering everyone once', async () => {
  const org = await newOrg();
  const ids = [];
  for (let i = 0; i < 5; i += 1) ids.push((await newUser(org.slug)).id);
  const seen = [];
  let cursor;
  const sizes = [];
  do {
    const q = new URLSearchParams({ limit: '2', ...(cursor ? { cursor } : {}) });
    const res = await admin('GET', `/organizations/${org.slug}/users?${q}`);
    assert.equal(res.status, 200);
    sizes.push(res.body.users.length);
    for (const u of res.body.users) assertNoPassword(u);
    seen.push(...res.body.users.map((u) => u.id));
    cursor = res.body.next_cursor;
  } while (cursor);
  assert.deepEqual(sizes, [2, 2, 1]);
  assert.deepEqual([...seen].sort(), [...ids].sort());
  const all = await admin('GET', `/organizations/${org.slug}/users`);
  assert.equal(all.body.users.length, 5);
  assert.equal(all.body.next_cursor, null);
  for (const bad of ['0', '201', 'x']) {
    assertError(await admin('GET', `/organizations/${org.slug}/users?limit=${bad}`), 400, 'invalid_field', 'limit');
  }
});

test('list filters by username and email, ignoring case', async () => {
  const org = await newOrg();
  const bob = await newUser(org.slug, { username: 'Bob', email: 'bob@acme.test' });
  await newUser(org.slug, { username: 'carol', email: 'carol@acme.test' });
  const byName = await admin('GET', `/organizations/${org.slug}/users?username=bOB`);
  assert.deepEqual(byName.body.users.map((u) => u.id), [bob.id]);
  const byEmail = await admin('GET', `/organizations/${org.slug}/users?email=${encodeURIComponent('BOB@acme.test')}`);
  assert.deepEqual(byEmail.body.users.map((u) => u.id), [bob.id]);
  const none = await admin('GET', `/organizations/${org.slug}/users?username=nobody`);
  assert.deepEqual(none.body.users, []);
});

test('PATCH updates the profile; null clears name and picture; id and password untouched', async () => {
  const org = await newOrg();
  const u = await newUser(org.slug, { name: 'Old', picture: 'https://cdn.acme.test/a.png', password: 'a long password' });
  const res = await admin('PATCH', `/organizations/${org.slug}/users/${u.id}`, {
    username: 'renamed', email: 'renamed@acme.test', email_verified: true, disabled: true, name: null,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.id, u.id);
  assert.equal(res.body.username, 'renamed');
  assert.equal(res.body.email, 'renamed@acme.test');
  assert.equal(res.body.email_verified, true);
  assert.equal(res.body.disabled, true);
  assert.equal(res.body.name, null);
  assert.equal(res.body.picture, 'https://cdn.acme.test/a.png');
  assert.equal(res.body.has_password, true);
  assertNoPassword(res.body);
  const cleared = await admin('PATCH', `/organizations/${org.slug}/users/${u.id}`, { picture: null, disabled: false });
  assert.equal(cleared.body.picture, null);
  assert.equal(cleared.body.disabled, false);
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/users/${u.id}`)).body, cleared.body);
});

test('PATCH: conflicts are 409, bad values 400, and the password cannot be set here', async () => {
  const org = await newOrg();
  await newUser(org.slug, { username: 'taken', email: 'taken@acme.test' });
  const u = await newUser(org.slug);
  const path = `/organizations/${org.slug}/users/${u.id}`;
  assertError(await admin('PATCH', path, { username: 'TAKEN' }), 409, 'conflict', 'username');
  assertError(await admin('PATCH', path, { email: 'Taken@Acme.test' }), 409, 'conflict', 'email');
  for (const [body, field] of [
    [{ username: 'no spaces allowed' }, 'username'],
    [{ email: 'nope' }, 'email'],
    [{ picture: 'http://cdn.acme.test/a.png' }, 'picture'],
    [{ disabled: 'true' }, 'disabled'],
    [{ password: 'a long password' }, 'password'],
    [{ id: 'usr_other' }, 'id'],
  ]) {
    assertError(await admin('PATCH', path, body), 400, 'invalid_field', field);
  }
  const same = await admin('GET', path);
  assert.equal(same.body.username, u.username);
  assert.equal(same.body.has_password, false);
});

test('DELETE a user: 204, gone, and a new user with the same name gets a new id', async () => {
  const org = await newOrg();
  const u = await newUser(org.slug, { username: 'gone', email: 'gone@acme.test' });
  assert.equal((await admin('DELETE', `/organizations/${org.slug}/users/${u.id}`)).status, 204);
  assertError(await admin('GET', `/organizations/${org.slug}/users/${u.id}`), 404, 'not_found');
  assertError(await admin('DELETE', `/organizations/${org.slug}/users/${u.id}`), 404, 'not_found');
  const again = await newUser(org.slug, { username: 'gone', email: 'gone@acme.test' });
  assert.notEqual(again.id, u.id);
});

test('PUT …/password sets a password (204); rules as on creation', async () => {
  const org = await newOrg();
  const u = await newUser(org.slug);
  const path = `/organizations/${org.slug}/users/${u.id}/password`;
  assertError(await admin('PUT', path, { password: 'short' }), 400, 'invalid_field', 'password');
  assertError(await admin('PUT', path, {}), 400, 'invalid_field', 'password');
  assertError(await admin('PUT', path, { password: 'long enough', extra: 1 }), 400, 'invalid_field', 'extra');
  assert.equal((await admin('GET', `/organizations/${org.slug}/users/${u.id}`)).body.has_password, false);
  const res = await admin('PUT', path, { password: 'long enough' });
  assert.equal(res.status, 204);
  assert.equal((await admin('GET', `/organizations/${org.slug}/users/${u.id}`)).body.has_password, true);
});

// OpenID Connect Core §5.1 claims (issue 18).
const CLAIMS = {
  given_name: 'Jane', family_name: 'Doe', middle_name: 'Quinn', nickname: 'JD',
  profile: 'https://people.acme.test/jane', website: 'http://jane.example/', gender: 'female',
  birthdate: '1990-07-14', zoneinfo: 'Europe/Paris', locale: 'fr-FR', phone_number: '+33123456789',
  phone_number_verified: true,
  address: { street_address: '1 rue de Rivoli\nBât. A', locality: 'Paris', postal_code: '75001', country: 'FR' },
};
const CLAIM_NAMES = Object.keys(CLAIMS);

test('POST stores every standard claim; GET and the list show them; a user without them shows null', async () => {
  const org = await newOrg();
  // Created without a password: the 201 alone carries the setup link (tests/setup-links.test.mjs).
  const { setup_link: link, setup_link_expires_at: expires, ...u } = await newUser(org.slug, CLAIMS);
  assert.ok(link && expires, 'a user without a password gets a setup link');
  for (const [k, v] of Object.entries(CLAIMS)) assert.deepEqual(u[k], v, k);
  const got = await admin('GET', `/organizations/${org.slug}/users/${u.id}`);
  assert.deepEqual(got.body, u);
  const listed = await admin('GET', `/organizations/${org.slug}/users?username=${u.username}`);
  assert.deepEqual(listed.body.users, [u]);
  const plain = await newUser(org.slug);
  for (const k of CLAIM_NAMES.filter((k) => k !== 'phone_number_verified')) assert.equal(plain[k], null, k);
  assert.equal(plain.phone_number_verified, false);
  // Other accepted forms: year only, year omitted, a region of digits, an address of one line.
  const other = await newUser(org.slug, {
    birthdate: '0000-02-29', locale: 'es-419', zoneinfo: 'America/Argentina/Buenos_Aires',
    address: { formatted: '1 Main St\r\nSpringfield' },
  });
  assert.equal(other.birthdate, '0000-02-29');
  assert.deepEqual(other.address, { formatted: '1 Main St\r\nSpringfield' });
  assert.equal((await newUser(org.slug, { birthdate: '1984' })).birthdate, '1984');
});

test('PATCH sets, changes and clears (null) standard claims, writing only the members sent', async () => {
  const org = await newOrg();
  const u = await newUser(org.slug, CLAIMS);
  const path = `/organizations/${org.slug}/users/${u.id}`;
  const res = await admin('PATCH', path, {
    nickname: 'Janie', locale: null, address: { locality: 'Lyon', country: 'FR' }, phone_number_verified: false,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.nickname, 'Janie');
  assert.equal(res.body.locale, null);
  assert.deepEqual(res.body.address, { locality: 'Lyon', country: 'FR' }, 'an address is replaced whole');
  assert.equal(res.body.phone_number_verified, false);
  for (const k of ['given_name', 'family_name', 'birthdate', 'zoneinfo', 'phone_number', 'website']) {
    assert.equal(res.body[k], CLAIMS[k], `${k} untouched`);
  }
  assert.ok(res.body.updated_at >= u.updated_at);
  const cleared = await admin('PATCH', path, Object.fromEntries(CLAIM_NAMES.filter((k) => k !== 'phone_number_verified').map((k) => [k, null])));
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  for (const k of CLAIM_NAMES.filter((k) => k !== 'phone_number_verified')) assert.equal(cleared.body[k], null, k);
  assert.deepEqual((await admin('GET', path)).body, cleared.body);
});

const BAD_CLAIMS = [
  [{ given_name: '' }, 'given_name'],
  [{ family_name: 'x'.repeat(201) }, 'family_name'],
  [{ middle_name: 7 }, 'middle_name'],
  [{ nickname: 'a\u0007b' }, 'nickname'],
  [{ profile: 'people.acme.test/jane' }, 'profile'],
  [{ website: 'javascript:alert(1)' }, 'website'],
  [{ website: 'ftp://jane.example/' }, 'website'],
  [{ gender: 'x'.repeat(65) }, 'gender'],
  [{ birthdate: '1990-02-30' }, 'birthdate'],
  [{ birthdate: '14/07/1990' }, 'birthdate'],
  [{ birthdate: '0000' }, 'birthdate'],
  [{ zoneinfo: 'Europe/Atlantis' }, 'zoneinfo'],
  [{ zoneinfo: 'europe/paris' }, 'zoneinfo'],
  [{ locale: 'en_US' }, 'locale'],
  [{ locale: 'english' }, 'locale'],
  [{ phone_number: '+1 (425) 555-1212' }, 'phone_number'],
  [{ phone_number: '4255551212' }, 'phone_number'],
  [{ phone_number: '+1234567' }, 'phone_number'],
  [{ phone_number_verified: 'yes' }, 'phone_number_verified'],
  [{ address: '1 Main St' }, 'address'],
  [{ address: {} }, 'address'],
  [{ address: { street: '1 Main St' } }, 'address'],
  [{ address: { country: 33 } }, 'address'],
  [{ address: { locality: 'two\nlines' } }, 'address'],
];

test('bad standard claims on create: 400 invalid_field naming the claim, nothing stored', async () => {
  const org = await newOrg();
  for (const [override, field] of BAD_CLAIMS) {
    const res = await admin('POST', `/organizations/${org.slug}/users`, { username: unique('c'), email: `${unique('c')}@acme.test`, ...override });
    assertError(res, 400, 'invalid_field', field);
  }
  assert.deepEqual((await admin('GET', `/organizations/${org.slug}/users`)).body.users, [], 'nothing stored');
});

test('a PATCH with one bad claim changes nothing, not even the good members sent with it', async () => {
  const org = await newOrg();
  const u = await newUser(org.slug, CLAIMS);
  const path = `/organizations/${org.slug}/users/${u.id}`;
  const before = (await admin('GET', path)).body;
  for (const [override, field] of BAD_CLAIMS) {
    const res = await admin('PATCH', path, { name: 'Changed', nickname: 'Changed', locale: null, ...override });
    assertError(res, 400, 'invalid_field', field);
  }
  assert.deepEqual((await admin('GET', path)).body, before);
});
