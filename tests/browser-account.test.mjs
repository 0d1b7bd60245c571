// The account page in headless Chromium with JavaScript disabled (it is plain HTML): a signed-in
// user changes the password by typing and clicking, sees the result, then signs out everywhere
// and finds the page asking to sign in. A screenshot of each page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RP_REDIRECT, authorizeUrl, createFixture, createUser, randomString } from './support/oidc.mjs';
import { assertPng, launchBrowser, newPage, screenshot, stubOrigins, submit, visibleText } from './support/browser.mjs';

describe('the account page in headless Chromium', () => {
  let browser;
  let fx;
  before(async () => {
    browser = await launchBrowser();
    fx = await createFixture('bracct');
  });
  after(async () => { await browser?.close(); });

  async function signIn(page, user, password = user.password) {
    const state = randomString(12);
    await page.goto(authorizeUrl(fx, fx.web, { state }).href);
    await page.type('#username', user.username);
    await page.type('#password', password);
    await submit(page);
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, RP_REDIRECT, `back at the client: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state);
    assert.ok(url.searchParams.get('code'));
  }

  test('change the password, then sign out everywhere (JavaScript disabled)', async () => {
    const user = await createUser(fx);
    const page = await newPage(browser, { javaScript: false });
    await stubOrigins(page, [RP_REDIRECT]);
    await signIn(page, user);

    const shown = await page.goto(`${fx.issuer}/account`);
    assert.equal(shown.status(), 200);
    assert.match(shown.headers()['cache-control'] ?? '', /no-store/);
    const text = await visibleText(page);
    assert.match(text, new RegExp(`Signed in as ${user.username}`));
    assert.match(text, /Change password/);
    assert.match(text, /Sign out everywhere/);
    // The one script is for passkeys; with JavaScript off its form stays hidden.
    assert.ok(await page.$$eval('script', (s) => s.length) <= 1, 'at most the passkey script');
    assert.equal(await page.$eval('#passkey-add', (f) => f.hidden), true, 'no passkey button without JavaScript');
    assertPng(await screenshot(page, 'account'));

    // A wrong current password: the page again, saying so.
    const next = 'a brand new passphrase 42';
    await page.type('#current_password', 'not-my-password');
    await page.type('#new_password', next);
    await page.type('#confirm_password', next);
    const wrong = await submit(page);
    assert.equal(wrong.status(), 401);
    assert.match(await page.$eval('[role=alert]', (el) => el.innerText), /The current password is incorrect/);
    assertPng(await screenshot(page, 'account-wrong-password'));

    await page.type('#current_password', user.password);
    await page.type('#new_password', next);
    await page.type('#confirm_password', next);
    const changed = await submit(page);
    assert.equal(changed.status(), 200);
    assert.match(await page.$eval('[role=status]', (el) => el.innerText), /Your password was changed/);
    assertPng(await screenshot(page, 'account-password-changed'));

    // Still signed in here with the new session: the page opens again without a sign-in.
    assert.equal((await page.goto(`${fx.issuer}/account`)).status(), 200);
    const out = await submit(page, 'form[action$="/account/sign-out-everywhere"] button[type=submit]');
    assert.equal(out.status(), 200);
    assert.match(await visibleText(page), /Every session of yours has ended/);
    assert.match(await page.title(), /Signed out everywhere/);
    assertPng(await screenshot(page, 'account-signed-out-everywhere'));

    // Signed out: the account page asks for a sign-in (the login page) and comes back after it.
    const after = await page.goto(`${fx.issuer}/account`);
    assert.equal(after.status(), 200);
    assert.equal(new URL(page.url()).pathname, `/${fx.slug}/authorize`);
    assert.match(await visibleText(page), /your account/);
    assertPng(await screenshot(page, 'account-sign-in'));
    await page.type('#username', user.username);
    await page.type('#password', next);
    await submit(page);
    assert.equal(new URL(page.url()).pathname, `/${fx.slug}/account`, `back on the account page: ${page.url()}`);
    assert.match(await visibleText(page), new RegExp(`Signed in as ${user.username}`));

    // The new password signs in.
    const again = await newPage(browser, { javaScript: false });
    await stubOrigins(again, [RP_REDIRECT]);
    await signIn(again, user, next);
  });
});
