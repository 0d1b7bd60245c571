// The form_post page (OAuth 2.0 Form Post Response Mode) in headless Chromium: with JavaScript on
// it submits itself to the client at once (its script allowed by the page's CSP, its POST allowed
// by form-action); with JavaScript off it shows a Continue button that does the same. The client
// is a real local HTTP server (a loopback redirect URI, as the admin API allows) that records what
// it is posted, so what is checked is what a client would receive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  assertTokenSuccess, authorizeUrl, createClient, createFixture, createUser, exchangeCode, randomString,
} from './support/oidc.mjs';
import { assertPng, launchBrowser, newPage, screenshot, submit, visibleText } from './support/browser.mjs';

/** A client's redirect endpoint on 127.0.0.1: records each request and answers a small page. */
async function startReceiver() {
  const received = [];
  const waiters = [];
  const server = createServer((req, res) => {
    // The browser asks every new origin for its icon: not a request of the sign-in.
    if (req.url === '/favicon.ico') {
      res.writeHead(404);
      res.end();
      return;
    }
    // Many clients answer the callback POST with a redirect on their own origin.
    if (req.url === '/cb-then-redirect' && req.method === 'POST') {
      received.push({ method: req.method, url: req.url });
      res.writeHead(303, { Location: '/landed' });
      res.end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const hit = { method: req.method, url: req.url, contentType: req.headers['content-type'], body: new URLSearchParams(body) };
      received.push(hit);
      waiters.splice(0).forEach((w) => w(hit));
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>client</title><p>back at the client</p>');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const uri = `http://127.0.0.1:${server.address().port}/cb`;
  return {
    uri,
    received,
    /** The next request the client receives (or one already received since `from`). */
    next(from, ms = 10_000) {
      if (received.length > from) return Promise.resolve(received[from]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the client received nothing within ${ms} ms`)), ms);
        waiters.push((hit) => { clearTimeout(timer); resolve(hit); });
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('form_post page in headless Chromium', () => {
  let browser;
  let fx;
  let receiver;
  let client;
  before(async () => {
    browser = await launchBrowser();
    receiver = await startReceiver();
    fx = await createFixture('browserfp');
    client = await createClient(fx, {
      client_id: 'local-rp',
      client_name: 'Local RP',
      grant_types: ['authorization_code'],
      redirect_uris: [receiver.uri, receiver.uri.replace('/cb', '/cb-then-redirect')],
      scopes: ['openid', 'profile'],
      token_endpoint_auth_method: 'client_secret_basic',
    });
  });
  after(async () => { await browser?.close(); await receiver?.close(); });

  /** Open the sign-in with form_post and sign in by typing, as a user does. */
  async function signIn(page, user, state) {
    const res = await page.goto(authorizeUrl(fx, client, { response_mode: 'form_post', scope: 'openid profile', state }).href);
    assert.equal(res.status(), 200, 'the login page loads');
    await page.type('#username', user.username);
    await page.type('#password', user.password);
  }

  /** What the client was posted: code, state and iss as form fields, and the code redeems. */
  async function assertPosted(hit, state) {
    assert.equal(hit.method, 'POST', 'the client is POSTed to');
    assert.equal(hit.url, '/cb', 'at the registered path, with nothing in the query');
    assert.match(hit.contentType ?? '', /^application\/x-www-form-urlencoded/);
    assert.deepEqual([...hit.body.keys()], ['code', 'state', 'iss']);
    assert.equal(hit.body.get('state'), state, 'the state comes back unchanged');
    assert.equal(hit.body.get('iss'), fx.issuer);
    assertTokenSuccess(await exchangeCode(fx, client, hit.body.get('code')), 'redeeming the posted code');
  }

  test('with JavaScript the page submits itself to the client', async () => {
    const user = await createUser(fx);
    const page = await newPage(browser, { javaScript: true });
    const violations = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
    const state = `js ${randomString(8)} "<&>`;
    await signIn(page, user, state);
    const from = receiver.received.length;
    await page.click('button[type=submit]');
    const hit = await receiver.next(from);
    await page.waitForFunction((uri) => location.href.startsWith(uri), {}, receiver.uri);
    assert.match(await visibleText(page), /back at the client/, 'the browser arrived at the client');
    await assertPosted(hit, state);
    assert.deepEqual(violations, [], 'no CSP violation');
    assert.equal(receiver.received.length, from + 1, 'posted once');
  });

  test('without JavaScript the page shows Continue, which posts to the client', async () => {
    const user = await createUser(fx);
    const page = await newPage(browser, { javaScript: false });
    const state = `nojs-${randomString(8)}`;
    await signIn(page, user, state);
    const from = receiver.received.length;
    const res = await submit(page);
    assert.equal(res.status(), 200, 'the form_post page');
    assert.match(res.headers()['cache-control'] ?? '', /no-store/);
    assert.ok(page.url().startsWith(fx.issuer), `still at the identity provider: ${page.url()}`);
    // Nothing reaches the client until the user presses the button.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(receiver.received.length, from, 'no POST without JavaScript or a click');
    const text = await visibleText(page);
    assert.match(text, /press Continue/, 'the page says what to do');
    const button = await page.$('button[type=submit]');
    assert.ok(button && await button.isVisible(), 'a visible Continue button');
    assert.equal(await page.$eval('button[type=submit]', (b) => b.innerText.trim()), 'Continue');
    assertPng(await screenshot(page, 'form-post-no-js'));
    await submit(page);
    assert.ok(page.url().startsWith(receiver.uri), `at the client after Continue: ${page.url()}`);
    await assertPosted(await receiver.next(from), state);
  });

  test('an error is posted the same way (prompt=none without a session)', async () => {
    const page = await newPage(browser, { javaScript: true });
    const from = receiver.received.length;
    await page.goto(authorizeUrl(fx, client, { response_mode: 'form_post', scope: 'openid', prompt: 'none', state: 'pn' }).href);
    const hit = await receiver.next(from);
    assert.equal(hit.method, 'POST');
    assert.deepEqual([...hit.body.keys()], ['error', 'error_description', 'state', 'iss']);
    assert.equal(hit.body.get('error'), 'login_required');
    assert.equal(hit.body.get('state'), 'pn');
    assert.equal(hit.body.get('iss'), fx.issuer);
  });

  test("the client's endpoint may answer the POST with a redirect on its own origin", async () => {
    // form-action also governs redirects after the POST (Chromium blocks one to another origin),
    // so this is what the narrowed policy allows: a redirect within the redirect URI's origin.
    const uri = receiver.uri.replace('/cb', '/cb-then-redirect');
    const page = await newPage(browser, { javaScript: true });
    await page.goto(authorizeUrl(fx, { ...client, redirect_uri: uri }, { response_mode: 'form_post', scope: 'openid', prompt: 'none' }).href);
    await page.waitForFunction((u) => location.href === u, {}, receiver.uri.replace('/cb', '/landed'));
    assert.match(await visibleText(page), /back at the client/);
    assert.ok(receiver.received.some((h) => h.url === '/cb-then-redirect'), 'the POST reached the client first');
  });
});
