// Second factor through the real Worker: enrolment with the server-rendered QR page and ten
// recovery codes, sign-in with a TOTP code and with a recovery code, each accepted once, policy
// per organization and per client (and acr_values), step-up of an SSO session that lacks the
// factor, amr/acr in the ID token, throttling of wrong codes, and the admin reset.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createClient, createUser, authorizeUrl, isLoginPage, submitLogin,
  parseForms, formFields, pageText, exchangeCode, assertTokenSuccess, decodeJwt, tokenRequest,
  parseRedirect, assertErrorRedirect,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

let fx;
before(async () => {
  fx = await createFixture('mfa');
  // RFC 6238 Appendix B: the oracle itself is right.
  assert.equal(totp(Buffer.from('12345678901234567890'), 59), '287082');
});

const setOrg = async (body, on = fx) => assert.equal((await admin('PATCH', `/organizations/${on.slug}`, body)).status, 200);
const userPath = (user, on = fx) => `/organizations/${on.slug}/users/${user.id}`;

/** Post the only form of `page`, with `fields` (its hidden state and CSRF token included). */
function submit(browser, page, fields = {}) {
  const [form] = parseForms(page.text, page.url);
  assert.ok(form, `a form on the page: ${page.status} ${pageText(page.text).slice(0, 200)}`);
  return browser.post(form.action, formFields(form, fields));
}

/** Password sign-in for `client`; the page shown after the password. */
async function password(user, client, { browser = new Browser(), params = {}, on = fx } = {}) {
  const page = await browser.get(authorizeUrl(on, client, params));
  assert.ok(isLoginPage(page), `a login page, got ${page.status}`);
  return { browser, page: await submitLogin(browser, page, user.username, user.password) };
}

