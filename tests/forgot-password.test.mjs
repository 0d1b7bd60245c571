// "Forgot password?" and e-mailed links (issue 16, item 4) through a Worker of its own with the
// simulated `send_email` binding (tests/support/worker.mjs `email`): the login page offers the
// link; the answer is the same page and status whether or not the account exists, and only a
// known account gets an e-mail (read back from wrangler's simulated message), whose link sets a
// new password once and signs in. Throttled per account (silently: at most 3 e-mails) and per
// client address (429). The admin API e-mails invitation links with `send_email: true`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, EMAIL_FROM } from './support/worker.mjs';
import { mailTo, waitForMail, linkIn, messages } from './support/mail.mjs';

// This file's Worker, and the fixtures pointed at it (they read CLAVEX_URL when imported).
const adminToken = `forgot-admin-${randomBytes(16).toString('base64url')}`;
const worker = await startWorker({
  email: true,
  vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url') },
});
process.env.CLAVEX_URL = worker.url;
process.env.CLAVEX_ADMIN_TOKEN = adminToken;
const {
  Browser, admin, createFixture, createUser, authorizeUrl, isLoginPage, submitLogin, parseForms,
  formFields, pageText, parseRedirect, sleep,
} = await import('./support/oidc.mjs');

let fx;
before(async () => { fx = await createFixture('forgot'); });
after(() => worker.stop());

/** The forgot-password form, from the login page's link, in `browser`. */
async function forgotPage(browser) {
  const login = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(login));
  const href = login.text.match(/<a href="([^"]*forgot-password)">Forgot password\?<\/a>/)?.[1];
  assert.ok(href, `the login page links "Forgot password?": ${pageText(login.text).slice(0, 300)}`);
  const page = await browser.get(new URL(href, login.url));
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  return page;
}

function ask(browser, page, login) {
  const [form] = parseForms(page.text, page.url);
  assert.ok(form, 'the forgot-password form');
  return browser.post(form.action, formFields(form, { login }));
}

/** What a page says, without its per-request values (sealed state, CSRF token). */
const said = (res) => pageText(res.text.replace(/value="[^"]*"/g, 'value=""'));

async function passwordWorks(username, password) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const res = await submitLogin(browser, page, username, password);
  if (res.status === 401) return false;
  return Boolean(parseRedirect(res.location).params.code);
}

test('the answer is identical for a known and an unknown account; only the known one gets an e-mail, whose link sets the password once and signs in', async () => {
  const user = await createUser(fx);
  const unknownAddress = `nobody-${randomBytes(4).toString('hex')}@example.test`;
  const b1 = new Browser();
  const known = await ask(b1, await forgotPage(b1), user.email);
  const b2 = new Browser();
  const unknown = await ask(b2, await forgotPage(b2), unknownAddress);
  assert.equal(known.status, 200);
  assert.equal(unknown.status, known.status);
  assert.equal(said(unknown), said(known), 'the same page');
  assert.match(said(known), /If an account matches/);
  const [mail] = await waitForMail(worker, user.email);
  assert.equal(mail.subject, `Reset your ${fx.name} password`);
  assert.equal(mail.from, `"${fx.name}" <${EMAIL_FROM}>`);
  assert.match(mail.text, /30 minutes/);
  assert.match(mail.text, new RegExp(`Hello ${user.username}`));
  await sleep(500);
  assert.equal(mailTo(worker, unknownAddress).length, 0, 'no e-mail for an unknown account');

  const link = linkIn(mail);
  assert.ok(link.startsWith(`${fx.issuer}/setup/`), link);
  const browser = new Browser();
  const page = await browser.get(link);
  assert.equal(page.status, 200);
  assert.match(pageText(page.text), /Choose a new password/);
  const [form] = parseForms(page.text, page.url);
  const password = `a reset passphrase ${randomBytes(3).toString('hex')}`;
  const done = await browser.post(form.action, formFields(form, { new_password: password, confirm_password: password }));
  assert.equal(done.status, 303, pageText(done.text).slice(0, 300));
  assert.equal((await browser.get(`${fx.issuer}/account`)).status, 200, 'signed in');
  assert.ok(await passwordWorks(user.username, password));
  assert.equal(await passwordWorks(user.username, user.password), false, 'the old password no longer works');
  // Single use.
  assert.equal((await new Browser().get(link)).status, 410);
  // The username works as well as the address; a newer e-mail's link replaces the older one.
  const b3 = new Browser();
  await ask(b3, await forgotPage(b3), user.username.toUpperCase());
  const [, second] = await waitForMail(worker, user.email, 2);
  const b4 = new Browser();
  await ask(b4, await forgotPage(b4), user.email);
  const [, , third] = await waitForMail(worker, user.email, 3);
  assert.equal((await new Browser().get(linkIn(second))).status, 410, 'superseded');
  assert.equal((await new Browser().get(linkIn(third))).status, 200);
  const issued = await admin('GET', `/organizations/${fx.slug}/events?type=link.issued`);
  const mine = issued.body.events.filter((e) => e.user_id === user.id);
  assert.ok(mine.every((e) => e.detail.by === 'forgot_password' && e.detail.emailed === true), JSON.stringify(mine));
  assert.ok(!JSON.stringify(issued.body).includes(linkIn(third).split('/').pop()), 'never the link in the trail');
});

