// Sign-in integrity (issue 15): one gate before every code, every guess counted before it is
// answered. Each "once" or "at most N" promise is raced (many requests at once), and each sealed
// form state is replayed where an attacker would: at another step, after logout, under another
// user's session, after the client's or organization's policy changed.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createClient, createUser, authorizeUrl, isLoginPage, submitLogin,
  parseForms, formFields, pageText, exchangeCode, assertTokenSuccess, decodeJwt, parseRedirect,
  randomIp, BASE, sleep,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

let fx;
before(async () => {
  fx = await createFixture('integrity');
});

const CB = 'https://strict.example.test/cb';
let clients = 0;
async function newClient(on, extra = {}) {
  clients += 1;
  return createClient(on, {
    client_id: `c${clients}-${Math.random().toString(36).slice(2, 8)}`,
    client_name: `Client ${clients}`,
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [CB],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...extra,
  });
}

/** The only form of a page, as { action, fields } with its hidden state and CSRF token. */
function formOf(page) {
  const [form] = parseForms(page.text, page.url);
  assert.ok(form, `a form on the page: ${page.status} ${pageText(page.text).slice(0, 300)}`);
  return form;
}
const submit = (browser, page, fields = {}, headers = {}) => {
  const form = formOf(page);
  return browser.post(form.action, formFields(form, fields), { headers });
};
/** The sealed state a page carries, whatever its field is called. */
function stateOf(page) {
  const form = formOf(page);
  const fields = Object.fromEntries(formFields(form));
  return { value: fields.request ?? fields.state, csrf: fields.csrf_token };
}

