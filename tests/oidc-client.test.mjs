// A certified relying-party library (openid-client v6) against Clavex, configured with nothing but
// the issuer URL, client id and secret: discovery, PKCE + nonce, code grant (ID token signature via
// JWKS, nonce, iss, aud checked by the library), userinfo, refresh, RP-initiated logout.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import {
  Browser, createFixture, createClient, isLoginPage, submitLogin, parseRedirect,
} from './support/oidc.mjs';

const REDIRECT = 'https://rp-lib.example.test/auth/callback';
const POST_LOGOUT = 'https://rp-lib.example.test/goodbye';

let fx;
let rp;
let config;
before(async () => {
  fx = await createFixture('rplib');
  rp = await createClient(fx, {
    client_id: 'rp-library',
    client_name: 'openid-client RP',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT],
    post_logout_redirect_uris: [POST_LOGOUT],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_post',
  });
  config = await client.discovery(new URL(fx.issuer), rp.client_id, rp.secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
});

test('openid-client: full flow — discovery, PKCE + nonce, code grant, userinfo, refresh, logout', async () => {
  assert.equal(config.serverMetadata().issuer, fx.issuer);

  // 1. Authorization URL with PKCE S256, nonce and state.
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid profile email',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    nonce,
    state,
  });

  // 2. The browser part: login page, form post, redirect back.
  const browser = new Browser();
  const page = await browser.get(authUrl);
  assert.ok(isLoginPage(page), `login page expected, got ${page.status}`);
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303, `${res.status} ${res.text.slice(0, 200)}`);
  const callback = new URL(res.location);
  assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT);

  // 3. Code grant: the library checks state, iss (RFC 9207), the ID token signature against the JWKS,
  //    iss, aud, exp, iat, nonce and at_hash, and the PKCE binding via the server.
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.iss, fx.issuer);
  assert.equal(claims.sub, fx.alice.sub);
  assert.equal(claims.nonce, nonce);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.refresh_token, 'a refresh token');
  assert.ok(tokens.expiresIn() > 0);

  // 4. Userinfo (the library requires application/json and a matching sub).
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, fx.alice.sub);
  assert.equal(info.email, fx.alice.email);
  assert.equal(info.preferred_username, fx.alice.username);

  // 5. Refresh: the library validates the new ID token (same iss/sub/aud).
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  if (refreshed.id_token) assert.equal(refreshed.claims().sub, claims.sub);
  const info2 = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  assert.equal(info2.sub, claims.sub);

  // 6. The session is live: a second authorization is silent.
  const silent = await browser.get(client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', state: 'silent',
    code_challenge: codeChallenge, code_challenge_method: 'S256',
  }));
  assert.equal(silent.status, 302, 'SSO session before logout');
  assert.ok(parseRedirect(silent.location).params.code);

  // 7. RP-initiated logout built by the library.
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT,
    state: 'logout-state',
  });
  assert.equal(`${endSession.origin}${endSession.pathname}`, config.serverMetadata().end_session_endpoint);
  const out = await browser.get(endSession);
  assert.ok([302, 303].includes(out.status), `logout redirect expected, got ${out.status}`);
  const back = parseRedirect(out.location);
  assert.equal(back.base, POST_LOGOUT);
  assert.equal(back.params.state, 'logout-state');

  // 8. The session is gone: prompt=none now fails, and a normal request shows the login page.
  const after = await browser.get(client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', state: 'after',
    code_challenge: codeChallenge, code_challenge_method: 'S256',
  }));
  const r = parseRedirect(after.location);
  assert.equal(r.params.error, 'login_required');
  assert.equal(r.params.state, 'after');
  const loginAgain = await browser.get(authUrl);
  assert.ok(isLoginPage(loginAgain), 'login page after logout');
});

test('openid-client: client_secret_basic authentication works with the same registration', async () => {
  const basic = await client.discovery(new URL(fx.issuer), rp.client_id, rp.secret, client.ClientSecretBasic(rp.secret), {
    execute: [client.allowInsecureRequests],
  });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const browser = new Browser();
  const page = await browser.get(client.buildAuthorizationUrl(basic, {
    redirect_uri: REDIRECT, scope: 'openid', state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }));
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  const tokens = await client.authorizationCodeGrant(basic, new URL(res.location), { pkceCodeVerifier: verifier, expectedState: state });
  assert.equal(tokens.claims().sub, fx.alice.sub);
});

test('openid-client: token introspection and revocation', async () => {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const browser = new Browser();
  const page = await browser.get(client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'openid', state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }));
  const res = await submitLogin(browser, page, fx.alice.username, fx.alice.password);
  const tokens = await client.authorizationCodeGrant(config, new URL(res.location), { pkceCodeVerifier: verifier, expectedState: state });
  const live = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(live.active, true);
  assert.equal(live.client_id, rp.client_id);
  await client.tokenRevocation(config, tokens.access_token);
  const dead = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(dead.active, false);
});
