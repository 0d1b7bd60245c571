// The account page (issue 16, item 2) through the real Worker: who is signed in, changing the
// password (the current one counted like a login, the new one through the policy, the other
// sessions and grants ended), turning off the second factor (refused where the organization
// requires it), and "sign out everywhere" — every browser must sign in again, refresh tokens are
// dead, each relying party with a grant gets a verified back-channel logout token — with its
// form refused when replayed or posted under another user's session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  Browser, admin, createFixture, createClient, createUser, authorizeUrl, isLoginPage, submitLogin,
  parseForms, formFields, pageText, exchangeCode, assertTokenSuccess, assertOAuthError, tokenRequest,
  parseRedirect, loginAndExchange, verifyJwt, randomIp, sleep, nowSeconds,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
let fx; let receiver; let receiverUrl;
const received = new Map();

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const path = new URL(req.url, 'http://x').pathname;
      const list = received.get(path) ?? [];
      list.push(new URLSearchParams(body).get('logout_token'));
      received.set(path, list);
      res.writeHead(200, { 'Cache-Control': 'no-store' });
      res.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
  fx = await createFixture('acct');
});
after(() => receiver?.close());

const accountUrl = (on = fx) => `${on.issuer}/account`;
const tally = (responses) => {
  const out = {};
  for (const r of responses) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
};
/** As tests/signin-integrity.test.mjs: the threshold, and one more per wait that ran out. */
const mayAnswer = (threshold, ms) => threshold + Math.floor(Math.log2(ms / 1000 + 1));

/** A client told of logouts at a path of its own. */
async function toldClient(name) {
  const path = `/${name}/bcl`;
  const client = await createClient(fx, {
    client_id: name,
    client_name: name,
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [`https://${name}.example.test/cb`],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: `${receiverUrl}${path}`,
  });
  return { ...client, path };
}

async function tokensAt(path, count, ms = 10_000) {
  const deadline = Date.now() + ms;
  while ((received.get(path)?.length ?? 0) < count && Date.now() < deadline) await sleep(50);
  return received.get(path) ?? [];
}

/** A browser signed in as `user` at `client`, with that sign-in's tokens. */
async function signedIn(user, client = fx.web, on = fx) {
  const browser = new Browser();
  const { tokens } = await loginAndExchange(on, client, { browser, user });
  return { browser, tokens };
}

/** The account page in `browser`; asserts it is shown. */
async function accountPage(browser, on = fx) {
  const page = await browser.get(accountUrl(on));
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  return page;
}

function formTo(page, suffix) {
  const form = parseForms(page.text, page.url).find((f) => new URL(f.action).pathname.endsWith(suffix));
  assert.ok(form, `a form posting to …${suffix}: ${pageText(page.text).slice(0, 300)}`);
  return form;
}

/** Post the page's form for `suffix` with `fields`, as `browser` (or with explicit headers). */
function post(browser, page, suffix, fields = {}, headers = {}) {
  const form = formTo(page, suffix);
  return browser.post(form.action, formFields(form, fields), { headers });
}

const changePassword = (browser, page, current, next, confirm = next, headers = {}) => post(browser, page, '/account/password', {
  current_password: current, new_password: next, confirm_password: confirm,
}, headers);

/** Whether `browser` is still signed in: authorize gives a code without asking for a password. */
async function stillSignedIn(browser, client = fx.web, on = fx) {
  const res = await browser.get(authorizeUrl(on, client));
  if (res.status === 302 && parseRedirect(res.location).params.code) return true;
  assert.ok(isLoginPage(res), `either a code or the login page: ${res.status} ${res.location ?? pageText(res.text).slice(0, 200)}`);
  return false;
}

/** Whether `password` signs `user` in at a fresh browser (a code at the end). */
async function passwordWorks(user, password, on = fx) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  assert.ok(isLoginPage(page));
  const res = await submitLogin(browser, page, user.username, password);
  if (res.status === 401) return false;
  assert.ok([302, 303].includes(res.status), `${res.status} ${pageText(res.text).slice(0, 200)}`);
  return Boolean(parseRedirect(res.location).params.code);
}

const refresh = (client, token) => tokenRequest(fx, client, { grant_type: 'refresh_token', refresh_token: token });

