// The login page and form: what the browser sees, credentials, CSRF protection, escaping,
// disabled users, and form replay across organizations.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, CookieJar, admin, createFixture, createUser, authorizeUrl, authorize, loginForm,
  formFields, isLoginPage, pageText, parseRedirect, submitLogin, exchangeCode, assertTokenSuccess,
  decodeJwt, assertErrorRedirect, assertErrorPage, RP_REDIRECT,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('login'); });

/** Exchange a code for the web client and return the ID token's claims. */
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

test('the user can sign in with the username in a different case', async () => {
  const a = await authorize(fx, fx.web, { user: { username: fx.alice.username.toUpperCase(), password: fx.alice.password } });
  assert.ok(a.loginShown);
  assert.equal((await exchange(a.code)).sub, fx.alice.sub);
});

test('the organization name is HTML-escaped on the login page', async () => {
  const hostile = 'Evil <img src=x onerror=alert(1)> & "Co"';
  const fx3 = await createFixture('xss', { name: hostile });
  const page = await new Browser().get(authorizeUrl(fx3, fx3.web));
  assert.equal(page.status, 200);
  assert.ok(!page.text.includes('<img src=x onerror=alert(1)>'), 'no markup injection from the organization name');
  assert.ok(pageText(page.text).includes(hostile), 'the name is shown, escaped');
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
