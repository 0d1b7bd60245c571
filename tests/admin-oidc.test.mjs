// What the admin API writes is what the OIDC endpoints act on: passwords it hashes log in, a
// rotated client secret replaces the old one at the token endpoint, a disabled user cannot log in.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  admin, createFixture, createUser, authorizeUrl, Browser, isLoginPage, loginForm, submitLogin, exchangeCode,
  loginAndExchange, assertOAuthError, authorize,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('adm'); });

/** 'accepted' when the login redirects back with a code, 'refused' when the form comes back. */
async function tryLogin(login, password) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page), 'a login page');
  const res = await submitLogin(browser, page, login, password);
  if ([302, 303].includes(res.status) && new URL(res.location).searchParams.get('code')) return 'accepted';
  // Refused: the login form again (401 here, the status a failed credential check earns).
  assert.ok([200, 401].includes(res.status), `refused logins show the form again, got ${res.status}`);
  assert.ok(loginForm(res), 'the login form is shown again');
  return 'refused';
}

test('a password set by the admin API logs in; the previous one no longer does', async () => {
  const user = await createUser(fx, { password: 'first password' });
  assert.equal(await tryLogin(user.username, 'first password'), 'accepted');
  const set = await admin('PUT', `/organizations/${fx.slug}/users/${user.id}/password`, { password: 'second password' });
  assert.equal(set.status, 204);
  assert.equal(await tryLogin(user.username, 'first password'), 'refused');
  assert.equal(await tryLogin(user.username, 'second password'), 'accepted');
  assert.equal(await tryLogin(user.email.toUpperCase(), 'second password'), 'accepted');
});

test('a user created without a password cannot log in', async () => {
  const res = await admin('POST', `/organizations/${fx.slug}/users`, { username: 'nopw', email: 'nopw@example.test' });
  assert.equal(res.status, 201);
  assert.equal(await tryLogin('nopw', ''), 'refused');
  assert.equal(await tryLogin('nopw', 'anything at all'), 'refused');
});

test('a disabled user cannot log in until enabled again', async () => {
  const user = await createUser(fx, { password: 'disable me please' });
  await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { disabled: true });
  assert.equal(await tryLogin(user.username, 'disable me please'), 'refused');
  await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { disabled: false });
  assert.equal(await tryLogin(user.username, 'disable me please'), 'accepted');
});

test('a renamed user logs in with the new username, and the sub stays the id', async () => {
  const user = await createUser(fx, { password: 'rename me please' });
  await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { username: `${user.username}-new` });
  const { idToken } = await loginAndExchange(fx, fx.web, { user: { ...user, username: `${user.username}-new` } });
  assert.equal(idToken.payload.sub, user.id);
});

test('after a secret rotation the token endpoint takes the new secret and refuses the old', async () => {
  const a1 = await loginAndExchange(fx, fx.other, { auth: 'post' });
  assert.ok(a1.tokens.access_token);
  const rot = await admin('POST', `/organizations/${fx.slug}/clients/${fx.other.client_id}/secret`);
  assert.equal(rot.status, 200);
  const old = { ...fx.other };
  const rotated = { ...fx.other, secret: rot.body.client_secret };

  const browser = new Browser();
  const first = await loginAndExchange(fx, rotated, { browser, auth: 'post' });
  assert.ok(first.tokens.access_token, 'the new secret works');

  const a = await authorize(fx, old, { browser });
  assertOAuthError(await exchangeCode(fx, old, a.code, { auth: 'post' }), [400, 401], 'invalid_client', 'old secret');
});