async function events(type, userId, on = fx) {
  const res = await admin('GET', `/organizations/${on.slug}/events?type=${type}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.events.filter((e) => e.user_id === userId);
}

test('without a session the account page signs the browser in through the usual login and comes back; the flow\'s code redeems nowhere', async () => {
  const user = await createUser(fx);
  const browser = new Browser();
  const anonymous = await browser.get(accountUrl());
  assert.equal(anonymous.status, 302);
  const to = new URL(anonymous.location, fx.issuer);
  assert.equal(to.pathname, `/${fx.slug}/authorize`);
  assert.equal(to.searchParams.get('client_id'), 'clavex-account');
  assert.equal(to.searchParams.get('redirect_uri'), `${fx.issuer}/account/signed-in`);
  assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
  const login = await browser.get(to.href);
  assert.ok(isLoginPage(login), `the login page: ${login.status} ${pageText(login.text).slice(0, 200)}`);
  assert.match(pageText(login.text), /your account/);
  const landed = await submitLogin(browser, login, user.username, user.password);
  assert.equal(landed.status, 303, pageText(landed.text).slice(0, 200));
  const back = new URL(landed.location);
  assert.equal(`${back.origin}${back.pathname}`, `${fx.issuer}/account/signed-in`);
  const code = back.searchParams.get('code');
  assert.ok(code);
  assert.equal(back.searchParams.get('state'), to.searchParams.get('state'));
  const onward = await browser.get(back.href);
  assert.equal(onward.status, 303);
  assert.equal(onward.location, `/${fx.slug}/account`, 'on to the page, without the code');
  const page = await browser.get(accountUrl());
  assert.equal(page.status, 200);
  assert.match(pageText(page.text), new RegExp(`Signed in as ${user.username}`));
  // The code of that flow redeems nowhere: the token endpoint knows no such client, with or
  // without a made-up verifier.
  const redeemed = await tokenRequest(fx, { client_id: 'clavex-account' }, {
    grant_type: 'authorization_code', code, redirect_uri: `${fx.issuer}/account/signed-in`,
    client_id: 'clavex-account', code_verifier: 'a'.repeat(43),
  }, { auth: 'none' });
  assertOAuthError(redeemed, 401, 'invalid_client');
  // And no administrator can make a client of that name.
  const reserved = await admin('POST', `/organizations/${fx.slug}/clients`, {
    client_id: 'clavex-account', client_name: 'x', redirect_uris: ['https://x.example.test/cb'],
  });
  assert.equal(reserved.status, 400, JSON.stringify(reserved.body));
  assert.match(JSON.stringify(reserved.body), /reserved/);
});

test('with a session the account page names the user, has three forms, only the passkey script, no-store and a CSP', async () => {
  const user = await createUser(fx);
  const { browser } = await signedIn(user);
  const page = await accountPage(browser);
  assert.match(pageText(page.text), new RegExp(`Signed in as ${user.username}`));
  assert.match(page.headers.get('cache-control') ?? '', /no-store/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  // The only JavaScript is the passkey script (ui/passkey.rs), allowed by its hash alone.
  assert.equal((page.text.match(/<script/gi) ?? []).length, 1, 'one script: passkeys');
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-[A-Za-z0-9+/=]+';/);
  assert.doesNotMatch(page.headers.get('content-security-policy') ?? '', /unsafe-inline'; form|script-src 'unsafe/);
  for (const suffix of ['/account/password', '/account/sign-out-everywhere']) {
    const form = formTo(page, suffix);
    assert.equal(form.method, 'post');
    assert.ok(form.inputs.some((i) => i.name === 'state' && i.value), 'a sealed state');
    assert.ok(form.inputs.some((i) => i.name === 'csrf_token' && i.value), 'a CSRF token');
  }
  // No second factor: nothing to remove; where the organization offers one, a link to set it up.
  assert.ok(!page.text.includes('/account/mfa/remove'), 'nothing to remove');
  assert.equal(fx.org.mfa, 'off', 'the default');
  assert.match(pageText(page.text), /has not turned on two-step verification/);
  assert.equal((await admin('PATCH', `/organizations/${fx.slug}`, { mfa: 'optional' })).status, 200);
  try {
    const offered = await accountPage(browser);
    assert.match(offered.text, new RegExp(`href="/${fx.slug}/account/mfa"`));
  } finally {
    assert.equal((await admin('PATCH', `/organizations/${fx.slug}`, { mfa: 'off' })).status, 200);
  }
  // A POST to the page itself is not a form of it.
  assert.equal((await browser.post(accountUrl(), {})).status, 405);
});

test('change password: a weak or mismatched new password is refused before anything is checked, and nothing changes', async () => {
  const user = await createUser(fx);
  const { browser } = await signedIn(user);
  const page = await accountPage(browser);
  const weak = await changePassword(browser, page, user.password, 'short');
  assert.equal(weak.status, 400);
  assert.match(pageText(weak.text), /The new password must be at least 8 characters/);
  const common = await changePassword(browser, weak, user.password, 'password123');
  assert.equal(common.status, 400);
  assert.match(pageText(common.text), /common/);
  const mismatch = await changePassword(browser, common, user.password, 'a fine new passphrase', 'a fine new passphrasf');
  assert.equal(mismatch.status, 400);
  assert.match(pageText(mismatch.text), /do not match/);
  assert.ok(await passwordWorks(user, user.password), 'the old password still signs in');
  assert.ok(await stillSignedIn(browser), 'and this browser is still signed in');
});

test('change password: a wrong current password is refused and counted; enough of them lock, and then even the right one gets 429', async () => {
  const user = await createUser(fx);
  const { browser } = await signedIn(user);
  let page = await accountPage(browser);
  const next = `New-${user.password}-x`;
  const statuses = [];
  for (let i = 0; i < 5; i += 1) {
    page = await changePassword(browser, page, `wrong-${i}-password`, next);
    statuses.push(page.status);
    assert.equal(page.status, 401, pageText(page.text).slice(0, 300));
    assert.match(pageText(page.text), /The current password is incorrect/);
  }
  // The fifth failure reached the threshold: the account waits, whoever asks.
  assert.match(pageText(page.text), /Too many failed attempts/);
  const locked = await changePassword(browser, page, user.password, next);
  assert.equal(locked.status, 429, pageText(locked.text).slice(0, 300));
  assert.ok(Number(locked.headers.get('retry-after')) >= 1);
  assert.match(pageText(locked.text), /Too many failed attempts/);
  assert.doesNotMatch(pageText(locked.text), /incorrect/);
  const failed = await events('signin.failed', user.id);
  assert.ok(failed.filter((e) => e.detail.page === 'account').length >= 5, JSON.stringify(failed));
  // Unlocked by the admin: the password was never changed.
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/${user.id}/lock`)).status, 204);
  assert.ok(await passwordWorks(user, user.password), 'the old password still signs in');
  assert.ok(!(await passwordWorks(user, next)), 'the new one does not');
});

