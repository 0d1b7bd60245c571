// A one-time link finished with a passkey instead of a password (issue 16, items 1 and 3), through
// the real Worker with registrations crafted in Node (tests/support/webauthn.mjs): an invitation
// from one admin call to a passkey-only sign-in at a relying party, the account never having a
// password; a recovery link that resets the password replaces it with the passkey; and what an
// attacker would try — the same form 50 times at once (password and passkey forms mixed: exactly
// one finishes the link), replayed after it was used, a challenge shown for one link posted at
// another's address, a wrong origin or RP ID, a credential registered already, a disabled user,
// an organization with passkeys off, a link that resets only the second factor.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createUser, authorizeUrl, isLoginPage, submitLogin, parseForms,
  formFields, pageText, parseRedirect, exchangeCode, assertTokenSuccess, decodeJwt, decodeEntities,
} from './support/oidc.mjs';
import { Authenticator, UP, UV, BE } from './support/webauthn.mjs';

let fx;
before(async () => { fx = await createFixture('lpk'); });

const usersPath = (on = fx) => `/organizations/${on.slug}/users`;
const origin = (on) => new URL(on.issuer).origin;

/** A user created without a password (one admin call); its setup link from the 201. */
async function invite(on = fx, extra = {}) {
  const username = `lpk${Math.random().toString(36).slice(2, 9)}`;
  const res = await admin('POST', usersPath(on), { username, email: `${username}@example.test`, ...extra });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { user: res.body, link: res.body.setup_link };
}

const data = (form, name) => {
  const m = form.html.match(new RegExp(`data-${name}="([^"]*)"`));
  assert.ok(m, `data-${name} on the form`);
  return decodeEntities(m[1]);
};

/** The link's page in `browser`, with its passkey form (asserted present). */
async function open(link, browser = new Browser()) {
  const page = await browser.get(link);
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  const form = parseForms(page.text, page.url).find((f) => /id="passkey-add"/.test(f.html));
  assert.ok(form, 'the link page offers "Register a passkey"');
  return { browser, page, form, challenge: data(form, 'challenge'), rpId: data(form, 'rp-id') };
}

const passwordForm = (o) => parseForms(o.page.text, o.page.url).find((f) => !/id="passkey-add"/.test(f.html));

/** A registration by `auth` answering the page's challenge (origin and RP ID overridable). */
const made = (o, auth, { flags = UP | UV, on = fx, ...over } = {}) =>
  auth.create({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, flags, ...over });

const post = (o, credential, browser = o.browser) => browser.post(o.form.action, formFields(o.form, { credential }));

/** A usernameless passkey sign-in at the relying party in a fresh browser: the ID token, or the
 * refused response. */
async function signInWithPasskey(on, auth, user) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  assert.equal(page.status, 200);
  const form = parseForms(page.text, page.url).find((f) => /id="passkey-signin"/.test(f.html));
  assert.ok(form, 'the login page has the passkey form');
  const credential = auth.get({ challenge: data(form, 'challenge'), origin: origin(on), rpId: data(form, 'rp-id'), userHandle: user.id });
  const res = await browser.post(form.action, formFields(form, { credential }));
  if (res.status !== 303) return { res };
  const tokens = assertTokenSuccess(await exchangeCode(on, on.web, parseRedirect(res.location).params.code));
  return { res, id: decodeJwt(tokens.id_token).payload };
}

async function passwordWorks(on, username, password) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  assert.ok(isLoginPage(page));
  const res = await submitLogin(browser, page, username, password);
  return [302, 303].includes(res.status) && Boolean(parseRedirect(res.location).params.code);
}