/** From the enrolment page to a signed-in redirect: confirm a code, keep the recovery codes. */
async function enrol(browser, page) {
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  assert.match(pageText(page.text), /Set up two-step verification/);
  assert.match(page.text, /<svg[\s\S]*<\/svg>/, 'the QR code is an inline SVG (no script, no third-party request)');
  assert.doesNotMatch(page.text, /<script/i, 'no JavaScript');
  const secret = base32Decode(page.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const wrong = await submit(browser, page, { code: totp(secret, Date.now() / 1000 - 300) });
  assert.equal(wrong.status, 400, 'a code of another time does not confirm');
  assert.match(pageText(wrong.text), /does not match/);
  const codesPage = await submit(browser, wrong, { code: totp(secret) });
  assert.equal(codesPage.status, 200, pageText(codesPage.text).slice(0, 300));
  assert.match(codesPage.headers.get('cache-control') ?? '', /no-store/);
  const recovery = [...codesPage.text.matchAll(/<li><code>([a-z2-7]{5}-[a-z2-7]{5})<\/code><\/li>/g)].map((m) => m[1]);
  assert.equal(recovery.length, 10, 'ten recovery codes, shown once');
  const done = await submit(browser, codesPage);
  return { secret, recovery, done };
}

async function codeFrom(res, client) {
  assert.equal(res.status, 303, `${res.status} ${pageText(res.text).slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.ok(r.params.code, res.location);
  const tokens = assertTokenSuccess(await exchangeCode(fx, client, r.params.code));
  return { tokens, id: decodeJwt(tokens.id_token).payload };
}

test('required: a user without a factor enrols after the password, then signs in with codes used once', async () => {
  await setOrg({ mfa: 'required' });
  try {
    const user = await createUser(fx, { username: 'enrols' });
    const first = await password(user, fx.web);
    const { secret, recovery, done } = await enrol(first.browser, first.page);
    const { tokens, id } = await codeFrom(done, fx.web);
    assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(id.acr, 'urn:clavex:acr:mfa');
    const shown = await admin('GET', userPath(user));
    assert.equal(shown.body.totp_enrolled, true);
    assert.equal(shown.body.recovery_codes_left, 10);
    assert.ok(!JSON.stringify(shown.body).includes(secret.toString('base64')), 'never the secret');
    // Refresh keeps the sign-in's factors.
    const refreshed = assertTokenSuccess(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
    assert.deepEqual(decodeJwt(refreshed.id_token).payload.amr, ['pwd', 'otp', 'mfa']);

    // The next sign-in asks for a code after the password; no session before it.
    const second = await password(user, fx.web);
    assert.match(pageText(second.page.text), /Enter the 6-digit code/);
    assert.equal(second.page.setCookies.find((c) => c.name === 'clavex_session'), undefined, 'no session before the second factor');
    const bad = await submit(second.browser, second.page, { code: '000000' === totp(secret) ? '111111' : '000000' });
    assert.equal(bad.status, 401);
    assert.match(pageText(bad.text), /That code is not valid/);
    // Wait for a step no code has used yet (the enrolment used the current one).
    await new Promise((r) => setTimeout(r, (30 - ((Date.now() / 1000) % 30)) * 1000 + 200));
    const code = totp(secret);
    const signedIn = await submit(second.browser, bad, { code });
    assert.ok(signedIn.setCookies.find((c) => c.name === 'clavex_session'), 'the session starts with the second factor');
    await codeFrom(signedIn, fx.web);
    // The same code again, from another browser within its window: refused.
    const third = await password(user, fx.web);
    const replay = await submit(third.browser, third.page, { code });
    assert.equal(replay.status, 401, 'a used code is refused even within its window');

    // A recovery code works once.
    const withRecovery = await submit(third.browser, replay, { code: recovery[3].toUpperCase() });
    const viaRecovery = await codeFrom(withRecovery, fx.web);
    assert.deepEqual(viaRecovery.id.amr, ['pwd', 'otp', 'mfa']);
    assert.equal((await admin('GET', userPath(user))).body.recovery_codes_left, 9);
    const fourth = await password(user, fx.web);
    assert.equal((await submit(fourth.browser, fourth.page, { code: recovery[3] })).status, 401, 'a recovery code works once');

    // The admin reset: the factor and its recovery codes are gone; the next sign-in enrols again.
    assert.equal((await admin('DELETE', `${userPath(user)}/mfa`)).status, 204);
    const reset = (await admin('GET', userPath(user))).body;
    assert.equal(reset.totp_enrolled, false);
    assert.equal(reset.recovery_codes_left, 0);
    const again = await password(user, fx.web);
    assert.match(pageText(again.page.text), /Set up two-step verification/);
    assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/usr_nobody/mfa`)).status, 404);
  } finally {
    await setOrg({ mfa: 'off' });
  }
});

test('per client: require_mfa asks for a second factor where the organization is optional; other clients do not', async () => {
  await setOrg({ mfa: 'optional' });
  try {
    const strict = await createClient(fx, {
      client_id: 'strict', client_name: 'Strict', grant_types: ['authorization_code'],
      redirect_uris: ['https://strict.example.test/cb'], token_endpoint_auth_method: 'client_secret_basic', require_mfa: true,
    });
    assert.equal(strict.require_mfa, true);
    const user = await createUser(fx, { username: 'perclient' });
    const open = await password(user, fx.web);
    const plain = await codeFrom(open.page, fx.web);
    assert.deepEqual(plain.id.amr, ['pwd'], 'a password alone where nothing requires more');
    assert.equal(plain.id.acr, 'urn:clavex:acr:pwd');

    // The same browser's session (password only) at the strict client: prompt=none cannot ask…
    const none = await open.browser.get(authorizeUrl(fx, strict, { prompt: 'none', state: 'st-none' }));
    assertErrorRedirect(fx, none, strict.redirect_uri, 'interaction_required', 'st-none');
    // …otherwise the second factor is asked for at once, without the password again.
    const stepUp = await open.browser.get(authorizeUrl(fx, strict));
    assert.equal(stepUp.status, 200);
    assert.ok(!isLoginPage(stepUp), 'no password page: the session has the password');
    const { done } = await enrol(open.browser, stepUp);
    assert.equal(done.status, 303);
    assert.ok(parseRedirect(done.location).params.code);
    // The session now has both factors: silent SSO to the strict client works.
    const silent = await open.browser.get(authorizeUrl(fx, strict, { prompt: 'none' }));
    assert.equal(silent.status, 302);
    assert.ok(parseRedirect(silent.location).params.code);
  } finally {
    await setOrg({ mfa: 'off' });
  }
});

