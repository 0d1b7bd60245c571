// Passkeys (issue 16 item 1) through the real Worker, with assertions crafted in Node
// (tests/support/webauthn.mjs): registration on the account page, usernameless sign-in at a
// relying party ending in a code whose ID token says amr/acr, and every refusal — a replayed
// challenge, a challenge from another browser or organization, a wrong origin or RP ID, no user
// presence, a deleted passkey, a disabled user — plus the counter regression event, 50 concurrent
// finishes of one challenge (exactly one code), a UV passkey meeting `mfa: required` at redemption,
// and the admin API's list and delete.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createUser, authorizeUrl, parseForms, formFields, pageText,
  exchangeCode, assertTokenSuccess, parseRedirect, loginAndExchange, decodeJwt, decodeEntities, sleep,
} from './support/oidc.mjs';
import { Authenticator, UP, UV, BE, ICLOUD } from './support/webauthn.mjs';

let fx;
before(async () => { fx = await createFixture('pk'); });

const data = (form, name) => {
  const m = form.html.match(new RegExp(`data-${name}="([^"]*)"`));
  assert.ok(m, `data-${name} on the form`);
  return decodeEntities(m[1]);
};
const origin = (on) => new URL(on.issuer).origin;

/** Sign `user` in with the password, then register `auth` on the account page. */
async function register(on, user, auth, { flags } = {}) {
  const browser = new Browser();
  await loginAndExchange(on, on.web, { browser, user });
  const page = await browser.get(`${on.issuer}/account`);
  assert.equal(page.status, 200);
  const form = parseForms(page.text, page.url).find((f) => /id="passkey-add"/.test(f.html));
  assert.ok(form, 'the account page offers "Add a passkey"');
  assert.match(page.headers.get('content-security-policy'), /script-src 'sha256-/);
  assert.match(page.text, /<script>\(function \(\) \{[\s\S]*<\/script>\s*<\/main>/, 'the script is in the page body');
  const credential = auth.create({ challenge: data(form, 'challenge'), origin: origin(on), rpId: data(form, 'rp-id'), flags });
  const res = await browser.post(form.action, formFields(form, { credential }));
  return { browser, form, credential, res };
}

/** The login page's passkey form for a new authorization request in `browser`. */
async function offer(on, browser = new Browser(), params = {}) {
  const page = await browser.get(authorizeUrl(on, on.web, params));
  assert.equal(page.status, 200);
  const form = parseForms(page.text, page.url).find((f) => /id="passkey-signin"/.test(f.html));
  assert.ok(form, 'the login page has the passkey form');
  return { browser, form, challenge: data(form, 'challenge'), rpId: data(form, 'rp-id') };
}

const answer = (o, auth, user, extra = {}) => auth.get({ challenge: o.challenge, origin: origin(fx), rpId: o.rpId, userHandle: user.id, ...extra });
const post = (o, credential, browser = o.browser) => browser.post(o.form.action, formFields(o.form, { credential }));

async function events(on, type, count = 1) {
  for (let i = 0; i < 50; i++) {
    const res = await admin('GET', `/organizations/${on.slug}/events?type=${type}`);
    if (res.body.events.length >= count) return res.body.events;
    await sleep(100);
  }
  assert.fail(`fewer than ${count} ${type} events`);
}

test('register on the account page, then sign in usernameless: a code whose ID token says swk/user/mfa and acr phr', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator({ aaguid: ICLOUD });
  const { res } = await register(fx, user, auth, { flags: UP | UV | BE });
  assert.equal(res.status, 200, pageText(res.text).slice(0, 400));
  assert.match(pageText(res.text), /Passkey added: iCloud Keychain/);
  const listed = await admin('GET', `/organizations/${fx.slug}/users/${user.id}/passkeys`);
  assert.equal(listed.status, 200);
  assert.equal(listed.body.passkeys.length, 1);
  const pk = listed.body.passkeys[0];
  assert.equal(pk.name, 'iCloud Keychain');
  assert.equal(pk.backup_eligible, true);
  assert.equal(pk.last_used_at, null);
  for (const secret of ['public_key', 'credential_id', 'sign_count']) assert.equal(pk[secret], undefined, secret);

  const o = await offer(fx);
  assert.match(o.form.html, /Sign in with a passkey/);
  const signed = await post(o, answer(o, auth, user));
  assert.equal(signed.status, 303, pageText(signed.text).slice(0, 400));
  const { params } = parseRedirect(signed.location);
  assert.ok(params.code);
  const tokens = assertTokenSuccess(await exchangeCode(fx, fx.web, params.code));
  const id = decodeJwt(tokens.id_token).payload;
  assert.equal(id.sub, user.id);
  assert.deepEqual(id.amr, ['swk', 'user', 'mfa']);
  assert.equal(id.acr, 'phr');
  assert.ok(fx.discovery.acr_values_supported.includes('phr'));
  const after = await admin('GET', `/organizations/${fx.slug}/users/${user.id}/passkeys`);
  assert.equal(typeof after.body.passkeys[0].last_used_at, 'number');
});

test('a device-bound passkey without user verification is hwk only, acr pwd; it does not meet mfa: required', async () => {
  const on = await createFixture('pkmfa');
  const user = await createUser(on);
  const auth = new Authenticator();
  assert.equal((await register(on, user, auth, { flags: UP })).res.status, 200);
  // Presence only: one factor.
  let o = await offer(on);
  let r = await post(o, auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id, flags: UP }));
  assert.equal(r.status, 303);
  let id = decodeJwt(assertTokenSuccess(await exchangeCode(on, on.web, parseRedirect(r.location).params.code)).id_token).payload;
  assert.deepEqual(id.amr, ['hwk']);
  assert.equal(id.acr, 'urn:clavex:acr:pwd');
  // mfa: required — presence only must enrol a second factor; a verified passkey is enough, and
  // its code redeems (the primary re-checks the policy at redemption).
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  o = await offer(on);
  r = await post(o, auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id, flags: UP }));
  assert.equal(r.status, 200);
  assert.match(pageText(r.text), /authenticator app|two-step/i, 'asked to set up a second factor');
  o = await offer(on);
  r = await post(o, auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id, flags: UP | UV }));
  assert.equal(r.status, 303, pageText(r.text).slice(0, 300));
  id = decodeJwt(assertTokenSuccess(await exchangeCode(on, on.web, parseRedirect(r.location).params.code)).id_token).payload;
  assert.deepEqual(id.amr, ['hwk', 'user', 'mfa']);
});