async function passkeysOf(user, on = fx) {
  const res = await admin('GET', `${usersPath(on)}/${user.id}/passkeys`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.passkeys;
}

async function events(type, userId, on = fx) {
  const res = await admin('GET', `/organizations/${on.slug}/events?type=${type}`);
  assert.equal(res.status, 200);
  return res.body.events.filter((e) => e.user_id === userId);
}

function assertRefused(res, status, words) {
  assert.equal(res.status, status, pageText(res.text).slice(0, 300));
  assert.match(pageText(res.text), words);
  assert.equal(res.location, null);
}

test('an invitation finished with a passkey: signed in at once, no password ever, then a passkey-only sign-in at a relying party', async () => {
  const { user, link } = await invite();
  assert.equal(user.has_password, false);
  const o = await open(link);
  // The page's passkey form carries WebAuthn creation options for this user.
  assert.equal(data(o.form, 'user-id'), Buffer.from(user.id).toString('base64url'));
  assert.equal(data(o.form, 'user-name'), user.username);
  assert.equal(o.rpId, new URL(fx.issuer).hostname);
  assert.equal(new URL(o.form.action).pathname, `${new URL(link).pathname}/passkey`);
  assert.match(o.page.headers.get('content-security-policy'), /script-src 'sha256-[^' ]+';/);
  assert.match(pageText(o.page.text), /The link works once, until .* UTC\./);

  const auth = new Authenticator();
  const done = await post(o, made(o, auth));
  assert.equal(done.status, 303, pageText(done.text).slice(0, 300));
  assert.equal(done.location, `/${fx.slug}/account`);
  assert.ok(done.setCookies.some((c) => c.name === 'clavex_session' && c.value && c.attrs.httponly));
  const account = await o.browser.get(`${fx.issuer}/account`);
  assert.equal(account.status, 200);
  assert.match(pageText(account.text), new RegExp(`Signed in as ${user.username}`));
  const [pk] = await passkeysOf(user);
  assert.equal(pk.name, 'Passkey');
  assert.equal((await admin('GET', `${usersPath()}/${user.id}`)).body.has_password, false, 'still no password');
  const used = await events('link.used', user.id);
  assert.equal(used.length, 1);
  assert.equal(used[0].detail.with, 'passkey');
  assert.equal((await events('passkey.added', user.id))[0].detail.via, 'link');

  // The session from the link is a sign-in with the passkey's factors.
  const sso = await o.browser.get(authorizeUrl(fx, fx.web));
  assert.equal(sso.status, 302, pageText(sso.text).slice(0, 200));
  const viaSession = decodeJwt(assertTokenSuccess(await exchangeCode(fx, fx.web, parseRedirect(sso.location).params.code)).id_token).payload;
  assert.deepEqual(viaSession.amr, ['hwk', 'user', 'mfa']);

  // A fresh browser signs in with the passkey alone.
  const { res, id } = await signInWithPasskey(fx, auth, user);
  assert.equal(res.status, 303, pageText(res.text).slice(0, 300));
  assert.equal(id.sub, user.id);
  assert.equal(id.acr, 'phr');

  // The account page offers to set a password (no current one to give): the link's sign-in is
  // recent, so it is allowed; then the password signs in too.
  const again = await o.browser.get(`${fx.issuer}/account`);
  assert.match(pageText(again.text), /Set a password/);
  const setForm = parseForms(again.text, again.url).find((f) => f.action.endsWith('/account/password'));
  assert.ok(setForm, 'the set-password form');
  assert.equal(setForm.inputs.some((i) => i.name === 'current_password'), false, 'no current password asked');
  const password = `a chosen passphrase ${Math.random().toString(36).slice(2, 8)}`;
  const set = await o.browser.post(setForm.action, formFields(setForm, { new_password: password, confirm_password: password }));
  assert.equal(set.status, 200, pageText(set.text).slice(0, 300));
  assert.match(pageText(set.text), /Your password was set/);
  assert.match(pageText(set.text), /Change password/, 'from now on the form changes it');
  assert.ok(await passwordWorks(fx, user.username, password));

  // The link again, and the page's passkey form replayed with a new registration: used.
  assertRefused(await new Browser().get(link), 410, /already used/);
  assertRefused(await post(o, made(o, new Authenticator())), 410, /already used/);
  assert.equal((await passkeysOf(user)).length, 1, 'nothing more was stored');
});

test('race: 50 at once — 25 passkey forms and 25 password forms of one link: exactly one finishes it', async () => {
  const { user, link } = await invite();
  const o = await open(link);
  const pw = passwordForm(o);
  const sends = Array.from({ length: 50 }, (_, i) => (i % 2
    ? post(o, made(o, new Authenticator()))
    : o.browser.post(pw.action, formFields(pw, { new_password: `racing passphrase ${i}`, confirm_password: `racing passphrase ${i}` }))));
  const results = await Promise.all(sends);
  const won = results.filter((r) => r.status === 303);
  assert.equal(won.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
  for (const r of results.filter((x) => x.status !== 303)) assertRefused(r, 410, /already used/);
  const passkeys = await passkeysOf(user);
  const hasPassword = (await admin('GET', `${usersPath()}/${user.id}`)).body.has_password;
  assert.equal(passkeys.length + (hasPassword ? 1 : 0), 1, 'one winner: a passkey or a password, not both');
  assert.equal((await events('link.used', user.id)).length, 1);
});

test('race: the same registration posted 50 times at once stores one passkey', async () => {
  const { user, link } = await invite();
  const o = await open(link);
  const credential = made(o, new Authenticator());
  const results = await Promise.all(Array.from({ length: 50 }, () => post(o, credential)));
  assert.equal(results.filter((r) => r.status === 303).length, 1, results.map((r) => r.status).join(','));
  assert.equal((await passkeysOf(user)).length, 1);
});

test('a challenge shown for one link is refused at another link\'s address, and a form of another browser too', async () => {
  const a = await invite();
  const b = await invite();
  const oa = await open(a.link);
  const ob = await open(b.link);
  // A's form (state and challenge) posted to B's address.
  const swapped = await oa.browser.post(`${new URL(b.link).href}/passkey`, formFields(oa.form, { credential: made(oa, new Authenticator()) }));
  assert.equal(swapped.status, 400, pageText(swapped.text).slice(0, 200));
  // B's form with a registration made for A's challenge: the challenge does not match.
  const foreign = await post(ob, made(oa, new Authenticator()));
  assert.equal(foreign.status, 400, pageText(foreign.text).slice(0, 200));
  assert.match(pageText(foreign.text), /could not be registered/);
  assert.ok((await events('passkey.refused', b.user.id)).some((e) => e.detail.reason === 'wrong_challenge'));
  // Another browser (no CSRF cookie) posting A's form.
  const other = await post(oa, made(oa, new Authenticator()), new Browser());
  assert.equal(other.status, 403);
  // Neither link was used, and nobody got a passkey.
  for (const x of [a, b]) {
    assert.equal((await new Browser().get(x.link)).status, 200);
    assert.equal((await passkeysOf(x.user)).length, 0);
  }
});

test('a wrong origin or RP ID, or a malformed answer, is refused on the page and leaves the link usable', async () => {
  const { user, link } = await invite();
  const o = await open(link);
  const auth = new Authenticator();
  const wrongOrigin = await post(o, made(o, auth, { origin: 'https://evil.example' }));
  assert.equal(wrongOrigin.status, 400);
  assert.match(pageText(wrongOrigin.text), /could not be registered/);
  assert.ok(parseForms(wrongOrigin.text, wrongOrigin.url).some((f) => /id="passkey-add"/.test(f.html)), 'the form again');
  const wrongRp = await post(o, made(o, auth, { rpId: 'evil.example' }));
  assert.equal(wrongRp.status, 400);
  const garbage = await post(o, '{"rawId":"!!"}');
  assert.equal(garbage.status, 400);
  const reasons = (await events('passkey.refused', user.id)).map((e) => e.detail.reason);
  assert.ok(reasons.includes('wrong_origin'), reasons.join(','));
  assert.ok(reasons.includes('malformed'), reasons.join(','));
  assert.equal((await passkeysOf(user)).length, 0);
  // Still usable, with the page's own form.
  assert.equal((await post(o, made(o, auth))).status, 303);
});

test('a credential registered already is refused and the link stays unused; a disabled user\'s link is refused', async () => {
  const first = await invite();
  const auth = new Authenticator();
  const o1 = await open(first.link);
  assert.equal((await post(o1, made(o1, auth))).status, 303);
  const second = await invite();
  const o2 = await open(second.link);
  const dup = await post(o2, made(o2, auth));
  assert.equal(dup.status, 409, pageText(dup.text).slice(0, 200));
  assert.match(pageText(dup.text), /already registered/);
  assert.equal((await new Browser().get(second.link)).status, 200, 'the link was not used');
  assert.equal((await passkeysOf(second.user)).length, 0);

  // Disabled between the page and the post.
  const o3 = await open(second.link);
  assert.equal((await admin('PATCH', `${usersPath()}/${second.user.id}`, { disabled: true })).status, 200);
  assertRefused(await post(o3, made(o3, new Authenticator())), 403, /disabled/);
  assert.equal((await passkeysOf(second.user)).length, 0);
});

test('recovery of the password with a passkey: the old password stops working, old sessions end, the passkey signs in', async () => {
  const user = await createUser(fx);
  const old = new Browser();
  const login = await old.get(authorizeUrl(fx, fx.web));
  const res = await submitLogin(old, login, user.username, user.password);
  assert.ok([302, 303].includes(res.status));
  const recovery = await admin('POST', `${usersPath()}/${user.id}/recovery-link`, { reset: ['password'] });
  assert.equal(recovery.status, 200, JSON.stringify(recovery.body));
  const o = await open(recovery.body.link);
  assert.match(pageText(o.page.text), /Recover your account/);
  const auth = new Authenticator();
  assert.equal((await post(o, made(o, auth))).status, 303);
  assert.equal(await passwordWorks(fx, user.username, user.password), false, 'the old password is gone');
  assert.equal((await admin('GET', `${usersPath()}/${user.id}`)).body.has_password, false);
  // The browser signed in before the recovery is signed out.
  const after = await old.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(after), `the old session ended: ${after.status}`);
  assert.equal((await signInWithPasskey(fx, auth, user)).res.status, 303);

  // A later recovery link's page excludes the passkey the user has (WebAuthn excludeCredentials).
  const second = await admin('POST', `${usersPath()}/${user.id}/recovery-link`, { reset: ['password'] });
  const o2 = await open(second.body.link);
  assert.deepEqual(JSON.parse(data(o2.form, 'exclude')), [auth.credentialId.toString('base64url')]);
  const first = await open((await admin('POST', `${usersPath()}/${(await invite()).user.id}/setup-link`)).body.link);
  assert.deepEqual(JSON.parse(data(first.form, 'exclude')), [], 'a new user has none');
});

test('only links that reset the password offer a passkey, and only where the organization allows passkeys', async () => {
  // A link that resets only the second factor: no passkey form (it proves nothing that signs in).
  const user = await createUser(fx);
  const totpOnly = await admin('POST', `${usersPath()}/${user.id}/recovery-link`, { reset: ['second_factor'] });
  assert.equal(totpOnly.status, 200, JSON.stringify(totpOnly.body));
  const page = await new Browser().get(totpOnly.body.link);
  assert.equal(page.status, 200);
  assert.doesNotMatch(page.text, /passkey-add/);
  assert.doesNotMatch(page.text, /<script/);

  // Passkeys turned off after the page was shown: its form is refused, the link unused.
  const on = await createFixture('lpk-off');
  const { user: invited, link } = await invite(on);
  const o = await open(link);
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { passkeys: false })).status, 200);
  const off = await post(o, made(o, new Authenticator(), { on }));
  assert.equal(off.status, 403, pageText(off.text).slice(0, 200));
  const again = await new Browser().get(link);
  assert.equal(again.status, 200);
  assert.doesNotMatch(again.text, /passkey-add/, 'no passkey form any more');
  assert.equal((await passkeysOf(invited, on)).length, 0);
});

