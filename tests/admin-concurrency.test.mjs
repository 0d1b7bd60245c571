// Concurrent admin writes (issue 15, finding 10): a PATCH writes only the members it sends, so
// changes of different members made at the same time never undo each other — a rename racing
// `require_mfa`, a secret rotation racing a new redirect URI, `disabled` racing a rename. And a
// PUT that leaves out `allowed_groups` or `require_mfa` never opens a restricted client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, admin, randomIp } from './support/client.mjs';
import { newOrg, newClient, newUser, assertError } from './admin-fixtures.mjs';

const ok = (res, what) => { assert.equal(res.status, 200, `${what}: ${JSON.stringify(res.body)}`); return res.body; };

/** Whether `secret` authenticates `client_id` at the token endpoint (a wrong code then, not a wrong client). */
async function authenticates(org, clientId, secret) {
  const res = await fetch(`${BASE}/${org}/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      // Each check from its own address: wrong secrets are throttled per client and address.
      'CF-Connecting-IP': randomIp(),
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: 'https://app.example/cb' }),
  });
  const body = await res.json();
  if (res.status === 401) return false;
  assert.equal(body.error, 'invalid_grant', `authenticated, then refused for the bogus code: ${JSON.stringify(body)}`);
  return true;
}

/** Run `steps` one after another while `burst` runs all at once; the results of both. */
async function chainDuring(steps, burst) {
  const chain = (async () => {
    const out = [];
    for (const step of steps) out.push(await step());
    return out;
  })();
  const [sequential, concurrent] = await Promise.all([chain, Promise.all(burst.map((f) => f()))]);
  return { sequential, concurrent };
}

test('client: 50 PATCHes at once — require_mfa, renames, secret rotations, redirect URIs — none undoes another', async () => {
  const org = (await newOrg()).slug;
  const original = await newClient(org, { client_id: 'racy', token_endpoint_auth_method: 'client_secret_basic' });
  const path = `/organizations/${org}/clients/racy`;
  const renames = Array.from({ length: 9 }, (_, i) => `Renamed ${i + 1}`);
  const redirects = Array.from({ length: 8 }, (_, i) => [`https://app.example/cb/${i}`]);
  const burst = [
    ...Array.from({ length: 25 }, () => () => admin('PATCH', path, { require_mfa: true })),
    ...Array.from({ length: 8 }, () => () => admin('POST', `${path}/secret`)),
    ...redirects.map((uris) => () => admin('PATCH', path, { redirect_uris: uris })),
  ];
  // The renames in a chain, so that the last one is known; the rest all at once around them.
  const { sequential, concurrent } = await chainDuring(
    renames.map((name) => () => admin('PATCH', path, { client_name: name })),
    burst,
  );
  assert.equal(sequential.length + concurrent.length, 50);
  for (const r of [...sequential, ...concurrent]) ok(r, 'every PATCH and rotation');
  const final = ok(await admin('GET', path), 'GET');
  assert.equal(final.require_mfa, true, 'no rename or rotation reverted require_mfa');
  assert.equal(final.client_name, renames.at(-1), 'the last rename stands');
  assert.ok(redirects.some((u) => JSON.stringify(u) === JSON.stringify(final.redirect_uris)), `redirect_uris is one that was sent: ${final.redirect_uris}`);
  // Exactly one of the rotated secrets works — the one stored last — and the original does not:
  // no PATCH wrote back a secret it had read before a rotation.
  const secrets = concurrent.filter((r) => r.body.client_secret).map((r) => r.body.client_secret);
  assert.equal(secrets.length, 8, 'each rotation returned its secret, no PATCH returned one');
  const working = [];
  for (const s of secrets) if (await authenticates(org, 'racy', s)) working.push(s);
  assert.equal(working.length, 1, `exactly one rotated secret works, got ${working.length}`);
  assert.equal(await authenticates(org, 'racy', original.client_secret), false, 'the original secret is gone');
});

test('client: a PATCH that sends no group settings keeps them, even while they change', async () => {
  const org = (await newOrg()).slug;
  for (const name of ['staff', 'ops']) assert.equal((await admin('POST', `/organizations/${org}/groups`, { name })).status, 201);
  await newClient(org, { client_id: 'grp', allowed_groups: ['staff'] });
  const path = `/organizations/${org}/clients/grp`;
  const results = await Promise.all([
    ...Array.from({ length: 20 }, (_, i) => admin('PATCH', path, { client_name: `n${i}` })),
    admin('PATCH', path, { allowed_groups: ['ops'], role_mappings: [{ group: 'staff', role: 'member' }] }),
  ]);
  for (const r of results) ok(r, 'PATCH');
  const final = ok(await admin('GET', path), 'GET');
  assert.deepEqual(final.allowed_groups, ['ops']);
  assert.deepEqual(final.role_mappings, [{ group: 'staff', role: 'member' }]);
});