test('a challenge is used once: the same answer replayed, and 50 concurrent finishes give exactly one code', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator();
  assert.equal((await register(fx, user, auth)).res.status, 200);
  const o = await offer(fx);
  const credential = answer(o, auth, user);
  const first = await post(o, credential);
  assert.equal(first.status, 303);
  const again = await post(o, credential);
  assert.equal(again.status, 401, 'the same answer again');
  assert.match(pageText(again.text), /could not sign you in/);
  assert.equal(again.location, null);
  // 50 at once, each with its own fresh signature over the one challenge.
  const race = await offer(fx);
  const answers = Array.from({ length: 50 }, () => answer(race, auth, user));
  const results = await Promise.all(answers.map((c) => post(race, c)));
  const codes = results.filter((r) => r.status === 303);
  assert.equal(codes.length, 1, JSON.stringify(results.map((r) => r.status)));
  assert.ok(results.every((r) => r.status === 303 || r.status === 401));
  const used = await events(fx, 'passkey.refused', 50);
  assert.ok(used.some((e) => e.detail.reason === 'challenge_used'));
});

test('a challenge from another browser or another organization is refused', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator();
  assert.equal((await register(fx, user, auth)).res.status, 200);
  const o = await offer(fx);
  const stranger = new Browser();
  await stranger.get(authorizeUrl(fx, fx.web)); // its own CSRF cookie
  const r = await post(o, answer(o, auth, user), stranger);
  assert.equal(r.status, 403, 'bound to the browser that was shown it');
  // The state of org fx posted to another organization's endpoint.
  const other = await createFixture('pkother');
  const there = await o.browser.post(o.form.action.replace(`/${fx.slug}/`, `/${other.slug}/`), formFields(o.form, { credential: answer(o, auth, user) }));
  assert.ok([400, 403].includes(there.status), `${there.status}`);
  assert.equal(there.location, null);
  // Still usable where it belongs: the refusals claimed nothing.
  assert.equal((await post(o, answer(o, auth, user))).status, 303);
});

