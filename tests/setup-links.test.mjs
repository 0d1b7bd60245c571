// One-time links (issue 16, item 3) through the real Worker: a user created without a password
// gets an invitation link; its page says whose account it is, a GET never uses it, and its form
// sets the password once — then the browser is signed in and the user signs in at a relying
// party. Used twice, at once (50 concurrent POSTs: exactly one sets the password), after expiry,
// after a newer link, under another organization, for a disabled user: refused with a page that
// says which and to ask the administrator. Recovery links reset the password and/or the second
// factor. This Worker has no e-mail binding: the admin API returns the links and the login page
// tells users to ask their administrator (tests/forgot-password.test.mjs has the e-mail).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createUser, authorizeUrl, isLoginPage, submitLogin, parseForms,
  formFields, pageText, parseRedirect, loginAndExchange, assertTokenSuccess, exchangeCode, unique,
  sleep,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

let fx;
before(async () => {
  fx = await createFixture('links');
});

const usersPath = (on = fx) => `/organizations/${on.slug}/users`;
const strong = () => `a new passphrase ${Math.random().toString(36).slice(2, 10)}`;

/** A user created without a password; its setup link from the 201. */
async function invite(on = fx, extra = {}) {
  const username = `inv${Math.random().toString(36).slice(2, 9)}`;
  const res = await admin('POST', usersPath(on), { username, email: `${username}@example.test`, ...extra });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { user: res.body, link: res.body.setup_link };
}

function linkForm(page) {
  const form = parseForms(page.text, page.url).find((f) => new URL(f.action).pathname.includes('/setup/'));
  assert.ok(form, `the link's form: ${page.status} ${pageText(page.text).slice(0, 300)}`);
  return form;
}

/** Post the link page's form with a new password (and its confirmation). */
function choose(browser, page, password, confirm = password) {
  const form = linkForm(page);
  return browser.post(form.action, formFields(form, { new_password: password, confirm_password: confirm }));
}

/** Open `link` in a fresh browser (or `browser`); asserts the form is shown. */
async function open(link, browser = new Browser()) {
  const page = await browser.get(link);
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  return { browser, page };
}

/** Whether `password` signs `username` in at the relying party (a code at the end). */
async function passwordWorks(username, password, on = fx) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  assert.ok(isLoginPage(page));
  const res = await submitLogin(browser, page, username, password);
  if (res.status === 401) return false;
  assert.ok([302, 303].includes(res.status), `${res.status} ${pageText(res.text).slice(0, 200)}`);
  return Boolean(parseRedirect(res.location).params.code);
}

function assertRefused(res, status, words) {
  assert.equal(res.status, status, pageText(res.text).slice(0, 300));
  const text = pageText(res.text);
  assert.match(text, words);
  assert.match(text, /ask your administrator for a new link/i);
  assert.equal(parseForms(res.text, res.url).length, 0, 'no form on a refusal');
}