test('change password: 20 wrong current passwords at once get no more answers than the throttle allows', async () => {
  const user = await createUser(fx);
  const { browser } = await signedIn(user);
  const page = await accountPage(browser);
  const t0 = Date.now();
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => changePassword(
    browser, page, `wrong-${i}-guess`, 'a fine new passphrase', 'a fine new passphrase', { 'CF-Connecting-IP': randomIp() },
  )));
  const ms = Date.now() - t0;
  const t = tally(burst);
  console.log(`account burst of 20 wrong current passwords: ${JSON.stringify(t)} in ${ms} ms`);
  assert.ok((t[401] ?? 0) <= mayAnswer(5, ms), `at most the threshold answered "incorrect": ${JSON.stringify(t)} in ${ms} ms`);
  assert.equal((t[401] ?? 0) + (t[429] ?? 0), 20, JSON.stringify(t));
  const incorrect = burst.filter((r) => /incorrect/.test(pageText(r.text))).length;
  assert.equal(incorrect, t[401] ?? 0, 'only the 401s say "incorrect"');
});

test('change password: the new one signs in, the old one no longer does; this browser stays signed in, another is signed out and its refresh token dies', async () => {
  const user = await createUser(fx);
  const here = await signedIn(user);
  const elsewhere = await signedIn(user, fx.other);
  const oldCookies = here.browser.jar.clone();
  const page = await accountPage(here.browser);
  const next = 'a brand new passphrase 42';
  const done = await changePassword(here.browser, page, user.password, next);
  assert.equal(done.status, 200, pageText(done.text).slice(0, 300));
  assert.match(pageText(done.text), /Your password was changed/);
  assert.match(done.headers.get('cache-control') ?? '', /no-store/);
  assert.ok(done.setCookies.some((c) => c.name === 'clavex_session' && c.value), 'a fresh session cookie');

  assert.ok(await stillSignedIn(here.browser), 'this browser stays signed in (its new session)');
  assert.ok(!(await stillSignedIn(elsewhere.browser, fx.other)), 'the other browser must sign in again');
  // The old session id of this browser is gone too (a new id was issued).
  assert.ok(!(await stillSignedIn(new Browser(oldCookies))), 'the session before the change is ended');
  assertOAuthError(await refresh(fx.other, elsewhere.tokens.refresh_token), 400, 'invalid_grant', 'a refresh token from before');
  assert.ok(!(await passwordWorks(user, user.password)), 'the old password fails');
  assert.ok(await passwordWorks(user, next), 'the new one signs in');
  const changed = await events('password.changed', user.id);
  assert.equal(changed.length, 1, JSON.stringify(changed));
  // The page shown after the change works with the new session: its form is bound to it.
  const again = await changePassword(here.browser, done, next, 'yet another passphrase 7');
  assert.equal(again.status, 200, pageText(again.text).slice(0, 300));
});

