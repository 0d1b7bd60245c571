// Organization changes made through the admin API reach the OIDC endpoints at once (the
// per-isolate organization cache is dropped by the change): new branding on the login page, and
// a deleted organization's endpoints answer 404.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, admin, createFixture, authorizeUrl } from './support/oidc.mjs';

test('a renamed organization shows its new name and colour on the login page immediately', async () => {
  const fx = await createFixture('brand');
  const before = await (await fetch(authorizeUrl(fx, fx.web))).text();
  assert.ok(!before.includes('Renamed Corp'));
  const patch = await admin('PATCH', `/organizations/${fx.slug}`, { name: 'Renamed Corp', primary_color: '#aa3300' });
  assert.equal(patch.status, 200);
  const after = await (await fetch(authorizeUrl(fx, fx.web))).text();
  assert.ok(after.includes('Renamed Corp'), 'the new name is on the login page');
  assert.ok(after.includes('#aa3300'), 'the new colour is on the login page');
});

test('a deleted organization stops serving discovery, JWKS and authorize immediately', async () => {
  const fx = await createFixture('gone');
  const discovery = `${BASE}/${fx.slug}/.well-known/openid-configuration`;
  assert.equal((await fetch(discovery)).status, 200);
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}`)).status, 204);
  assert.equal((await fetch(discovery)).status, 404);
  assert.equal((await fetch(`${BASE}/${fx.slug}/jwks`)).status, 404);
  const page = await fetch(authorizeUrl(fx, fx.web), { redirect: 'manual' });
  assert.equal(page.status, 404);
  assert.equal(page.headers.get('location'), null, 'never a redirect');
});