test('wrong origin, wrong RP ID, no user presence, wrong type: refused with the reason in the audit trail', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator();
  assert.equal((await register(fx, user, auth)).res.status, 200);
  const cases = [
    ['wrong_origin', (o) => auth.get({ challenge: o.challenge, origin: 'https://evil.example.test', rpId: o.rpId, userHandle: user.id })],
    ['wrong_rp_id', (o) => auth.get({ challenge: o.challenge, origin: origin(fx), rpId: 'evil.example.test', userHandle: user.id })],
    ['user_not_present', (o) => auth.get({ challenge: o.challenge, origin: origin(fx), rpId: o.rpId, userHandle: user.id, flags: UV })],
    ['wrong_type', (o) => auth.get({ challenge: o.challenge, origin: origin(fx), rpId: o.rpId, userHandle: user.id, type: 'webauthn.create' })],
    ['wrong_challenge', (o) => auth.get({ challenge: 'AAAA', origin: origin(fx), rpId: o.rpId, userHandle: user.id })],
  ];
  for (const [reason, make] of cases) {
    const o = await offer(fx);
    const r = await post(o, make(o));
    assert.equal(r.status, 401, reason);
    assert.equal(r.location, null, reason);
  }
  const refused = await events(fx, 'passkey.refused', cases.length);
  for (const [reason] of cases) {
    assert.ok(refused.some((e) => e.user_id === user.id && e.detail.reason === reason), reason);
  }
  // Another user's handle with this credential.
  const other = await createUser(fx);
  const o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, other))).status, 401, 'the credential is not the named user\'s');
});

test('a deleted passkey and a disabled user cannot sign in; the admin API lists and deletes', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator();
  assert.equal((await register(fx, user, auth)).res.status, 200);
  await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { disabled: true });
  let o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, user))).status, 401, 'disabled');
  await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { disabled: false });
  o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, user))).status, 303, 'enabled again');
  const list = await admin('GET', `/organizations/${fx.slug}/users/${user.id}/passkeys`);
  const pid = list.body.passkeys[0].id;
  const del = await admin('DELETE', `/organizations/${fx.slug}/users/${user.id}/passkeys/${pid}`);
  assert.equal(del.status, 204);
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/${user.id}/passkeys/${pid}`)).status, 204, 'idempotent');
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/nobody/passkeys/${pid}`)).status, 404, 'unknown user');
  assert.equal((await admin('GET', `/organizations/${fx.slug}/users/${user.id}/passkeys`)).body.passkeys.length, 0);
  o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, user))).status, 401, 'deleted');
  assert.equal((await admin('GET', `/organizations/${fx.slug}/users/nobody/passkeys`)).status, 404);
  const removed = await events(fx, 'passkey.removed');
  assert.ok(removed.some((e) => e.detail.passkey === pid && e.detail.by === 'admin'));
});

test('a signature counter that goes back is reported as passkey.counter_regressed (and the sign-in is not refused)', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator();
  assert.equal((await register(fx, user, auth)).res.status, 200);
  let o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, user, { count: 10 }))).status, 303);
  o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, user, { count: 5 }))).status, 303);
  const reported = await events(fx, 'passkey.counter_regressed');
  const mine = reported.find((e) => e.user_id === user.id);
  assert.ok(mine);
  assert.equal(mine.detail.stored, 10);
  assert.equal(mine.detail.received, 5);
});

test('registration: 50 concurrent posts of one add form store exactly one passkey', async () => {
  const user = await createUser(fx);
  const browser = new Browser();
  await loginAndExchange(fx, fx.web, { browser, user });
  const page = await browser.get(`${fx.issuer}/account`);
  const form = parseForms(page.text, page.url).find((f) => /id="passkey-add"/.test(f.html));
  // Fifty different authenticators answering the one challenge: one claim wins.
  const answers = Array.from({ length: 50 }, () => new Authenticator().create({ challenge: data(form, 'challenge'), origin: origin(fx), rpId: data(form, 'rp-id') }));
  const results = await Promise.all(answers.map((credential) => browser.post(form.action, formFields(form, { credential }))));
  const tally = {};
  for (const r of results) tally[r.status] = (tally[r.status] ?? 0) + 1;
  assert.deepEqual(tally, { 200: 1, 409: 49 });
  const listed = await admin('GET', `/organizations/${fx.slug}/users/${user.id}/passkeys`);
  assert.equal(listed.body.passkeys.length, 1);
});

