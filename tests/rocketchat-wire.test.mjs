// Rocket.Chat's two Custom OAuth code paths, on the wire as /work/shared/notes/rocketchat-wire.md
// describes them, against a client registered exactly as docs/integrations/rocket-chat.md says.
// Rocket.Chat builds URLs from "URL" + path settings (not from discovery), so these tests do too.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  Browser, admin, createFixture, createClient, createUser, isLoginPage, submitLogin, rawHttp,
} from './support/oidc.mjs';

const CALLBACK = 'https://chat.acme.eu/_oauth/clavex';
const FORBIDDEN = ['id', '_id', 'ID', 'user_id', 'userid', 'phid', 'CharacterID', 'result', 'user', 'metadata', 'ocs'];

let fx;
let rc; // the rocketchat client
let user;
let URL_SETTING; // Rocket.Chat's "URL" setting: the issuer
before(async () => {
  fx = await createFixture('rc');
  rc = await createClient(fx, {
    client_id: 'rocketchat',
    client_name: 'Rocket.Chat',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [CALLBACK],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_post',
  });
  user = await createUser(fx, { username: 'jane.doe', name: 'Jane Doe', email: 'jane.doe@acme.eu', picture: 'https://cdn.acme.eu/avatars/jane.png' });
  URL_SETTING = fx.issuer;
});

/** Meteor's OAuth._stateParam: standard base64 of a JSON object (~200 chars) — here one with +, / and =. */
function meteorState() {
  for (let i = 0; ; i++) {
    const json = JSON.stringify({
      loginStyle: 'redirect',
      credentialToken: randomBytes(32).toString('base64url'),
      isCordova: false,
      redirectUrl: `https://chat.acme.eu/home?tab=${i}&q=~~>>??`,
    });
    const state = Buffer.from(json).toString('base64');
    if (state.includes('+') && state.includes('/') && state.endsWith('=') && state.length >= 150) return state;
  }
}

/** Rocket.Chat's user-id lookup order over the userinfo object (its identity normalizers). */
function rocketChatUserId(identity) {
  if (identity._id) return identity._id;
  if (identity.result) return rocketChatUserId(identity.result);
  for (const k of ['ID', 'user_id', 'CharacterID']) if (identity[k]) return identity[k];
  if (identity.user?.userid) return identity.user.userid;
  if (identity.user?.user_id) return identity.user.user_id;
  if (identity.phid) return identity.phid;
  if (identity.sub) return identity.sub;
  return identity.id;
}

/** Browser part of the legacy flow: the exact URL Rocket.Chat's client builds, login, redirect. */
async function legacyAuthorize(scope = 'openid profile email') {
  const state = meteorState();
  const url = `${URL_SETTING}/authorize?client_id=rocketchat&redirect_uri=${encodeURIComponent(CALLBACK)}`
    + `&response_type=code&state=${encodeURIComponent(state)}&scope=${encodeURIComponent(scope)}`;
  const browser = new Browser();
  const page = await browser.get(url);
  assert.ok(isLoginPage(page), `login page expected, got ${page.status} ${page.text.slice(0, 200)}`);
  const res = await submitLogin(browser, page, user.username, user.password);
  assert.equal(res.status, 303, `${res.status} ${res.text.slice(0, 200)}`);
  return { state, location: res.location };
}