function assertNoCode(res, what) {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: refused with a 4xx page, got ${res.status} ${res.location ?? ''} ${pageText(res.text).slice(0, 200)}`);
  assert.ok(!res.location || !parseRedirect(res.location).params.code, `${what}: no code`);
}

async function codeFrom(res, client, what = 'sign-in', on = fx) {
  assert.equal(res.status, 303, `${what}: ${res.status} ${res.location ?? ''} ${pageText(res.text).slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.ok(r.params.code, `${what}: ${res.location}`);
  const tokens = assertTokenSuccess(await exchangeCode(on, client, r.params.code));
  return { tokens, id: decodeJwt(tokens.id_token).payload };
}

/** Password sign-in at `client` in `browser`; the page after the password. */
async function password(user, client, { browser = new Browser(), params = {}, on = fx } = {}) {
  const page = await browser.get(authorizeUrl(on, client, params));
  assert.ok(isLoginPage(page), `a login page, got ${page.status} ${pageText(page.text).slice(0, 200)}`);
  return { browser, page: await submitLogin(browser, page, user.username, user.password) };
}

/** Enrol `user` in TOTP through a require_mfa client; the secret and the recovery codes. */
async function enrolled(user, on = fx) {
  const strict = await newClient(on, { require_mfa: true });
  const { browser, page } = await password(user, strict, { on });
  assert.match(pageText(page.text), /Set up two-step verification/);
  const secret = base32Decode(page.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const codes = await submit(browser, page, { code: totp(secret) });
  const recovery = [...codes.text.matchAll(/<li><code>([a-z2-7]{5}-[a-z2-7]{5})<\/code><\/li>/g)].map((m) => m[1]);
  assert.equal(recovery.length, 10);
  const done = await submit(browser, codes);
  assert.equal(done.status, 303);
  return { secret, recovery };
}

/**
 * Fail `wrong(i)` one after another, waiting out each lock, until `counted` failures were
 * answered: the account then waits 2^(counted - 5) s (threshold 5), long enough for a burst.
 */
async function buildLock(wrong, counted = 8) {
  for (let n = 0, i = 0; n < counted; i += 1) {
    const res = await wrong(i);
    if (res.status === 401) n += 1;
    else if (res.status === 429) await sleep(Number(res.headers.get('retry-after')) * 1000 + 50);
    else assert.fail(`a wrong guess answered ${res.status}`);
  }
}

/**
 * How many wrong guesses may be answered in a burst that lasted `ms`: the threshold, then one
 * more after each wait (1 s, 2 s, 4 s, …) that ran out while the burst was still being served.
 */
const mayAnswer = (threshold, ms) => threshold + Math.floor(Math.log2(ms / 1000 + 1));
const timed = async (promise) => { const t0 = Date.now(); const out = await promise; return [out, Date.now() - t0]; };

const tally = (responses) => {
  const out = {};
  for (const r of responses) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
};

// ------------------------------------------------------------------------------------------
// Replays of sealed states

test('a login form for a require_mfa client, posted to /consent after a password-only sign-in elsewhere, gives no code', async () => {
  const strict = await newClient(fx, { require_mfa: true });
  const user = await createUser(fx);
  const browser = new Browser();
  const kept = await browser.get(authorizeUrl(fx, strict));
  assert.ok(isLoginPage(kept));
  const state = stateOf(kept);
  // Signs in with the password alone at a client without the policy: an SSO session.
  const elsewhere = await password(user, fx.web, { browser });
  await codeFrom(elsewhere.page, fx.web);
  const replay = await browser.post(`${BASE}/${fx.slug}/consent`, { request: state.value, csrf_token: state.csrf, decision: 'allow' });
  assertNoCode(replay, 'the login state at /consent');
  // The way that works asks for the second factor.
  const honest = await browser.get(authorizeUrl(fx, strict));
  assert.match(pageText(honest.text), /Set up two-step verification/);
});

test("A's consent page, posted after A signed out and B signed in, is refused; so is it under B's session without a logout", async () => {
  const strict = await newClient(fx, { require_mfa: true });
  const plain = await newClient(fx);
  for (const client of [strict, plain]) {
    const [a, b] = [await createUser(fx), await createUser(fx)];
    const browser = new Browser();
    // A has a session (password and, for the strict client, a second factor); consent is shown.
    const first = await password(a, plain, { browser });
    await codeFrom(first.page, plain);
    if (client === strict) {
      const { recovery } = await enrolled(a);
      const again = await password(a, strict, { browser, params: { prompt: 'login' } });
      await codeFrom(await submit(browser, again.page, { code: recovery[0] }), strict, 'A with a second factor');
    }
    const consentPage = await browser.get(authorizeUrl(fx, client, { prompt: 'consent' }));
    assert.equal(consentPage.status, 200);
    assert.match(pageText(consentPage.text), /Allow/);
    const kept = stateOf(consentPage);
    // Logout (the CSRF cookie goes too), then B signs in with the password in the same browser.
    await browser.get(`${BASE}/${fx.slug}/logout`);
    await codeFrom((await password(b, plain, { browser })).page, plain, 'B');
    const afterLogout = await browser.post(`${BASE}/${fx.slug}/consent`, { request: kept.value, csrf_token: kept.csrf, decision: 'allow' });
    assertNoCode(afterLogout, "A's consent after logout, under B");
    // Even with the old CSRF cookie kept (an attacker's own jar), the page was shown under A's
    // session, not B's.
    const cookie = browser.jar.header(`${BASE}/${fx.slug}/consent`).replace(/clavex_csrf=[^;]*/, `clavex_csrf=${kept.csrf}`);
    const forged = await fetch(`${BASE}/${fx.slug}/consent`, {
      method: 'POST', redirect: 'manual',
      headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded', 'CF-Connecting-IP': browser.ip },
      body: new URLSearchParams({ request: kept.value, csrf_token: kept.csrf, decision: 'allow' }),
    });
    assert.equal(forged.status, 400, "A's consent under B's session (same CSRF cookie)");
    assert.match(await forged.text(), /signed in as someone else/);
  }
});

test('a consent page opened before the admin required a second factor asks for it on Allow', async () => {
  for (const where of ['client', 'organization']) {
    const on = where === 'client' ? fx : await createFixture('integrity-org');
    const client = await newClient(on);
    const user = await createUser(on);
    const browser = new Browser();
    await codeFrom((await password(user, client, { browser, on })).page, client, 'sign-in', on);
    const consentPage = await browser.get(authorizeUrl(on, client, { prompt: 'consent' }));
    assert.equal(consentPage.status, 200);
    if (where === 'client') {
      assert.equal((await admin('PATCH', `/organizations/${on.slug}/clients/${client.client_id}`, { require_mfa: true })).status, 200);
    } else {
      assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
    }
    const allowed = await submit(browser, consentPage, { decision: 'allow' });
    assert.equal(allowed.status, 200, `${where}: a page, not a code: ${allowed.status} ${allowed.location}`);
    assert.match(pageText(allowed.text), /Set up two-step verification/, where);
    // prompt=none says interaction_required, as before.
    const silent = await browser.get(authorizeUrl(on, client, { prompt: 'none' }));
    assert.equal(parseRedirect(silent.location).params.error, 'interaction_required');
  }
});

test('a password-only code minted before the admin required a second factor does not redeem (judged at the primary, whatever copy of the policy minted it)', async () => {
  for (const where of ['client', 'organization']) {
    const on = where === 'client' ? fx : await createFixture('integrity-redeem');
    const client = await newClient(on);
    const user = await createUser(on);
    const { page } = await password(user, client, { on });
    assert.equal(page.status, 303, `${where}: a code after the password alone`);
    const code = parseRedirect(page.location).params.code;
    if (where === 'client') {
      assert.equal((await admin('PATCH', `/organizations/${on.slug}/clients/${client.client_id}`, { require_mfa: true })).status, 200);
    } else {
      assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'required' })).status, 200);
    }
    const res = await exchangeCode(on, client, code);
    assert.equal(res.status, 400, `${where}: ${res.status} ${JSON.stringify(res.json)}`);
    assert.equal(res.json.error, 'invalid_grant');
    assert.match(res.json.error_description, /second factor/);
    // Burnt: lifting the requirement again does not bring it back.
    if (where === 'client') {
      await admin('PATCH', `/organizations/${on.slug}/clients/${client.client_id}`, { require_mfa: false });
    } else {
      await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'optional' });
    }
    assert.equal((await exchangeCode(on, client, code)).json.error, 'invalid_grant', `${where}: single use`);
  }
});