test('throttled per account: many requests from many addresses send at most 3 e-mails, and every answer is the same', async () => {
  const user = await createUser(fx);
  const answers = [];
  for (let i = 0; i < 6; i += 1) {
    const browser = new Browser();
    answers.push(await ask(browser, await forgotPage(browser), user.email));
  }
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
  assert.equal(new Set(answers.map(said)).size, 1);
  await waitForMail(worker, user.email, 3);
  await sleep(1000);
  assert.equal(mailTo(worker, user.email).length, 3);
  const refused = await admin('GET', `/organizations/${fx.slug}/events?type=link.refused`);
  assert.ok(refused.body.events.some((e) => e.user_id === user.id && e.detail.reason === 'throttled'));
});

test('throttled per address: the 11th request from one address gets 429, known account or not', async () => {
  const browser = new Browser();
  const page = await forgotPage(browser);
  const statuses = [];
  for (let i = 0; i < 11; i += 1) {
    statuses.push((await ask(browser, page, `someone-${i}@example.test`)).status);
  }
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(200));
  const last = await ask(browser, page, fx.alice.email);
  assert.equal(statuses[10], 429);
  assert.equal(last.status, 429);
  assert.ok(Number(last.headers.get('retry-after')) >= 1);
});

test('the admin API e-mails an invitation with send_email: true, and the link works', async () => {
  const username = `mailed${randomBytes(3).toString('hex')}`;
  const res = await admin('POST', `/organizations/${fx.slug}/users`, { username, email: `${username}@example.test`, send_email: true });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.setup_link_emailed, true);
  const [mail] = await waitForMail(worker, `${username}@example.test`);
  assert.equal(mail.subject, `Set up your ${fx.name} account`);
  assert.equal(linkIn(mail), res.body.setup_link);
  const rec = await admin('POST', `/organizations/${fx.slug}/users/${res.body.id}/recovery-link`, { send_email: true });
  assert.equal(rec.status, 200);
  assert.equal(rec.body.emailed, true);
  const [, recovery] = await waitForMail(worker, `${username}@example.test`, 2);
  assert.equal(recovery.subject, `Recover your ${fx.name} account`);
  assert.ok(messages(worker).length >= 2);
});

test('where e-mail is configured, invitation and recovery links are e-mailed without asking; send_email: false leaves it to the administrator', async () => {
  const username = `bydefault${randomBytes(3).toString('hex')}`;
  const address = `${username}@example.test`;
  const res = await admin('POST', `/organizations/${fx.slug}/users`, { username, email: address });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.setup_link_emailed, true);
  const [mail] = await waitForMail(worker, address);
  assert.equal(linkIn(mail), res.body.setup_link, 'the link in the e-mail is the one returned');
  const rec = await admin('POST', `/organizations/${fx.slug}/users/${res.body.id}/recovery-link`);
  assert.equal(rec.status, 200, JSON.stringify(rec.body));
  assert.equal(rec.body.emailed, true);
  const [, recovery] = await waitForMail(worker, address, 2);
  assert.equal(linkIn(recovery), rec.body.link);

  // Asked not to: the link only in the response, no e-mail.
  const quiet = `quiet${randomBytes(3).toString('hex')}`;
  const none = await admin('POST', `/organizations/${fx.slug}/users`, { username: quiet, email: `${quiet}@example.test`, send_email: false });
  assert.equal(none.status, 201, JSON.stringify(none.body));
  assert.ok(none.body.setup_link);
  assert.equal(none.body.setup_link_emailed, undefined);
  const link = await admin('POST', `/organizations/${fx.slug}/users/${none.body.id}/setup-link`, { send_email: false });
  assert.equal(link.body.emailed, undefined);
  // A user created with a password gets no link, so nothing is e-mailed by default either.
  const withPassword = `pw${randomBytes(3).toString('hex')}`;
  const pw = await admin('POST', `/organizations/${fx.slug}/users`, { username: withPassword, email: `${withPassword}@example.test`, password: 'a long enough password' });
  assert.equal(pw.status, 201, JSON.stringify(pw.body));
  assert.equal(pw.body.setup_link, undefined);
  await sleep(1500); // e-mail goes out after the response: give a stray one time to show
  assert.equal(mailTo(worker, `${quiet}@example.test`).length, 0);
  assert.equal(mailTo(worker, `${withPassword}@example.test`).length, 0);
});
