// OAuth 2.0 Form Post Response Mode (https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html):
// with response_mode=form_post the code (or an error) comes back as a 200 HTML page whose form
// POSTs code/state/iss (or error/error_description/state/iss) to the exact redirect URI. The mode
// travels with the request through the login and consent pages. These tests read the page as a
// client's browser would: the form's action and hidden inputs, and the headers that protect it.
// tests/browser-form-post.test.mjs submits the same page in a real browser.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  Browser, admin, RP_REDIRECT, SPA_REDIRECT, assertErrorPage, assertErrorRedirect, assertTokenSuccess, authorizeUrl,
  createClient, createFixture, createUser, exchangeCode, formFields, isLoginPage, pageText, parseForms, parseRedirect,
  pkce, submitLogin,
} from './support/oidc.mjs';
import { base32Decode, totp } from './support/totp.mjs';

let fx;
before(async () => { fx = await createFixture('fpost'); });

const FORM_POST = { response_mode: 'form_post' };

/**
 * Assert `res` is a form_post page for `redirectUri` and return the fields it would POST (a plain
 * object of the hidden inputs, entities decoded). Checks what the spec and the product require of
 * the page: 200 HTML, no Location, no caching, one POST form whose action is exactly the
 * redirect URI, a CSP allowing its one inline script by hash and posting only to that origin.
 */
function formPostFields(res, redirectUri, what = 'form_post page') {
  assert.equal(res.status, 200, `${what}: 200, got ${res.status} Location=${res.location} ${res.text.slice(0, 300)}`);
  assert.equal(res.location, null, `${what}: no redirect`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/, `${what}: HTML`);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/, `${what}: Cache-Control: no-store (it carries a code)`);
  const forms = parseForms(res.text, res.url);
  assert.equal(forms.length, 1, `${what}: one form`);
  const [form] = forms;
  assert.equal(form.method, 'post', `${what}: the form POSTs`);
  assert.equal(form.rawAction, redirectUri, `${what}: the action is exactly the redirect URI`);
  const csp = res.headers.get('content-security-policy') ?? '';
  const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
  assert.deepEqual(directives['form-action'], [new URL(redirectUri).origin], `${what}: form-action is the redirect URI's origin: ${csp}`);
  assert.deepEqual(directives['default-src'], ["'none'"], `${what}: default-src 'none'`);
  // The one inline script is allowed by its hash, and by nothing broader.
  const scripts = [...res.text.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, `${what}: one inline script`);
  const hash = `'sha256-${createHash('sha256').update(scripts[0]).digest('base64')}'`;
  assert.deepEqual(directives['script-src'], [hash], `${what}: script-src is the script's hash: ${csp}`);
  assert.ok(form.buttons.some((b) => b.type === 'submit'), `${what}: a submit button for browsers without JavaScript`);
  const fields = {};
  for (const [k, v] of formFields(form)) {
    assert.equal(fields[k], undefined, `${what}: ${k} once`);
    fields[k] = v;
  }
  for (const input of form.inputs) assert.equal(input.type, 'hidden', `${what}: ${input.name} is hidden`);
  return fields;
}

test('a full sign-in with form_post: the login POST answers with the page, and its code redeems', async () => {
  const browser = new Browser();
  const state = 'st fp+/=&"<x>';
  const login = await browser.get(authorizeUrl(fx, fx.web, { ...FORM_POST, state }));
  assert.ok(isLoginPage(login), `the login page is shown, got ${login.status}`);
  const res = await submitLogin(browser, login, fx.alice.username, fx.alice.password);
  const fields = formPostFields(res, RP_REDIRECT);
  assert.deepEqual(Object.keys(fields), ['code', 'state', 'iss'], 'code, state and iss, nothing else');
  assert.equal(fields.state, state, 'state comes back exactly, HTML-escaped in the page');
  assert.ok(!res.text.includes('"<x>'), 'the state is escaped, not markup');
  assert.equal(fields.iss, fx.issuer, 'iss names the issuer (RFC 9207)');
  assert.ok(!res.text.includes(`?code=`), 'the code is in no URL');
  const tokens = assertTokenSuccess(await exchangeCode(fx, fx.web, fields.code), 'redeeming the posted code');
  assert.ok(tokens.id_token && tokens.access_token);
  // The sign-in also started the SSO session, as a query-mode sign-in does.
  assert.ok(res.setCookies.some((c) => c.name === 'clavex_session' && c.value), 'the session cookie is set with the page');
});