test('acr_values asking for MFA gets a second-factor step, and the ID token says so', async () => {
  const user = await createUser(fx, { username: 'acruser' });
  const { browser, page } = await password(user, fx.web, { params: { acr_values: 'urn:clavex:acr:mfa' } });
  const { done } = await enrol(browser, page);
  const { id } = await codeFrom(done, fx.web);
  assert.equal(id.acr, 'urn:clavex:acr:mfa');
  assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
  assert.ok(fx.discovery.acr_values_supported.includes('urn:clavex:acr:mfa'));
  assert.ok(fx.discovery.claims_supported.includes('amr') && fx.discovery.claims_supported.includes('acr'));
});

test('acr_values is a preference list: the first value met is used and becomes acr; MFA first is asked of a user who has a factor', async () => {
  const PWD = 'urn:clavex:acr:pwd';
  const MFA = 'urn:clavex:acr:mfa';
  const user = await createUser(fx, { username: 'acrprefs' });
  // Password first, nothing enrolled: no second-factor step, acr pwd (also after refresh).
  const pwdFirst = await password(user, fx.web, { params: { acr_values: `${PWD} ${MFA}` } });
  const plain = await codeFrom(pwdFirst.page, fx.web);
  assert.equal(plain.id.acr, PWD);
  assert.deepEqual(plain.id.amr, ['pwd']);
  const refreshed = assertTokenSuccess(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: plain.tokens.refresh_token }));
  assert.equal(decodeJwt(refreshed.id_token).payload.acr, PWD, 'refresh keeps the chosen acr');
  // MFA first for a user with no factor: the later password value is met, no enrolment forced.
  const mfaFirst = await password(user, fx.web, { params: { acr_values: `${MFA} ${PWD}` } });
  assert.ok(!/Set up two-step verification/.test(pageText(mfaFirst.page.text)), 'no enrolment for a preference');
  assert.equal((await codeFrom(mfaFirst.page, fx.web)).id.acr, PWD);
  // Unknown values are skipped; a lone MFA value still asks (here: enrolment).
  const lone = await password(user, fx.web, { params: { acr_values: `urn:example:gold ${MFA}` } });
  const { recovery, done } = await enrol(lone.browser, lone.page);
  assert.equal((await codeFrom(done, fx.web)).id.acr, MFA);
  // Now the user has a factor: MFA first asks for it, and acr is mfa.
  const asked = await password(user, fx.web, { params: { acr_values: `${MFA} ${PWD}` } });
  assert.match(pageText(asked.page.text), /Enter the 6-digit code/);
  const viaCode = await codeFrom(await submit(asked.browser, asked.page, { code: recovery[0] }), fx.web);
  assert.equal(viaCode.id.acr, MFA);
  // Password first: a user who set up a factor is still asked for it (their own choice), and acr
  // is the first value met — pwd — while amr says what was used.
  const pwdAgain = await password(user, fx.web, { params: { acr_values: `${PWD} ${MFA}` } });
  assert.match(pageText(pwdAgain.page.text), /Enter the 6-digit code/);
  const both = await codeFrom(await submit(pwdAgain.browser, pwdAgain.page, { code: recovery[1] }), fx.web);
  assert.equal(both.id.acr, PWD);
  assert.deepEqual(both.id.amr, ['pwd', 'otp', 'mfa']);
});

