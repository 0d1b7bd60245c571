// The SSO session after login: silent authorization, prompt (none, login, consent), max_age,
// id_token_hint, session cookie integrity, and isolation between organizations.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, CookieJar, admin, createFixture, createUser, authorizeUrl, authorize, formFields,
  isLoginPage, parseForms, parseRedirect, submitLogin, exchangeCode, assertTokenSuccess, decodeJwt,
  assertErrorRedirect, assertErrorPage, sleep, RP_REDIRECT, loginAndExchange,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('session'); });

/** Log in through the form and exchange the code; returns { browser, tokens, claims (ID token payload) }. */
async function signIn(browser = new Browser(), params = {}) {
  const r = await loginAndExchange(fx, fx.web, { browser, params });
  return { browser, tokens: r.tokens, claims: r.idToken.payload, loginShown: r.auth.loginShown };
}

/** Exchange a code for the web client and return the ID token's claims. */
async function exchange(code) {
  return decodeJwt(assertTokenSuccess(await exchangeCode(fx, fx.web, code)).id_token).payload;
}

test('with a session, authorize → 302 straight to the client with a code (no UI)', async () => {
  const { browser, claims } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.web, { state: 'sso' }));
  assert.equal(res.status, 302, `302 expected, got ${res.status}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_REDIRECT);
  assert.equal(r.params.state, 'sso');
  assert.equal(r.params.iss, fx.issuer);
  const second = await exchange(r.params.code);
  assert.equal(second.sub, claims.sub);
  assert.equal(second.auth_time, claims.auth_time, 'SSO reuses the original authentication time');
});

test('the session is shared between clients of the same organization', async () => {
  const { browser, claims } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.other, { state: 'x' }));
  assert.equal(res.status, 302, `SSO into the other client: ${res.status}`);
  assert.ok(parseRedirect(res.location).params.code);
  assert.equal(claims.sub, fx.alice.sub);
});

test('prompt=none with a session → code, same sub and auth_time', async () => {
  const { browser, claims } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none', state: 'pn' }));
  assert.equal(res.status, 302, `302 expected, got ${res.status} ${res.text.slice(0, 200)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.params.state, 'pn');
  const again = await exchange(r.params.code);
  assert.equal(again.sub, claims.sub);
  assert.equal(again.auth_time, claims.auth_time);
});

test('silent SSO echoes the nonce of the new request', async () => {
  const { browser } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.web, { nonce: 'second-nonce', state: 'sn' }));
  assert.equal(res.status, 302);
  const again = await exchange(parseRedirect(res.location).params.code);
  assert.equal(again.nonce, 'second-nonce');
});

test('prompt=login with a session → login page; after re-login auth_time is later', async () => {
  const { browser, claims } = await signIn();
  await sleep(1100);
  const page = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'login', state: 'pl' }));
  assert.ok(isLoginPage(page), `login page expected, got ${page.status} ${page.location ?? ''}`);
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303);
  const r = parseRedirect(res.location);
  assert.equal(r.params.state, 'pl');
  const again = await exchange(r.params.code);
  assert.equal(again.sub, claims.sub);
  assert.ok(again.auth_time > claims.auth_time, `auth_time ${again.auth_time} later than ${claims.auth_time}`);
});

test('max_age=1 after 2 s forces a fresh login; auth_time is in the ID token', async () => {
  const { browser, claims } = await signIn();
  await sleep(2100);
  const page = await browser.get(authorizeUrl(fx, fx.web, { max_age: '1', state: 'ma' }));
  assert.ok(isLoginPage(page), `login page expected, got ${page.status} ${page.location ?? ''}`);
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303);
  const again = await exchange(parseRedirect(res.location).params.code);
  assert.equal(typeof again.auth_time, 'number');
  assert.ok(again.auth_time > claims.auth_time, 'a fresh authentication');
});

test('a large max_age → code without UI, same auth_time', async () => {
  const { browser, claims } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.web, { max_age: '86400', state: 'ma-big' }));
  assert.equal(res.status, 302, `302 expected, got ${res.status}`);
  const again = await exchange(parseRedirect(res.location).params.code);
  assert.equal(typeof again.auth_time, 'number', 'auth_time present when max_age was sent');
  assert.equal(again.auth_time, claims.auth_time);
});

test('max_age=0 behaves like prompt=login', async () => {
  const { browser } = await signIn();
  const page = await browser.get(authorizeUrl(fx, fx.web, { max_age: '0' }));
  assert.ok(isLoginPage(page), `login page expected, got ${page.status} ${page.location ?? ''}`);
});

test('id_token_hint + prompt=none → silent success, same sub', async () => {
  const { browser, claims, tokens } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none', id_token_hint: tokens.id_token, state: 'hint' }));
  assert.equal(res.status, 302, `302 expected, got ${res.status} ${res.text.slice(0, 200)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.params.error, undefined, res.location);
  const again = await exchange(r.params.code);
  assert.equal(again.sub, claims.sub);
});

test('id_token_hint naming another user + prompt=none → error, no code', async () => {
  const carol = await createUser(fx, { username: 'carol' });
  const other = await loginAndExchange(fx, fx.web, { user: carol });
  const { browser } = await signIn();
  const res = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none', id_token_hint: other.tokens.id_token, state: 'h2' }));
  assertErrorRedirect(fx, res, RP_REDIRECT, ['login_required', 'interaction_required', 'account_selection_required'], 'h2');
});

test('prompt=consent → consent page; allow → code', async () => {
  const { browser } = await signIn();
  const page = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'consent', state: 'c-allow' }));
  assert.equal(page.status, 200, `consent page expected, got ${page.status} ${page.location ?? ''}`);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  const form = parseForms(page.text, page.url).find((f) => f.buttons.some((b) => b.name === 'decision'));
  assert.ok(form, 'a form with decision buttons');
  assert.equal(form.method, 'post');
  assert.equal(form.rawAction, `/${fx.slug}/consent`);
  const allow = form.buttons.find((b) => b.name === 'decision' && b.value === 'allow');
  assert.ok(allow, 'an allow button');
  assert.ok(form.buttons.find((b) => b.name === 'decision' && b.value === 'deny'), 'a deny button');
  const res = await browser.post(form.action, formFields(form, {}, { button: allow }));
  assert.ok([302, 303].includes(res.status), `redirect expected, got ${res.status}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_REDIRECT);
  assert.ok(r.params.code);
  assert.equal(r.params.state, 'c-allow');
  assert.equal(r.params.iss, fx.issuer);
});

