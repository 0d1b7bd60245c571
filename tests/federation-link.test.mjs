// Upstream federation (issue 17, item 3): an upstream account with no link, which the connection
// may neither create a user for nor link by e-mail, is linked by signing in ONCE with the local
// account's username and password on a confirmation page. The upstream is another Clavex
// organization of the same running Worker (no mocks). Covered: the page (which names no account),
// the link and the code, the ID token's amr, single use (replayed, after logout, raced 50 times),
// the binding to the browser and the organization, wrong passwords counted like the login's, a
// disabled user, one link per connection per user, a second factor asked before the link is
// written, and organizations without password sign-in still refusing with a page.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, Browser, createFixture, createClient, createUser, admin, authorizeUrl, exchangeCode,
  assertTokenSuccess, decodeJwt, parseRedirect, submitLogin, isLoginPage, decodeEntities, pageText,
  parseForms, formFields, endpoint,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

let up; // the upstream identity provider
let down; // the organization people sign in to
let upClient; // Clavex's client at the upstream
let strict; // connection: neither creates users nor links by e-mail
let other; // a second such connection to the same upstream
const callbackUri = () => `${BASE}/${down.slug}/connections/callback`;
const linksOf = async (user) => (await admin('GET', `/organizations/${down.slug}/users/${user.sub}/links`)).body.links;