test('an essential acr in the claims parameter is a demand: the factor is required; unknown values are refused', async () => {
  const user = await createUser(fx, { username: 'acrdemand' });
  const claims = (values) => JSON.stringify({ id_token: { acr: { essential: true, values } } });
  // acr_values would settle for the password; the essential claim does not.
  const demanded = await password(user, fx.web, {
    params: { acr_values: 'urn:clavex:acr:pwd', claims: claims(['urn:clavex:acr:mfa']) },
  });
  const { done } = await enrol(demanded.browser, demanded.page);
  assert.equal((await codeFrom(done, fx.web)).id.acr, 'urn:clavex:acr:mfa');
  // Essential values of which one is already met: nothing more is asked, acr is that value.
  const other = await createUser(fx, { username: 'acrdemand2' });
  const met = await password(other, fx.web, { params: { claims: claims(['urn:clavex:acr:mfa', 'urn:clavex:acr:pwd']) } });
  assert.equal((await codeFrom(met.page, fx.web)).id.acr, 'urn:clavex:acr:pwd');
  // Nothing Clavex knows: a failed authentication (Core §5.5.1.1), back to the client.
  const unmet = await password(other, fx.web, { params: { claims: claims(['urn:example:gold']), state: 'st-gold' } });
  assertErrorRedirect(fx, unmet.page, fx.web.redirect_uri, 'access_denied', 'st-gold');
});

test('optional: a signed-in user enrols at /{org}/account/mfa after a fresh password check', async () => {
  const org = await createFixture('mfaopt');
  await setOrg({ mfa: 'optional' }, org);
  const user = await createUser(org, { username: 'chooser' });
  const account = `${org.issuer}/account/mfa`;
  const anonymous = await new Browser().get(account);
  assert.equal(anonymous.status, 401, 'the SSO session is required');
  const login = await new Browser().get(authorizeUrl(org, org.web));
  assert.ok(login.text.includes(`href="/${org.slug}/account/mfa"`), 'the login page links to it where second factors are optional');
  const { browser, page } = await password(user, org.web, { on: org });
  assert.equal(page.status, 303, 'optional: no second factor yet');
  const ask = await browser.get(account);
  assert.equal(ask.status, 200);
  assert.match(pageText(ask.text), /Enter your password/);
  const wrong = await submit(browser, ask, { password: 'not the password' });
  assert.equal(wrong.status, 401);
  const enrolPage = await submit(browser, wrong, { password: user.password });
  const { done } = await enrol(browser, enrolPage);
  assert.equal(done.status, 200);
  assert.match(pageText(done.text), /Two-step verification is on/);
  assert.equal((await admin('GET', userPath(user, org))).body.totp_enrolled, true);
  // Enrolled users are asked for their code at every sign-in, whatever the client.
  const next = await password(user, org.web, { on: org });
  assert.match(pageText(next.page.text), /Enter the 6-digit code/);
  const off = await createFixture('mfaoff');
  const offUser = await createUser(off, { username: 'nobody2fa' });
  const offSession = await password(offUser, off.web, { on: off });
  assert.equal((await offSession.browser.get(`${off.issuer}/account/mfa`)).status, 403, 'not where the organization has it off');
});

test('wrong second-factor codes count toward login throttling', async () => {
  await setOrg({ mfa: 'required' });
  try {
    const user = await createUser(fx, { username: 'guesscodes' });
    const first = await password(user, fx.web);
    await enrol(first.browser, first.page);
    let { browser, page: current } = await password(user, fx.web);
    for (let i = 1; i <= 5; i++) {
      // Halfway, the right password again: it must not reset the count of wrong codes.
      if (i === 3) ({ browser, page: current } = await password(user, fx.web));
      current = await submit(browser, current, { code: String(100000 + i) });
      assert.equal(current.status, 401, `wrong code ${i}`);
    }
    // The threshold of wrong codes within one 30-second step locks the step and the next (a
    // code is accepted one step either way), whatever the account's own wait.
    assert.match(pageText(current.text), /Try again in 1 minute/);
    const locked = await submit(browser, current, { code: '123456' });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get('retry-after')) > 30, locked.headers.get('retry-after'));
  } finally {
    await setOrg({ mfa: 'off' });
  }
});

test('the organization policy is validated', async () => {
  const res = await admin('PATCH', `/organizations/${fx.slug}`, { mfa: 'always' });
  assert.equal(res.status, 400);
  assert.equal(res.body.field, 'mfa');
  assert.equal((await admin('GET', `/organizations/${fx.slug}`)).body.mfa, 'off');
  const bad = await admin('PATCH', `/organizations/${fx.slug}/clients/webapp`, { require_mfa: 'yes' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.field, 'require_mfa');
});
