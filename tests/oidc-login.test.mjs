// The browser side: login page, CSRF, SSO session cookie, prompt (none, login, consent), max_age,
// id_token_hint, disabled users, and session isolation between organizations.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, CookieJar, admin, createFixture, createUser, authorizeUrl, authorize, loginForm, formFields,
  isLoginPage, pageText, parseForms, parseRedirect, submitLogin, exchangeCode, assertTokenSuccess,
  decodeJwt, assertErrorRedirect, assertErrorPage, sleep, RP_REDIRECT, loginAndExchange,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('login'); });

/** Log in through the form and exchange the code; returns { browser, idToken (decoded payload), tokens }. */
async function signIn(browser = new Browser(), params = {}) {
  const r = await loginAndExchange(fx, fx.web, { browser, params });
  return { browser, tokens: r.tokens, claims: r.idToken.payload, loginShown: r.auth.loginShown };
}

async function exchange(code) {
  return decodeJwt(assertTokenSuccess(await exchangeCode(fx, fx.web, code)).id_token).payload;
}

test('GET authorize without a session shows the organization\'s login page and sets a CSRF cookie', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.equal(page.status, 200, page.text.slice(0, 300));
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.ok(pageText(page.text).includes(fx.name), `the page shows the organization name "${fx.name}"`);
  const form = loginForm(page);
  assert.equal(form.method, 'post');
  assert.equal(form.rawAction, `/${fx.slug}/login`);
  const username = form.inputs.find((i) => i.name === 'username');
  const password = form.inputs.find((i) => i.name === 'password');
  assert.ok(username && ['text', 'email'].includes(username.type), 'a text username input');
  assert.equal(password.type, 'password');
  assert.ok(form.inputs.some((i) => i.type === 'hidden'), 'hidden inputs carry the request and CSRF token');
  assert.ok(page.setCookies.length >= 1, 'a CSRF cookie is set');
});

test('login page is not cacheable and cannot be framed', async () => {
  const page = await new Browser().get(authorizeUrl(fx, fx.web));
  assert.match(page.headers.get('cache-control') ?? '', /no-store/);
  const xfo = page.headers.get('x-frame-options');
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.ok(xfo === 'DENY' || /frame-ancestors 'none'/.test(csp), 'framing refused');
});

test('correct password → 303 to redirect_uri with code, state, iss and an SSO session cookie', async () => {
  const browser = new Browser();
  const state = 'st-login-ok';
  const page = await browser.get(authorizeUrl(fx, fx.web, { state }));
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303, `303 expected, got ${res.status} ${res.text.slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_REDIRECT);
  assert.ok(r.params.code);
  assert.equal(r.params.state, state);
  assert.equal(r.params.iss, fx.issuer);
  const pageCookies = new Set(page.setCookies.map((c) => c.name));
  const fresh = res.setCookies.filter((c) => c.value && !pageCookies.has(c.name)
    && !(c.attrs['max-age'] !== undefined && Number(c.attrs['max-age']) <= 0));
  assert.ok(fresh.length >= 1, `a session cookie is set: ${res.setCookies.map((c) => c.raw).join(' | ')}`);
  for (const sc of fresh) {
    assert.equal(sc.attrs.path, `/${fx.slug}`, `session cookie ${sc.name} has Path=/${fx.slug}: ${sc.raw}`);
    assert.ok(sc.attrs.httponly, `${sc.name}: HttpOnly`);
    assert.equal(String(sc.attrs.samesite).toLowerCase(), 'lax', `${sc.name}: SameSite=Lax`);
    assert.equal(sc.attrs.secure, undefined, `${sc.name}: no Secure attribute on http://127.0.0.1`);
  }
});

test('wrong password → the form again with a generic message, no redirect, no session', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const res = await submitLogin(browser, page, fx.alice.username, 'wrong-password');
  assert.ok([200, 401].includes(res.status), `200 or 401, got ${res.status}`);
  assert.equal(res.location, null, 'no redirect');
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.ok(pageText(res.text).includes('Incorrect username or password'), 'generic error message');
  assert.ok(isLoginPage({ ...res, status: 200 }), 'the login form is shown again');
  const pageCookies = new Set(page.setCookies.map((c) => c.name));
  const fresh = res.setCookies.filter((c) => c.value && !pageCookies.has(c.name));
  assert.deepEqual(fresh.map((c) => c.raw), [], 'no session cookie after a failed login');
  // No session was created: prompt=none still needs a login.
  const silent = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none', state: 'after-wrong' }));
  assertErrorRedirect(fx, silent, RP_REDIRECT, 'login_required', 'after-wrong');
});

test('unknown user gets exactly the same message as a wrong password', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const res = await submitLogin(browser, page, 'nobody-here', 'whatever');
  assert.ok([200, 401].includes(res.status), `200 or 401, got ${res.status}`);
  assert.equal(res.location, null);
  assert.ok(pageText(res.text).includes('Incorrect username or password'));
});