test('sign out everywhere: both browsers must sign in again, refresh tokens die, each relying party with a grant gets a verified logout token; a replay does nothing', async () => {
  const chat = await toldClient('chat-ev');
  const wiki = await toldClient('wiki-ev');
  const user = await createUser(fx);
  const a = await signedIn(user, chat);
  const b = await signedIn(user, wiki);
  const beforeSignOut = a.browser.jar.clone();
  const page = await accountPage(a.browser);
  const res = await post(a.browser, page, '/account/sign-out-everywhere');
  assert.equal(res.status, 200, pageText(res.text).slice(0, 300));
  assert.match(pageText(res.text), /Signed out everywhere/);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);

  for (const [browser, client] of [[a.browser, chat], [b.browser, wiki], [new Browser(beforeSignOut.clone()), chat]]) {
    assert.ok(!(await stillSignedIn(browser, client)), `${client.client_id}: no code from the session, the login page`);
  }
  assertOAuthError(await refresh(chat, a.tokens.refresh_token), 400, 'invalid_grant', 'chat refresh');
  assertOAuthError(await refresh(wiki, b.tokens.refresh_token), 400, 'invalid_grant', 'wiki refresh');

  const jwks = await fx.jwks();
  for (const client of [chat, wiki]) {
    const [token, ...more] = await tokensAt(client.path, 1);
    assert.ok(token, `${client.client_id} was told`);
    assert.equal(more.length, 0, 'once');
    const jwt = verifyJwt(token, jwks);
    assert.equal(jwt.header.typ, 'logout+jwt');
    assert.equal(jwt.payload.iss, fx.issuer);
    assert.equal(jwt.payload.aud, client.client_id);
    assert.equal(jwt.payload.sub, user.id, 'sub based: every session of the user at the RP');
    assert.equal(jwt.payload.sid, undefined);
    assert.deepEqual(jwt.payload.events, { [EVENT]: {} });
    assert.ok(jwt.payload.exp > nowSeconds());
  }
  assert.equal((await events('logout.everywhere', user.id)).length, 1);

  // The same form replayed with the cookies from before: the session is over — an error page.
  const replay = await post(new Browser(beforeSignOut.clone()), page, '/account/sign-out-everywhere');
  assert.equal(replay.status, 401, pageText(replay.text).slice(0, 300));
  assert.match(replay.headers.get('content-type') ?? '', /text\/html/);
  // And with the browser's cookies as they are now (cleared): refused too.
  const cleared = await post(a.browser, page, '/account/sign-out-everywhere');
  assert.ok([401, 403].includes(cleared.status), `${cleared.status}`);
  await sleep(500);
  assert.equal(received.get(chat.path).length, 1, 'nobody is told again');
  assert.equal((await events('logout.everywhere', user.id)).length, 1, 'nothing happened again');
  // A new sign-in afterwards works as usual.
  const c = await signedIn(user, chat);
  assert.ok(await stillSignedIn(c.browser, chat));
});