async function connection(body) {
  const res = await admin('POST', `/organizations/${down.slug}/connections`, {
    issuer: up.issuer, client_id: upClient.client_id, client_secret: upClient.secret, ...body,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

before(async () => {
  up = await createFixture('fl-up');
  down = await createFixture('fl-down');
  upClient = await createClient(up, {
    client_id: 'clavex-down',
    client_name: 'Down',
    redirect_uris: [callbackUri()],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  strict = await connection({ label: 'Strict' });
  other = await connection({ label: 'Other IdP' });
});

function upstreamLink(page, label) {
  const links = [...page.text.matchAll(/<a class="upstream" href="([^"]+)">([^<]*)<\/a>/g)]
    .map((m) => ({ href: new URL(decodeEntities(m[1]), page.url).toString(), text: decodeEntities(m[2]) }));
  const link = links.find((l) => l.text === `Sign in with ${label}`);
  assert.ok(link, `a "Sign in with ${label}" link; got ${JSON.stringify(links.map((l) => l.text))}`);
  return link.href;
}

/** Authorize at `down` for `client`, "Sign in with {label}", sign in upstream: the callback's answer. */
async function viaUpstream(conn, upUser, { browser = new Browser(), client = down.web } = {}) {
  const login = await browser.get(authorizeUrl(down, client));
  assert.equal(login.status, 200, `login page at down: ${login.status}`);
  const start = await browser.get(upstreamLink(login, conn.label));
  assert.equal(start.status, 302, `start: ${start.status} ${pageText(start.text).slice(0, 300)}`);
  const upLogin = await browser.get(start.location);
  assert.ok(isLoginPage(upLogin), `upstream login page: ${upLogin.status}`);
  const upAnswer = await submitLogin(browser, upLogin, upUser.username, upUser.password);
  assert.equal(upAnswer.status, 303, `upstream redirect: ${upAnswer.status} ${pageText(upAnswer.text).slice(0, 300)}`);
  return { page: await browser.get(upAnswer.location), browser };
}

/** The confirmation page's form, asserting what the page says. */
function confirmationForm(page, label) {
  assert.ok([200, 401, 429].includes(page.status), `the confirmation page: ${page.status} ${pageText(page.text).slice(0, 300)}`);
  assert.match(pageText(page.text), new RegExp(`Link your ${label} account to your account here: sign in once with your username and password`));
  const form = parseForms(page.text, page.url).find((f) => f.inputs.some((i) => i.name === 'password'));
  assert.ok(form, 'a password form');
  assert.equal(form.method, 'post');
  assert.equal(form.action, `${BASE}/${down.slug}/connections/link`);
  return form;
}

/** Post the confirmation form of `page` in `browser` with a username and password. */
function confirm(browser, page, label, username, password, { url } = {}) {
  const form = confirmationForm(page, label);
  return browser.post(url ?? form.action, formFields(form, { username, password }));
}

async function codeToIdToken(res, client = down.web) {
  assert.ok([302, 303].includes(res.status), `redirect to the client: ${res.status} ${pageText(res.text).slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.ok(r.params.code, `a code: ${res.location}`);
  const tokens = assertTokenSuccess(await exchangeCode(down, client, r.params.code));
  return decodeJwt(tokens.id_token).payload ?? decodeJwt(tokens.id_token);
}

async function events(type) {
  const res = await admin('GET', `/organizations/${down.slug}/events?type=${type}&limit=200`);
  assert.equal(res.status, 200);
  return res.body.events;
}

async function eventually(type, pred) {
  for (let i = 0; i < 40; i += 1) {
    const found = (await events(type)).filter(pred);
    if (found.length) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no ${type} event as expected: ${JSON.stringify(await events(type))}`);
}

/** A local user and an upstream user with the same e-mail address (the connection does not link by it). */
async function pair(name, { local = {} } = {}) {
  const email = `${name}@shared.example.test`;
  const mine = await createUser(down, { username: name, email, ...local });
  const theirs = await createUser(up, { username: `${name}-up`, email });
  return { mine, theirs };
}

test('no link: the callback offers to link by signing in once; a wrong password is refused; the right one links, signs in (amr pwd fed) and is never asked again', async () => {
  const { mine, theirs } = await pair('erin');
  const { page, browser } = await viaUpstream(strict, theirs);
  confirmationForm(page, 'Strict');
  assert.ok(!pageText(page.text).includes('erin'), 'the page names no account (neither the local name nor the address)');
  assert.doesNotMatch(page.location ?? '', /code=/);
  assert.deepEqual(await linksOf(mine), [], 'nothing linked by showing the page');
  await eventually('upstream.refused', (e) => e.detail.connection_id === strict.id && e.detail.offered === 'link_confirmation');

  const wrong = await confirm(browser, page, 'Strict', mine.username, 'not-the-password');
  assert.equal(wrong.status, 401);
  assert.match(pageText(wrong.text), /Incorrect username or password\./);
  assert.deepEqual(await linksOf(mine), []);
  await eventually('signin.failed', (e) => e.user_id === mine.sub && e.detail.connection_id === strict.id);

  // The form shown again after the wrong password links with the right one.
  const ok = await confirm(browser, wrong, 'Strict', mine.username, mine.password);
  const idToken = await codeToIdToken(ok);
  assert.equal(idToken.sub, mine.sub, 'signed in as the account whose password was given');
  assert.deepEqual(idToken.amr, ['pwd', 'fed'], 'a password and an upstream sign-in, not mfa');
  assert.equal(idToken.acr, 'urn:clavex:acr:pwd');
  const links = await linksOf(mine);
  assert.equal(links.length, 1);
  assert.equal(links[0].connection_id, strict.id);
  assert.equal(links[0].upstream_sub, theirs.sub);
  const confirmed = await eventually('upstream.link.confirmed', (e) => e.user_id === mine.sub);
  assert.equal(confirmed.length, 1);
  assert.equal(confirmed[0].detail.connection_id, strict.id);
  assert.ok(!JSON.stringify(confirmed).includes(theirs.sub), 'the upstream sub only hashed');

  // Replayed in the same browser, right password and all: refused, nothing new.
  const replay = await confirm(browser, page, 'Strict', mine.username, mine.password);
  assert.equal(replay.status, 400, pageText(replay.text).slice(0, 300));
  assert.match(pageText(replay.text), /already used/);
  assert.equal(replay.location, null);
  await eventually('upstream.refused', (e) => e.detail.reason === 'confirmation_replayed' && e.user_id === mine.sub);

  // From now on the upstream sign-in alone signs in to the linked account.
  const again = await viaUpstream(strict, theirs);
  const second = await codeToIdToken(again.page);
  assert.equal(second.sub, mine.sub);
  assert.deepEqual(second.amr, ['fed']);
  assert.equal((await linksOf(mine)).length, 1);
  assert.equal((await events('upstream.link.confirmed')).filter((e) => e.user_id === mine.sub).length, 1);
});

test('the confirmation form works only in its browser and its organization, and not after logout once used', async () => {
  const { mine, theirs } = await pair('fritz');
  const { page, browser } = await viaUpstream(strict, theirs);
  const form = confirmationForm(page, 'Strict');
  const fields = formFields(form, { username: mine.username, password: mine.password });

  // Another browser (its own CSRF cookie): refused before the password is looked at.
  const elsewhere = new Browser();
  assert.ok(isLoginPage(await elsewhere.get(authorizeUrl(down, down.web))), 'the other browser has a CSRF cookie of its own');
  const stolen = await elsewhere.post(form.action, fields);
  assert.equal(stolen.status, 403, pageText(stolen.text).slice(0, 200));
  assert.match(pageText(stolen.text), /could not be verified/);

  // Another organization (this browser's cookie there too): the state does not open.
  const third = await createFixture('fl-other');
  assert.ok(isLoginPage(await browser.get(authorizeUrl(third, third.web))));
  const moved = await browser.post(`${BASE}/${third.slug}/connections/link`, fields);
  assert.equal(moved.status, 400, pageText(moved.text).slice(0, 200));
  assert.match(pageText(moved.text), /not valid here/);
  assert.deepEqual(await linksOf(mine), [], 'no link from either');

  // The form itself was still good: in its own browser it links.
  const ok = await browser.post(form.action, fields);
  assert.equal((await codeToIdToken(ok)).sub, mine.sub);

  // Signed out (RP-initiated logout), the used form is still refused.
  const logout = new URL(endpoint(down, 'end_session_endpoint'));
  logout.searchParams.set('client_id', down.web.client_id);
  const out = await browser.get(logout);
  assert.ok(out.status < 500, `logout: ${out.status}`);
  const after = await browser.post(form.action, fields);
  assert.ok([400, 403].includes(after.status), `refused after logout: ${after.status} ${pageText(after.text).slice(0, 200)}`);
  assert.equal(after.location, null, 'no redirect, no code');
  assert.equal((await linksOf(mine)).length, 1);
});

test('50 posts of the same confirmation form at once: exactly one link and one code, the rest a page, no 5xx', async () => {
  const { mine, theirs } = await pair('gina');
  const { page, browser } = await viaUpstream(strict, theirs);
  const form = confirmationForm(page, 'Strict');
  const fields = formFields(form, { username: mine.username, password: mine.password });
  const answers = await Promise.all(Array.from({ length: 50 }, () => browser.post(form.action, fields)));
  const statuses = answers.map((a) => a.status);
  assert.ok(statuses.every((s) => s < 500), `no 5xx: ${statuses.join(',')}`);
  const codes = answers.filter((a) => a.location && /[?&]code=/.test(a.location));
  assert.equal(codes.length, 1, `exactly one code: ${statuses.join(',')}`);
  for (const a of answers.filter((x) => x !== codes[0])) {
    assert.ok([400, 429].includes(a.status), `a page: ${a.status}`);
    assert.match(pageText(a.text), /already used|Too many failed sign-in attempts/);
  }
  assert.ok(answers.some((a) => a.status === 400 && /already used/.test(pageText(a.text))), 'some were checked and found the form used');
  assert.equal((await codeToIdToken(codes[0])).sub, mine.sub);
  assert.equal((await linksOf(mine)).length, 1);
  const confirmed = await eventually('upstream.link.confirmed', (e) => e.user_id === mine.sub);
  assert.equal(confirmed.length, 1, 'one link confirmed');
});

test('a disabled user gets the same answer as a wrong password; wrong passwords are throttled as at the login', async () => {
  const { mine, theirs } = await pair('hugo');
  assert.equal((await admin('PATCH', `/organizations/${down.slug}/users/${mine.sub}`, { disabled: true })).status, 200);
  const { page, browser } = await viaUpstream(strict, theirs);
  const disabled = await confirm(browser, page, 'Strict', mine.username, mine.password);
  assert.equal(disabled.status, 401);
  assert.match(pageText(disabled.text), /Incorrect username or password\./);
  assert.deepEqual(await linksOf(mine), []);
  assert.equal((await admin('PATCH', `/organizations/${down.slug}/users/${mine.sub}`, { disabled: false })).status, 200);

  // Counted under the account like the login form's guesses: the fifth failure starts a wait.
  const { mine: ida, theirs: idaUp } = await pair('ida');
  const second = await viaUpstream(strict, idaUp);
  let shown = second.page;
  for (let i = 1; i <= 5; i += 1) {
    shown = await confirm(second.browser, shown, 'Strict', ida.username, `wrong-${i}`);
    if (i < 5) assert.equal(pageText(shown.text).match(/Incorrect username or password\.( Too many)?/)[0], 'Incorrect username or password.', `attempt ${i}`);
  }
  assert.match(pageText(shown.text), /Incorrect username or password\. Too many failed sign-in attempts\. Try again in/);
  await eventually('signin.failed', (e) => e.user_id === ida.sub && e.detail.connection_id === strict.id);
  assert.deepEqual(await linksOf(ida), []);
});

test('one link per connection per user: an account linked to one upstream account refuses a second one', async () => {
  const { mine, theirs } = await pair('jana');
  const first = await viaUpstream(strict, theirs);
  await codeToIdToken(await confirm(first.browser, first.page, 'Strict', mine.username, mine.password));
  const another = await createUser(up, { username: 'jana-second', email: 'jana2@up.example.test' });
  const second = await viaUpstream(strict, another);
  const refused = await confirm(second.browser, second.page, 'Strict', mine.username, mine.password);
  assert.equal(refused.status, 409, pageText(refused.text).slice(0, 300));
  assert.match(pageText(refused.text), /already linked to another account at this provider/);
  assert.equal(refused.location, null);
  const links = await linksOf(mine);
  assert.equal(links.length, 1);
  assert.equal(links[0].upstream_sub, theirs.sub, 'the first link stays');
  await eventually('upstream.refused', (e) => e.detail.reason === 'user_has_another_link' && e.user_id === mine.sub);
  // Another connection is another provider: the same account links there.
  const elsewhere = await viaUpstream(other, another);
  const idToken = await codeToIdToken(await confirm(elsewhere.browser, elsewhere.page, 'Other IdP', mine.username, mine.password));
  assert.equal(idToken.sub, mine.sub);
  assert.equal((await linksOf(mine)).length, 2);
});

test('a client requiring a second factor: the link is written only after it (enrolment here), and amr says pwd fed otp mfa', async () => {
  assert.equal((await admin('PATCH', `/organizations/${down.slug}/clients/other`, { require_mfa: true })).status, 200);
  try {
    const { mine, theirs } = await pair('kurt');
    const { page, browser } = await viaUpstream(strict, theirs, { client: down.other });
    const enrolPage = await confirm(browser, page, 'Strict', mine.username, mine.password);
    assert.equal(enrolPage.status, 200, pageText(enrolPage.text).slice(0, 300));
    assert.match(pageText(enrolPage.text), /Set up two-step verification/);
    assert.deepEqual(await linksOf(mine), [], 'a password alone links nothing');
    const submit = (p, fields = {}) => {
      const [form] = parseForms(p.text, p.url);
      return browser.post(form.action, formFields(form, fields));
    };
    const secret = base32Decode(enrolPage.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
    const codesPage = await submit(enrolPage, { code: totp(secret) });
    assert.equal(codesPage.status, 200, pageText(codesPage.text).slice(0, 300));
    const done = await submit(codesPage);
    const idToken = await codeToIdToken(done, down.other);
    assert.equal(idToken.sub, mine.sub);
    assert.deepEqual(idToken.amr, ['pwd', 'fed', 'otp', 'mfa']);
    assert.equal((await linksOf(mine)).length, 1, 'linked once every factor was given');
    await eventually('upstream.link.confirmed', (e) => e.user_id === mine.sub);
  } finally {
    await admin('PATCH', `/organizations/${down.slug}/clients/other`, { require_mfa: false });
  }
});

test('an organization without password sign-in keeps refusing with a page that says why', async () => {
  const { theirs } = await pair('lena');
  assert.equal((await admin('PATCH', `/organizations/${down.slug}`, { password_signin: false })).status, 200);
  try {
    const { page } = await viaUpstream(strict, theirs);
    assert.equal(page.status, 403, pageText(page.text).slice(0, 300));
    assert.match(pageText(page.text), /already uses this e-mail address/);
    assert.doesNotMatch(page.text, /name="password"/, 'no confirmation form');
  } finally {
    await admin('PATCH', `/organizations/${down.slug}`, { password_signin: true });
  }
});

test('a link confirmed with the password goes when that password is replaced — changed on the account page or set by an administrator', async () => {
  const { mine, theirs } = await pair('gwen');
  const { page, browser } = await viaUpstream(strict, theirs);
  await codeToIdToken(await confirm(browser, page, 'Strict', mine.username, mine.password));
  assert.equal((await linksOf(mine)).length, 1);

  // The account page (signed in by the confirmation): a new password, the link it proved is gone.
  const account = await browser.get(`${down.issuer}/account`);
  assert.equal(account.status, 200, pageText(account.text).slice(0, 200));
  const form = parseForms(account.text, account.url).find((f) => f.action.endsWith('/account/password'));
  const next = 'a replaced passphrase 7';
  const changed = await browser.post(form.action, formFields(form, { current_password: mine.password, new_password: next, confirm_password: next }));
  assert.equal(changed.status, 200, pageText(changed.text).slice(0, 200));
  assert.deepEqual(await linksOf(mine), [], 'the link rested on the old password');
  // The upstream account alone no longer signs in: the page asks to link again.
  const asked = await viaUpstream(strict, theirs);
  confirmationForm(asked.page, 'Strict');

  // Linked again with the new password, then an administrator sets another: gone again.
  await codeToIdToken(await confirm(asked.browser, asked.page, 'Strict', mine.username, next));
  assert.equal((await linksOf(mine)).length, 1);
  const set = await admin('PUT', `/organizations/${down.slug}/users/${mine.sub}/password`, { password: 'an admin chosen passphrase 9' });
  assert.equal(set.status, 204, JSON.stringify(set.body));
  assert.deepEqual(await linksOf(mine), []);
});