test('a passwordless organization: the link page offers only the passkey; mfa required is met by a verified passkey, and one without verification enrols', async () => {
  const on = await createFixture('lpk-pwless');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { password_signin: false, mfa: 'required' })).status, 200);
  const { user, link } = await invite(on);
  const o = await open(link);
  assert.equal(passwordForm(o), undefined, 'no password form');
  assert.match(pageText(o.page.text), /Sign in with a passkey/);
  const done = await post(o, made(o, new Authenticator(), { on, flags: UP | UV | BE }));
  assert.equal(done.status, 303, 'a verified passkey meets mfa: required — no enrolment');
  assert.equal(done.location, `/${on.slug}/account`);

  // Without user verification the passkey is one factor: the second factor is set up next.
  const { link: link2 } = await invite(on);
  const o2 = await open(link2);
  const presence = await post(o2, made(o2, new Authenticator(), { on, flags: UP }));
  assert.equal(presence.status, 200, pageText(presence.text).slice(0, 200));
  assert.match(pageText(presence.text), /authenticator app|two-step/i);
  assert.equal(presence.setCookies.some((c) => c.name === 'clavex_session' && c.value), false, 'no session before the second factor');
  assert.equal((await passkeysOf(user, on)).length, 1);
});

test('an organization turned passwordless takes no new password: a link\'s password form shown before is refused and the link stays usable; the account page and "forgot password" stop taking one', async () => {
  const on = await createFixture('lpk-turn');
  // Shown while passwords were allowed: links' password forms, the account page's "Set a
  // password" form of a passkey user (after a passkey finished their link), and the "Change
  // password" form of a password user.
  const { user: a, link: linkA } = await invite(on);
  const oA = await open(linkA);
  const pwA = passwordForm(oA);
  assert.ok(pwA, 'the password form while passwords are allowed');
  const { user: c, link: linkC } = await invite(on);
  const oC = await open(linkC);
  const pwC = passwordForm(oC);
  const { user: b, link: linkB } = await invite(on);
  const oB = await open(linkB);
  assert.equal((await post(oB, made(oB, new Authenticator(), { on }))).status, 303);
  const accountB = await oB.browser.get(`${on.issuer}/account`);
  assert.match(pageText(accountB.text), /Set a password/);
  const setB = parseForms(accountB.text, accountB.url).find((f) => f.action.endsWith('/account/password'));
  assert.ok(setB);
  const d = await createUser(on);
  const browserD = new Browser();
  const login = await browserD.get(authorizeUrl(on, on.web));
  assert.ok([302, 303].includes((await submitLogin(browserD, login, d.username, d.password)).status));
  const accountD = await browserD.get(`${on.issuer}/account`);
  const changeD = parseForms(accountD.text, accountD.url).find((f) => f.action.endsWith('/account/password'));
  assert.ok(changeD, 'the change-password form while passwords are allowed');

  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { password_signin: false })).status, 200);
  const password = `a chosen passphrase ${Math.random().toString(36).slice(2, 8)}`;

  // The link's old password form: refused on the page, nothing stored, the link not used.
  const refused = await oA.browser.post(pwA.action, formFields(pwA, { new_password: password, confirm_password: password }));
  assert.equal(refused.status, 400, pageText(refused.text).slice(0, 300));
  assert.match(pageText(refused.text), /does not use passwords: register a passkey/);
  assert.equal(passwordForm({ page: refused }), undefined, 'the page it shows has no password form');
  assert.equal((await admin('GET', `${usersPath(on)}/${a.id}`)).body.has_password, false);
  assert.equal((await events('link.used', a.id, on)).length, 0);
  assert.equal(refused.setCookies.some((c) => c.name === 'clavex_session' && c.value), false, 'not signed in');
  const again = await open(linkA);
  assert.equal((await post(again, made(again, new Authenticator(), { on }))).status, 303, 'the passkey still finishes the link');

  // The account page: no password section, for a passkey user or a password user, and the
  // forms shown before refused.
  for (const [browser, form, user, had] of [[oB.browser, setB, b, false], [browserD, changeD, d, true]]) {
    const now = await browser.get(`${on.issuer}/account`);
    assert.equal(now.status, 200);
    assert.doesNotMatch(pageText(now.text), /Set a password|Change password/);
    assert.equal(parseForms(now.text, now.url).some((f) => f.action.endsWith('/account/password')), false);
    const fields = had ? { current_password: d.password } : {};
    const set = await browser.post(form.action, formFields(form, { ...fields, new_password: password, confirm_password: password }));
    assert.equal(set.status, 403, pageText(set.text).slice(0, 300));
    assert.match(pageText(set.text), /does not use passwords/);
    assert.equal((await admin('GET', `${usersPath(on)}/${user.id}`)).body.has_password, had, 'nothing changed');
  }
  assert.equal((await events('password.changed', d.id, on)).length, 0);

  // "Forgot password?" answers that there are no passwords here, before anything is sent.
  const forgot = await new Browser().get(`${on.issuer}/forgot-password`);
  assert.equal(forgot.status, 403, pageText(forgot.text).slice(0, 200));
  assert.match(pageText(forgot.text), /does not use passwords/);

  // Passkeys off as well (upstream sign-in only): still no password through a link.
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { passkeys: false })).status, 200);
  const none = await oC.browser.post(pwC.action, formFields(pwC, { new_password: password, confirm_password: password }));
  assert.equal(none.status, 400, pageText(none.text).slice(0, 300));
  assert.match(pageText(none.text), /does not use passwords: sign in with one of the other ways/);
  assert.equal(parseForms(none.text, none.url).length, 0, 'no form to post');
  assert.equal((await admin('GET', `${usersPath(on)}/${c.id}`)).body.has_password, false);
});