test('a form of one user posted under another user\'s session does nothing and answers an error page', async () => {
  const alice = await createUser(fx);
  const bob = await createUser(fx);
  const a = await signedIn(alice);
  const b = await signedIn(bob);
  const alicePage = await accountPage(a.browser);
  // Alice's form, with Alice's CSRF cookie but Bob's session cookie.
  const mixed = b.browser.jar.clone();
  const aliceCsrf = [...a.browser.jar.cookies.values()].find((c) => c.name === 'clavex_csrf');
  mixed.set('clavex_csrf', aliceCsrf.value, aliceCsrf.path);
  const underBob = new Browser(mixed);
  for (const suffix of ['/account/sign-out-everywhere', '/account/password']) {
    const res = await post(underBob, alicePage, suffix, { current_password: bob.password, new_password: 'a fine new passphrase', confirm_password: 'a fine new passphrase' });
    assert.equal(res.status, 400, `${suffix}: ${res.status} ${pageText(res.text).slice(0, 200)}`);
    assert.match(pageText(res.text), /signed out or signed in as someone else/);
  }
  // Alice's form in Bob's browser as it is (Bob's CSRF cookie): refused before anything else.
  const csrf = await post(b.browser, alicePage, '/account/sign-out-everywhere');
  assert.equal(csrf.status, 403);
  assert.ok(await stillSignedIn(a.browser), 'alice is still signed in');
  assert.ok(await stillSignedIn(b.browser), 'bob is still signed in');
  assert.ok(await passwordWorks(bob, bob.password), 'bob\'s password unchanged');
  assert.equal((await events('logout.everywhere', alice.id)).length, 0);
  assert.equal((await events('logout.everywhere', bob.id)).length, 0);
  // A form from another site is refused by its Origin.
  const foreign = await post(a.browser, alicePage, '/account/sign-out-everywhere', {}, { Origin: 'https://evil.example' });
  assert.equal(foreign.status, 403);
  assert.ok(await stillSignedIn(a.browser));
  // One form's state posted to another form's action is refused.
  const form = formTo(alicePage, '/account/sign-out-everywhere');
  const wrongStep = await a.browser.post(`${fx.issuer}/account/password`, formFields(form, { current_password: alice.password, new_password: 'x y z w q r s t', confirm_password: 'x y z w q r s t' }));
  assert.equal(wrongStep.status, 400);
  assert.ok(await passwordWorks(alice, alice.password));
});

/** Sign `user` in at `on`, enrolling TOTP if the page asks; returns the browser and secret. */
async function enrolledIn(on, user) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  let res = await submitLogin(browser, page, user.username, user.password);
  assert.match(pageText(res.text), /Set up two-step verification/, pageText(res.text).slice(0, 200));
  const secret = base32Decode(res.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const [enrol] = parseForms(res.text, res.url);
  res = await browser.post(enrol.action, formFields(enrol, { code: totp(secret) }));
  const recovery = [...res.text.matchAll(/<li><code>([a-z2-7]{5}-[a-z2-7]{5})<\/code><\/li>/g)].map((m) => m[1]);
  assert.equal(recovery.length, 10);
  const [finish] = parseForms(res.text, res.url);
  res = await browser.post(finish.action, formFields(finish));
  assert.equal(res.status, 303, pageText(res.text).slice(0, 200));
  assertTokenSuccess(await exchangeCode(on, on.web, parseRedirect(res.location).params.code));
  return { browser, secret, recovery };
}

/** Whether `code` (a recovery code) finishes a sign-in of `user` at `on` after the password. */
async function recoveryCodeWorks(on, user, code) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  const challenge = await submitLogin(browser, page, user.username, user.password);
  assert.match(pageText(challenge.text), /Enter the 6-digit code/, pageText(challenge.text).slice(0, 200));
  const [form] = parseForms(challenge.text, challenge.url);
  const res = await browser.post(form.action, formFields(form, { code }));
  if (res.status === 401) return false;
  assert.equal(res.status, 303, pageText(res.text).slice(0, 200));
  return true;
}

