// Groups and roles as a relying party receives them: the `groups` scope releases flat string
// arrays at userinfo (and in the ID token when the client asks), membership changes show at the
// next userinfo and refresh, and a client's allowed_groups refuses everyone else — at authorize
// with and without an SSO session, and at refresh.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createClient, createUser, authorize, authorizeUrl, loginAndExchange,
  userinfo, tokenRequest, assertTokenSuccess, assertOAuthError, assertErrorRedirect, decodeJwt,
  isLoginPage, submitLogin,
} from './support/oidc.mjs';

let fx;
let chat; // a client with the groups scope and a role map
let staffOnly; // a client restricted to the `staff` group
let member; // in chat-admins and support (and staff)
let outsider; // in no group

const groupPath = (name = '') => `/organizations/${fx.slug}/groups${name ? `/${name}` : ''}`;
async function ok(pending, status = 200) {
  const res = await pending;
  assert.equal(res.status, status, JSON.stringify(res.body));
  return res.body;
}
const join = (group, user) => ok(admin('PUT', `${groupPath(group)}/members/${user.id}`), 204);
const leave = (group, user) => ok(admin('DELETE', `${groupPath(group)}/members/${user.id}`), 204);

before(async () => {
  fx = await createFixture('grp');
  for (const name of ['chat-admins', 'support', 'staff']) await ok(admin('POST', groupPath(), { name }), 201);
  chat = await createClient(fx, {
    client_id: 'chat',
    client_name: 'Chat',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['https://chat.example.test/_oauth/clavex'],
    scopes: ['openid', 'profile', 'email', 'groups'],
    token_endpoint_auth_method: 'client_secret_basic',
    role_mappings: [
      { group: 'chat-admins', role: 'admin' },
      { group: 'support', role: 'livechat-agent' },
      { group: 'chat-admins', role: 'livechat-manager' },
    ],
  });
  staffOnly = await createClient(fx, {
    client_id: 'staff-app',
    client_name: 'Staff App',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['https://staff.example.test/cb'],
    scopes: ['openid', 'profile', 'groups'],
    token_endpoint_auth_method: 'client_secret_basic',
    allowed_groups: ['staff'],
  });
  member = await createUser(fx, { username: 'maria' });
  outsider = await createUser(fx, { username: 'olaf' });
  await join('chat-admins', member);
  await join('support', member);
  await join('staff', member);
});

const GROUPS_SCOPE = { scope: 'openid profile email groups' };

test('discovery advertises the groups scope and the groups and roles claims', () => {
  assert.ok(fx.discovery.scopes_supported.includes('groups'));
  assert.ok(fx.discovery.claims_supported.includes('groups'));
  assert.ok(fx.discovery.claims_supported.includes('roles'));
});

test('with the groups scope userinfo carries groups and mapped roles as flat arrays of strings', async () => {
  const { tokens, idToken } = await loginAndExchange(fx, chat, { user: member, params: GROUPS_SCOPE });
  const ui = await userinfo(fx, tokens.access_token);
  assert.equal(ui.status, 200, ui.text);
  assert.deepEqual(ui.json.groups, ['chat-admins', 'staff', 'support']);
  assert.deepEqual(ui.json.roles, ['admin', 'livechat-agent', 'livechat-manager']);
  for (const claim of ['groups', 'roles']) {
    assert.ok(Array.isArray(ui.json[claim]) && ui.json[claim].every((v) => typeof v === 'string'), `${claim}: top-level string array`);
  }
  assert.equal(idToken.payload.groups, undefined, 'not in the ID token unless configured or asked');
  assert.ok(tokens.scope.split(' ').includes('groups'));

  const none = await loginAndExchange(fx, chat, { user: outsider, params: GROUPS_SCOPE });
  const empty = await userinfo(fx, none.tokens.access_token);
  assert.deepEqual(empty.json.groups, [], 'present and empty for a user without groups');
  assert.deepEqual(empty.json.roles, []);

  const without = await loginAndExchange(fx, chat, { user: member });
  const plain = await userinfo(fx, without.tokens.access_token);
  assert.equal(plain.json.groups, undefined, 'no groups without the scope');
  assert.equal(plain.json.roles, undefined);
});

test('a client not registered for the groups scope does not get it when it asks', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web, { user: member, params: GROUPS_SCOPE });
  assert.ok(!tokens.scope.split(' ').includes('groups'), `groups not granted: scope=${tokens.scope}`);
  const ui = await userinfo(fx, tokens.access_token);
  assert.equal(ui.status, 200);
  assert.equal(ui.json.groups, undefined, 'no groups at userinfo');
  assert.equal(ui.json.roles, undefined, 'no roles at userinfo');
});

