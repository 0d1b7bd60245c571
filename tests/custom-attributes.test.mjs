// Custom attributes per organization (issue 18, item 2) as an admin defines them and a relying
// party receives them: definitions with a name (never a registered or Clavex claim), a JSON type
// and the scope that releases them; values per user, checked against the type, all-or-nothing;
// released at userinfo by scope, in the ID token when the claims parameter names them or the
// client's attributes_in_id_token says so; gone from userinfo once the attribute is deleted.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, createFixture, createClient, createUser, admin, unique, loginAndExchange, userinfo, verifyJwt,
  tokenRequest, assertTokenSuccess, RP_REDIRECT, authorize, exchangeCode, endpoint,
} from './support/oidc.mjs';

let fx;
let rp; // registered for profile, email and phone
let ada; // has every attribute
const attrs = (path = '') => `/organizations/${fx.slug}/attributes${path}`;

async function define(body) {
  const res = await admin('POST', attrs(), body);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

before(async () => {
  fx = await createFixture('attrs');
  await define({ name: 'department', type: 'string', scope: 'profile', description: 'Where they work' });
  await define({ name: 'employee_number', type: 'integer', scope: 'profile' });
  await define({ name: 'badges', type: 'string_array', scope: 'email' });
  await define({ name: 'on_call', type: 'boolean', scope: 'phone' });
  await define({ name: 'fte', type: 'number', scope: 'profile' });
  rp = await createClient(fx, {
    client_id: 'attrs-rp',
    client_name: 'Attributes RP',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [RP_REDIRECT],
    scopes: ['openid', 'profile', 'email', 'phone'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  ada = await createUser(fx, {
    username: 'ada',
    attributes: { department: 'R&D', employee_number: 4711, badges: ['lab', 'gym'], on_call: true, fte: 0.8 },
  });
});

const signIn = (client, user, scope, extra = {}) => loginAndExchange(fx, client, { user, params: { scope, ...extra } });

test('an attribute is defined, listed, read, patched; a duplicate name (any case) is 409', async () => {
  const res = await admin('GET', attrs('/department'));
  assert.equal(res.status, 200);
  assert.equal(res.body.name, 'department');
  assert.equal(res.body.type, 'string');
  assert.equal(res.body.scope, 'profile');
  assert.equal(res.body.description, 'Where they work');
  const list = await admin('GET', attrs());
  assert.deepEqual(list.body.attributes.map((a) => a.name), ['badges', 'department', 'employee_number', 'fte', 'on_call']);
  for (const name of ['department', 'Department']) {
    const dup = await admin('POST', attrs(), { name, type: 'string', scope: 'email' });
    assert.equal(dup.status, 409, name);
    assert.equal(dup.body.error, 'conflict');
  }
  await define({ name: 'cost_center', type: 'string', scope: 'profile' });
  const patched = await admin('PATCH', attrs('/cost_center'), { scope: 'email', description: 'CC' });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.scope, 'email');
  assert.equal(patched.body.description, 'CC');
  const retype = await admin('PATCH', attrs('/cost_center'), { type: 'integer' });
  assert.equal(retype.status, 400);
  assert.equal(retype.body.field, 'type');
  assert.equal((await admin('DELETE', attrs('/cost_center'))).status, 204);
  assert.equal((await admin('GET', attrs('/cost_center'))).status, 404);
  assert.equal((await admin('DELETE', attrs('/cost_center'))).status, 404);
});

test('reserved names, bad syntax, unknown types and unsupported scopes are refused, naming the field', async () => {
  for (const name of ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'auth_time', 'nonce', 'acr', 'amr', 'azp',
    'at_hash', 'c_hash', 'sid', 'email', 'Email', 'phone_number', 'address', 'updated_at', 'groups', 'roles',
    'preferred_username', 'id', '_id', 'user_id', 'a b', '', 'x'.repeat(65), 'd/e']) {
    const res = await admin('POST', attrs(), { name, type: 'string', scope: 'profile' });
    assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error, 'invalid_field');
    assert.equal(res.body.field, 'name', name);
  }
  for (const type of ['object', 'String', 'array', 'int']) {
    const res = await admin('POST', attrs(), { name: 'shoe_size', type, scope: 'profile' });
    assert.equal(res.status, 400, type);
    assert.equal(res.body.field, 'type');
  }
  for (const scope of ['hr', 'openid', 'offline_access']) {
    const res = await admin('POST', attrs(), { name: 'shoe_size', type: 'integer', scope });
    assert.equal(res.status, 400, scope);
    assert.equal(res.body.field, 'scope');
  }
  assert.equal((await admin('GET', attrs('/shoe_size'))).status, 404, 'nothing was defined');
});

test('values are shown by the admin API, patched, and null removes one', async () => {
  const got = await admin('GET', `/organizations/${fx.slug}/users/${ada.id}`);
  assert.deepEqual(got.body.attributes, { department: 'R&D', employee_number: 4711, badges: ['lab', 'gym'], on_call: true, fte: 0.8 });
  const user = await createUser(fx, { attributes: { department: 'Sales' } });
  const res = await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { attributes: { department: null, employee_number: 12 } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.attributes, { employee_number: 12 });
  const again = await admin('GET', `/organizations/${fx.slug}/users/${user.id}`);
  assert.deepEqual(again.body.attributes, { employee_number: 12 });
});

test('a wrong-typed or unknown value refuses the whole body: nothing stored, the attribute named', async () => {
  const user = await createUser(fx, { attributes: { department: 'Ops' } });
  const path = `/organizations/${fx.slug}/users/${user.id}`;
  for (const [attributes, field] of [
    [{ employee_number: '4711' }, 'attributes.employee_number'],
    [{ employee_number: 47.5 }, 'attributes.employee_number'],
    [{ on_call: 'yes' }, 'attributes.on_call'],
    [{ badges: ['a', 1] }, 'attributes.badges'],
    [{ badges: Array(51).fill('b') }, 'attributes.badges'],
    [{ department: 'x'.repeat(501) }, 'attributes.department'],
    [{ shoe_size: 44 }, 'attributes.shoe_size'],
  ]) {
    const res = await admin('PATCH', path, { name: 'Renamed', attributes: { department: 'Changed', ...attributes } });
    assert.equal(res.status, 400, `${JSON.stringify(attributes)}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.field, field);
    assert.match(res.body.error_description, new RegExp(field.split('.')[1]));
  }
  const after = await admin('GET', path);
  assert.deepEqual(after.body.attributes, { department: 'Ops' });
  assert.notEqual(after.body.name, 'Renamed');
  const username = unique('nobody').toLowerCase();
  const refused = await admin('POST', `/organizations/${fx.slug}/users`, {
    username, email: `${username}@example.test`, attributes: { department: 'X', employee_number: 'many' },
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.field, 'attributes.employee_number');
  const list = await admin('GET', `/organizations/${fx.slug}/users?username=${username}`);
  assert.equal(list.body.users.length, 0, 'no user was created');
});

test('userinfo releases each attribute whose scope is granted, as a top-level claim of its type', async () => {
  const { tokens } = await signIn(rp, ada, 'openid profile');
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.equal(u.department, 'R&D');
  assert.equal(u.employee_number, 4711);
  assert.equal(u.fte, 0.8);
  assert.equal(u.badges, undefined, 'email not granted');
  assert.equal(u.on_call, undefined, 'phone not granted');
  const all = await signIn(rp, ada, 'openid email phone');
  const v = (await userinfo(fx, all.tokens.access_token)).json;
  assert.deepEqual(v.badges, ['lab', 'gym']);
  assert.equal(v.on_call, true);
  assert.equal(v.department, undefined, 'profile not granted');
});

test('without the scope nothing is released, whatever the claims parameter asks', async () => {
  const claims = JSON.stringify({ userinfo: { department: null }, id_token: { department: null } });
  const { tokens } = await signIn(rp, ada, 'openid email', { claims });
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.equal(u.department, undefined);
  const p = verifyJwt(tokens.id_token, await fx.jwks()).payload;
  assert.equal(p.department, undefined);
});

test('the ID token carries an attribute when the claims parameter names it, and only that one', async () => {
  const jwks = await fx.jwks();
  const plain = await signIn(rp, ada, 'openid profile email');
  const p = verifyJwt(plain.tokens.id_token, jwks).payload;
  for (const k of ['department', 'employee_number', 'badges', 'fte']) assert.equal(p[k], undefined, `${k} not asked`);
  const claims = JSON.stringify({ id_token: { department: null, badges: { essential: true } } });
  const asked = await signIn(rp, ada, 'openid profile email', { claims });
  const c = verifyJwt(asked.tokens.id_token, jwks).payload;
  assert.equal(c.department, 'R&D');
  assert.deepEqual(c.badges, ['lab', 'gym']);
  assert.equal(c.employee_number, undefined, 'not asked');
});

test('a client with attributes_in_id_token gets every granted attribute in its ID tokens, also refreshed', async () => {
  const jwks = await fx.jwks();
  const res = await admin('POST', `/organizations/${fx.slug}/clients`, {
    client_id: 'attrs-idt', client_name: 'ID token RP', grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [RP_REDIRECT], scopes: ['openid', 'profile', 'email', 'phone'], attributes_in_id_token: true,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.attributes_in_id_token, true);
  const client = { ...res.body, secret: res.body.client_secret, redirect_uri: RP_REDIRECT };
  const { tokens } = await signIn(client, ada, 'openid profile phone');
  const p = verifyJwt(tokens.id_token, jwks).payload;
  assert.equal(p.department, 'R&D');
  assert.equal(p.employee_number, 4711);
  assert.equal(p.on_call, true);
  assert.equal(p.badges, undefined, 'email not granted');
  const refreshed = assertTokenSuccess(await tokenRequest(fx, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
  assert.equal(verifyJwt(refreshed.id_token, jwks).payload.department, 'R&D');
  const off = await admin('PATCH', `/organizations/${fx.slug}/clients/attrs-idt`, { attributes_in_id_token: false });
  assert.equal(off.status, 200);
  assert.equal(off.body.attributes_in_id_token, false);
  const again = await signIn(client, ada, 'openid profile phone');
  assert.equal(verifyJwt(again.tokens.id_token, jwks).payload.department, undefined);
  const defaults = await admin('GET', `/organizations/${fx.slug}/clients/${rp.client_id}`);
  assert.equal(defaults.body.attributes_in_id_token, false);
});

/** The round trips to the D1 primary a response counted (Server-Timing; STORAGE_TIMING is on). */
function primaryTrips(res) {
  const metric = (res.headers.get('server-timing') ?? '').split(',').map((m) => m.trim())
    .find((m) => m.startsWith('d1-primary;'));
  assert.ok(metric, 'a Server-Timing d1-primary metric');
  return Number(metric.split(';').find((p) => p.startsWith('count=')).slice(6));
}

test('attributes cost no round trip: userinfo stays at 0 primary trips, a code exchange with them in the ID token at 1', async () => {
  const res = await admin('POST', `/organizations/${fx.slug}/clients`, {
    client_id: 'attrs-budget', client_name: 'Budget RP', redirect_uris: [RP_REDIRECT],
    scopes: ['openid', 'profile'], attributes_in_id_token: true,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const client = { ...res.body, secret: res.body.client_secret, redirect_uri: RP_REDIRECT };
  const { code } = await authorize(fx, client, { user: ada, params: { scope: 'openid profile' } });
  const exchanged = await exchangeCode(fx, client, code);
  const tokens = assertTokenSuccess(exchanged, 'code exchange');
  assert.equal(verifyJwt(tokens.id_token, await fx.jwks()).payload.department, 'R&D');
  assert.equal(primaryTrips(exchanged), 1, 'code exchange: the same single primary round trip as without attributes');
  const info = await fetch(endpoint(fx, 'userinfo_endpoint'), { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(info.status, 200);
  assert.equal((await info.json()).employee_number, 4711);
  assert.equal(primaryTrips(info), 0, 'userinfo: a replica read, as without attributes');
});

test('a changed scope moves the release; deleting an attribute removes it from userinfo and from users', async () => {
  await define({ name: 'desk', type: 'string', scope: 'profile' });
  const user = await createUser(fx, { attributes: { desk: 'B-12', department: 'Ops' } });
  const { tokens } = await signIn(rp, user, 'openid profile');
  assert.equal((await userinfo(fx, tokens.access_token)).json.desk, 'B-12');
  assert.equal((await admin('PATCH', attrs('/desk'), { scope: 'phone' })).status, 200);
  assert.equal((await userinfo(fx, tokens.access_token)).json.desk, undefined, 'phone not granted');
  assert.equal((await admin('PATCH', attrs('/desk'), { scope: 'profile' })).status, 200);
  assert.equal((await userinfo(fx, tokens.access_token)).json.desk, 'B-12');
  assert.equal((await admin('DELETE', attrs('/desk'))).status, 204);
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.equal(u.desk, undefined);
  assert.equal(u.department, 'Ops', 'the others stay');
  const shown = await admin('GET', `/organizations/${fx.slug}/users/${user.id}`);
  assert.deepEqual(shown.body.attributes, { department: 'Ops' });
  // Defined again, it starts without values.
  await define({ name: 'desk', type: 'integer', scope: 'profile' });
  assert.equal((await userinfo(fx, tokens.access_token)).json.desk, undefined);
});

test('discovery lists the organization\'s attribute names among claims_supported', async () => {
  const slug = unique('attrsdisc').toLowerCase();
  assert.equal((await admin('POST', '/organizations', { slug, name: 'Disc' })).status, 201);
  assert.equal((await admin('POST', `/organizations/${slug}/attributes`, { name: 'department', type: 'string', scope: 'profile' })).status, 201);
  const d = await (await fetch(`${BASE}/${slug}/.well-known/openid-configuration`)).json();
  assert.ok(d.claims_supported.includes('department'));
  assert.ok(d.claims_supported.includes('sub'));
  // The organization is cached with its names now; a change through the admin API drops the
  // copy of the isolate that made it (wrangler dev runs one).
  assert.equal((await admin('DELETE', `/organizations/${slug}/attributes/department`)).status, 204);
  const after = await (await fetch(`${BASE}/${slug}/.well-known/openid-configuration`)).json();
  assert.ok(!after.claims_supported.includes('department'));
  assert.ok(after.claims_supported.includes('sub'));
});

test('at most 100 attributes per organization, also when 20 are defined at once', async () => {
  const other = await createFixture('attrs-cap');
  const path = `/organizations/${other.slug}/attributes`;
  for (let i = 0; i < 95; i++) {
    const res = await admin('POST', path, { name: `a${i}`, type: 'string', scope: 'profile' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => admin('POST', path, { name: `b${i}`, type: 'string', scope: 'profile' })));
  const tally = {};
  for (const r of burst) tally[r.status] = (tally[r.status] ?? 0) + 1;
  assert.deepEqual(tally, { 201: 5, 409: 15 }, JSON.stringify(tally));
  const refused = burst.find((r) => r.status === 409);
  assert.equal(refused.body.field, 'name');
  assert.match(refused.body.error_description ?? refused.body.message ?? JSON.stringify(refused.body), /100/);
  const listed = await admin('GET', path);
  assert.equal(listed.body.attributes.length, 100);
});