test('with an SSO session the page comes straight from /authorize; query stays the default', async () => {
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(fx, fx.web));
  const first = await submitLogin(browser, login, fx.alice.username, fx.alice.password);
  assert.ok([302, 303].includes(first.status), `without response_mode the code is redirected (query), got ${first.status}`);
  assert.ok(parseRedirect(first.location).params.code);

  const res = await browser.get(authorizeUrl(fx, fx.web, { ...FORM_POST, state: 'sso-1' }));
  const fields = formPostFields(res, RP_REDIRECT, 'form_post from /authorize');
  assert.equal(fields.state, 'sso-1');
  assert.equal(fields.iss, fx.issuer);
  assertTokenSuccess(await exchangeCode(fx, fx.web, fields.code), 'redeeming the code of the SSO page');

  // response_mode=query explicitly: a redirect again.
  const query = await browser.get(authorizeUrl(fx, fx.web, { response_mode: 'query', state: 'sso-2' }));
  assert.equal(query.status, 302);
  assert.equal(parseRedirect(query.location).params.state, 'sso-2');
});

test('a public client with PKCE gets its code by form_post too', async () => {
  const browser = new Browser();
  const pk = pkce();
  const login = await browser.get(authorizeUrl(fx, fx.spa, {
    ...FORM_POST, code_challenge: pk.challenge, code_challenge_method: 'S256', state: 'spa',
  }));
  const res = await submitLogin(browser, login, fx.alice.username, fx.alice.password);
  const fields = formPostFields(res, SPA_REDIRECT);
  assertTokenSuccess(await exchangeCode(fx, fx.spa, fields.code, { code_verifier: pk.verifier }), 'PKCE redemption');
});

test('prompt=none without a session: login_required is posted with state and iss', async () => {
  const res = await new Browser().get(authorizeUrl(fx, fx.web, { ...FORM_POST, prompt: 'none', state: 'pn' }));
  const fields = formPostFields(res, RP_REDIRECT, 'login_required by form_post');
  assert.deepEqual(Object.keys(fields), ['error', 'error_description', 'state', 'iss']);
  assert.equal(fields.error, 'login_required');
  assert.ok(fields.error_description);
  assert.equal(fields.state, 'pn');
  assert.equal(fields.iss, fx.issuer);
});

test('a request error found after the mode is known is posted too (invalid_scope, repeated parameter)', async () => {
  const scope = await new Browser().get(authorizeUrl(fx, fx.web, { ...FORM_POST, scope: 'profile', state: 'sc' }));
  const a = formPostFields(scope, RP_REDIRECT, 'invalid_scope');
  assert.equal(a.error, 'invalid_scope');
  assert.equal(a.state, 'sc');
  const url = authorizeUrl(fx, fx.web, { ...FORM_POST, state: 'rep' });
  url.searchParams.append('nonce', 'a');
  url.searchParams.append('nonce', 'b');
  const b = formPostFields(await new Browser().get(url), RP_REDIRECT, 'repeated nonce');
  assert.equal(b.error, 'invalid_request');
  assert.equal(b.state, 'rep');
});

test('fragment, unknown and repeated response modes are refused with invalid_request in the query', async () => {
  for (const mode of ['fragment', 'form_post.jwt', 'FORM_POST']) {
    const res = await new Browser().get(authorizeUrl(fx, fx.web, { response_mode: mode, state: 'm' }));
    assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', 'm', mode);
  }
  const twice = authorizeUrl(fx, fx.web, { ...FORM_POST, state: 'm2' });
  twice.searchParams.append('response_mode', 'form_post');
  assertErrorRedirect(fx, await new Browser().get(twice), RP_REDIRECT, 'invalid_request', 'm2', 'response_mode twice');
});

test('errors before the redirect URI is trusted stay an HTML error page', async () => {
  const bad = await new Browser().get(authorizeUrl(fx, fx.web, { ...FORM_POST, redirect_uri: 'https://evil.example.test/cb' }));
  assertErrorPage(bad, 400, 'unregistered redirect_uri');
  assert.match(bad.text, /error_uri_mismatch/);
  assert.equal(parseForms(bad.text, bad.url).length, 0, 'no form posting anywhere');
  const unknown = await new Browser().get(authorizeUrl(fx, { client_id: 'nobody', redirect_uri: RP_REDIRECT }, FORM_POST));
  assertErrorPage(unknown, 400, 'unknown client');
  assert.equal(parseForms(unknown.text, unknown.url).length, 0, 'no form posting anywhere');
});

