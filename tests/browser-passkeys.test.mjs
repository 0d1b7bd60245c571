// Passkeys in headless Chromium with its virtual authenticator (DevTools Protocol `WebAuthn`
// domain: ctap2, internal transport, resident keys, user verification). WebAuthn needs an RP ID
// that is a domain, so the pages are opened at http://localhost:PORT (the Worker takes its issuer,
// and so the RP ID, from the request's origin when PUBLIC_BASE_URL is empty). By clicking:
// register on the account page, rename, sign in usernameless at a relying party (a code whose ID
// token says hwk/user/mfa and acr phr) by conditional mediation (the page shot while the request
// waits) and by the button, remove, and see the removed passkey refused; the passkey as the
// second factor of a client that requires one. With JavaScript off the passkey button does not
// appear. A screenshot of each page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RP_REDIRECT, admin, authorizeUrl, createFixture, createUser, randomString, exchangeCode, assertTokenSuccess, decodeJwt,
} from './support/oidc.mjs';
import { assertPng, launchBrowser, newPage, screenshot, stubOrigins, submit, visibleText } from './support/browser.mjs';

const local = (url) => String(url).replace('//127.0.0.1:', '//localhost:');

describe('passkeys in headless Chromium', () => {
  let browser;
  let fx;
  before(async () => {
    browser = await launchBrowser();
    fx = await createFixture('brpk');
  });
  after(async () => { await browser?.close(); });

  async function withAuthenticator(page) {
    const cdp = await page.createCDPSession();
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal', hasResidentKey: true,
        hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    return { cdp, authenticatorId };
  }

  /** Back at the client with a code: its ID token, redeemed at the localhost token endpoint. */
  async function redeemed(page, state) {
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, RP_REDIRECT, `back at the client: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state);
    const at = { ...fx, discovery: { ...fx.discovery, token_endpoint: local(fx.discovery.token_endpoint) } };
    const tokens = assertTokenSuccess(await exchangeCode(at, fx.web, url.searchParams.get('code')));
    return decodeJwt(tokens.id_token).payload;
  }

  test('register, rename, sign in usernameless, remove — by clicking', async () => {
    const user = await createUser(fx);
    const page = await newPage(browser);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await stubOrigins(page, [RP_REDIRECT]);
    const { cdp, authenticatorId } = await withAuthenticator(page);

    // Signed in with the password first (at localhost).
    let state = randomString(12);
    await page.goto(local(authorizeUrl(fx, fx.web, { state }).href));
    assert.equal(await page.$eval('#username', (el) => el.getAttribute('autocomplete')), 'username webauthn');
    await page.type('#username', user.username);
    await page.type('#password', user.password);
    await submit(page);
    await redeemed(page, state);

    // The account page: add a passkey.
    await page.goto(local(`${fx.issuer}/account`));
    assert.match(await visibleText(page), /You have no passkeys yet/);
    assert.equal(await page.$eval('#passkey-add', (f) => f.hidden), false, 'the script shows the button');
    assertPng(await screenshot(page, 'passkeys-account'));
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-add button')]);
    assert.match(await visibleText(page), /Passkey added: Passkey/);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
    assert.equal(Buffer.from(credentials[0].userHandle, 'base64').toString(), user.id);
    assert.equal(credentials[0].rpId, 'localhost');
    assertPng(await screenshot(page, 'passkeys-added'));

    // Rename.
    await page.$eval('input[name=name]', (el) => { el.value = ''; });
    await page.type('input[name=name]', 'My laptop');
    await submit(page, 'form[action$="/account/passkeys/rename"] button');
    assert.match(await visibleText(page), /The passkey was renamed/);
    assert.equal(await page.$eval('input[name=name]', (el) => el.value), 'My laptop');
    assertPng(await screenshot(page, 'passkeys-renamed'));

    // Conditional mediation: the login page's script asks for a passkey as soon as it loads
    // (autofill); the virtual authenticator, with automatic presence, answers it with no click,
    // and the browser lands at the relying party (prompt=login: a new sign-in, not the session).
    // The page's conditional request is held until the screenshot is taken (the virtual
    // authenticator would otherwise answer before anyone could look), then let go.
    const held = await page.evaluateOnNewDocument(() => {
      const get = navigator.credentials.get.bind(navigator.credentials);
      navigator.credentials.get = (o) => (o && o.mediation === 'conditional'
        ? new Promise((resolve) => { window.releaseConditional = resolve; }).then(() => get(o))
        : get(o));
    });
    state = randomString(12);
    const atClient = (u) => u.startsWith(RP_REDIRECT);
    const arrived = page.waitForRequest((r) => atClient(r.url()));
    await page.goto(local(authorizeUrl(fx, fx.web, { state, prompt: 'login' }).href));
    await page.waitForFunction(() => typeof window.releaseConditional === 'function');
    assert.match(await visibleText(page), /Sign in with a passkey/);
    assertPng(await screenshot(page, 'passkeys-conditional'));
    await page.evaluate(() => window.releaseConditional());
    await page.removeScriptToEvaluateOnNewDocument(held.identifier);
    await arrived;
    await page.waitForFunction((rp) => location.href.startsWith(rp), {}, RP_REDIRECT);
    let id = await redeemed(page, state);
    assert.equal(id.sub, user.id);
    assert.deepEqual(id.amr, ['hwk', 'user', 'mfa']);
    assert.equal(id.acr, 'phr');

    // The explicit button, in a browser without conditional mediation.
    await page.evaluateOnNewDocument(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });
    state = randomString(12);
    await page.goto(local(authorizeUrl(fx, fx.web, { state, prompt: 'login' }).href));
    assert.equal(await page.$eval('#passkey-signin', (f) => f.hidden), false);
    assertPng(await screenshot(page, 'passkeys-login'));
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-signin button')]);
    id = await redeemed(page, state);
    assert.deepEqual(id.amr, ['hwk', 'user', 'mfa']);

    // Remove, then the passkey cannot sign in any more.
    await page.goto(local(`${fx.issuer}/account`));
    assert.match(await visibleText(page), /last used/);
    await submit(page, 'form[action$="/account/passkeys/remove"] button');
    assert.match(await visibleText(page), /The passkey was removed/);
    assert.match(await visibleText(page), /You have no passkeys yet/);
    assertPng(await screenshot(page, 'passkeys-removed'));
    state = randomString(12);
    await page.goto(local(authorizeUrl(fx, fx.web, { state, prompt: 'login' }).href));
    const refused = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-signin button')]);
    assert.equal(refused[0].status(), 401);
    assert.match(await page.$eval('[role=alert]', (el) => el.innerText), /could not sign you in/);
    assertPng(await screenshot(page, 'passkeys-refused'));
    assert.deepEqual(errors, [], 'no script error on any page');
  });

  test('an invitation: one admin call, the link opened, a passkey registered by clicking, then a passkey-only sign-in at the relying party', async () => {
    // The README's passwordless path: `curl -X POST …/users` with no password returns the link.
    const username = `brpkinv${randomString(6).toLowerCase()}`;
    const created = await admin('POST', `/organizations/${fx.slug}/users`, { username, email: `${username}@example.test` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.has_password, false);
    const page = await newPage(browser);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await stubOrigins(page, [RP_REDIRECT]);
    const { cdp, authenticatorId } = await withAuthenticator(page);

    assert.equal((await page.goto(local(created.body.setup_link))).status(), 200);
    const text = await visibleText(page);
    assert.match(text, /Set up your account/);
    assert.match(text, new RegExp(`account ${username}`));
    assert.match(text, /The link works once, until .* UTC\./);
    assert.equal(await page.$eval('#passkey-add', (f) => f.hidden), false, 'the script shows the passkey button');
    assertPng(await screenshot(page, 'passkeys-invitation-link'));
    const [landed] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-add button')]);
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).pathname, `/${fx.slug}/account`, `on the account page: ${page.url()}`);
    assert.match(await visibleText(page), new RegExp(`Signed in as ${username}`));
    assert.match(await visibleText(page), /Passkey/);
    assertPng(await screenshot(page, 'passkeys-invitation-account'));
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(Buffer.from(credentials[0].userHandle, 'base64').toString(), created.body.id);
    const user = await admin('GET', `/organizations/${fx.slug}/users/${created.body.id}`);
    assert.equal(user.body.has_password, false, 'the account never had a password');

    // A new sign-in at the relying party (prompt=login, not the session): the login page's
    // conditional mediation answers with the passkey, no password typed.
    const state = randomString(12);
    const arrived = page.waitForRequest((r) => r.url().startsWith(RP_REDIRECT));
    await page.goto(local(authorizeUrl(fx, fx.web, { state, prompt: 'login' }).href));
    await arrived;
    await page.waitForFunction((rp) => location.href.startsWith(rp), {}, RP_REDIRECT);
    const id = await redeemed(page, state);
    assert.equal(id.sub, created.body.id);
    assert.deepEqual(id.amr, ['hwk', 'user', 'mfa']);
    assert.equal(id.acr, 'phr');

    // The link again: used.
    assert.equal((await page.goto(local(created.body.setup_link))).status(), 410);
    assert.match(await visibleText(page), /already used/);
    assert.deepEqual(errors, [], 'no script error on any page');
  });

  test('a client that requires a second factor: the password, then "Use a passkey" clicked on the two-step page; a passkey sign-in needs no second step', async () => {
    const on = await createFixture('brpkmfa');
    const user = await createUser(on);
    const page = await newPage(browser);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await stubOrigins(page, [RP_REDIRECT]);
    const { cdp, authenticatorId } = await withAuthenticator(page);
    // The two-step page is what this test looks at: no conditional mediation answering first.
    await page.evaluateOnNewDocument(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });

    // The account page signs the browser in with the password, then a passkey is added.
    await page.goto(local(`${on.issuer}/account`));
    await page.type('#username', user.username);
    await page.type('#password', user.password);
    await submit(page);
    assert.equal(new URL(page.url()).pathname, `/${on.slug}/account`, page.url());
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-add button')]);
    assert.match(await visibleText(page), /Passkey added/);
    assert.equal((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.length, 1);

    const patched = await admin('PATCH', `/organizations/${on.slug}/clients/${on.web.client_id}`, { require_mfa: true });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));

    // The password at the relying party's sign-in: the two-step page offers the passkey only
    // (no authenticator app), and a click finishes the sign-in.
    let state = randomString(12);
    await page.goto(local(authorizeUrl(on, on.web, { state, prompt: 'login' }).href));
    await page.type('#username', user.username);
    await page.type('#password', user.password);
    await submit(page);
    const text = await visibleText(page);
    assert.match(text, /Two-step verification/);
    assert.doesNotMatch(text, /authenticator app/i, 'no code is asked of a user without an app');
    assert.equal(await page.$eval('#passkey-signin', (f) => f.hidden), false, 'the script shows the passkey button');
    assert.equal(await page.$eval('#passkey-signin', (f) => new URL(f.action).pathname), `/${on.slug}/mfa/passkey`);
    assertPng(await screenshot(page, 'passkeys-second-factor'));
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-signin button')]);
    const at = { ...on, discovery: { ...on.discovery, token_endpoint: local(on.discovery.token_endpoint) } };
    const redeem = async () => {
      const url = new URL(page.url());
      assert.equal(`${url.origin}${url.pathname}`, RP_REDIRECT, `back at the client: ${page.url()}`);
      assert.equal(url.searchParams.get('state'), state);
      return decodeJwt(assertTokenSuccess(await exchangeCode(at, on.web, url.searchParams.get('code'))).id_token).payload;
    };
    let id = await redeem();
    assert.ok(id.amr.includes('pwd') && id.amr.includes('hwk') && id.amr.includes('mfa'), JSON.stringify(id.amr));
    assert.equal(id.acr, 'phr', 'the password and a user-verifying passkey');

    // A usernameless sign-in with the (user-verifying) passkey meets require_mfa by itself.
    state = randomString(12);
    await page.goto(local(authorizeUrl(on, on.web, { state, prompt: 'login' }).href));
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#passkey-signin button')]);
    id = await redeem();
    assert.deepEqual(id.amr, ['hwk', 'user', 'mfa']);
    assert.deepEqual(errors, [], 'no script error on any page');
  });

  test('with JavaScript off the login and account pages show no passkey button and still work', async () => {
    const page = await newPage(browser, { javaScript: false });
    await page.goto(local(authorizeUrl(fx, fx.web).href));
    assert.equal(await page.$eval('#passkey-signin', (f) => f.hidden), true);
    assert.doesNotMatch(await visibleText(page), /Sign in with a passkey/);
    assertPng(await screenshot(page, 'passkeys-login-no-js'));
  });
});