async function events(type, userId, on = fx) {
  const res = await admin('GET', `/organizations/${on.slug}/events?type=${type}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.events.filter((e) => e.user_id === userId);
}

test('invitation: the link names the account, a GET does not use it, the POST sets the password and signs in; then a relying party gets tokens', async () => {
  const { user, link } = await invite();
  assert.match(link, new RegExp(`^${fx.issuer}/setup/[A-Za-z0-9_-]{43}$`));
  assert.equal(user.has_password, false);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(user.setup_link_expires_at - (now + 72 * 3600)) < 120, 'valid 72 hours by default');
  assert.equal(user.setup_link_emailed, undefined, 'not asked to e-mail');
  // Shown once: reading the user again never shows the link.
  const read = await admin('GET', `${usersPath()}/${user.id}`);
  assert.equal(read.body.setup_link, undefined);
  assert.ok(!JSON.stringify(read.body).includes(link.split('/').pop()));

  // Mail scanners open links: a GET (twice) changes nothing.
  const scanner = await new Browser().get(link);
  assert.equal(scanner.status, 200);
  const { browser, page } = await open(link);
  const text = pageText(page.text);
  assert.match(text, new RegExp(`account ${user.username} \\(${user.email}\\) at ${fx.name}`));
  assert.match(text, /Set up your account/);
  assert.match(page.headers.get('cache-control') ?? '', /no-store/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  // The only script is the passkey one, allowed by its hash (tests/link-passkeys.test.mjs).
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-[^' ]+';/);
  assert.match(text, /The link works once, until \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC\./);
  const form = linkForm(page);
  assert.equal(form.method, 'post');
  assert.ok(form.inputs.some((i) => i.name === 'csrf_token' && i.value));
  assert.ok(page.setCookies.some((c) => c.name === 'clavex_csrf' && c.attrs.httponly));

  const password = strong();
  const done = await choose(browser, page, password);
  assert.equal(done.status, 303, pageText(done.text).slice(0, 300));
  assert.equal(done.location, `/${fx.slug}/account`);
  const session = done.setCookies.find((c) => c.name === 'clavex_session');
  assert.ok(session?.value && session.attrs.httponly && session.attrs.samesite?.toLowerCase() === 'lax');
  const account = await browser.get(`${fx.issuer}/account`);
  assert.equal(account.status, 200);
  assert.match(pageText(account.text), new RegExp(`Signed in as ${user.username}`));
  // The session is a sign-in: a relying party gets a code without a password, then tokens.
  const sso = await browser.get(authorizeUrl(fx, fx.web));
  assert.equal(sso.status, 302, pageText(sso.text).slice(0, 200));
  const { code } = parseRedirect(sso.location).params;
  assert.ok(code);
  assertTokenSuccess(await exchangeCode(fx, fx.web, code));
  // And the password signs in at a fresh browser, through the login form.
  const { tokens } = await loginAndExchange(fx, fx.web, { user: { ...user, password } });
  assert.ok(tokens.id_token);
  assert.equal((await admin('GET', `${usersPath()}/${user.id}`)).body.has_password, true);

  // Used: the same link again (another browser, and the same page's form replayed).
  assertRefused(await new Browser().get(link), 410, /already used/);
  assertRefused(await choose(browser, page, strong()), 410, /already used/);
  assert.ok(await passwordWorks(user.username, password), 'the password is still the first one');
  const used = await events('link.used', user.id);
  assert.equal(used.length, 1);
  assert.deepEqual(used[0].detail.resets, ['password']);
  assert.equal((await events('link.issued', user.id))[0].detail.purpose, 'setup');
  assert.ok((await events('link.refused', user.id)).some((e) => e.detail.reason === 'used'));
});

test('a weak or mismatched password is refused on the page and leaves the link usable', async () => {
  const { user, link } = await invite();
  const { browser, page } = await open(link);
  const weak = await choose(browser, page, 'short');
  assert.equal(weak.status, 400);
  assert.match(pageText(weak.text), /at least 8 characters/);
  const common = await choose(browser, weak, 'password123');
  assert.equal(common.status, 400);
  const mismatch = await choose(browser, common, 'one fine passphrase', 'one fine passphrasf');
  assert.equal(mismatch.status, 400);
  assert.match(pageText(mismatch.text), /do not match/);
  const password = strong();
  assert.equal((await choose(browser, mismatch, password)).status, 303);
  assert.ok(await passwordWorks(user.username, password));
});

test('race: 50 concurrent POSTs of one link — exactly one sets the password, the others see "already used", and the winner\'s password is the one that works', async () => {
  const { user, link } = await invite();
  const { browser, page } = await open(link);
  const passwords = Array.from({ length: 50 }, (_, i) => `racing passphrase number ${i}`);
  const results = await Promise.all(passwords.map((p) => choose(browser, page, p)));
  const won = results.map((r, i) => [r, i]).filter(([r]) => r.status === 303);
  assert.equal(won.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
  for (const r of results.filter((x) => x.status !== 303)) assertRefused(r, 410, /already used/);
  const winner = passwords[won[0][1]];
  assert.ok(await passwordWorks(user.username, winner), 'the winner\'s password signs in');
  const loser = passwords[(won[0][1] + 1) % 50];
  assert.equal(await passwordWorks(user.username, loser), false, 'a loser\'s password does not');
  assert.equal((await events('link.used', user.id)).length, 1);
});

test('an expired link says so (and a superseded one, and one of another organization, and a made-up one)', async () => {
  const { user } = await invite();
  // Expiry is kept in whole seconds (expired once now >= expires_at): a 1-second link made late
  // in a second is already expired when the next second begins, so this one lives 2 s, which
  // leaves at least one whole second to open it.
  const short = await admin('POST', `${usersPath()}/${user.id}/setup-link`, { valid_for_seconds: 2 });
  assert.equal(short.status, 200, JSON.stringify(short.body));
  assert.equal(short.body.purpose, 'setup');
  const shown = await open(short.body.link);
  await sleep(3100);
  assertRefused(await new Browser().get(short.body.link), 410, /expired/);
  assertRefused(await choose(shown.browser, shown.page, strong()), 410, /expired/);

  // A newer link replaces the older ones: a page opened before it was made is refused at the
  // POST, and the older link's address at the GET; the newer one works.
  const first = await admin('POST', `${usersPath()}/${user.id}/setup-link`, {});
  assert.equal(first.status, 200);
  const before = await open(first.body.link);
  const second = await admin('POST', `${usersPath()}/${user.id}/setup-link`);
  assert.equal(second.status, 200, 'the body is optional');
  assert.notEqual(second.body.link, first.body.link);
  assertRefused(await choose(before.browser, before.page, strong()), 410, /replaced by a newer one/);
  assertRefused(await new Browser().get(first.body.link), 410, /replaced by a newer one/);
  assert.ok((await events('link.refused', user.id)).some((e) => e.detail.reason === 'superseded'));

  // The newer link under another organization's address: unknown there.
  const other = await createFixture('links-b');
  const token = second.body.link.split('/').pop();
  assertRefused(await new Browser().get(`${other.issuer}/setup/${token}`), 404, /not valid/);
  // A made-up token, and a malformed one.
  assertRefused(await new Browser().get(`${fx.issuer}/setup/${'A'.repeat(43)}`), 404, /not valid/);
  assertRefused(await new Browser().get(`${fx.issuer}/setup/short`), 404, /not valid/);

  // The newer link still works, and only for its own organization's form.
  const { browser, page } = await open(second.body.link);
  const password = strong();
  assert.equal((await choose(browser, page, password)).status, 303);
  assert.ok(await passwordWorks(user.username, password));
});

test('a form shown for one link is refused at another link\'s address; a form of another browser is refused', async () => {
  const a = await invite();
  const b = await invite();
  const { browser, page } = await open(a.link);
  const form = linkForm(page);
  const swapped = await browser.post(b.link, formFields(form, { new_password: 'swapped passphrase 1', confirm_password: 'swapped passphrase 1' }));
  assert.equal(swapped.status, 400, pageText(swapped.text).slice(0, 200));
  // Another browser (no CSRF cookie) posting this page's form.
  const other = await new Browser().post(form.action, formFields(form, { new_password: 'stolen passphrase 1', confirm_password: 'stolen passphrase 1' }));
  assert.equal(other.status, 403, pageText(other.text).slice(0, 200));
  // Neither used either link.
  assert.equal((await new Browser().get(a.link)).status, 200);
  assert.equal((await new Browser().get(b.link)).status, 200);
  assert.equal((await admin('GET', `${usersPath()}/${a.user.id}`)).body.has_password, false);
});

test('a disabled user: no link is made, and a link made before is refused at its page', async () => {
  const { user, link } = await invite();
  const { browser, page } = await open(link);
  assert.equal((await admin('PATCH', `${usersPath()}/${user.id}`, { disabled: true })).status, 200);
  assertRefused(await new Browser().get(link), 403, /disabled/);
  assertRefused(await choose(browser, page, strong()), 403, /disabled/);
  const refused = await admin('POST', `${usersPath()}/${user.id}/setup-link`, {});
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'user_disabled');
  const recovery = await admin('POST', `${usersPath()}/${user.id}/recovery-link`, {});
  assert.equal(recovery.status, 409);
  // Enabled again, the old link works (it was never used).
  assert.equal((await admin('PATCH', `${usersPath()}/${user.id}`, { disabled: false })).status, 200);
  assert.equal((await choose(browser, page, strong())).status, 303);
  // A disabled user created without a password gets no link at all.
  const created = await invite(fx, { disabled: true });
  assert.equal(created.link, undefined);
});

test('admin API: links for unknown users, bad bodies, and e-mail that is not configured here', async () => {
  const { user } = await invite();
  const base = `${usersPath()}/${user.id}`;
  assert.equal((await admin('POST', `${usersPath()}/usr_nope/setup-link`, {})).status, 404);
  for (const [body, field] of [
    [{ valid_for_seconds: 0 }, 'valid_for_seconds'],
    [{ valid_for_seconds: 30 * 86400 + 1 }, 'valid_for_seconds'],
    [{ valid_for_seconds: 'soon' }, 'valid_for_seconds'],
    [{ unknown: 1 }, 'unknown'],
  ]) {
    const res = await admin('POST', `${base}/setup-link`, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.field, field, JSON.stringify(res.body));
  }
  for (const reset of [[], ['email'], ['password', 'password'], 'password']) {
    const res = await admin('POST', `${base}/recovery-link`, { reset });
    assert.equal(res.status, 400, JSON.stringify(reset));
    assert.equal(res.body.field, 'reset');
  }
  const mail = await admin('POST', `${base}/setup-link`, { send_email: true });
  assert.equal(mail.status, 409);
  assert.equal(mail.body.error, 'email_not_configured');
  const username = unique('nomail').replace(/-/g, '');
  const create = await admin('POST', usersPath(), { username, email: `${username}@example.test`, send_email: true });
  assert.equal(create.status, 409, 'refused before the user is made');
  assert.equal((await admin('GET', `${usersPath()}?username=${username}`)).body.users.length, 0);
  const rec = await admin('POST', `${base}/recovery-link`, { reset: ['second_factor', 'password'], valid_for_seconds: 600 });
  assert.equal(rec.status, 200);
  assert.equal(rec.body.purpose, 'recovery');
  assert.deepEqual(rec.body.reset, ['password', 'second_factor']);
  assert.match(rec.headers.get('cache-control') ?? '', /no-store/);
  // The audit trail names the change, never the link.
  const changes = await events('admin.change', user.id);
  assert.ok(changes.some((e) => e.detail.action === 'RecoveryLink'));
  assert.ok(!JSON.stringify(changes).includes(rec.body.link.split('/').pop()));
});

test('without e-mail the login page says to ask the administrator, and there is no forgot-password page', async () => {
  const page = await new Browser().get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page));
  assert.match(pageText(page.text), /Forgot your password\? Ask your administrator/);
  assert.doesNotMatch(page.text, /forgot-password/);
  const forgot = await new Browser().get(`${fx.issuer}/forgot-password`);
  assert.equal(forgot.status, 404);
  assert.match(pageText(forgot.text), /Ask your administrator/);
});

// ---- Recovery of a user with a second factor ----

/** Post the only form of `page`. */
function submitOnly(browser, page, fields = {}) {
  const [form] = parseForms(page.text, page.url);
  assert.ok(form, `a form: ${page.status} ${pageText(page.text).slice(0, 300)}`);
  return browser.post(form.action, formFields(form, fields));
}

/** From an enrolment page to what follows the recovery codes. */
async function enrol(browser, page) {
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  assert.match(pageText(page.text), /Set up two-step verification/);
  const secret = base32Decode(page.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const codes = await submitOnly(browser, page, { code: totp(secret) });
  assert.equal(codes.status, 200, pageText(codes.text).slice(0, 300));
  return { secret, done: await submitOnly(browser, codes) };
}

/** An organization requiring a second factor, and a user of it who enrolled at sign-in. */
async function enrolledUser() {
  const on = await createFixture('links-mfa');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  const user = await createUser(on);
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(on, on.web));
  const { secret, done } = await enrol(browser, await submitLogin(browser, login, user.username, user.password));
  assert.equal(done.status, 303);
  assert.equal((await admin('GET', `${usersPath(on)}/${user.id}`)).body.totp_enrolled, true);
  return { on, user, secret };
}

test('recovery of password and second factor: TOTP is removed, the user chooses a password and enrols again (required), then is signed in', async () => {
  const { on, user } = await enrolledUser();
  const rec = await admin('POST', `${usersPath(on)}/${user.id}/recovery-link`, { reset: ['password', 'second_factor'] });
  assert.equal(rec.status, 200);
  const { browser, page } = await open(rec.body.link);
  assert.match(pageText(page.text), /Recover your account/);
  assert.match(pageText(page.text), /two-step verification will also be removed/);
  const password = strong();
  const next = await choose(browser, page, password);
  const after = await admin('GET', `${usersPath(on)}/${user.id}`);
  assert.equal(after.body.totp_enrolled, false, 'the old factor is gone');
  assert.equal(after.body.recovery_codes_left, 0);
  // The organization requires a factor: the enrolment follows, and then the browser is signed in.
  assert.equal(next.setCookies.filter((c) => c.name === 'clavex_session' && c.value).length, 0, 'no session before the factor');
  const { done } = await enrol(browser, next);
  assert.equal(done.status, 303, pageText(done.text).slice(0, 300));
  assert.equal(done.location, `/${on.slug}/account`);
  assert.equal((await browser.get(`${on.issuer}/account`)).status, 200);
  assert.equal((await admin('GET', `${usersPath(on)}/${user.id}`)).body.totp_enrolled, true);
  assert.deepEqual((await events('link.used', user.id, on))[0].detail.resets, ['password', 'second_factor']);
});

test('recovery of the password only keeps the second factor: no session from the link, the code is still asked', async () => {
  const { on, user, secret } = await enrolledUser();
  const rec = await admin('POST', `${usersPath(on)}/${user.id}/recovery-link`, {});
  assert.deepEqual(rec.body.reset, ['password'], 'the default');
  const { browser, page } = await open(rec.body.link);
  const password = strong();
  const done = await choose(browser, page, password);
  assert.equal(done.status, 200, pageText(done.text).slice(0, 300));
  assert.match(pageText(done.text), /new password is set/);
  assert.equal(done.setCookies.filter((c) => c.name === 'clavex_session' && c.value).length, 0);
  const account = await browser.get(`${on.issuer}/account`);
  assert.equal(account.status, 302, 'not signed in by the link: the account page sends to a sign-in');
  assert.match(account.location, /\/authorize\?client_id=clavex-account/);
  // The new password, then the code.
  const fresh = new Browser();
  const login = await fresh.get(authorizeUrl(on, on.web));
  const challenge = await submitLogin(fresh, login, user.username, password);
  assert.equal(challenge.status, 200);
  assert.match(pageText(challenge.text), /code/i);
  // The next step's code (accepted for clock drift): the current step was spent at enrolment.
  const signedIn = await submitOnly(fresh, challenge, { code: totp(secret, Date.now() / 1000 + 30) });
  assert.equal(signedIn.status, 303);
  assert.ok(parseRedirect(signedIn.location).params.code);
});

test('recovery of the second factor only: one button, the password stays', async () => {
  const { on, user } = await enrolledUser();
  const rec = await admin('POST', `${usersPath(on)}/${user.id}/recovery-link`, { reset: ['second_factor'] });
  const { browser, page } = await open(rec.body.link);
  const form = linkForm(page);
  assert.ok(!form.inputs.some((i) => i.type === 'password'), 'no password asked');
  const done = await browser.post(form.action, formFields(form));
  assert.equal(done.status, 200, pageText(done.text).slice(0, 300));
  assert.match(pageText(done.text), /Two-step verification was removed/);
  assert.equal((await admin('GET', `${usersPath(on)}/${user.id}`)).body.totp_enrolled, false);
  // The password is unchanged; the organization requires a factor, so the sign-in enrols again.
  const again = new Browser();
  const login = await again.get(authorizeUrl(on, on.web));
  const next = await submitLogin(again, login, user.username, user.password);
  assert.match(pageText(next.text), /Set up two-step verification/);
  // The link is used.
  assertRefused(await browser.post(form.action, formFields(form)), 410, /already used/);
});