test('prompt=login, max_age=0 and id_token_hint states cannot be posted to /consent', async () => {
  const user = await createUser(fx);
  const browser = new Browser();
  const { id } = await codeFrom((await password(user, fx.web, { browser })).page, fx.web);
  const other = await createUser(fx);
  const otherToken = (await codeFrom((await password(other, fx.web)).page, fx.web)).tokens.id_token;
  for (const params of [{ prompt: 'login' }, { max_age: '0' }, { id_token_hint: otherToken }]) {
    const page = await browser.get(authorizeUrl(fx, fx.web, params));
    assert.ok(isLoginPage(page), `${JSON.stringify(params).slice(0, 30)}: the password is asked`);
    const state = stateOf(page);
    const replay = await browser.post(`${BASE}/${fx.slug}/consent`, { request: state.value, csrf_token: state.csrf, decision: 'allow' });
    assertNoCode(replay, `${Object.keys(params)[0]} state at /consent`);
  }
  assert.ok(id.sub);
});

test("every step's state posted to every other step's endpoint is refused", async () => {
  const on = await createFixture('integrity-steps');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'optional' })).status, 200);
  const strict = await newClient(on, { require_mfa: true });
  const [user, enrolledUser] = [await createUser(on), await createUser(on)];
  await enrolled(enrolledUser, on);
  // One browser (one CSRF cookie, one session) collects a state of every step, so only the step
  // each names can refuse it.
  const browser = new Browser();
  await codeFrom((await password(user, on.web, { browser, on })).page, on.web, 'sign-in', on);
  const states = {};
  states.account = stateOf(await browser.get(`${BASE}/${on.slug}/account/mfa`));
  states.consent = stateOf(await browser.get(authorizeUrl(on, on.web, { prompt: 'consent' })));
  const loginPage = await browser.get(authorizeUrl(on, on.web, { prompt: 'login' }));
  states.login = stateOf(loginPage);
  const challengePage = await submitLogin(browser, loginPage, enrolledUser.username, enrolledUser.password);
  states.challenge = stateOf(challengePage);
  const enrolPage = await browser.get(authorizeUrl(on, strict));
  assert.match(pageText(enrolPage.text), /Set up two-step verification/);
  states.enrol = stateOf(enrolPage);
  const secret = base32Decode(enrolPage.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  states.finish = stateOf(await submit(browser, enrolPage, { code: totp(secret) }));
  const endpoints = {
    login: 'login', consent: 'consent', challenge: 'mfa', enrol: 'mfa/enrol', finish: 'mfa/finish', account: 'account/mfa',
  };
  let tried = 0;
  for (const [name, state] of Object.entries(states)) {
    assert.ok(state.value && state.csrf, name);
    for (const [step, path] of Object.entries(endpoints)) {
      if (step === name) continue;
      const res = await browser.post(`${BASE}/${on.slug}/${path}`, {
        request: state.value, state: state.value, csrf_token: state.csrf, decision: 'allow', code: totp(secret), password: user.password,
      });
      assertNoCode(res, `${name} state at /${path}`);
      assert.doesNotMatch(pageText(res.text), /recovery codes|Enter the 6-digit code|Set up two-step/, `${name} at /${path} leads nowhere`);
      tried += 1;
    }
  }
  assert.equal(tried, 6 * 5);
});