test('registration: the add form is used once, a credential registers once, and rename/remove work', async () => {
  const user = await createUser(fx);
  const auth = new Authenticator();
  const { browser, form, credential, res } = await register(fx, user, auth);
  assert.equal(res.status, 200);
  const again = await browser.post(form.action, formFields(form, { credential }));
  assert.equal(again.status, 409, 'the same form again');
  // A new page excludes the credential, and registering it again is refused.
  const page = await browser.get(`${fx.issuer}/account`);
  const add = parseForms(page.text, page.url).find((f) => /id="passkey-add"/.test(f.html));
  assert.deepEqual(JSON.parse(data(add, 'exclude')), [auth.credentialId.toString('base64url')]);
  const dup = await browser.post(add.action, formFields(add, { credential: auth.create({ challenge: data(add, 'challenge'), origin: origin(fx), rpId: data(add, 'rp-id') }) }));
  assert.equal(dup.status, 409);
  // Rename, then remove, by the forms.
  const forms = parseForms(dup.text, page.url);
  const rename = forms.find((f) => f.action.endsWith('/account/passkeys/rename'));
  const renamed = await browser.post(rename.action, formFields(rename, { name: 'Work laptop' }));
  assert.equal(renamed.status, 200);
  assert.match(renamed.text, /value="Work laptop"/);
  const remove = parseForms(renamed.text, page.url).find((f) => f.action.endsWith('/account/passkeys/remove'));
  // Another user's session cannot post this user's form.
  const other = new Browser();
  await loginAndExchange(fx, fx.web, { browser: other, user: fx.alice });
  assert.equal((await other.post(remove.action, formFields(remove))).status, 403);
  const removed = await browser.post(remove.action, formFields(remove));
  assert.equal(removed.status, 200);
  assert.match(pageText(removed.text), /You have no passkeys yet/);
  const o = await offer(fx);
  assert.equal((await post(o, answer(o, auth, user))).status, 401, 'removed passkey');
});

test('organization settings: passkeys off hides the button and refuses the POST; password sign-in off makes it passwordless', async () => {
  const on = await createFixture('pkset');
  const user = await createUser(on);
  const auth = new Authenticator();
  assert.equal((await register(on, user, auth)).res.status, 200);
  const o = await offer(on);
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { passkeys: false })).body.passkeys, false);
  const page = await new Browser().get(authorizeUrl(on, on.web));
  assert.doesNotMatch(page.text, /passkey-signin/);
  assert.doesNotMatch(page.text, /<script>/);
  assert.equal((await post(o, auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id }))).status, 403);
  await admin('PATCH', `/organizations/${on.slug}`, { passkeys: true, password_signin: false });
  const passwordless = await offer(on);
  assert.doesNotMatch(passwordless.form.html, /class="secondary"/);
  const login = await passwordless.browser.get(authorizeUrl(on, on.web));
  assert.ok(!parseForms(login.text, login.url).some((f) => f.inputs.some((i) => i.name === 'password')), 'no password form');
  assert.doesNotMatch(pageText(login.text), /No way of signing in/);
  const r = await post(passwordless, auth.get({ challenge: passwordless.challenge, origin: origin(on), rpId: passwordless.rpId, userHandle: user.id }));
  assert.equal(r.status, 303);
});

// ---- A passkey as the second factor (after a password, where one is required) ----

/** An organization requiring a second factor and a user with a password and a registered
 * passkey (registered while the organization did not require one yet). */
async function passkeyUserUnderRequired({ flags = UP } = {}) {
  const on = await createFixture('pk2f');
  const user = await createUser(on);
  const auth = new Authenticator();
  assert.equal((await register(on, user, auth, { flags })).res.status, 200);
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  return { on, user, auth };
}

/** The password typed at a new authorization request: the second-factor page. */
async function secondFactorPage(on, user, browser = new Browser()) {
  const login = await browser.get(authorizeUrl(on, on.web));
  const { submitLogin } = await import('./support/oidc.mjs');
  const page = await submitLogin(browser, login, user.username, user.password);
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  assert.match(pageText(page.text), /Two-step verification/);
  const form = parseForms(page.text, page.url).find((f) => /id="passkey-signin"/.test(f.html));
  return { browser, page, form, challenge: form && data(form, 'challenge'), rpId: form && data(form, 'rp-id') };
}

/** Sign `user` in where a second factor is required: the password, then the enrolment of an
 * authenticator app (its first code), then on. The browser, signed in with both. */