test('client: switching to a secret method at once from many requests issues one secret, and it works', async () => {
  const org = (await newOrg()).slug;
  await newClient(org, { client_id: 'pub', token_endpoint_auth_method: 'none' });
  const path = `/organizations/${org}/clients/pub`;
  const results = await Promise.all(Array.from({ length: 10 }, () => admin('PATCH', path, { token_endpoint_auth_method: 'client_secret_basic' })));
  for (const r of results) ok(r, 'PATCH');
  const shown = results.map((r) => r.body.client_secret).filter(Boolean);
  assert.equal(shown.length, 1, `one response shows the new secret, got ${shown.length}`);
  assert.ok(await authenticates(org, 'pub', shown[0]));
  // Replayed: a client that has a secret keeps it.
  const again = ok(await admin('PATCH', path, { token_endpoint_auth_method: 'client_secret_basic' }), 'the same PATCH again');
  assert.equal(again.client_secret, undefined);
  assert.ok(await authenticates(org, 'pub', shown[0]), 'the secret still works');
  const none = ok(await admin('PATCH', path, { token_endpoint_auth_method: 'none' }), 'back to none');
  assert.equal(none.client_secret, undefined);
  assert.equal(await authenticates(org, 'pub', shown[0]), false, 'a public client has no secret');
  assertError(await admin('POST', `${path}/secret`), 400, 'invalid_request');
});

test('client: the two claim names stay different, also when each is changed alone at the same time', async () => {
  const org = (await newOrg()).slug;
  await newClient(org, { client_id: 'claims' });
  const path = `/organizations/${org}/clients/claims`;
  assertError(await admin('PATCH', path, { roles_claim: 'GROUPS' }), 400, 'invalid_field', 'roles_claim');
  assertError(await admin('PATCH', path, { groups_claim: 'roles' }), 400, 'invalid_field', 'groups_claim');
  for (let i = 0; i < 10; i++) {
    const name = `rc_${i}`;
    const [a, b] = await Promise.all([
      admin('PATCH', path, { groups_claim: name }),
      admin('PATCH', path, { roles_claim: name }),
    ]);
    assert.equal([a, b].filter((r) => r.status === 200).length, 1, `exactly one of the pair for ${name}: ${a.status} ${b.status}`);
    for (const r of [a, b]) if (r.status !== 200) assertError(r, 400, 'invalid_field');
    const final = ok(await admin('GET', path), 'GET');
    assert.notEqual(final.groups_claim.toLowerCase(), final.roles_claim.toLowerCase());
    // Back to distinct names for the next round.
    ok(await admin('PATCH', path, { groups_claim: `g_${i}`, roles_claim: `r_${i}` }), 'reset');
  }
});

test('user: 50 PATCHes at once — disabled racing renames and profile edits — none undoes another', async () => {
  const org = (await newOrg()).slug;
  const user = await newUser(org, { name: 'Before' });
  const path = `/organizations/${org}/users/${user.id}`;
  const usernames = Array.from({ length: 10 }, (_, i) => `${user.username}-v${i + 1}`);
  const { sequential, concurrent } = await chainDuring(
    usernames.map((username) => () => admin('PATCH', path, { username })),
    [
      ...Array.from({ length: 25 }, () => () => admin('PATCH', path, { disabled: true })),
      ...Array.from({ length: 15 }, (_, i) => () => admin('PATCH', path, { name: `Name ${i}`, email_verified: true })),
    ],
  );
  for (const r of [...sequential, ...concurrent]) ok(r, 'PATCH');
  const final = ok(await admin('GET', path), 'GET');
  assert.equal(final.disabled, true, 'no rename re-enabled the user');
  assert.equal(final.username, usernames.at(-1), 'the last rename stands');
  assert.equal(final.email_verified, true);
  assert.match(final.name, /^Name \d+$/);
  // One toggle of `disabled` among 49 renames, all at once, five times over (the toggle at a
  // different place in the burst each time): no rename may write back the `disabled` it read
  // before the toggle committed.
  let after;
  for (let round = 0; round < 5; round++) {
    const disabled = round % 2 === 1; // false, true, false, …: each round changes it
    const toggleAt = 10 + round * 8;
    const names = Array.from({ length: 49 }, (_, i) => `${user.username}-r${round}-${i}`);
    const requests = names.map((username) => () => admin('PATCH', path, { username }));
    requests.splice(toggleAt, 0, () => admin('PATCH', path, { disabled }));
    const results = await Promise.all(requests.map((f) => f()));
    for (const r of results) ok(r, 'PATCH');
    after = ok(await admin('GET', path), 'GET');
    assert.equal(after.disabled, disabled, `round ${round + 1}: the toggle of disabled stands`);
    assert.ok(names.includes(after.username), `round ${round + 1}: the username is one of the renames: ${after.username}`);
  }
  // `null` clears; the rest stays.
  const cleared = ok(await admin('PATCH', path, { name: null }), 'clear the name');
  assert.equal(cleared.name, null);
  assert.equal(cleared.disabled, after.disabled);
  assert.equal(cleared.username, after.username);
});