test('a second-factor page shown before a logout cannot be finished after it', async () => {
  const user = await createUser(fx);
  const { recovery } = await enrolled(user);
  const browser = new Browser();
  const challenge = (await password(user, fx.web, { browser })).page;
  assert.match(pageText(challenge.text), /Enter the 6-digit code/);
  await browser.get(`${BASE}/${fx.slug}/logout`);
  const late = await submit(browser, challenge, { code: recovery[0] });
  assertNoCode(late, 'the challenge after logout');
});

test('step-up keeps the password\'s auth_time and ends the weaker session', async () => {
  const strict = await newClient(fx, { require_mfa: true });
  const user = await createUser(fx);
  const browser = new Browser();
  const first = await codeFrom((await password(user, fx.web, { browser })).page, fx.web);
  const weakCookie = browser.jar.header(`${BASE}/${fx.slug}/authorize`);
  await sleep(2100);
  const enrolPage = await browser.get(authorizeUrl(fx, strict));
  assert.match(pageText(enrolPage.text), /Set up two-step verification/, 'the session is asked for the factor, not the password');
  const secret = base32Decode(enrolPage.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const codes = await submit(browser, enrolPage, { code: totp(secret) });
  const stepped = await codeFrom(await submit(browser, codes), strict);
  assert.deepEqual(stepped.id.amr, ['pwd', 'otp', 'mfa']);
  assert.equal(stepped.id.auth_time, first.id.auth_time, 'auth_time is when the password was typed');
  // max_age sees the password's age, not the step-up's.
  const fresh = await browser.get(authorizeUrl(fx, strict, { max_age: '1' }));
  assert.ok(isLoginPage(fresh), 'max_age=1 asks for the password again');
  // The password-only session is gone.
  const stale = await fetch(authorizeUrl(fx, fx.web, { prompt: 'none' }), { headers: { Cookie: weakCookie }, redirect: 'manual' });
  assert.equal(parseRedirect(stale.headers.get('location')).params.error, 'login_required');
});

// ------------------------------------------------------------------------------------------
// Guesses counted before they are answered

test('login: 50 wrong passwords at once for one account get at most 5 answers; the right one after them is refused', async () => {
  const user = await createUser(fx);
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const form = formOf(page);
  const post = (pw) => browser.post(form.action, formFields(form, { username: user.username, password: pw }), { headers: { 'CF-Connecting-IP': randomIp() } });
  const [burst, ms] = await timed(Promise.all(Array.from({ length: 50 }, (_, i) => post(`wrong-${i}-password`))));
  const t = tally(burst);
  console.log(`login burst of 50 wrong: ${JSON.stringify(t)} in ${ms} ms`);
  assert.ok((t[401] ?? 0) <= mayAnswer(5, ms), `at most the threshold answered: ${JSON.stringify(t)} in ${ms} ms`);
  assert.equal((t[401] ?? 0) + (t[429] ?? 0), 50, JSON.stringify(t));
  assert.ok(burst.filter((r) => r.status === 429).every((r) => r.headers.get('retry-after')));
  // Inside a lock, a burst with the right password in it signs nobody in.
  await buildLock((i) => post(`wrong-again-${i}`));
  const locked = await Promise.all([...Array.from({ length: 20 }, (_, i) => post(`more-${i}-wrong`)), post(user.password)]);
  assert.deepEqual(tally(locked), { 429: 21 }, 'the right password inside the lock does not sign in');
  // Mixed: 39 wrong and the right one last, sent together.
  const other = await createUser(fx);
  const [mixed, mixedMs] = await timed(Promise.all([
    ...Array.from({ length: 39 }, (_, i) => browser.post(form.action, formFields(form, { username: other.username, password: `nope-${i}-nope` }), { headers: { 'CF-Connecting-IP': randomIp() } })),
    browser.post(form.action, formFields(form, { username: other.username, password: other.password }), { headers: { 'CF-Connecting-IP': randomIp() } }),
  ]));
  const m = tally(mixed.slice(0, 39));
  console.log(`login burst of 39 wrong + right last: wrong ${JSON.stringify(m)}, right ${mixed[39].status}, in ${mixedMs} ms`);
  assert.ok((m[401] ?? 0) <= mayAnswer(5, mixedMs), JSON.stringify(m));
  assert.ok([303, 429].includes(mixed[39].status));
});

test('TOTP: 50 wrong codes at once get at most 5 answers; then the right code is refused', async () => {
  const user = await createUser(fx);
  const { secret } = await enrolled(user);
  const { browser, page } = await password(user, fx.web);
  const wrong = (i) => String((Number(totp(secret)) + 1 + i) % 1_000_000).padStart(6, '0');
  const [burst, ms] = await timed(Promise.all(Array.from({ length: 50 }, (_, i) => submit(browser, page, { code: wrong(i) }, { 'CF-Connecting-IP': randomIp() }))));
  const t = tally(burst);
  console.log(`TOTP burst of 50 wrong: ${JSON.stringify(t)} in ${ms} ms`);
  // The per-step cap holds whatever the timing; a burst that straddles two steps may get the
  // threshold in each.
  assert.ok((t[401] ?? 0) <= 10, JSON.stringify(t));
  assert.equal((t[401] ?? 0) + (t[429] ?? 0), 50, JSON.stringify(t));
  // The step is now capped (locked to its end and the next), so at once after the burst:
  const locked = await Promise.all([...Array.from({ length: 10 }, (_, i) => submit(browser, page, { code: wrong(i + 90) })), submit(browser, page, { code: totp(secret) })]);
  assert.deepEqual(tally(locked), { 429: 11 }, 'the right code inside the lock does not sign in');
});

test('recovery codes: 30 wrong at once get at most 5 answers; one right code sent 20 times at once signs in once', async () => {
  const user = await createUser(fx);
  const { recovery } = await enrolled(user);
  const { browser, page } = await password(user, fx.web);
  const [burst, ms] = await timed(Promise.all(Array.from({ length: 30 }, (_, i) => submit(browser, page, { code: `aaaaa-${String(i).padStart(5, 'b').replace(/\d/g, 'c')}` }))));
  const t = tally(burst);
  console.log(`recovery burst of 30 wrong: ${JSON.stringify(t)} in ${ms} ms`);
  assert.ok((t[401] ?? 0) <= 10, `the threshold per 30-second step: ${JSON.stringify(t)}`);
  const other = await createUser(fx);
  const codes = await enrolled(other);
  const second = await password(other, fx.web);
  const once = await Promise.all(Array.from({ length: 20 }, () => submit(second.browser, second.page, { code: codes.recovery[0] })));
  const o = tally(once);
  assert.equal(o[303], 1, `exactly one sign-in: ${JSON.stringify(o)}`);
  assert.equal((await admin('GET', `/organizations/${fx.slug}/users/${other.id}`)).body.recovery_codes_left, 9);
  assert.ok(recovery.length === 10);
});

test('account page: 30 wrong passwords at once get at most 5 answers', async () => {
  const on = await createFixture('integrity-account');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { mfa: 'optional' })).status, 200);
  const user = await createUser(on);
  const browser = new Browser();
  await codeFrom((await password(user, on.web, { browser, on })).page, on.web, 'sign-in', on);
  const page = await browser.get(`${BASE}/${on.slug}/account/mfa`);
  assert.equal(page.status, 200);
  const [burst, ms] = await timed(Promise.all(Array.from({ length: 30 }, (_, i) => submit(browser, page, { password: `wrong-${i}-pass` }))));
  const t = tally(burst);
  console.log(`account page burst of 30 wrong: ${JSON.stringify(t)} in ${ms} ms`);
  assert.ok((t[401] ?? 0) <= mayAnswer(5, ms), JSON.stringify(t));
  await buildLock((i) => submit(browser, page, { password: `again-${i}-wrong` }));
  assert.equal((await submit(browser, page, { password: user.password })).status, 429, 'the right password inside the lock');
});

