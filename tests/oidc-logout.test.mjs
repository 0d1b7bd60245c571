// RP-initiated logout (end_session_endpoint): session cleared, redirect only to a registered
// post_logout_redirect_uri with state echoed.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, CookieJar, createFixture, loginAndExchange, authorizeUrl, endpoint, isLoginPage, parseRedirect,
  assertErrorPage, isDeletion, RP_LOGOUT,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('logout'); });

function logoutUrl(params) {
  const url = new URL(endpoint(fx, 'end_session_endpoint'));
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url;
}

async function signedIn() {
  const browser = new Browser();
  const r = await loginAndExchange(fx, fx.web, { browser });
  const check = await browser.get(authorizeUrl(fx, fx.web));
  assert.equal(check.status, 302, 'signed in (SSO redirect) before logout');
  return { browser, tokens: r.tokens };
}

test('logout with client_id → redirect to the registered URI with state; session gone', async () => {
  const { browser } = await signedIn();
  const state = 'bye+/= state';
  const res = await browser.get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: RP_LOGOUT, state }));
  assert.ok([302, 303].includes(res.status), `redirect expected, got ${res.status} ${res.text.slice(0, 200)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_LOGOUT);
  assert.equal(r.params.state, state, 'state echoed exactly');
  assert.ok(res.setCookies.some(isDeletion), `the session cookie is cleared: ${res.setCookies.map((c) => c.raw).join(' | ')}`);
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page), `authorize shows the login page after logout, got ${page.status} ${page.location ?? ''}`);
});

test('logout with id_token_hint → redirect to the registered URI', async () => {
  const { browser, tokens } = await signedIn();
  const res = await browser.get(logoutUrl({ id_token_hint: tokens.id_token, post_logout_redirect_uri: RP_LOGOUT, state: 's1' }));
  assert.ok([302, 303].includes(res.status), `redirect expected, got ${res.status}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_LOGOUT);
  assert.equal(r.params.state, 's1');
  assert.ok(isLoginPage(await browser.get(authorizeUrl(fx, fx.web))), 'signed out');
});

test('the old session cookie is dead on the server, not just deleted in the browser', async () => {
  const { browser } = await signedIn();
  const saved = browser.jar.clone();
  await browser.get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: RP_LOGOUT }));
  const replay = await new Browser(saved).get(authorizeUrl(fx, fx.web, { prompt: 'none', state: 'replay' }));
  const r = parseRedirect(replay.location);
  assert.equal(r.params.code, undefined, 'no code for a logged-out session cookie');
  assert.equal(r.params.error, 'login_required');
});

test('an unregistered post_logout_redirect_uri → HTML page, no redirect', async () => {
  const { browser } = await signedIn();
  const res = await browser.get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: 'https://evil.example/bye', state: 'x' }));
  assertErrorPage(res, [200, 400], 'unregistered post_logout_redirect_uri');
  assert.ok(!res.text.includes('http-equiv="refresh"'), 'no meta-refresh redirect either');
});

test('another client\'s post_logout_redirect_uri with this client_id → no redirect', async () => {
  const { browser } = await signedIn();
  const res = await browser.get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: fx.other.post_logout_redirect_uris[0] }));
  assertErrorPage(res, [200, 400], 'post_logout_redirect_uri of another client');
});

test('registered URI plus a suffix → no redirect', async () => {
  const { browser } = await signedIn();
  const res = await browser.get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: `${RP_LOGOUT}/x` }));
  assertErrorPage(res, [200, 400], 'registered URI plus suffix');
});

test('post_logout_redirect_uri without client_id or id_token_hint → no redirect', async () => {
  const { browser } = await signedIn();
  const res = await browser.get(logoutUrl({ post_logout_redirect_uri: RP_LOGOUT }));
  assertErrorPage(res, [200, 400], 'no client identification');
});

test('logout with a fresh browser (no session) still redirects to a registered URI', async () => {
  const res = await new Browser(new CookieJar()).get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: RP_LOGOUT, state: 'z' }));
  assert.ok([302, 303].includes(res.status), `redirect expected, got ${res.status}`);
  assert.equal(parseRedirect(res.location).params.state, 'z');
});

test('logging out of one organization leaves a session at another organization alone', async () => {
  const fx2 = await createFixture('logout2');
  const browser = new Browser();
  await loginAndExchange(fx, fx.web, { browser });
  await loginAndExchange(fx2, fx2.web, { browser });
  await browser.get(logoutUrl({ client_id: fx.web.client_id, post_logout_redirect_uri: RP_LOGOUT }));
  const res = await browser.get(authorizeUrl(fx2, fx2.web));
  assert.equal(res.status, 302, 'still signed in at the other organization');
});

test('logout by POST (OIDC RP-Initiated Logout §2: GET and POST) works like GET', async () => {
  const { browser } = await signedIn();
  const res = await browser.post(endpoint(fx, 'end_session_endpoint'), {
    client_id: fx.web.client_id, post_logout_redirect_uri: RP_LOGOUT, state: 'posted',
  });
  assert.ok([302, 303].includes(res.status), `redirect expected, got ${res.status}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_LOGOUT);
  assert.equal(r.params.state, 'posted');
  assert.ok(isLoginPage(await browser.get(authorizeUrl(fx, fx.web))), 'signed out');
});

test('an id_token_hint from another organization does not authorize a redirect', async () => {
  const fx2 = await createFixture('logout3');
  const other = await loginAndExchange(fx2, fx2.web);
  const { browser } = await signedIn();
  const res = await browser.get(logoutUrl({ id_token_hint: other.tokens.id_token, post_logout_redirect_uri: RP_LOGOUT }));
  assert.equal(res.location, null, `no redirect on a foreign id_token_hint: ${res.location}`);
});
