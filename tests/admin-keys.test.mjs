import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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

test('the kid is the RFC 7638 thumbprint of the published RSA-2048 public key', async () => {
  const org = await newOrg();
  const [key] = (await admin('GET', `/organizations/${org.slug}/keys`)).body.keys;
  const jwks = await (await fetch(`${BASE}/${org.slug}/jwks`)).json();
  const jwk = jwks.keys.find((k) => k.kid === key.kid);
  assert.ok(jwk, 'the active key is in the JWKS');
  assert.equal(jwk.kty, 'RSA');
  assert.equal(Buffer.from(jwk.n, 'base64url').length, 256, '2048-bit modulus');
  assert.equal(jwk.e, 'AQAB');
  assert.ok(!('d' in jwk) && !('p' in jwk), 'no private members');
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  assert.equal(key.kid, createHash('sha256').update(canonical).digest('base64url'));
});