test('consent: allow posts a code, deny posts access_denied', async () => {
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(fx, fx.web));
  await submitLogin(browser, login, fx.alice.username, fx.alice.password);
  for (const [decision, state] of [['allow', 'c-allow'], ['deny', 'c-deny']]) {
    const page = await browser.get(authorizeUrl(fx, fx.web, { ...FORM_POST, prompt: 'consent', state }));
    const form = parseForms(page.text, page.url).find((f) => f.buttons.some((b) => b.name === 'decision'));
    assert.ok(form, `the consent page, got ${page.status}`);
    const button = form.buttons.find((b) => b.value === decision);
    const res = await browser.post(form.action, formFields(form, {}, { button }));
    const fields = formPostFields(res, RP_REDIRECT, `consent ${decision}`);
    assert.equal(fields.state, state);
    if (decision === 'allow') {
      assertTokenSuccess(await exchangeCode(fx, fx.web, fields.code), 'redeeming the code after consent');
    } else {
      assert.equal(fields.error, 'access_denied');
      assert.equal(fields.code, undefined);
    }
  }
});

test('a redirect URI with its own query is the exact action; its parameters stay in the URI', async () => {
  const uri = 'https://rp.example.test/cb?tenant=a&x=1';
  const client = await createClient(fx, {
    client_id: 'with-query',
    client_name: 'Query App',
    grant_types: ['authorization_code'],
    redirect_uris: [uri],
    scopes: ['openid'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const res = await new Browser().get(authorizeUrl(fx, client, { ...FORM_POST, scope: 'openid', prompt: 'none', state: 'q' }));
  assert.ok(res.text.includes('action="https://rp.example.test/cb?tenant=a&#38;x=1"')
    || res.text.includes('action="https://rp.example.test/cb?tenant=a&amp;x=1"'), 'the & is escaped in the attribute');
  const fields = formPostFields(res, uri);
  assert.equal(fields.error, 'login_required');
  assert.equal(fields.tenant, undefined, "the URI's own query is not copied into the body");
});

test('through the second factor: enrolment, then a challenge, each ends in the form_post page', async () => {
  assert.equal((await admin('PATCH', `/organizations/${fx.slug}`, { mfa: 'optional' })).status, 200);
  const redirect = 'https://mfa.example.test/cb';
  const client = await createClient(fx, {
    client_id: 'needs-mfa', client_name: 'Needs MFA', grant_types: ['authorization_code'], redirect_uris: [redirect],
    token_endpoint_auth_method: 'client_secret_basic', require_mfa: true,
  });
  const user = await createUser(fx);
  const post = (browser, page, fields = {}) => {
    const [form] = parseForms(page.text, page.url);
    assert.ok(form, `a form on the page: ${page.status} ${pageText(page.text).slice(0, 200)}`);
    return browser.post(form.action, formFields(form, fields));
  };
  const signIn = async (state) => {
    const browser = new Browser();
    const login = await browser.get(authorizeUrl(fx, client, { ...FORM_POST, scope: 'openid', state }));
    return { browser, page: await submitLogin(browser, login, user.username, user.password) };
  };

  // First sign-in: the password, then enrolment (code, recovery codes), then the page.
  const first = await signIn('enrol');
  assert.match(pageText(first.page.text), /Set up two-step verification/);
  const secret = base32Decode(first.page.text.match(/<code id="secret">([A-Z2-7 ]+)<\/code>/)[1]);
  const codes = await post(first.browser, first.page, { code: totp(secret) });
  const recovery = [...codes.text.matchAll(/<li><code>([a-z2-7]{5}-[a-z2-7]{5})<\/code><\/li>/g)].map((m) => m[1]);
  assert.equal(recovery.length, 10, `the recovery codes page, got ${codes.status}`);
  const enrolled = formPostFields(await post(first.browser, codes), redirect, 'after enrolment');
  assert.equal(enrolled.state, 'enrol');
  assertTokenSuccess(await exchangeCode(fx, client, enrolled.code), 'redeeming the code after enrolment');

  // Second sign-in in another browser: the password, then a code (a recovery code: the TOTP step
  // of the enrolment is used up), then the page.
  const second = await signIn('challenge');
  assert.match(pageText(second.page.text), /Enter the 6-digit code/);
  const challenged = formPostFields(await post(second.browser, second.page, { code: recovery[0] }), redirect, 'after the challenge');
  assert.equal(challenged.state, 'challenge');
  const tokens = assertTokenSuccess(await exchangeCode(fx, client, challenged.code), 'redeeming the code after the challenge');
  assert.ok(tokens.id_token);
});