async function enrolledAtSignIn(on, user) {
  const { base32Decode, totp } = await import('./support/totp.mjs');
  const { submitLogin } = await import('./support/oidc.mjs');
  const browser = new Browser();
  let res = await submitLogin(browser, await browser.get(authorizeUrl(on, on.web)), user.username, user.password);
  const secret = base32Decode(res.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  res = await browser.post(parseForms(res.text, res.url)[0].action, formFields(parseForms(res.text, res.url)[0], { code: totp(secret) }));
  res = await browser.post(parseForms(res.text, res.url)[0].action, formFields(parseForms(res.text, res.url)[0]));
  assert.equal(res.status, 303, pageText(res.text).slice(0, 200));
  return browser;
}

/** Add a passkey made by `auth` on the account page in `browser`; the page it answers. */
async function addOnAccountPage(on, browser, auth, flags = UP | UV) {
  const account = await browser.get(`${on.issuer}/account`);
  const add = parseForms(account.text, account.url).find((f) => /id="passkey-add"/.test(f.html));
  const added = await browser.post(add.action, formFields(add, {
    credential: auth.create({ challenge: data(add, 'challenge'), origin: origin(on), rpId: data(add, 'rp-id'), flags }),
  }));
  assert.equal(added.status, 200, pageText(added.text).slice(0, 200));
  return added;
}

test('second factor: with mfa required, a passkey user is asked for the passkey after the password (not to enrol TOTP), and a presence-only passkey completes it', async () => {
  const { on, user, auth } = await passkeyUserUnderRequired();
  const o = await secondFactorPage(on, user);
  assert.ok(o.form, 'the page offers "Use a passkey"');
  assert.equal(new URL(o.form.action).pathname, `/${on.slug}/mfa/passkey`);
  assert.doesNotMatch(o.page.text, /name="code"/, 'no code form: the user has no authenticator app');
  assert.doesNotMatch(pageText(o.page.text), /Set up two-step verification/);
  const res = await post(o, auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id, flags: UP }));
  assert.equal(res.status, 303, pageText(res.text).slice(0, 300));
  const id = decodeJwt(assertTokenSuccess(await exchangeCode(on, on.web, parseRedirect(res.location).params.code)).id_token).payload;
  assert.deepEqual(id.amr, ['pwd', 'hwk', 'mfa'], 'password and something you have');
  assert.equal(id.acr, 'urn:clavex:acr:mfa');
  const passed = await events(on, 'signin.second_factor_passed');
  assert.ok(passed.some((e) => e.user_id === user.id && e.detail.factor === 'passkey'), JSON.stringify(passed));
});

test('second factor: the passkey answer replayed, 50 at once, another user\'s passkey, a wrong origin — none gets a second code', async () => {
  const { on, user, auth } = await passkeyUserUnderRequired();
  const other = await createUser(on);
  const otherAuth = new Authenticator();
  // The other user registers too (mfa required now: a verified passkey signs in and the account page is reachable).
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'off' })).status, 200);
  assert.equal((await register(on, other, otherAuth)).res.status, 200);
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);

  const o = await secondFactorPage(on, user);
  const answer1 = auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id, flags: UP });
  // Another user's passkey, answering this page's challenge: refused, the page again.
  const foreign = await post(o, otherAuth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: other.id }));
  assert.equal(foreign.status, 401, pageText(foreign.text).slice(0, 300));
  assert.match(pageText(foreign.text), /could not confirm it is you/);
  // Wrong origin.
  const phished = await post(o, auth.get({ challenge: o.challenge, origin: 'https://evil.example', rpId: o.rpId, userHandle: user.id, flags: UP }));
  assert.equal(phished.status, 401);
  const first = await post(o, answer1);
  assert.equal(first.status, 303, pageText(first.text).slice(0, 300));
  const again = await post(o, answer1);
  assert.equal(again.status, 401, 'the same answer again');
  assert.equal(again.location, null);
  const reasons = (await events(on, 'passkey.refused', 3)).map((e) => e.detail.reason);
  for (const r of ['another_user', 'wrong_origin', 'challenge_used']) assert.ok(reasons.includes(r), `${r} in ${reasons}`);

  const race = await secondFactorPage(on, user);
  const answers = Array.from({ length: 50 }, () => auth.get({ challenge: race.challenge, origin: origin(on), rpId: race.rpId, userHandle: user.id, flags: UP }));
  const results = await Promise.all(answers.map((c) => post(race, c)));
  assert.equal(results.filter((r) => r.status === 303).length, 1, results.map((r) => r.status).join(','));
  assert.ok(results.every((r) => r.status === 303 || r.status === 401));
});