test('turning off TOTP is refused where the organization requires it, and allowed with the password where it is optional', async () => {
  const on = await createFixture('acct-mfa');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  const user = await createUser(on);
  const { browser } = await enrolledIn(on, user);
  const required = await accountPage(browser, on);
  assert.match(pageText(required.text), /requires two-step verification, so it cannot be turned off/);
  assert.ok(!required.text.includes('/account/mfa/remove'), 'no removal form');
  // A removal form shown while the organization allowed it, posted once it requires a factor.
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'optional' })).status, 200);
  const optional = await accountPage(browser, on);
  formTo(optional, '/account/mfa/remove');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  const refused = await post(browser, optional, '/account/mfa/remove', { password: user.password });
  assert.equal(refused.status, 403, pageText(refused.text).slice(0, 200));
  assert.match(pageText(refused.text), /requires two-step verification/);
  assert.equal((await admin('GET', `/organizations/${on.slug}/users/${user.id}`)).body.totp_enrolled, true, 'still enrolled');

  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'optional' })).status, 200);
  const page = await accountPage(browser, on);
  const wrong = await post(browser, page, '/account/mfa/remove', { password: 'not-the-password' });
  assert.equal(wrong.status, 401);
  assert.match(pageText(wrong.text), /The password is incorrect/);
  assert.equal((await admin('GET', `/organizations/${on.slug}/users/${user.id}`)).body.totp_enrolled, true);
  const removed = await post(browser, wrong, '/account/mfa/remove', { password: user.password });
  assert.equal(removed.status, 200, pageText(removed.text).slice(0, 200));
  assert.match(pageText(removed.text), /Two-step verification is off/);
  const shown = await admin('GET', `/organizations/${on.slug}/users/${user.id}`);
  assert.equal(shown.body.totp_enrolled, false);
  assert.equal(shown.body.recovery_codes_left, 0);
  assert.equal((await events('mfa.removed', user.id, on)).length, 1);
});

test('the admin API signs a user out everywhere: sessions, refresh tokens and relying parties, as the account page does', async () => {
  const chat = await toldClient('chat-admin');
  const user = await createUser(fx);
  const other = await createUser(fx);
  const a = await signedIn(user, chat);
  const b = await signedIn(user);
  const bystander = await signedIn(other);
  const res = await admin('POST', `/organizations/${fx.slug}/users/${user.id}/logout`);
  assert.equal(res.status, 204, JSON.stringify(res.body));
  assert.ok(!(await stillSignedIn(a.browser, chat)));
  assert.ok(!(await stillSignedIn(b.browser)));
  assert.ok(await stillSignedIn(bystander.browser), 'another user is not touched');
  assertOAuthError(await refresh(chat, a.tokens.refresh_token), 400, 'invalid_grant', 'chat refresh');
  assertTokenSuccess(await refresh(fx.web, bystander.tokens.refresh_token), 'the other user\'s refresh');
  const [token] = await tokensAt(chat.path, 1);
  assert.equal(verifyJwt(token, await fx.jwks()).payload.sub, user.id);
  const logged = await events('logout.everywhere', user.id);
  assert.equal(logged.length, 1);
  assert.equal(logged[0].detail.by, 'admin');
  assert.equal((await admin('POST', `/organizations/${fx.slug}/users/usr_nobody/logout`)).status, 404);
});