test('user: a rename into a taken username is a 409 and changes nothing', async () => {
  const org = (await newOrg()).slug;
  const a = await newUser(org);
  const b = await newUser(org);
  assertError(await admin('PATCH', `/organizations/${org}/users/${b.id}`, { username: a.username.toUpperCase(), disabled: true }), 409, 'conflict', 'username');
  const after = ok(await admin('GET', `/organizations/${org}/users/${b.id}`), 'GET');
  assert.equal(after.username, b.username);
  assert.equal(after.disabled, false, 'nothing of the refused PATCH was written');
  assertError(await admin('PATCH', `/organizations/${org}/users/usr_nope`, { disabled: true }), 404, 'not_found');
});

test('organization: mfa required racing renames and policy changes — both stand', async () => {
  const org = (await newOrg()).slug;
  const path = `/organizations/${org}`;
  const names = Array.from({ length: 8 }, (_, i) => `Renamed Org ${i + 1}`);
  const { sequential, concurrent } = await chainDuring(
    names.map((name) => () => admin('PATCH', path, { name })),
    [
      ...Array.from({ length: 20 }, () => () => admin('PATCH', path, { mfa: 'required' })),
      ...Array.from({ length: 10 }, () => () => admin('PATCH', path, { throttle_account_failures: 7, primary_color: '#112233' })),
    ],
  );
  for (const r of [...sequential, ...concurrent]) ok(r, 'PATCH');
  const final = ok(await admin('GET', path), 'GET');
  assert.equal(final.mfa, 'required');
  assert.equal(final.name, names.at(-1));
  assert.equal(final.throttle_account_failures, 7);
  assert.equal(final.primary_color, '#112233');
});

test('PUT without allowed_groups or require_mfa never opens or weakens a client', async () => {
  const org = (await newOrg()).slug;
  assert.equal((await admin('POST', `/organizations/${org}/groups`, { name: 'staff' })).status, 201);
  await newClient(org, { client_id: 'locked', allowed_groups: ['staff'], require_mfa: true });
  const path = `/organizations/${org}/clients/locked`;
  const base = { client_name: 'Replaced', redirect_uris: ['https://app.example/cb'] };

  for (const body of [base, { ...base, allowed_groups: null, require_mfa: true }]) {
    const res = await admin('PUT', path, body);
    assertError(res, 400, 'invalid_field', 'allowed_groups');
    assert.match(res.body.error_description, /allowed_groups/);
    assert.match(res.body.error_description, /staff/, 'the message says what would be lost');
  }
  assertError(await admin('PUT', path, { ...base, allowed_groups: ['staff'] }), 400, 'invalid_field', 'require_mfa');
  // Replayed, still refused; and nothing was written by any of them.
  assertError(await admin('PUT', path, base), 400, 'invalid_field', 'allowed_groups');
  let now = ok(await admin('GET', path), 'GET');
  assert.deepEqual(now.allowed_groups, ['staff']);
  assert.equal(now.require_mfa, true);
  assert.equal(now.client_name, 'Test app');

  // Sent explicitly, a PUT may keep or remove them.
  now = ok(await admin('PUT', path, { ...base, allowed_groups: ['staff'], require_mfa: true }), 'PUT keeping both');
  assert.deepEqual(now.allowed_groups, ['staff']);
  assert.equal(now.client_name, 'Replaced');
  now = ok(await admin('PUT', path, { ...base, allowed_groups: [], require_mfa: false }), 'PUT removing both');
  assert.deepEqual(now.allowed_groups, []);
  assert.equal(now.require_mfa, false);
  // Unset, they may be left out (the README's example PUT), and stay unset.
  now = ok(await admin('PUT', path, base), 'PUT of an unrestricted client');
  assert.deepEqual(now.allowed_groups, []);
  assert.equal(now.require_mfa, false);
});

test('PUTs leaving out allowed_groups, racing a PATCH that restricts the client: the restriction stays', async () => {
  const org = (await newOrg()).slug;
  assert.equal((await admin('POST', `/organizations/${org}/groups`, { name: 'staff' })).status, 201);
  await newClient(org, { client_id: 'open' });
  const path = `/organizations/${org}/clients/open`;
  const results = await Promise.all([
    admin('PATCH', path, { allowed_groups: ['staff'], require_mfa: true }),
    ...Array.from({ length: 20 }, (_, i) => admin('PUT', path, { client_name: `Put ${i}`, redirect_uris: ['https://app.example/cb'] })),
  ]);
  assert.equal(results[0].status, 200, 'the PATCH');
  // Each PUT either read the client before the PATCH (and then writes neither member) or after
  // (and is refused, naming one).
  for (const r of results.slice(1)) {
    if (r.status !== 200) assertError(r, 400, 'invalid_field');
  }
  const final = ok(await admin('GET', path), 'GET');
  assert.deepEqual(final.allowed_groups, ['staff'], 'no PUT removed the restriction added meanwhile');
  assert.equal(final.require_mfa, true, 'nor the second factor');
});