test('second factor: the passkey form of one sign-in is refused at the passkey sign-in and in another browser; a passkey sign-in is not offered the passkey again', async () => {
  const { on, user, auth } = await passkeyUserUnderRequired();
  const o = await secondFactorPage(on, user);
  const credential = auth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id, flags: UP });
  // The same state at the first-factor endpoint: another step.
  const elsewhere = await o.browser.post(`${on.issuer}/passkeys/sign-in`, formFields(o.form, { credential }));
  assert.equal(elsewhere.status, 400, pageText(elsewhere.text).slice(0, 200));
  // Another browser (no CSRF cookie).
  const stolen = await new Browser().post(o.form.action, formFields(o.form, { credential }));
  assert.equal(stolen.status, 403);
  // Still usable by its own browser.
  assert.equal((await post(o, credential)).status, 303);
  // A presence-only passkey as the FIRST factor, under mfa required: not the same proof twice —
  // the user (no TOTP) must enrol, and is not offered the passkey again.
  const s = await offer(on);
  const first = await post(s, auth.get({ challenge: s.challenge, origin: origin(on), rpId: s.rpId, userHandle: user.id, flags: UP }));
  assert.equal(first.status, 200, pageText(first.text).slice(0, 300));
  assert.doesNotMatch(first.text, /mfa\/passkey/);
});

test('second factor: where it is optional, a passkey user signs in with the password alone; a user with TOTP too is offered both', async () => {
  const on = await createFixture('pk2fopt');
  const user = await createUser(on);
  const auth = new Authenticator();
  assert.equal((await register(on, user, auth, { flags: UP })).res.status, 200);
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'optional' })).status, 200);
  const plain = await loginAndExchange(on, on.web, { user });
  assert.deepEqual(decodeJwt(plain.tokens.id_token).payload.amr, ['pwd'], 'the password alone');

  // Required: a second user enrols TOTP at sign-in, then adds a passkey on the account page.
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  const both = await createUser(on);
  const browser = await enrolledAtSignIn(on, both);
  const bothAuth = new Authenticator();
  await addOnAccountPage(on, browser, bothAuth, UP);
  const o = await secondFactorPage(on, both);
  assert.ok(o.form, 'the passkey form');
  assert.match(o.page.text, /name="code"/, 'and the code form');
  const done = await post(o, bothAuth.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: both.id, flags: UP }));
  assert.equal(done.status, 303, pageText(done.text).slice(0, 200));
});

test('a passwordless organization keeps a user\'s last passkey: both removed at once (50 posts) leave one, and the last is refused', async () => {
  const on = await createFixture('pklast');
  const user = await createUser(on);
  const first = new Authenticator();
  const second = new Authenticator();
  assert.equal((await register(on, user, first)).res.status, 200);
  assert.equal((await register(on, user, second)).res.status, 200);
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { password_signin: false })).status, 200);

  // Signed in with a passkey; the account page's two remove forms posted at once.
  const o = await offer(on);
  const signed = await post(o, first.get({ challenge: o.challenge, origin: origin(on), rpId: o.rpId, userHandle: user.id }));
  assert.equal(signed.status, 303, pageText(signed.text).slice(0, 300));
  const page = await o.browser.get(`${on.issuer}/account`);
  const removes = parseForms(page.text, page.url).filter((f) => f.action.endsWith('/account/passkeys/remove'));
  assert.equal(removes.length, 2);
  // 25 posts of each form at once: one removal wins; the other passkey's posts are refused as
  // the last one (409), the winner's own repeats find it gone (404).
  const posts = removes.flatMap((f) => Array.from({ length: 25 }, () => f));
  const results = await Promise.all(posts.map((f) => o.browser.post(f.action, formFields(f))));
  const tally = {};
  for (const r of results) tally[r.status] = (tally[r.status] ?? 0) + 1;
  assert.deepEqual(tally, { 200: 1, 404: 24, 409: 25 });
  const refused = results.find((r) => r.status === 409);
  assert.match(pageText(refused.text), /your only passkey/);
  const left = await admin('GET', `/organizations/${on.slug}/users/${user.id}/passkeys`);
  assert.equal(left.body.passkeys.length, 1);

  // The last one again, by its form on a fresh page: refused, still there, still signs in.
  const now = await o.browser.get(`${on.issuer}/account`);
  const last = parseForms(now.text, now.url).find((f) => f.action.endsWith('/account/passkeys/remove'));
  assert.equal((await o.browser.post(last.action, formFields(last))).status, 409);
  assert.equal((await admin('GET', `/organizations/${on.slug}/users/${user.id}/passkeys`)).body.passkeys.length, 1);
  const outcomes = [];
  for (const a of [first, second]) {
    const x = await offer(on);
    outcomes.push((await post(x, a.get({ challenge: x.challenge, origin: origin(on), rpId: x.rpId, userHandle: user.id }))).status);
  }
  assert.deepEqual(outcomes.sort(), [303, 401], 'the passkey left signs in, the removed one does not');

  // With password sign-in on again, the last passkey may go.
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { password_signin: true })).status, 200);
  const after = await o.browser.get(`${on.issuer}/account`);
  const lastAgain = parseForms(after.text, after.url).find((f) => f.action.endsWith('/account/passkeys/remove'));
  assert.equal((await o.browser.post(lastAgain.action, formFields(lastAgain))).status, 200);
});