test('new recovery codes: the password again, ten codes shown once, the earlier ones no longer sign in', async () => {
  const on = await createFixture('acct-codes');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  const user = await createUser(on);
  const { browser, recovery } = await enrolledIn(on, user);
  const page = await accountPage(browser, on);
  const wrong = await post(browser, page, '/account/mfa/recovery-codes', { password: 'not-the-password' });
  assert.equal(wrong.status, 401);
  assert.match(pageText(wrong.text), /The password is incorrect/);
  const renewed = await post(browser, wrong, '/account/mfa/recovery-codes', { password: user.password });
  assert.equal(renewed.status, 200, pageText(renewed.text).slice(0, 300));
  assert.match(renewed.headers.get('cache-control') ?? '', /no-store/);
  const codes = [...renewed.text.matchAll(/<li><code>([a-z2-7]{5}-[a-z2-7]{5})<\/code><\/li>/g)].map((m) => m[1]);
  assert.equal(codes.length, 10, 'ten new codes');
  assert.equal(codes.filter((c) => recovery.includes(c)).length, 0, 'all new');
  assert.equal((await admin('GET', `/organizations/${on.slug}/users/${user.id}`)).body.recovery_codes_left, 10);
  assert.ok(!(await recoveryCodeWorks(on, user, recovery[0])), 'an earlier code no longer signs in');
  assert.ok(await recoveryCodeWorks(on, user, codes[0]), 'a new one does');
  assert.ok(!(await recoveryCodeWorks(on, user, codes[0])), 'once');
  assert.equal((await events('mfa.recovery_codes_renewed', user.id, on)).length, 1);
  // The same page's form posted from another browser of the same user (another session): refused.
  const other = await signedInWithCode(on, user, codes[1]);
  const foreign = await post(other, page, '/account/mfa/recovery-codes', { password: user.password });
  assert.ok([400, 403].includes(foreign.status), `${foreign.status}`);
});

/** A browser signed in at `on` as `user` with a recovery code as the second factor. */
async function signedInWithCode(on, user, code) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(on, on.web));
  const challenge = await submitLogin(browser, page, user.username, user.password);
  const [form] = parseForms(challenge.text, challenge.url);
  const res = await browser.post(form.action, formFields(form, { code }));
  assert.equal(res.status, 303);
  return browser;
}

test('change password without the current one within minutes of a second-factor sign-in; a password-only session must give it', async () => {
  const on = await createFixture('acct-waive');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
  const user = await createUser(on);
  const { browser } = await enrolledIn(on, user); // password, then the app's code: a fresh second factor
  const page = await accountPage(browser, on);
  assert.match(pageText(page.text), /Not needed now: you signed in with a passkey or a second factor/);
  const field = formTo(page, '/account/password').html.match(/<input[^>]*id="current_password"[^>]*>/)[0];
  assert.doesNotMatch(field, /required/, 'the current password may be left empty');
  const next = `forgotten-then-renewed ${Math.random().toString(36).slice(2, 8)}`;
  const changed = await changePassword(browser, page, '', next);
  assert.equal(changed.status, 200, pageText(changed.text).slice(0, 300));
  assert.match(pageText(changed.text), /Your password was changed/);
  assert.equal((await events('password.changed', user.id, on)).length, 1);
  // The new password is the one the login takes (then the app's code is asked).
  const fresh = new Browser();
  const withNew = await submitLogin(fresh, await fresh.get(authorizeUrl(on, on.web)), user.username, next);
  assert.match(pageText(withNew.text), /Enter the 6-digit code/);
  const old = new Browser();
  assert.equal((await submitLogin(old, await old.get(authorizeUrl(on, on.web)), user.username, user.password)).status, 401);
  // A wrong current password typed all the same is checked, not waived.
  const again = await accountPage(browser, on);
  const wrong = await changePassword(browser, again, 'not-the-password', `${next} two`);
  assert.equal(wrong.status, 401, pageText(wrong.text).slice(0, 200));
  assert.equal((await events('password.changed', user.id, on)).length, 1);

  // A session that proved only the password: the field is required, and left empty it is refused.
  const plain = await createUser(fx);
  const { browser: b } = await signedIn(plain);
  const plainPage = await accountPage(b);
  assert.doesNotMatch(pageText(plainPage.text), /Not needed now/);
  assert.match(formTo(plainPage, '/account/password').html, /id="current_password"[^>]*required/);
  const empty = await changePassword(b, plainPage, '', next);
  assert.equal(empty.status, 401, pageText(empty.text).slice(0, 200));
  assert.match(pageText(empty.text), /The current password is incorrect/);
  assert.equal((await events('password.changed', plain.id)).length, 0);
  assert.ok(await passwordWorks(plain, plain.password));
});
