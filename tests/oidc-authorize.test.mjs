// The authorization endpoint's request validation: what is an error page, what is an error
// redirect (with state and iss), and which parameters must simply be accepted.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, createFixture, authorizeUrl, assertErrorPage, assertErrorRedirect, isLoginPage, pageText,
  parseRedirect, pkce, RP_REDIRECT, SPA_REDIRECT, loginForm, authorize, submitLogin, createClient,
  exchangeCode, assertTokenSuccess, userinfo,
} from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('authz'); });

const get = (url) => new Browser().get(url);

// --- never redirect: unknown client, unregistered redirect_uri --------------------------------

test('unknown client_id → 400 HTML error page, no redirect', async () => {
  const res = await get(authorizeUrl(fx, { client_id: 'no-such-client', redirect_uri: RP_REDIRECT }));
  assertErrorPage(res, 400);
});

test('unknown client_id with an otherwise bad request still never redirects', async () => {
  const res = await get(authorizeUrl(fx, { client_id: 'no-such-client', redirect_uri: RP_REDIRECT }, { response_type: 'token' }));
  assertErrorPage(res, 400);
});

test('unregistered redirect_uri → 400 page naming error_uri_mismatch and the (escaped) URI', async () => {
  const evil = 'https://evil.example/cb?a=1&b=<i>x</i>';
  const res = await get(authorizeUrl(fx, fx.web, { redirect_uri: evil }));
  assertErrorPage(res, 400);
  assert.match(res.text, /error_uri_mismatch/);
  assert.ok(pageText(res.text).includes(evil), `the page shows the URI that was sent:\n${res.text.slice(0, 800)}`);
  assert.ok(!res.text.includes('<i>x</i>'), 'the URI is HTML-escaped, not injected as markup');
});

for (const [label, uri] of [
  ['registered URI plus a path suffix', `${RP_REDIRECT}/extra`],
  ['registered URI plus a query', `${RP_REDIRECT}?next=/admin`],
  ['registered URI with a trailing slash', `${RP_REDIRECT}/`],
  ['registered URI with a different case host', RP_REDIRECT.replace('rp.example.test', 'RP.example.test')],
  ['registered URI over http instead of https', RP_REDIRECT.replace('https:', 'http:')],
  ['another client\'s registered URI', SPA_REDIRECT],
  ['registered URI plus a fragment', `${RP_REDIRECT}#frag`],
  ['registered URI with an explicit default port', RP_REDIRECT.replace('rp.example.test', 'rp.example.test:443')],
  ['registered URI with a percent-encoded path character', RP_REDIRECT.replace('/callback', '/%63allback')],
]) {
  test(`redirect_uri mismatch (${label}) → error page, never a redirect`, async () => {
    const res = await get(authorizeUrl(fx, fx.web, { redirect_uri: uri }));
    assertErrorPage(res, 400, label);
    assert.match(res.text, /error_uri_mismatch/);
  });
}

test('redirect_uri mismatch with another error (response_type=token) is still an error page', async () => {
  const res = await get(authorizeUrl(fx, fx.web, { redirect_uri: 'https://evil.example/cb', response_type: 'token' }));
  assertErrorPage(res, 400);
});

test('missing redirect_uri never yields a code', async () => {
  // OIDC Core 3.1.2.1 makes redirect_uri REQUIRED; either an error page or an error redirect to the
  // (only) registered URI is acceptable, but never a code.
  const res = await get(authorizeUrl(fx, fx.web, { redirect_uri: undefined }));
  if (res.location) {
    const r = parseRedirect(res.location);
    assert.equal(r.base, RP_REDIRECT, 'only ever to a registered URI');
    assert.equal(r.params.code, undefined);
    assert.equal(r.params.error, 'invalid_request');
  } else {
    assert.equal(res.status, 400, `error page expected, got ${res.status}`);
    assert.ok(!isLoginPage(res), 'no login form for an invalid request');
  }
});

// --- redirect with error, state and iss ---------------------------------------------------------

