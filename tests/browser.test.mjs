// The sign-in, consent and error pages in a real browser (headless Chromium): what a user sees,
// types and clicks, with JavaScript on and off (the pages are server-rendered HTML and must work
// without it), the cookies as the browser stored them, and a screenshot of each page.
// New pages (second factor, enrolment) get a test here with the same helpers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OTHER_REDIRECT, RP_REDIRECT, assertTokenSuccess, authorizeUrl, createFixture, createUser, exchangeCode, randomString,
} from './support/oidc.mjs';
import { assertPng, launchBrowser, newPage, screenshot, stubOrigins, submit, visibleText } from './support/browser.mjs';

const BAD_CREDENTIALS = 'Incorrect username or password.';
// Cookie names from src/oidc/cookies.rs.
const SESSION = 'clavex_session';
const CSRF = 'clavex_csrf';

describe('pages in headless Chromium', () => {
  let browser;
  let fx;
  before(async () => {
    // No skip when Chromium is missing: a throw here fails every test of the file with the reason.
    browser = await launchBrowser();
    fx = await createFixture('browser');
  });
  after(async () => { await browser?.close(); });

  /**
   * A fresh visitor (own cookies and address) whose requests to the client's redirect URIs are
   * answered by a stub, so the browser really arrives back at the client.
   */
  async function visitor({ javaScript = true } = {}) {
    const page = await newPage(browser, { javaScript });
    await stubOrigins(page, [RP_REDIRECT, OTHER_REDIRECT]);
    return page;
  }

  /** Open the client's authorization request; the browser is shown the login page. */
  async function openLogin(page, params = {}) {
    const state = randomString(12);
    const res = await page.goto(authorizeUrl(fx, fx.web, { state, ...params }).href);
    assert.equal(res.status(), 200, 'the login page loads');
    assert.ok(await page.$('#username'), 'the page has a username field');
    return state;
  }

  /** Type into the fields as a user would and press the submit button. */
  async function typeAndSubmit(page, username, password) {
    if (username !== undefined) await page.type('#username', username);
    await page.type('#password', password);
    return submit(page);
  }

  /** The browser is at the client's redirect URI with a code, the state sent and the issuer. */
  async function assertBackAtClient(page, state) {
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, fx.web.redirect_uri, `back at the client: ${page.url()}`);
    assert.equal(url.searchParams.get('error'), null, `no error: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state, 'the state comes back unchanged');
    assert.equal(url.searchParams.get('iss'), fx.issuer, 'iss names the issuer (RFC 9207)');
    const code = url.searchParams.get('code');
    assert.ok(code, 'a code is in the redirect');
    // The code is a real one: the client can redeem it.
    assertTokenSuccess(await exchangeCode(fx, fx.web, code), 'redeeming the code from the browser');
  }

  for (const javaScript of [true, false]) {
    const js = javaScript ? 'with JavaScript' : 'with JavaScript disabled';

    test(`typing the name and password and clicking "Sign in" returns to the client (${js})`, async () => {
      const user = await createUser(fx);
      const page = await visitor({ javaScript });
      const state = await openLogin(page);
      assert.match(await visibleText(page), /Sign in to continue to Web App/, 'the page names the application');
      const shot = await screenshot(page, javaScript ? 'login' : 'login-no-js');
      assertPng(shot);
      await typeAndSubmit(page, user.username, user.password);
      await assertBackAtClient(page, state);
    });

    test(`a wrong password shows the message, keeps the name and puts the cursor in the password field (${js})`, async () => {
      const user = await createUser(fx);
      const page = await visitor({ javaScript });
      const state = await openLogin(page);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'username', 'a fresh login page focuses the name');
      const res = await typeAndSubmit(page, user.username, 'not-the-password');
      // The status (401 here) is for machines; the user sees the form again with the message.
      assert.ok([200, 401].includes(res.status()), `the login page again, got ${res.status()}`);
      assert.ok(await page.$('#password'), 'the login form is shown again');
      assert.equal(await page.$eval('[role=alert]', (el) => el.innerText), BAD_CREDENTIALS, `the page says "${BAD_CREDENTIALS}"`);
      assert.equal(await page.$eval('#username', (el) => el.value), user.username, 'the typed name is kept');
      assert.equal(await page.$eval('#password', (el) => el.value), '', 'the password field is empty');
      // autofocus is plain HTML: the cursor is where the correction goes, JavaScript or not.
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'password', 'the keyboard focus is in the password field');
      assertPng(await screenshot(page, javaScript ? 'login-wrong-password' : 'login-wrong-password-no-js'));
      // The user types only the password again and gets in.
      await typeAndSubmit(page, undefined, user.password);
      await assertBackAtClient(page, state);
    });

    test(`an unknown client gets an error page, not a redirect (${js})`, async () => {
      const page = await visitor({ javaScript });
      const url = authorizeUrl(fx, { client_id: 'no-such-client', redirect_uri: RP_REDIRECT });
      const res = await page.goto(url.href);
      assert.equal(res.status(), 400);
      assert.match(res.headers()['content-type'] ?? '', /^text\/html/, 'an HTML page');
      assert.ok(page.url().startsWith(fx.issuer), `the browser stays at the identity provider: ${page.url()}`);
      const text = await visibleText(page);
      assert.match(text, /Unknown application/, 'the page says what is wrong');
      assert.match(text, /invalid_client/, 'and shows the error code');
      assertPng(await screenshot(page, javaScript ? 'error-unknown-client' : 'error-unknown-client-no-js'));
    });

    test(`an unregistered redirect URI gets an error page showing the URI sent (${js})`, async () => {
      const page = await visitor({ javaScript });
      const sent = 'https://evil.example.test/cb';
      const res = await page.goto(authorizeUrl(fx, fx.web, { redirect_uri: sent }).href);
      assert.equal(res.status(), 400);
      assert.ok(page.url().startsWith(fx.issuer), `the browser stays at the identity provider: ${page.url()}`);
      const text = await visibleText(page);
      assert.match(text, /redirect URI is not registered/, 'the page says what is wrong');
      assert.ok(text.includes(sent), 'the page shows the URI that was sent, for the administrator');
      assertPng(await screenshot(page, javaScript ? 'error-redirect-uri' : 'error-redirect-uri-no-js'));
    });
  }

  test('the session and CSRF cookies are HttpOnly, SameSite=Lax, and not Secure over plain http', async () => {
    const user = await createUser(fx);
    const page = await visitor();
    // The raw Set-Cookie headers as they crossed the wire (several are joined by newlines).
    const setCookies = [];
    page.on('response', (r) => {
      const header = r.headers()['set-cookie'];
      if (header && r.url().startsWith(fx.issuer)) {
        for (const line of header.split('\n')) setCookies.push({ method: r.request().method(), line });
      }
    });
    const state = await openLogin(page);
    await typeAndSubmit(page, user.username, user.password);
    await assertBackAtClient(page, state);

    const posted = setCookies.filter((c) => c.method === 'POST').map((c) => c.line);
    assert.ok(posted.some((l) => l.startsWith(`${SESSION}=`)), `the login POST sets ${SESSION}: ${JSON.stringify(posted)}`);
    for (const { line } of setCookies) {
      assert.match(line, /;\s*HttpOnly/i, `HttpOnly: ${line}`);
      assert.match(line, /;\s*SameSite=Lax/i, `SameSite=Lax: ${line}`);
      assert.match(line, new RegExp(`;\\s*Path=/${fx.slug}(;|$)`, 'i'), `scoped to the organization: ${line}`);
      assert.doesNotMatch(line, /;\s*Secure/i, `no Secure on plain http: ${line}`);
    }

    // What the browser kept.
    const jar = await page.browserContext().cookies();
    for (const name of [SESSION, CSRF]) {
      const c = jar.find((k) => k.name === name);
      assert.ok(c, `the browser holds ${name} (has: ${jar.map((k) => k.name).join(', ')})`);
      assert.equal(c.httpOnly, true, `${name} is HttpOnly: scripts cannot read it`);
      assert.equal(c.sameSite, 'Lax', `${name} is SameSite=Lax`);
      assert.equal(c.secure, false, `${name} is not Secure: the test server is plain http (README: Secure on https)`);
      assert.equal(c.path, `/${fx.slug}`, `${name} is scoped to /${fx.slug}`);
    }
    // HttpOnly as a page script sees it.
    assert.equal(await page.goto(`${fx.issuer}/.well-known/openid-configuration`).then(() => page.evaluate(() => document.cookie)), '',
      'no Clavex cookie is readable from JavaScript');
  });

  test('prompt=consent shows the consent page after sign-in; "Allow" returns to the client', async () => {
    const user = await createUser(fx);
    const page = await visitor();
    const state = await openLogin(page, { prompt: 'consent' });
    await typeAndSubmit(page, user.username, user.password);
    const text = await visibleText(page);
    assert.match(text, /Web App would like to:/, 'the consent page names the application');
    assert.match(text, new RegExp(`Signed in as ${user.username}`), 'and who is signed in');
    assertPng(await screenshot(page, 'consent'));
    await submit(page, 'button[value=allow]');
    await assertBackAtClient(page, state);
  });
});