test('membership changes show at the next userinfo and refresh', async () => {
  const user = await createUser(fx, { username: 'mover' });
  await join('support', user);
  await ok(admin('PATCH', `/organizations/${fx.slug}/clients/chat`, { groups_in_id_token: true }));
  try {
    const { tokens, idToken } = await loginAndExchange(fx, chat, { user, params: GROUPS_SCOPE });
    assert.deepEqual(idToken.payload.groups, ['support'], 'in the ID token when the client is configured so');
    assert.deepEqual(idToken.payload.roles, ['livechat-agent']);
    await join('chat-admins', user);
    assert.deepEqual((await userinfo(fx, tokens.access_token)).json.roles, ['admin', 'livechat-agent', 'livechat-manager']);
    await leave('support', user);
    const ui = await userinfo(fx, tokens.access_token);
    assert.deepEqual(ui.json.groups, ['chat-admins']);
    assert.deepEqual(ui.json.roles, ['admin', 'livechat-manager']);
    await leave('chat-admins', user);
    const refreshed = assertTokenSuccess(await tokenRequest(fx, chat, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
    const id = decodeJwt(refreshed.id_token).payload;
    assert.deepEqual(id.groups, []);
    assert.deepEqual(id.roles, []);
    assert.deepEqual((await userinfo(fx, refreshed.access_token)).json.groups, []);
  } finally {
    await ok(admin('PATCH', `/organizations/${fx.slug}/clients/chat`, { groups_in_id_token: false }));
  }
});

test('renamed claims, and the ID token carries them when the claims parameter asks', async () => {
  const renamed = await createClient(fx, {
    client_id: 'renamed',
    client_name: 'Renamed',
    grant_types: ['authorization_code'],
    redirect_uris: ['https://renamed.example.test/cb'],
    scopes: ['openid', 'groups'],
    token_endpoint_auth_method: 'client_secret_basic',
    groups_claim: 'rc_groups',
    roles_claim: 'rc_roles',
    role_mappings: [{ group: 'support', role: 'livechat-agent' }],
  });
  const claims = JSON.stringify({ id_token: { rc_roles: null } });
  const { tokens, idToken } = await loginAndExchange(fx, renamed, { user: member, params: { scope: 'openid groups', claims } });
  assert.deepEqual(idToken.payload.rc_roles, ['livechat-agent']);
  assert.deepEqual(idToken.payload.rc_groups, ['chat-admins', 'staff', 'support']);
  const ui = (await userinfo(fx, tokens.access_token)).json;
  assert.deepEqual(ui.rc_roles, ['livechat-agent']);
  assert.deepEqual(ui.rc_groups, ['chat-admins', 'staff', 'support']);
  assert.equal(ui.roles, undefined);
  assert.equal(ui.groups, undefined);
});

test('allowed_groups: a user outside them gets access_denied with state and iss at login', async () => {
  const browser = new Browser();
  const url = authorizeUrl(fx, staffOnly, { scope: 'openid', state: 'st-login' });
  const page = await browser.get(url);
  assert.ok(isLoginPage(page));
  const res = await submitLogin(browser, page, outsider.username, outsider.password);
  assertErrorRedirect(fx, res, staffOnly.redirect_uri, 'access_denied', 'st-login');
  // A member passes.
  const a = await authorize(fx, staffOnly, { user: member, params: { scope: 'openid' } });
  assert.ok(a.code);
});

test('allowed_groups: an existing SSO session gives no code either (also with prompt=none)', async () => {
  // The outsider signs in to an open client, which starts the SSO session.
  const { browser } = await loginAndExchange(fx, fx.web, { user: outsider });
  for (const params of [{ scope: 'openid', state: 'st-sso' }, { scope: 'openid', state: 'st-none', prompt: 'none' }]) {
    const res = await browser.get(authorizeUrl(fx, staffOnly, params));
    assertErrorRedirect(fx, res, staffOnly.redirect_uri, 'access_denied', params.state, JSON.stringify(params));
  }
  // The session itself still works for the open client.
  const again = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'none' }));
  assert.equal(again.status, 302);
  assert.ok(new URL(again.location).searchParams.get('code'));
  // Added to the group, the same session now gets a code at once.
  await join('staff', outsider);
  try {
    const res = await browser.get(authorizeUrl(fx, staffOnly, { scope: 'openid', prompt: 'none' }));
    assert.equal(res.status, 302);
    assert.ok(new URL(res.location).searchParams.get('code'), res.location);
  } finally {
    await leave('staff', outsider);
  }
});

test('allowed_groups: refresh of a user removed from every allowed group is invalid_grant', async () => {
  const user = await createUser(fx, { username: 'leaver' });
  await join('staff', user);
  const { tokens } = await loginAndExchange(fx, staffOnly, { user, params: { scope: 'openid groups' } });
  const first = assertTokenSuccess(await tokenRequest(fx, staffOnly, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
  await leave('staff', user);
  const refused = await tokenRequest(fx, staffOnly, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
  assertOAuthError(refused, 400, 'invalid_grant');
  assert.match(refused.json.error_description, /group/);
  const ui = await userinfo(fx, first.access_token);
  assert.equal(ui.status, 401, 'the access token stops working too');
  // Back in the group, the same refresh token works again (it was refused, not revoked).
  await join('staff', user);
  assertTokenSuccess(await tokenRequest(fx, staffOnly, { grant_type: 'refresh_token', refresh_token: first.refresh_token }));
});

test('the consent page is not shown to a user the client does not admit', async () => {
  const { browser } = await loginAndExchange(fx, fx.web, { user: outsider });
  const res = await browser.get(authorizeUrl(fx, staffOnly, { scope: 'openid', prompt: 'consent', state: 'st-consent' }));
  assertErrorRedirect(fx, res, staffOnly.redirect_uri, 'access_denied', 'st-consent');
});