test('missing response_type → redirect with invalid_request, state and iss', async () => {
  const state = 'st-missing-rt';
  const res = await get(authorizeUrl(fx, fx.web, { response_type: undefined, state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', state);
});

for (const rt of ['token', 'id_token', 'code id_token', 'code token', 'none']) {
  test(`response_type=${rt} → redirect with unsupported_response_type`, async () => {
    const state = `st-${rt.replace(' ', '-')}`;
    const res = await get(authorizeUrl(fx, fx.web, { response_type: rt, state }));
    assertErrorRedirect(fx, res, RP_REDIRECT, 'unsupported_response_type', state, rt);
  });
}

test('scope without openid → invalid_scope', async () => {
  const state = 'st-no-openid';
  const res = await get(authorizeUrl(fx, fx.web, { scope: 'profile email', state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_scope', state);
});

test('an unknown scope is left out of the grant, not refused (RFC 6749 §3.3)', async () => {
  const a = await authorize(fx, fx.web, { params: { scope: 'openid admin:everything email' } });
  const t = assertTokenSuccess(await exchangeCode(fx, fx.web, a.code));
  assert.deepEqual(t.scope.split(' '), ['openid', 'email']);
});

test('missing scope → invalid_scope or invalid_request (openid is required)', async () => {
  const state = 'st-no-scope';
  const res = await get(authorizeUrl(fx, fx.web, { scope: undefined, state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, ['invalid_scope', 'invalid_request'], state);
});

test('PKCE method plain is refused with invalid_request', async () => {
  const state = 'st-plain';
  const res = await get(authorizeUrl(fx, fx.web, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain', state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', state);
});

test('PKCE challenge without a method (RFC 7636 default: plain) is refused with invalid_request', async () => {
  const state = 'st-no-method';
  const res = await get(authorizeUrl(fx, fx.web, { code_challenge: pkce().challenge, state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', state);
});

test('unknown PKCE method is refused with invalid_request', async () => {
  const state = 'st-s512';
  const res = await get(authorizeUrl(fx, fx.web, { code_challenge: pkce().challenge, code_challenge_method: 'S512', state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_request', state);
});

test('public client without PKCE → invalid_request', async () => {
  const state = 'st-spa-nopkce';
  const res = await get(authorizeUrl(fx, fx.spa, { state }));
  assertErrorRedirect(fx, res, SPA_REDIRECT, 'invalid_request', state);
});

test('prompt=none without a session → login_required with state, no code', async () => {
  const state = 'st-prompt-none';
  const res = await get(authorizeUrl(fx, fx.web, { prompt: 'none', state }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'login_required', state);
});

test('state is echoed exactly on error redirects: base64 +/=, spaces, unicode, 128 chars', async () => {
  const states = [
    'eyJhIjoiYj8+Pz4/In0+/w==',
    'a b&c=d%25e#f',
    'zoë-ünïcødé-✓',
    'x'.repeat(128),
  ];
  for (const state of states) {
    const res = await get(authorizeUrl(fx, fx.web, { response_type: 'token', state }));
    assertErrorRedirect(fx, res, RP_REDIRECT, 'unsupported_response_type', state, `state ${JSON.stringify(state)}`);
  }
});

test('an error redirect without state carries no state parameter', async () => {
  const res = await get(authorizeUrl(fx, fx.web, { response_type: 'token', state: undefined }));
  assert.ok([302, 303].includes(res.status), `redirect expected, got ${res.status}`);
  const r = parseRedirect(res.location);
  assert.equal(r.params.error, 'unsupported_response_type');
  assert.equal(r.params.iss, fx.issuer);
  assert.ok(!('state' in r.params), `no state parameter: ${res.location}`);
});

test('error redirects use the query, not the fragment', async () => {
  const res = await get(authorizeUrl(fx, fx.web, { response_type: 'token', state: 's' }));
  const r = parseRedirect(res.location);
  assert.equal(r.url.hash, '', 'query response mode: no fragment');
  assert.equal(r.params.error, 'unsupported_response_type');
});

test('a registered redirect URI with its own query keeps it (RFC 6749 §3.1.2)', async () => {
  const uri = 'https://rp.example.test/cb?tenant=7';
  const client = await createClient(fx, {
    client_id: 'with-query', client_name: 'Query RP', grant_types: ['authorization_code'], redirect_uris: [uri],
    scopes: ['openid'], token_endpoint_auth_method: 'client_secret_basic',
  });
  const a = await authorize(fx, client, { params: { scope: 'openid', state: 'q1' } });
  assert.equal(a.params.tenant, '7', `the registered query survives: ${a.location}`);
  assert.equal(a.params.state, 'q1');
  const err = await get(authorizeUrl(fx, client, { scope: 'openid', response_type: 'token', state: 'q2' }));
  const r = parseRedirect(err.location);
  assert.equal(r.params.tenant, '7');
  assert.equal(r.params.error, 'unsupported_response_type');
});

// --- accepted parameters ------------------------------------------------------------------------

test('optional OIDC parameters and unknown parameters are accepted (login page shown)', async () => {
  const res = await get(authorizeUrl(fx, fx.web, {
    nonce: 'n-0S6_WzA2Mj', display: 'page', ui_locales: 'de-CH en', claims_locales: 'en', acr_values: 'urn:mace:incommon:iap:silver',
    max_age: '3600', frobnicate: 'yes', 'x-custom': '1',
  }));
  assert.ok(isLoginPage(res), `login page expected, got ${res.status} ${res.location ?? ''} ${res.text.slice(0, 300)}`);
});

test('login_hint pre-fills the username field', async () => {
  const res = await get(authorizeUrl(fx, fx.web, { login_hint: 'alice' }));
  assert.ok(isLoginPage(res), `login page expected, got ${res.status}`);
  const username = loginForm(res).inputs.find((i) => i.name === 'username');
  assert.ok(username, 'a username input');
  assert.equal(username.value, 'alice');
});

test('login_hint is HTML-escaped in the login page', async () => {
  const hint = '"><script>alert(1)</script>';
  const res = await get(authorizeUrl(fx, fx.web, { login_hint: hint }));
  assert.ok(isLoginPage(res), `login page expected, got ${res.status}`);
  assert.ok(!res.text.includes('<script>alert(1)</script>'), 'no markup injection');
  assert.equal(loginForm(res).inputs.find((i) => i.name === 'username').value, hint);
});

test('an authorization request POSTed as a form works like GET', async () => {
  const url = authorizeUrl(fx, fx.web, { state: 'st-post' });
  const browser = new Browser();
  const page = await browser.post(`${url.origin}${url.pathname}`, url.searchParams);
  assert.ok(isLoginPage(page), `login page expected, got ${page.status} ${page.text.slice(0, 300)}`);
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303);
  const r = parseRedirect(res.location);
  assert.equal(r.base, RP_REDIRECT);
  assert.ok(r.params.code);
  assert.equal(r.params.state, 'st-post');
});

test('a successful redirect carries code, the exact state and iss, in the query', async () => {
  const state = 'eyJsb2dpblN0eWxlIjoicmVkaXJlY3QifQ+/=';
  const a = await authorize(fx, fx.web, { params: { state } });
  assert.equal(a.params.state, state);
  assert.equal(a.params.iss, fx.issuer);
  assert.match(a.code, /^[\x21-\x7e]{22,}$/, 'code of at least 22 printable characters (≥128 bits)');
});

test('the second registered redirect URI is accepted exactly', async () => {
  const a = await authorize(fx, { ...fx.web, redirect_uri: fx.web.redirect_uris[1] });
  assert.ok(a.location.startsWith(`${fx.web.redirect_uris[1]}?`));
});

// --- robustness ---------------------------------------------------------------------------------

test('an unknown client_id is HTML-escaped on the error page', async () => {
  const res = await get(authorizeUrl(fx, { client_id: '<script>alert(1)</script>', redirect_uri: RP_REDIRECT }));
  assertErrorPage(res, 400);
  assert.ok(!res.text.includes('<script>alert(1)</script>'), 'no markup injection');
});

test('a repeated parameter (RFC 6749 §3.1: at most once) never yields a code', async () => {
  for (const dup of ['response_type', 'scope', 'state', 'code_challenge']) {
    const url = authorizeUrl(fx, fx.web, { state: 'dup', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
    url.searchParams.append(dup, dup === 'response_type' ? 'code' : dup === 'scope' ? 'openid' : 'other');
    const res = await get(url);
    if (res.location) {
      const r = parseRedirect(res.location);
      assert.equal(r.base, RP_REDIRECT, dup);
      assert.equal(r.params.error, 'invalid_request', `duplicate ${dup}: ${res.location}`);
    } else {
      assert.equal(res.status, 400, `duplicate ${dup}: error page expected, got ${res.status}`);
      assert.ok(!isLoginPage(res), `duplicate ${dup}: no login page`);
    }
  }
});

test('a repeated redirect_uri or client_id → error page, never a redirect', async () => {
  for (const [dup, value] of [['redirect_uri', 'https://evil.example/cb'], ['client_id', 'other']]) {
    const url = authorizeUrl(fx, fx.web);
    url.searchParams.append(dup, value);
    assertErrorPage(await get(url), 400, `duplicate ${dup}`);
  }
});

test('request objects are not supported: request → request_not_supported, request_uri → request_uri_not_supported', async () => {
  // OIDC Core §6.1 / §6.2: an OP that does not support them MUST return these errors rather than
  // silently ignoring parameters that may carry the real request.
  const jwt = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"scope":"openid"}').toString('base64url')}.`;
  const r1 = await get(authorizeUrl(fx, fx.web, { request: jwt, state: 'ro' }));
  assertErrorRedirect(fx, r1, RP_REDIRECT, 'request_not_supported', 'ro');
  const r2 = await get(authorizeUrl(fx, fx.web, { request_uri: 'https://rp.example.test/req.jwt', state: 'ru' }));
  assertErrorRedirect(fx, r2, RP_REDIRECT, 'request_uri_not_supported', 'ru');
});

test('a scope the client is not registered for is not granted, and the sign-in goes on', async () => {
  const client = await createClient(fx, {
    client_id: 'openid-only', client_name: 'Openid only', grant_types: ['authorization_code'], redirect_uris: [RP_REDIRECT],
    scopes: ['openid'], token_endpoint_auth_method: 'client_secret_basic',
  });
  const a = await authorize(fx, client, { params: { scope: 'openid email' } });
  const t = assertTokenSuccess(await exchangeCode(fx, client, a.code));
  assert.equal(t.scope, 'openid', `only openid granted: scope=${t.scope}`);
  const u = await userinfo(fx, t.access_token);
  assert.equal(u.json.email, undefined, 'no email at userinfo');
});
