// Links in headless Chromium, JavaScript off (the pages are plain HTML), on a Worker of its own
// with the simulated e-mail binding: "Forgot password?" clicked from the login page, the link
// read from the simulated e-mail and opened, a new password typed, the account page reached and
// the relying party signed in to with it; then an invitation link from the admin API clicked
// through the same way. A screenshot of each page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker } from './support/worker.mjs';
import { waitForMail, linkIn } from './support/mail.mjs';

const adminToken = `browser-links-${randomBytes(16).toString('base64url')}`;
const worker = await startWorker({
  email: true,
  vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url') },
});
process.env.CLAVEX_URL = worker.url;
process.env.CLAVEX_ADMIN_TOKEN = adminToken;
// Imported only now: they read the Worker's address when they load.
const { RP_REDIRECT, admin, authorizeUrl, createFixture, createUser, randomString } = await import('./support/oidc.mjs');
const {
  assertPng, launchBrowser, newPage, screenshot, stubOrigins, submit, visibleText,
} = await import('./support/browser.mjs');

describe('one-time links in headless Chromium', () => {
  let browser;
  let fx;
  before(async () => {
    browser = await launchBrowser();
    fx = await createFixture('brlinks');
  });
  after(async () => {
    await browser?.close();
    await worker.stop();
  });

  async function signIn(page, username, password) {
    const state = randomString(12);
    await page.goto(authorizeUrl(fx, fx.web, { state }).href);
    await page.type('#username', username);
    await page.type('#password', password);
    await submit(page);
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, RP_REDIRECT, `back at the client: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state);
    assert.ok(url.searchParams.get('code'));
  }

  async function choosePassword(page, password, name) {
    await page.type('#new_password', password);
    await page.type('#confirm_password', password);
    await submit(page);
    assert.equal(new URL(page.url()).pathname, `/${fx.slug}/account`, `on the account page: ${page.url()}`);
    assertPng(await screenshot(page, name));
  }

  test('forgot password: from the login page to the e-mailed link, a new password, the account page and a sign-in', async () => {
    const user = await createUser(fx);
    const page = await newPage(browser, { javaScript: false });
    await stubOrigins(page, [RP_REDIRECT]);
    await page.goto(authorizeUrl(fx, fx.web).href);
    assertPng(await screenshot(page, 'links-login-forgot'));
    await submit(page, 'a[href$="/forgot-password"]');
    assert.match(await visibleText(page), /Forgot your password\?/);
    assertPng(await screenshot(page, 'links-forgot-form'));
    await page.type('#login', user.email);
    const answer = await submit(page);
    assert.equal(answer.status(), 200);
    assert.match(await visibleText(page), /If an account matches what you entered/);
    assertPng(await screenshot(page, 'links-forgot-sent'));

    const [mail] = await waitForMail(worker, user.email);
    const shown = await page.goto(linkIn(mail));
    assert.equal(shown.status(), 200);
    const text = await visibleText(page);
    assert.match(text, /Choose a new password/);
    assert.match(text, new RegExp(user.username));
    // JavaScript is off: the passkey form stays hidden and the page says why; the password form
    // is all there is.
    assert.equal(await page.$eval('#passkey-add', (f) => f.hidden), true);
    assert.match(text, /Registering a passkey needs JavaScript/);
    assertPng(await screenshot(page, 'links-reset-page'));
    const password = `chromium passphrase ${randomString(6)}`;
    await choosePassword(page, password, 'links-reset-account');
    assert.match(await visibleText(page), new RegExp(`Signed in as ${user.username}`));

    // The link again: used.
    const again = await page.goto(linkIn(mail));
    assert.equal(again.status(), 410);
    assert.match(await visibleText(page), /already used/);
    assertPng(await screenshot(page, 'links-reset-used'));

    const fresh = await newPage(browser, { javaScript: false });
    await stubOrigins(fresh, [RP_REDIRECT]);
    await signIn(fresh, user.username, password);
  });

  test('invitation: the admin API e-mails a link; the new user chooses a password and signs in to the relying party', async () => {
    const username = `brinv${randomBytes(3).toString('hex')}`;
    const created = await admin('POST', `/organizations/${fx.slug}/users`, { username, email: `${username}@example.test`, send_email: true });
    assert.equal(created.status, 201);
    const [mail] = await waitForMail(worker, `${username}@example.test`);
    const page = await newPage(browser, { javaScript: false });
    await stubOrigins(page, [RP_REDIRECT]);
    assert.equal((await page.goto(linkIn(mail))).status(), 200);
    assert.match(await visibleText(page), /Set up your account/);
    assertPng(await screenshot(page, 'links-invitation-page'));
    // A weak password first: refused on the page, the link still usable.
    await page.type('#new_password', 'password123');
    await page.type('#confirm_password', 'password123');
    const weak = await submit(page);
    assert.equal(weak.status(), 400);
    assert.match(await page.$eval('[role=alert]', (el) => el.innerText), /common/);
    const password = `invited passphrase ${randomString(6)}`;
    await choosePassword(page, password, 'links-invitation-account');
    // Signed in: the relying party gets a code without a password being asked.
    const state = randomString(12);
    await page.goto(authorizeUrl(fx, fx.web, { state }).href);
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, RP_REDIRECT);
    assert.ok(url.searchParams.get('code'));
    const fresh = await newPage(browser, { javaScript: false });
    await stubOrigins(fresh, [RP_REDIRECT]);
    await signIn(fresh, username, password);
  });
});