test('after a failed attempt the re-shown form still works', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web, { state: 'retry' }));
  const failed = await submitLogin(browser, page, fx.alice.username, 'nope');
  const res = await submitLogin(browser, { ...failed, status: 200 }, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303, `${res.status} ${res.text.slice(0, 200)}`);
  assert.equal(parseRedirect(res.location).params.state, 'retry');
});

test('login POST without the CSRF cookie → 400/403 HTML, no code', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const form = loginForm(page);
  const res = await new Browser().post(form.action, formFields(form, { username: fx.alice.username, password: fx.alice.password }));
  assertErrorPage(res, [400, 403], 'no CSRF cookie');
});

test('login POST with another browser\'s CSRF cookie → 400/403, no code', async () => {
  const a = new Browser();
  const b = new Browser();
  const pageA = await a.get(authorizeUrl(fx, fx.web));
  await b.get(authorizeUrl(fx, fx.web));
  const form = loginForm(pageA);
  const res = await b.post(form.action, formFields(form, { username: fx.alice.username, password: fx.alice.password }));
  assertErrorPage(res, [400, 403], 'mismatched CSRF cookie and token');
});

test('login POST with only username and password (no hidden inputs) → 400/403, no code', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const res = await browser.post(loginForm(page).action, { username: fx.alice.username, password: fx.alice.password });
  assertErrorPage(res, [400, 403], 'no hidden inputs');
});

test('login POST with a tampered hidden input → 400/403, no code', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const form = loginForm(page);
  const fields = formFields(form, { username: fx.alice.username, password: fx.alice.password });
  const hidden = form.inputs.filter((x) => x.type === 'hidden' && x.value.length > 8);
  assert.ok(hidden.length >= 1, 'the login form has hidden inputs to tamper with');
  for (const i of hidden) {
    const v = i.value;
    fields.set(i.name, v.slice(0, -4) + (v.endsWith('AAAA') ? 'BBBB' : 'AAAA'));
  }
  const res = await browser.post(form.action, fields);
  assert.equal(res.location, null, `no redirect with tampered hidden inputs: ${res.location}`);
  assert.ok([400, 403].includes(res.status), `400/403 expected, got ${res.status}`);
});

test('a disabled user cannot sign in', async () => {
  const bob = await createUser(fx, { username: 'bob-disabled' });
  const patch = await admin('PATCH', `/organizations/${fx.slug}/users/${bob.id}`, { disabled: true });
  assert.ok(patch.status >= 200 && patch.status < 300, `disable user → ${patch.status} ${JSON.stringify(patch.body)}`);
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const res = await submitLogin(browser, page, bob.username, bob.password);
  assert.equal(res.location, null, `no redirect for a disabled user: ${res.location}`);
  assert.ok([200, 401, 403].includes(res.status), `status ${res.status}`);
  assert.ok(!/[?&]code=/.test(res.text), 'no code anywhere');
});

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

test('the user can sign in with the username in a different case', async () => {
  const a = await authorize(fx, fx.web, { user: { username: fx.alice.username.toUpperCase(), password: fx.alice.password } });
  assert.ok(a.loginShown);
  assert.equal((await exchange(a.code)).sub, fx.alice.sub);
});

// --- hardening ----------------------------------------------------------------------------------

test('the organization name is HTML-escaped on the login page', async () => {
  const hostile = 'Evil <img src=x onerror=alert(1)> & "Co"';
  const fx3 = await createFixture('xss', { name: hostile });
  const page = await new Browser().get(authorizeUrl(fx3, fx3.web));
  assert.equal(page.status, 200);
  assert.ok(!page.text.includes('<img src=x onerror=alert(1)>'), 'no markup injection from the organization name');
  assert.ok(pageText(page.text).includes(hostile), 'the name is shown, escaped');
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

test('a failed login never echoes the password back', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const secret = 'Sup3r-S3cret-Typo!';
  const res = await submitLogin(browser, page, fx.alice.username, secret);
  assert.equal(res.location, null);
  assert.ok(!res.text.includes(secret), 'the typed password is not in the page');
});

test('a login form of one organization cannot be replayed at another organization', async () => {
  const fx2 = await createFixture('login3');
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web, { state: 'cross' }));
  const form = loginForm(page);
  // Same cookies, but posted to org 2's login endpoint with org 2's user.
  const jar = new CookieJar();
  for (const c of browser.jar.cookies.values()) { jar.set(c.name, c.value, c.path); jar.set(c.name, c.value, `/${fx2.slug}`); }
  const res = await new Browser(jar).post(`${fx2.issuer}/login`, formFields(form, { username: fx2.alice.username, password: fx2.alice.password }));
  assert.equal(res.location, null, `no redirect for a cross-organization form: ${res.location}`);
  assert.ok([400, 403].includes(res.status), `400/403 expected, got ${res.status}`);
});
