// Scopes granted as allowed (RFC 6749 §3.3): a scope the client is not registered for, or that
// Clavex does not know, is left out of the grant rather than refused; the token response's `scope`
// says what was granted, and the consent page, refresh and introspection show the same. Only a
// request without `openid` (or a client that may not use it) is refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, createFixture, createClient, authorizeUrl, loginAndExchange, tokenRequest, assertTokenSuccess,
  assertErrorRedirect, clientPost, endpoint, userinfo, parseForms, pageText, RP_REDIRECT,
} from './support/oidc.mjs';

let fx;
let noOffline; // confidential, code grant only, openid profile email: no offline_access
let offline; // registered for offline_access and the refresh_token grant
before(async () => {
  fx = await createFixture('scopes');
  noOffline = await createClient(fx, {
    client_id: 'no-offline', client_name: 'No Offline', grant_types: ['authorization_code'],
    redirect_uris: [RP_REDIRECT], scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  offline = await createClient(fx, {
    client_id: 'offline', client_name: 'Offline App', grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [RP_REDIRECT], scopes: ['openid', 'profile', 'offline_access'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
});

const introspect = (client, token) => clientPost(fx, client, endpoint(fx, 'introspection_endpoint'), { token });
const scopeOf = (s) => s.split(' ');

test('a client not registered for offline_access that asks for it signs in: scope openid profile, no refresh_token', async () => {
  const { tokens } = await loginAndExchange(fx, noOffline, { params: { scope: 'openid profile offline_access' } });
  assert.deepEqual(scopeOf(tokens.scope), ['openid', 'profile']);
  assert.equal(tokens.refresh_token, undefined, 'no refresh token');
  assert.ok(tokens.id_token, 'an ID token');
  const ui = await userinfo(fx, tokens.access_token);
  assert.equal(ui.status, 200);
  assert.equal(ui.json.preferred_username, fx.alice.username, 'profile granted');
  assert.equal(ui.json.email, undefined, 'email was not asked for');
  const intro = await introspect(noOffline, tokens.access_token);
  assert.equal(intro.json.active, true, intro.text);
  assert.deepEqual(scopeOf(intro.json.scope), ['openid', 'profile'], 'introspection shows the granted scope');
});

test('a client registered for offline_access gets it when it asks', async () => {
  const { tokens } = await loginAndExchange(fx, offline, { params: { scope: 'openid offline_access' } });
  assert.deepEqual(scopeOf(tokens.scope), ['openid', 'offline_access']);
  assert.ok(tokens.refresh_token, 'a refresh token (the client has the refresh_token grant)');
});

test('scopes the client may not have are dropped and stay dropped through refresh and introspection', async () => {
  // offline: registered for openid profile offline_access; email and groups are not its, admin is nobody's.
  const { tokens } = await loginAndExchange(fx, offline, { params: { scope: 'openid email profile groups admin' } });
  assert.deepEqual(scopeOf(tokens.scope), ['openid', 'profile']);
  const ui = await userinfo(fx, tokens.access_token);
  assert.equal(ui.json.email, undefined, 'no email at userinfo');
  assert.equal(ui.json.groups, undefined, 'no groups at userinfo');
  const refreshed = assertTokenSuccess(await tokenRequest(fx, offline, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), 'refresh');
  assert.deepEqual(scopeOf(refreshed.scope), ['openid', 'profile'], 'refresh keeps the granted scope');
  const intro = await clientPost(fx, offline, endpoint(fx, 'introspection_endpoint'), { token: refreshed.refresh_token, token_type_hint: 'refresh_token' });
  assert.equal(intro.json.active, true, intro.text);
  assert.deepEqual(scopeOf(intro.json.scope), ['openid', 'profile']);
  // Asking refresh for a dropped scope is widening (RFC 6749 §6).
  const wider = await tokenRequest(fx, offline, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, scope: 'openid email' });
  assert.equal(wider.status, 400, wider.text);
  assert.equal(wider.json.error, 'invalid_scope');
});

test('the consent page lists only the granted scopes', async () => {
  const browser = new Browser();
  await loginAndExchange(fx, noOffline, { browser });
  const page = await browser.get(authorizeUrl(fx, noOffline, { scope: 'openid profile offline_access', prompt: 'consent' }));
  assert.equal(page.status, 200, `consent page expected, got ${page.status} ${page.location ?? ''}`);
  const text = pageText(page.text);
  assert.match(text, /See your name, username, picture/, 'profile is shown');
  assert.doesNotMatch(text, /Stay connected/, 'offline_access is not shown');
  assert.ok(parseForms(page.text, page.url).some((f) => f.buttons.some((b) => b.name === 'decision')));
});

test('openid is still required: without it, or for a client that may not use it, invalid_scope', async () => {
  const res = await new Browser().get(authorizeUrl(fx, noOffline, { scope: 'profile offline_access', state: 'no-openid' }));
  assertErrorRedirect(fx, res, RP_REDIRECT, 'invalid_scope', 'no-openid');
  const noScope = await new Browser().get(authorizeUrl(fx, noOffline, { scope: undefined, state: 'none' }));
  assertErrorRedirect(fx, noScope, RP_REDIRECT, 'invalid_scope', 'none');
  const noOpenid = await createClient(fx, {
    client_id: 'no-openid', client_name: 'No openid', grant_types: ['authorization_code'],
    redirect_uris: [RP_REDIRECT], scopes: ['profile', 'email'], token_endpoint_auth_method: 'client_secret_basic',
  });
  const refused = await new Browser().get(authorizeUrl(fx, noOpenid, { scope: 'openid profile', state: 'not-registered' }));
  assertErrorRedirect(fx, refused, RP_REDIRECT, 'invalid_scope', 'not-registered');
});