/** Rocket.Chat's server reads the callback query with a standard parser (`+` would become a space). */
function callbackQuery(location) {
  const u = new URL(location);
  assert.equal(`${u.origin}${u.pathname}`, CALLBACK);
  const raw = Object.fromEntries(u.search.slice(1).split('&').map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
  return { params: Object.fromEntries(u.searchParams), raw };
}

/** The token request of the legacy (Meteor) flow. */
function meteorTokenRequest(code, state, mode) {
  const body = new URLSearchParams({ code, redirect_uri: CALLBACK, grant_type: 'authorization_code', state });
  const headers = {
    'Content-Type': 'application/x-www-form-urlencoded',
    Accept: 'application/json',
    'User-Agent': 'Meteor/2.16',
  };
  if (mode === 'header') headers.Authorization = `Basic ${Buffer.from(`rocketchat:${rc.secret}`).toString('base64')}`;
  else { body.append('client_secret', rc.secret); body.append('client_id', 'rocketchat'); }
  return rawHttp('POST', `${URL_SETTING}/token`, headers, body.toString());
}

function assertMeteorTokenResponse(res) {
  assert.ok(res.status >= 200 && res.status < 300, `2xx expected, got ${res.status} ${res.text}`);
  assert.ok(res.json, `JSON body: ${res.text.slice(0, 200)}`);
  assert.equal(typeof res.json.access_token, 'string');
  assert.ok(Number.isInteger(parseInt(res.json.expires_in, 10)) && parseInt(res.json.expires_in, 10) > 0, 'expires_in parses as a positive integer');
  assert.equal(typeof res.json.refresh_token, 'string', 'refresh_token (client has the refresh_token grant)');
  assert.equal(typeof res.json.id_token, 'string');
  return res.json;
}

function assertFieldMap(identity) {
  assert.equal(typeof identity, 'object');
  for (const k of FORBIDDEN) assert.ok(!(k in identity), `userinfo must not carry top-level "${k}"`);
  assert.equal(rocketChatUserId(identity), user.sub, 'Rocket.Chat resolves the user id to sub');
  // Field map: {"name":"name","email":"email","username":"preferred_username","avatar":"picture"}
  assert.equal(identity.name, 'Jane Doe');
  assert.equal(identity.email, 'jane.doe@acme.eu');
  assert.equal(identity.preferred_username, 'jane.doe');
  assert.match(identity.preferred_username, /^[A-Za-z0-9._-]+$/, 'username safe for Rocket.Chat');
  assert.equal(identity.picture, 'https://cdn.acme.eu/avatars/jane.png');
  assert.equal(new URL(identity.picture).protocol, 'https:', 'avatar is a public absolute URL');
}

test('legacy flow: base64 state with + / = comes back byte for byte in the redirect', async () => {
  const { state, location } = await legacyAuthorize();
  const { params, raw } = callbackQuery(location);
  assert.ok(params.code, 'a code');
  assert.equal(params.state, state, 'state decodes (as a form query) to the exact value sent');
  assert.equal(decodeURIComponent(raw.state), state, 'state percent-decodes to the exact value sent (no raw +)');
  assert.equal(JSON.parse(Buffer.from(params.state, 'base64').toString()).loginStyle, 'redirect', 'Meteor can decode it');
  assert.equal(params.iss, fx.issuer);
});

test('legacy flow, "Token sent via Header": Basic rocketchat:secret (raw), Accept json, extra state ignored', async () => {
  const { state, location } = await legacyAuthorize();
  const { params } = callbackQuery(location);
  const tokens = assertMeteorTokenResponse(await meteorTokenRequest(params.code, params.state, 'header'));
  assert.equal(params.state, state);

  // "Identity token sent via Header": GET userinfo with the Bearer header.
  const ui = await rawHttp('GET', `${URL_SETTING}/userinfo`, {
    Authorization: `Bearer ${tokens.access_token}`, Accept: 'application/json', 'User-Agent': 'Meteor/2.16',
  });
  assert.ok(ui.status >= 200 && ui.status < 300, `userinfo 2xx, got ${ui.status} ${ui.text}`);
  assert.match(ui.headers['content-type'] ?? '', /^application\/json/);
  assertFieldMap(ui.json);
});

test('legacy flow, "Token sent via Payload": client_id and client_secret in the body', async () => {
  const { location } = await legacyAuthorize();
  const { params } = callbackQuery(location);
  const tokens = assertMeteorTokenResponse(await meteorTokenRequest(params.code, params.state, 'payload'));

  // Identity token in the query string under "Param name for access token" = access_token.
  const ui = await rawHttp('GET', `${URL_SETTING}/userinfo?access_token=${encodeURIComponent(tokens.access_token)}`, {
    Accept: 'application/json', 'User-Agent': 'Meteor/2.16',
  });
  assert.ok(ui.status >= 200 && ui.status < 300, `userinfo 2xx, got ${ui.status} ${ui.text}`);
  assertFieldMap(ui.json);
});

test('legacy flow: a failed token request is non-2xx (wrong secret, reused code)', async () => {
  const { location } = await legacyAuthorize();
  const { params } = callbackQuery(location);
  const wrong = await rawHttp('POST', `${URL_SETTING}/token`, {
    'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', 'User-Agent': 'Meteor/2.16',
    Authorization: `Basic ${Buffer.from('rocketchat:cs_wrong').toString('base64')}`,
  }, new URLSearchParams({ code: params.code, redirect_uri: CALLBACK, grant_type: 'authorization_code', state: params.state }).toString());
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json?.error, 'invalid_client');
  assertMeteorTokenResponse(await meteorTokenRequest(params.code, params.state, 'header'));
  const reused = await meteorTokenRequest(params.code, params.state, 'header');
  assert.equal(reused.status, 400);
  assert.equal(reused.json?.error, 'invalid_grant');
});

