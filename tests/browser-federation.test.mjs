// "Sign in with …" in headless Chromium (issue 17): the login page's link to an upstream
// connection is clicked, the person signs in at the upstream (another organization of the same
// Worker, a real identity provider) by typing, and the browser lands at the relying party with a
// code that redeems — with JavaScript on and off, and without a CSP violation on the way. An
// upstream account with no link lands on the page that links it by signing in once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, admin, assertTokenSuccess, authorizeUrl, createClient, createFixture, createUser, decodeJwt,
  exchangeCode, RP_REDIRECT,
} from './support/oidc.mjs';
import { assertPng, launchBrowser, newPage, screenshot, stubOrigins, submit, visibleText } from './support/browser.mjs';

describe('sign in with another identity provider, in headless Chromium', () => {
  let browser;
  let up;
  let down;
  let upClient;
  before(async () => {
    browser = await launchBrowser();
    up = await createFixture('bupstream');
    down = await createFixture('bdown');
    upClient = await createClient(up, {
      client_id: 'clavex-down',
      client_name: 'Down',
      redirect_uris: [`${BASE}/${down.slug}/connections/callback`],
      scopes: ['openid', 'profile', 'email'],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    const res = await admin('POST', `/organizations/${down.slug}/connections`, {
      issuer: up.issuer, client_id: upClient.client_id, client_secret: upClient.secret, label: 'Acme Upstream', jit_create: true,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });
  after(async () => { await browser?.close(); });

  for (const javaScript of [true, false]) {
    test(`click "Sign in with Acme Upstream", sign in there, land at the client with a code (JavaScript ${javaScript ? 'on' : 'off'})`, async () => {
      const person = await createUser(up);
      const page = await newPage(browser, { javaScript });
      await stubOrigins(page, [RP_REDIRECT]);
      const violations = [];
      page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
      const res = await page.goto(authorizeUrl(down, down.web).href);
      assert.equal(res.status(), 200);
      assert.match(await visibleText(page), /Sign in with Acme Upstream/);
      if (javaScript) assertPng(await screenshot(page, 'login-with-upstream-link'));
      const [atUpstream] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('a.upstream')]);
      assert.equal(atUpstream.status(), 200);
      assert.ok(page.url().startsWith(`${up.issuer}/authorize`), `at the upstream: ${page.url()}`);
      assert.match(await visibleText(page), /Sign in to continue to Down/);
      await page.type('#username', person.username);
      await page.type('#password', person.password);
      await submit(page);
      const landed = new URL(page.url());
      assert.equal(`${landed.origin}${landed.pathname}`, RP_REDIRECT, `at the client: ${page.url()}`);
      const code = landed.searchParams.get('code');
      assert.ok(code, 'a code for the client');
      const tokens = assertTokenSuccess(await exchangeCode(down, down.web, code));
      assert.deepEqual(decodeJwt(tokens.id_token).payload.amr, ['fed']);
      assert.deepEqual(violations, [], 'no CSP violation');
    });
  }

  test('an upstream account with no link: the page asks to sign in once, and typing the password links it and lands at the client', async () => {
    const res = await admin('POST', `/organizations/${down.slug}/connections`, {
      issuer: up.issuer, client_id: upClient.client_id, client_secret: upClient.secret, label: 'Acme Strict',
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const mine = await createUser(down, { email: 'bea@shared.example.test' });
    const theirs = await createUser(up, { email: 'bea@shared.example.test' });
    const page = await newPage(browser, { javaScript: false });
    await stubOrigins(page, [RP_REDIRECT]);
    await page.goto(authorizeUrl(down, down.web).href);
    const href = await page.$$eval('a.upstream', (links) => links.find((a) => a.textContent === 'Sign in with Acme Strict')?.href);
    assert.ok(href, 'a "Sign in with Acme Strict" link');
    await page.goto(href);
    assert.ok(page.url().startsWith(`${up.issuer}/authorize`), `at the upstream: ${page.url()}`);
    await page.type('#username', theirs.username);
    await page.type('#password', theirs.password);
    await submit(page);
    const text = await visibleText(page);
    assert.match(text, /Link your Acme Strict account to your account here: sign in once with your username and password/);
    assert.ok(!text.includes(mine.username), 'the page names no account');
    assertPng(await screenshot(page, 'link-confirmation'));
    await page.type('#username', mine.username);
    await page.type('#password', mine.password);
    await submit(page);
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, RP_REDIRECT, `at the client: ${page.url()}`);
    const tokens = assertTokenSuccess(await exchangeCode(down, down.web, landed.searchParams.get('code')));
    assert.equal(decodeJwt(tokens.id_token).payload.sub, mine.sub);
    assert.deepEqual(decodeJwt(tokens.id_token).payload.amr, ['pwd', 'fed']);
  });
});
