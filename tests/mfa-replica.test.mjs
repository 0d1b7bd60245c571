// A TOTP code is accepted only for the enrolment it was checked against (issue 15, finding 12),
// tested against a replica that really lags (SIMULATED_LAGGING_REPLICA, tests/support/worker.mjs):
// after an admin reset and a new device's enrolment at the primary, a replica still showing the
// old device's row lets that device's code be checked against the old secret — the primary's
// single-use UPDATE must refuse it. This file starts its own Worker.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, syncReplica } from './support/worker.mjs';
import { base32Decode, totp } from './support/totp.mjs';

const adminToken = `mfa-lag-${randomBytes(18).toString('base64url')}`;
const worker = await startWorker({
  laggingReplica: true,
  vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url') },
});
after(() => worker.stop());
process.env.CLAVEX_URL = worker.url;
process.env.CLAVEX_ADMIN_TOKEN = adminToken;
const {
  Browser, admin, createFixture, createUser, authorizeUrl, isLoginPage, submitLogin, parseForms, formFields,
  pageText, parseRedirect, exchangeCode, assertTokenSuccess,
} = await import('./support/oidc.mjs');

const sync = () => syncReplica(worker, adminToken);

function submit(browser, page, fields = {}) {
  const [form] = parseForms(page.text, page.url);
  assert.ok(form, `a form on the page: ${page.status} ${pageText(page.text).slice(0, 300)}`);
  return browser.post(form.action, formFields(form, fields));
}

/** The page after the password, in a new browser. */
async function password(fx, user) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page), `a login page, got ${page.status}`);
  return { browser, page: await submitLogin(browser, page, user.username, user.password) };
}

/** An enrolment page's secret. */
function secretOf(page) {
  assert.match(pageText(page.text), /Set up two-step verification/, pageText(page.text).slice(0, 300));
  return base32Decode(page.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
}

const stepNow = () => Math.floor(Date.now() / 1000 / 30);

test('after a reset and a new device, a replica still showing the old device does not let its code through', async () => {
  const fx = await createFixture('mfa-lag');
  assert.equal((await admin('PATCH', `/organizations/${fx.slug}`, { mfa: 'required' })).status, 200);
  const user = await createUser(fx, { username: 'twodevices' });
  await sync();

  // Two enrolment pages while the user has no factor: device A's and device B's secrets.
  const a = await password(fx, user);
  const b = await password(fx, user);
  const [keyA, keyB] = [secretOf(a.page), secretOf(b.page)];
  // Device A is enrolled, and the replica catches up with it.
  const codesA = await submit(a.browser, a.page, { code: totp(keyA) });
  assert.equal(codesA.status, 200, pageText(codesA.text).slice(0, 300));
  await sync();
  // The admin resets the factor (the device was lost) and the user enrols device B, both at the
  // primary; the replica still shows device A.
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/${user.id}/mfa`)).status, 204);
  const enrolledAt = stepNow();
  const codesB = await submit(b.browser, b.page, { code: totp(keyB, enrolledAt * 30) });
  assert.equal(codesB.status, 200, `device B enrols at the primary: ${pageText(codesB.text).slice(0, 300)}`);

  // Whoever holds device A (and the password): the challenge is shown (the replica says A), and
  // A's code for a step later than B's enrolment matches A's secret there. Refused at the primary.
  const stolen = await password(fx, user);
  assert.match(pageText(stolen.page.text), /Enter the 6-digit code/, 'the replica still shows a second factor');
  const next = enrolledAt + 1;
  const withA = await submit(stolen.browser, stolen.page, { code: totp(keyA, next * 30) });
  assert.equal(withA.status, 401, `the old device's code is refused: ${withA.status} ${pageText(withA.text).slice(0, 200)}`);
  assert.match(pageText(withA.text), /That code is not valid/);
  assert.equal(withA.setCookies.find((c) => c.name === 'clavex_session'), undefined, 'no session');

  // Once the replica has device B: B's code signs in, A's is refused.
  await sync();
  const owner = await password(fx, user);
  const withB = await submit(owner.browser, owner.page, { code: totp(keyB, next * 30) });
  assert.equal(withB.status, 303, pageText(withB.text).slice(0, 300));
  const code = parseRedirect(withB.location).params.code;
  assertTokenSuccess(await exchangeCode(fx, fx.web, code), 'device B signs in');
  const again = await password(fx, user);
  const lateA = await submit(again.browser, again.page, { code: totp(keyA, (next + 1) * 30) });
  assert.equal(lateA.status, 401);
});