test('Passport flow: PKCE S256, 24-char state, Node-oauth token request, userinfo exactly 200', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const state = Array.from(randomBytes(24), (b) => alphabet[b % alphabet.length]).join('');
  const q = [
    ['response_type', 'code'], ['redirect_uri', CALLBACK], ['scope', 'openid profile email'], ['state', state],
    ['code_challenge', challenge], ['code_challenge_method', 'S256'], ['client_id', 'rocketchat'],
  ].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  const browser = new Browser();
  const page = await browser.get(`${URL_SETTING}/authorize?${q}`);
  assert.ok(isLoginPage(page), `login page expected, got ${page.status}`);
  const res = await submitLogin(browser, page, user.username, user.password);
  assert.equal(res.status, 303);
  const { params } = callbackQuery(res.location);
  assert.equal(params.state, state);

  // node-oauth: no Accept header, User-Agent Node-oauth, body in this order.
  const body = [
    ['grant_type', 'authorization_code'], ['redirect_uri', CALLBACK], ['code_verifier', verifier],
    ['client_id', 'rocketchat'], ['client_secret', rc.secret], ['code', params.code],
  ].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const tok = await rawHttp('POST', `${URL_SETTING}/token`, {
    'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'Node-oauth',
  }, body);
  assert.equal(tok.status, 200, tok.text);
  assert.ok(tok.json, 'JSON token response');
  assert.equal(tok.json.token_type, 'Bearer');
  assert.ok(tok.json.access_token);

  const ui = await rawHttp('GET', `${URL_SETTING}/userinfo`, { Authorization: `Bearer ${tok.json.access_token}`, 'User-Agent': 'Node-oauth' });
  assert.equal(ui.status, 200, 'status exactly 200');
  assert.match(ui.headers['content-type'] ?? '', /^application\/json/);
  assertFieldMap(ui.json);
});

test('Passport flow: a wrong code_verifier is refused', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const browser = new Browser();
  const page = await browser.get(`${URL_SETTING}/authorize?response_type=code&redirect_uri=${encodeURIComponent(CALLBACK)}`
    + `&scope=openid%20profile%20email&state=abcdefghijklmnopqrstuvwx&code_challenge=${challenge}&code_challenge_method=S256&client_id=rocketchat`);
  const res = await submitLogin(browser, page, user.username, user.password);
  const { params } = callbackQuery(res.location);
  const tok = await rawHttp('POST', `${URL_SETTING}/token`, { 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'Node-oauth' },
    new URLSearchParams({
      grant_type: 'authorization_code', redirect_uri: CALLBACK, code_verifier: randomBytes(32).toString('base64url'),
      client_id: 'rocketchat', client_secret: rc.secret, code: params.code,
    }).toString());
  assert.equal(tok.status, 400);
  assert.equal(tok.json?.error, 'invalid_grant');
});

test('the guide\'s troubleshooting row: a wrong callback shows error_uri_mismatch', async () => {
  const page = await new Browser().get(`${URL_SETTING}/authorize?client_id=rocketchat&redirect_uri=${encodeURIComponent('https://chat.acme.eu/_oauth/Clavex')}`
    + '&response_type=code&state=abc&scope=openid%20profile%20email');
  assert.equal(page.status, 400);
  assert.equal(page.location, null);
  assert.match(page.text, /error_uri_mismatch/);
});

test('Enterprise role sync: roles and groups arrive as top-level string arrays with the mapped values', async () => {
  const orgPath = `/organizations/${fx.slug}`;
  for (const name of ['chat-admins', 'support', 'engineering']) {
    assert.equal((await admin('POST', `${orgPath}/groups`, { name })).status, 201);
  }
  for (const name of ['chat-admins', 'support']) {
    assert.equal((await admin('PUT', `${orgPath}/groups/${name}/members/${user.sub}`)).status, 204);
  }
  const patched = await admin('PATCH', `${orgPath}/clients/rocketchat`, {
    scopes: ['openid', 'profile', 'email', 'groups'],
    role_mappings: [{ group: 'chat-admins', role: 'admin' }, { group: 'support', role: 'livechat-agent' }, { group: 'engineering', role: 'bot' }],
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));

  const { location } = await legacyAuthorize('openid profile email groups');
  const { params } = callbackQuery(location);
  const tokens = assertMeteorTokenResponse(await meteorTokenRequest(params.code, params.state, 'header'));
  const ui = await rawHttp('GET', `${URL_SETTING}/userinfo`, {
    Authorization: `Bearer ${tokens.access_token}`, Accept: 'application/json', 'User-Agent': 'Meteor/2.16',
  });
  assert.equal(ui.status, 200, ui.text);
  assertFieldMap(ui.json);
  // Rocket.Chat's defaults: "Roles/Groups field name" = roles, "…for channel mapping" = groups,
  // read as identity[claim] and used only when Array.isArray (ee/server/lib/oauth/Manager.ts).
  const { roles, groups } = ui.json;
  assert.ok(Array.isArray(roles) && roles.every((r) => typeof r === 'string'));
  assert.ok(Array.isArray(groups) && groups.every((g) => typeof g === 'string'));
  assert.deepEqual(roles, ['admin', 'livechat-agent'], 'exactly the mapped values of her groups');
  assert.deepEqual(groups, ['chat-admins', 'support'], 'group names, not paths, not a stringified array');
  // The default OAuth Group Channel Map keys match by groups.includes(key).
  assert.ok(groups.includes('support'));
  assert.ok(!groups.includes('engineering'));
});