test('admin token: 30 wrong tokens at once from one address get at most 10 answers; then the right token from there waits', async () => {
  const ip = randomIp();
  const call = (token, from = ip) => fetch(`${BASE}/api/v1/organizations`, { headers: { Authorization: `Bearer ${token}`, 'CF-Connecting-IP': from } });
  const [burst, ms] = await timed(Promise.all(Array.from({ length: 30 }, (_, i) => call(`wrong-token-${i}-xxxxxxxxxxxx`))));
  const t = tally(burst);
  console.log(`admin burst of 30 wrong: ${JSON.stringify(t)} in ${ms} ms`);
  assert.ok((t[401] ?? 0) <= mayAnswer(10, ms), JSON.stringify(t));
  assert.equal((t[401] ?? 0) + (t[429] ?? 0), 30);
  assert.equal((await call(process.env.CLAVEX_ADMIN_TOKEN)).status, 429);
  assert.equal((await call(process.env.CLAVEX_ADMIN_TOKEN, randomIp())).status, 200);
});

test('one address: a sprayer there locks new browsers out, not people who signed in on their own browsers before', async () => {
  const on = await createFixture('integrity-office');
  assert.equal((await admin('PATCH', `/organizations/${on.slug}`, { throttle_ip_failures: 3 })).status, 200);
  const office = randomIp();
  const user = await createUser(on);
  const own = new Browser(undefined, office);
  await codeFrom((await password(user, on.web, { browser: own, on })).page, on.web, 'sign-in', on);
  await own.get(`${BASE}/${on.slug}/logout`);
  // Failures for other names from the same address: 3 lock it for 1 s, then 2, 4, 8 s.
  const sprayer = new Browser(undefined, office);
  const page = await sprayer.get(authorizeUrl(on, on.web));
  let counted = 0;
  while (counted < 6) {
    const res = await submitLogin(sprayer, page, `nobody-${counted}`, 'Summer2026!');
    if (res.status === 401) counted += 1;
    else await sleep(Number(res.headers.get('retry-after')) * 1000 + 50);
  }
  const newcomer = await password(user, on.web, { browser: new Browser(undefined, office), on });
  assert.equal(newcomer.page.status, 429, 'a browser new to the account waits with the address');
  const back = await password(user, on.web, { browser: own, on });
  assert.equal(back.page.status, 303, `the account's own browser signs in: ${back.page.status}`);
});

test('audit: signin.succeeded only once every factor is given; unknown names never stored as typed', async () => {
  const user = await createUser(fx);
  const { secret } = await enrolled(user);
  const { browser, page } = await password(user, fx.web);
  const wrong = await submit(browser, page, { code: String((Number(totp(secret)) + 7) % 1_000_000).padStart(6, '0') });
  assert.equal(wrong.status, 401);
  const typo = `CorrectHorse-${Math.random().toString(36).slice(2)}`;
  const b2 = new Browser();
  const lp = await b2.get(authorizeUrl(fx, fx.web));
  await submitLogin(b2, lp, typo, 'whatever-password');
  await sleep(500);
  const events = (await admin('GET', `/organizations/${fx.slug}/events?limit=500`)).body.events;
  const mine = events.filter((e) => e.user_id === user.id);
  const kinds = mine.map((e) => e.type);
  // The enrolment completed one sign-in; the password + wrong code did not complete another.
  assert.equal(kinds.filter((k) => k === 'signin.succeeded').length, 1, JSON.stringify(kinds));
  assert.ok(kinds.includes('signin.failed'));
  assert.ok(!JSON.stringify(events).includes(typo), 'the name typed is not in the trail');
});