test('where a second factor is required, TOTP and the only passkey stand in for each other: either may go while the other stays, both at once leave one', async () => {
  const on = await createFixture('pkfactor');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);

  /** A user who enrolled TOTP at sign-in and then added a passkey on the account page. */
  async function bothFactors() {
    const user = await createUser(on);
    const browser = await enrolledAtSignIn(on, user);
    const auth = new Authenticator();
    return { user, browser, auth, page: await addOnAccountPage(on, browser, auth) };
  }
  const formOf = (page, suffix) => parseForms(page.text, page.url).find((f) => f.action.endsWith(suffix));
  const state = async (user) => {
    const shown = (await admin('GET', `/organizations/${on.slug}/users/${user.id}`)).body;
    const keys = (await admin('GET', `/organizations/${on.slug}/users/${user.id}/passkeys`)).body.passkeys;
    return { totp: shown.totp_enrolled, passkeys: keys.length };
  };

  // TOTP goes while the passkey stays; then the passkey, now the only second factor, stays.
  const a = await bothFactors();
  const removeTotp = formOf(a.page, '/account/mfa/remove');
  assert.ok(removeTotp, 'with a passkey, the page offers to turn TOTP off');
  const off = await a.browser.post(removeTotp.action, formFields(removeTotp, { password: a.user.password }));
  assert.equal(off.status, 200, pageText(off.text).slice(0, 300));
  assert.match(pageText(off.text), /Two-step verification is off/);
  const keep = await a.browser.post(formOf(off, '/account/passkeys/remove').action, formFields(formOf(off, '/account/passkeys/remove')));
  assert.equal(keep.status, 409, pageText(keep.text).slice(0, 300));
  assert.match(pageText(keep.text), /this passkey is your only second factor/);
  assert.deepEqual(await state(a.user), { totp: false, passkeys: 1 });
  // The next sign-in asks for the passkey after the password, not to enrol an app.
  const next = await secondFactorPage(on, a.user);
  assert.ok(next.form, 'the passkey is the second factor');

  // Both removals posted at once: exactly one goes, whichever D1 runs first.
  const b = await bothFactors();
  const results = await Promise.all([
    b.browser.post(formOf(b.page, '/account/mfa/remove').action, formFields(formOf(b.page, '/account/mfa/remove'), { password: b.user.password })),
    b.browser.post(formOf(b.page, '/account/passkeys/remove').action, formFields(formOf(b.page, '/account/passkeys/remove'))),
  ]);
  // The one refused is 409 when its statement found the other factor gone, or 403 when the TOTP
  // removal's check before the password already found no passkey.
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses[0], 200, results.map((r) => pageText(r.text).slice(0, 120)).join(' | '));
  assert.ok([403, 409].includes(statuses[1]), `the other refused: ${statuses}`);
  const left = await state(b.user);
  assert.equal(Number(left.totp) + left.passkeys, 1, `one second factor left: ${JSON.stringify(left)}`);

  // Without a passkey, turning TOTP off stays refused before the password is asked.
  const plain = await createUser(on);
  const browser = await enrolledAtSignIn(on, plain);
  const page = await browser.get(`${on.issuer}/account`);
  assert.equal(formOf(page, '/account/mfa/remove'), undefined);
  assert.match(pageText(page.text), /cannot be turned off here while it is your only second factor: add a passkey first/);
});
