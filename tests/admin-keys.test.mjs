import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, BASE } from './support/client.mjs';
import { newOrg } from './admin-fixtures.mjs';

async function jwksKids(slug) {
  const res = await fetch(`${BASE}/${slug}/jwks`);
  assert.equal(res.status, 200);
  return (await res.json()).keys.map((k) => k.kid);
}

test('rotate: the new key is the only active one, older keys are retired but still published', async () => {
  const org = await newOrg();
  const [first] = (await admin('GET', `/organizations/${org.slug}/keys`)).body.keys;

  const rot = await admin('POST', `/organizations/${org.slug}/keys/rotate`);
  assert.equal(rot.status, 201, JSON.stringify(rot.body));
  assert.equal(rot.body.status, 'active');
  assert.equal(rot.body.alg, 'RS256');
  assert.notEqual(rot.body.kid, first.kid);
  assert.equal(rot.body.retired_at, null);

  const after = (await admin('GET', `/organizations/${org.slug}/keys`)).body.keys;
  assert.equal(after.length, 2);
  const byKid = Object.fromEntries(after.map((k) => [k.kid, k]));
  assert.equal(byKid[rot.body.kid].status, 'active');
  assert.equal(byKid[first.kid].status, 'retired');
  assert.equal(typeof byKid[first.kid].retired_at, 'number');
  assert.ok(byKid[first.kid].retired_at >= first.created_at);
  assert.equal(byKid[first.kid].published, true);
  for (const k of after) assert.ok(!('private_key_sealed' in k));

  const kids = await jwksKids(org.slug);
  assert.ok(kids.includes(first.kid) && kids.includes(rot.body.kid), `JWKS has both: ${kids}`);

  const again = await admin('POST', `/organizations/${org.slug}/keys/rotate`);
  assert.equal(again.status, 201);
  const third = (await admin('GET', `/organizations/${org.slug}/keys`)).body.keys;
  assert.equal(third.length, 3);
  assert.deepEqual(third.filter((k) => k.status === 'active').map((k) => k.kid), [again.body.kid]);
  assert.equal(third[0].kid, again.body.kid, 'newest first');
});

test("rotating one organization's key leaves the others alone", async () => {
  const a = await newOrg();
  const b = await newOrg();
  const before = (await admin('GET', `/organizations/${b.slug}/keys`)).body.keys;
  assert.equal((await admin('POST', `/organizations/${a.slug}/keys/rotate`)).status, 201);
  assert.deepEqual((await admin('GET', `/organizations/${b.slug}/keys`)).body.keys, before);
});