test('prompt=consent → deny → access_denied with state and iss', async () => {
  const { browser } = await signIn();
  const page = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'consent', state: 'c-deny' }));
  const form = parseForms(page.text, page.url).find((f) => f.buttons.some((b) => b.name === 'decision'));
  assert.ok(form, `consent form expected, got ${page.status}`);
  const deny = form.buttons.find((b) => b.value === 'deny');
  const res = await browser.post(form.action, formFields(form, {}, { button: deny }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'access_denied', 'c-deny');
});

test('consent POST without the page\'s hidden inputs → 400/403, no code', async () => {
  const { browser } = await signIn();
  await browser.get(authorizeUrl(fx, fx.web, { prompt: 'consent' }));
  const res = await browser.post(`${fx.issuer}/consent`, { decision: 'allow' });
  assertErrorPage(res, [400, 403], 'consent without its form');
});

test('prompt=none together with login → invalid_request', async () => {
  const state = 'pnl';
  const res = await new Browser().get(authorizeUrl(fx, fx.web, { prompt: 'none login', state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', state);
});

test('an organization\'s session does not sign in to another organization', async () => {
  const fx2 = await createFixture('login2');
  const { browser } = await signIn();
  // Replay every cookie of org 1 on org 2's paths, as a hostile page could not but a buggy server might accept.
  const jar = new CookieJar();
  for (const c of browser.jar.cookies.values()) jar.set(c.name, c.value, `/${fx2.slug}`);
  const res = await new Browser(jar).get(authorizeUrl(fx2, fx2.web, { state: 'iso' }));
  assert.ok(isLoginPage(res), `org 2 shows its login page, got ${res.status} ${res.location ?? ''}`);
  const silent = await new Browser(jar).get(authorizeUrl(fx2, fx2.web, { prompt: 'none', state: 'iso2' }));
  assertErrorRedirect(fx2, silent, RP_REDIRECT, 'login_required', 'iso2');
});

test('a tampered session cookie is not a session', async () => {
  const { browser } = await signIn();
  const jar = new CookieJar();
  for (const c of browser.jar.cookies.values()) {
    const v = c.value;
    jar.set(c.name, v.slice(0, -3) + (v.endsWith('AAA') ? 'BBB' : 'AAA'), c.path);
  }
  const res = await new Browser(jar).get(authorizeUrl(fx, fx.web, { prompt: 'none', state: 'tamper' }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'login_required', 'tamper');
});

test('session fixation: a planted session cookie value is replaced at login', async () => {
  // Learn the session cookie's name from an ordinary login.
  const probe = new Browser();
  const page0 = await probe.get(authorizeUrl(fx, fx.web));
  const formCookies = new Set(page0.setCookies.map((c) => c.name));
  const login0 = await submitLogin(probe, page0, fx.alice.username, fx.alice.password);
  const sessionNames = login0.setCookies.filter((c) => c.value && !formCookies.has(c.name)).map((c) => c.name);
  assert.ok(sessionNames.length >= 1, 'a session cookie is set at login');

  const planted = new CookieJar();
  for (const name of sessionNames) planted.set(name, 'planted-0123456789abcdefghijklmnopqrstuvwxyz', `/${fx.slug}`);
  const browser = new Browser(planted);
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page), 'a planted value is not a session');
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303);
  for (const name of sessionNames) {
    const c = [...browser.jar.cookies.values()].find((x) => x.name === name);
    assert.ok(c && !c.value.startsWith('planted-'), `${name} carries a new server-chosen value after login`);
  }
});

test('a disabled user\'s existing session no longer yields codes', async () => {
  const dave = await createUser(fx, { username: 'dave-later-disabled' });
  const browser = new Browser();
  await authorize(fx, fx.web, { browser, user: dave });
  const patch = await admin('PATCH', `/organizations/${fx.slug}/users/${dave.id}`, { disabled: true });
  assert.ok(patch.status >= 200 && patch.status < 300, `disable → ${patch.status}`);
  const res = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none', state: 'dis' }));
  if (res.location) {
    const r = parseRedirect(res.location);
    assert.equal(r.params.code, undefined, `no code for a disabled user's session: ${res.location}`);
    assert.ok(r.params.error, 'an error instead');
  } else {
    assert.ok(res.status >= 400, `no success for a disabled user's session: ${res.status}`);
  }
});

test('prompt=none with an expired max_age → login_required, no code', async () => {
  const { browser } = await signIn();
  await sleep(2100);
  const res = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none', max_age: '1', state: 'pn-ma' }));
  assertErrorRedirect(fx, res, RP_REDIRECT, ['login_required', 'interaction_required'], 'pn-ma');
});
