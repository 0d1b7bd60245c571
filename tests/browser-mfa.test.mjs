// The second-factor pages in headless Chromium, with JavaScript disabled (they are plain HTML):
// the enrolment page's QR code decodes to the otpauth:// URI of the key it shows, a code typed
// from it turns the factor on, the recovery codes page lets the user continue to the client, and
// the challenge page takes a recovery code typed by hand. A screenshot of each page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { RP_REDIRECT, admin, authorizeUrl, createFixture, createUser, randomString } from './support/oidc.mjs';
import { assertPng, launchBrowser, newPage, screenshot, stubOrigins, submit, visibleText } from './support/browser.mjs';
import { base32Decode, totp } from './support/totp.mjs';

describe('second-factor pages in headless Chromium', () => {
  let browser;
  let fx;
  before(async () => {
    browser = await launchBrowser();
    fx = await createFixture('brmfa');
    assert.equal((await admin('PATCH', `/organizations/${fx.slug}`, { mfa: 'required' })).status, 200);
  });
  after(async () => { await browser?.close(); });

  async function signIn(page, user) {
    const state = randomString(12);
    await page.goto(authorizeUrl(fx, fx.web, { state }).href);
    await page.type('#username', user.username);
    await page.type('#password', user.password);
    await submit(page);
    return state;
  }

  function assertAtClient(page, state) {
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, RP_REDIRECT, `back at the client: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state);
    assert.ok(url.searchParams.get('code'));
  }

  test('enrol by scanning the QR code, save the recovery codes, then sign in with one (JavaScript disabled)', async () => {
    const user = await createUser(fx);
    const page = await newPage(browser, { javaScript: false });
    await stubOrigins(page, [RP_REDIRECT]);
    const state = await signIn(page, user);

    // The enrolment page, right after the password.
    assert.match(await visibleText(page), /Set up two-step verification/);
    assertPng(await screenshot(page, 'mfa-enrol'));
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'code', 'the cursor is in the code field');
    const key = await page.$eval('#secret', (el) => el.textContent);
    // Decode the QR code as a phone would: from its pixels (at a phone camera's resolution, not a
    // 1x screen's, where a module is barely 3 pixels wide).
    await page.setViewport({ width: 480, height: 720, deviceScaleFactor: 4 });
    const qr = PNG.sync.read(await (await page.$('.qr')).screenshot({ type: 'png' }));
    const decoded = jsQR(new Uint8ClampedArray(qr.data), qr.width, qr.height);
    assert.ok(decoded, 'the QR code decodes');
    const uri = new URL(decoded.data);
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    assert.equal(uri.searchParams.get('secret'), key.replace(/\s/g, ''), 'the QR code holds the key shown in text');
    assert.equal(decodeURIComponent(uri.pathname.slice(1)), `${fx.name}:${user.username}`);
    assert.equal(uri.searchParams.get('issuer'), fx.name);

    await page.type('#code', totp(base32Decode(key)));
    await submit(page);
    const codes = await page.$$eval('#recovery-codes code', (els) => els.map((e) => e.textContent));
    assert.equal(codes.length, 10, 'ten recovery codes');
    assertPng(await screenshot(page, 'mfa-recovery-codes'));
    await submit(page);
    assertAtClient(page, state);

    // Another visitor signs in: the challenge page takes a recovery code typed by hand.
    const second = await newPage(browser, { javaScript: false });
    await stubOrigins(second, [RP_REDIRECT]);
    const state2 = await signIn(second, user);
    assert.match(await visibleText(second), /Enter the 6-digit code/);
    assertPng(await screenshot(second, 'mfa-challenge'));
    await second.type('#code', 'not-a-code');
    await submit(second);
    assert.match(await second.$eval('[role=alert]', (el) => el.innerText), /That code is not valid/);
    assertPng(await screenshot(second, 'mfa-challenge-wrong-code'));
    await second.type('#code', codes[0]);
    await submit(second);
    assertAtClient(second, state2);
  });
});
