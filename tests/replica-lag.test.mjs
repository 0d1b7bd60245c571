// A replica that really lags (issue 15, item 6). Under plain `wrangler dev` the "replica" is the
// primary itself, so nothing the README says about replica lag was ever tested. This file starts
// its own Worker with SIMULATED_LAGGING_REPLICA: replica reads go to a second local database that
// holds the primary's state as of the last `sync()` — a replica that lags for as long as a test
// wants — and checks the README's "Where state lives" and "Revocation reaches every location
// within the replica lag" against it: what is written at the primary works at once, what must be
// refused at once is, and what the README says may still pass during the lag does.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, syncReplica } from './support/worker.mjs';

const adminToken = `lag-${randomBytes(18).toString('base64url')}`;
const worker = await startWorker({
  laggingReplica: true,
  vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'), STORAGE_TIMING: 'on' },
});
after(() => worker.stop());
// The shared helpers talk to CLAVEX_URL with CLAVEX_ADMIN_TOKEN: point them at this Worker (each
// test file runs in a process of its own).
process.env.CLAVEX_URL = worker.url;
process.env.CLAVEX_ADMIN_TOKEN = adminToken;
const {
  Browser, admin, createFixture, createClient, createUser, authorize, authorizeUrl, loginAndExchange, exchangeCode,
  tokenRequest, userinfo, clientPost, endpoint, assertTokenSuccess, assertOAuthError,
  isLoginPage, submitLogin, parseRedirect, verifyJwt, sleep,
} = await import('./support/oidc.mjs');

/** Bring the replica up to date: everything written so far becomes visible there. */
const sync = () => syncReplica(worker, adminToken);

/** How many calls of a kind a response made (Server-Timing, STORAGE_TIMING=on). */
function calls(res, kind) {
  const m = (res.headers.get('server-timing') ?? '').match(new RegExp(`${kind};count=(\\d+)`));
  assert.ok(m, `a Server-Timing count for ${kind}: ${res.headers.get('server-timing')}`);
  return Number(m[1]);
}

const userPath = (fx, user) => `/organizations/${fx.slug}/users/${user.id}`;
async function ok(pending, status = 200) {
  const res = await pending;
  assert.equal(res.status, status, JSON.stringify(res.body));
  return res.body;
}
const refresh = (fx, client, refreshToken) => tokenRequest(fx, client, { grant_type: 'refresh_token', refresh_token: refreshToken });
const introspect = async (fx, client, token) => (await clientPost(fx, client, endpoint(fx, 'introspection_endpoint'), { token })).json;

/** The events of a type for a user, once the trail has them (they are written after the response). */
async function eventsOf(fx, type, user) {
  for (let i = 0; i < 40; i++) {
    const res = await admin('GET', `/organizations/${fx.slug}/events?type=${type}&user_id=${user.id}`);
    if (res.body.events.length) return res.body.events;
    await sleep(100);
  }
  return [];
}

/** A browser's authorize through its SSO session: the redirect (code or error) it gets. */
async function ssoAuthorize(fx, client, browser, params = {}) {
  const res = await browser.get(authorizeUrl(fx, client, params));
  return { res, loginPage: isLoginPage(res), code: res.location ? parseRedirect(res.location).params.code : undefined };
}

/** A password sign-in in a new browser: the code, if one comes back. */
async function passwordSignIn(fx, client, username, password) {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, client));
  assert.ok(isLoginPage(page), `a login page, got ${page.status}`);
  const res = await submitLogin(browser, page, username, password);
  return { res, code: res.location ? parseRedirect(res.location).params.code : undefined };
}

test('the replica really lags: what the primary has is missing there until a sync', async () => {
  const fx = await createFixture('lag');
  const first = await new Browser().get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(first), `a login page: ${first.status}`);
  assert.ok(calls(first, 'd1-primary') >= 1, 'the replica lacks the new client: authorize asks the primary');
  const tables = await sync();
  assert.ok(tables >= 10, `every table copied: ${tables}`);
  const second = await new Browser().get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(second));
  assert.equal(calls(second, 'd1-primary'), 0, 'after the sync the replica has it: no primary round trip');
});

test('an organization, client and user created at the primary sign in while the replica lacks them', async () => {
  const fx = await createFixture('lag-new'); // not synced: the replica has none of it
  const { tokens, idToken } = await loginAndExchange(fx, fx.web);
  assert.equal(idToken.payload.sub, fx.alice.id);
  assert.ok(verifyJwt(tokens.id_token, await fx.jwks()), 'the ID token verifies with the JWKS (a key the replica lacks)');
  const info = await userinfo(fx, tokens.access_token);
  assert.equal(info.status, 200, `userinfo with a token the replica lacks: ${info.text}`);
  assert.equal(info.json.sub, fx.alice.id);
  assertTokenSuccess(await refresh(fx, fx.web, tokens.refresh_token), 'refresh of a token the replica lacks');
  // A client and a user added to an organization the replica does have.
  await sync();
  const client = await createClient(fx, {
    client_id: 'late', client_name: 'Late', grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['https://late.example.test/cb'], token_endpoint_auth_method: 'client_secret_post',
  });
  const user = await createUser(fx, { username: 'newcomer' });
  const late = await loginAndExchange(fx, client, { user, auth: 'post' });
  assert.equal(late.idToken.payload.sub, user.id);
  assert.equal((await userinfo(fx, late.tokens.access_token)).status, 200);
});

test('a disabled user: a pending code and the refresh token are refused at once; userinfo and the SSO session pass until the replica catches up', async () => {
  const fx = await createFixture('lag-off');
  const signedIn = await loginAndExchange(fx, fx.web); // a grant, and an SSO session in its browser
  const pending = await authorize(fx, fx.web, { browser: signedIn.browser }); // a code, not yet redeemed
  await sync();
  await ok(admin('PATCH', userPath(fx, fx.alice), { disabled: true }));

  // Decided at the primary: refused although the replica still shows the user enabled.
  const redeemed = await exchangeCode(fx, fx.web, pending.code);
  assertOAuthError(redeemed, 400, 'invalid_grant', 'a code minted before the user was disabled');
  assert.match(redeemed.json.error_description, /disabled/);
  assert.equal(calls(redeemed, 'd1-primary'), 1, 'claimed, judged and refused in the one round trip of a redemption');
  const refused = await refresh(fx, fx.web, signedIn.tokens.refresh_token);
  assertOAuthError(refused, 400, 'invalid_grant', 'refresh of a disabled user');
  assert.equal((await introspect(fx, fx.web, signedIn.tokens.access_token)).active, false, 'introspection decides at the primary');
  const [event] = await eventsOf(fx, 'code.refused', fx.alice);
  assert.equal(event?.detail?.reason, 'user_disabled', `the refusal is in the audit trail: ${JSON.stringify(event)}`);

  // What the README says may pass during the lag: reads at the replica.
  const info = await userinfo(fx, signedIn.tokens.access_token);
  assert.equal(info.status, 200, `userinfo reads the replica, which still shows the user enabled: ${info.text}`);
  const sso = await ssoAuthorize(fx, fx.web, signedIn.browser);
  assert.ok(sso.code, `the SSO session's user is read at the replica: still a code (${sso.res.status} ${sso.res.location})`);
  assertOAuthError(await exchangeCode(fx, fx.web, sso.code), 400, 'invalid_grant', 'but that code redeems to nothing');
  // The login form reads the user at the replica too: whatever it answers, no token comes of it.
  const login = await passwordSignIn(fx, fx.web, fx.alice.username, fx.alice.password);
  if (login.code) assertOAuthError(await exchangeCode(fx, fx.web, login.code), 400, 'invalid_grant', 'a code from the login form');

  // Caught up: refused everywhere.
  await sync();
  assert.equal((await userinfo(fx, signedIn.tokens.access_token)).status, 401, 'userinfo, once the replica has it');
  const after = await ssoAuthorize(fx, fx.web, signedIn.browser);
  assert.equal(after.code, undefined, `no code from the SSO session: ${after.res.status} ${after.res.location}`);
  const again = await passwordSignIn(fx, fx.web, fx.alice.username, fx.alice.password);
  assert.equal(again.code, undefined, 'no code from the login form');
});

test('sign out everywhere: a session the lagging replica still shows gets a code, and that code redeems to nothing; a fresh sign-in redeems', async () => {
  const fx = await createFixture('lag-soe');
  const signedIn = await loginAndExchange(fx, fx.web);
  await sync();
  const res = await admin('POST', `/organizations/${fx.slug}/users/${fx.alice.id}/logout`);
  assert.ok([200, 204].includes(res.status), JSON.stringify(res.body));

  // The replica has not seen the sign-out: the ended session is still read as live there...
  const sso = await ssoAuthorize(fx, fx.web, signedIn.browser);
  assert.ok(sso.code, `the ended session still gets a code while the replica lags (${sso.res.status} ${sso.res.location})`);
  // ...but the code carries the session's start, which the primary judges at redemption.
  const redeemed = await exchangeCode(fx, fx.web, sso.code);
  assertOAuthError(redeemed, 400, 'invalid_grant', 'a code of a session ended by sign out everywhere');
  assert.match(redeemed.json.error_description, /signed out/);
  assert.equal(calls(redeemed, 'd1-primary'), 1, 'judged in the one round trip of a redemption');
  const [event] = await eventsOf(fx, 'code.refused', fx.alice);
  assert.equal(event?.detail?.reason, 'session_ended', JSON.stringify(event));
  // Burnt: replayed, it is refused as used.
  assert.match((await exchangeCode(fx, fx.web, sso.code)).json.error_description, /already used/);

  // A sign-in after the sign-out (a new session) redeems, with the replica still behind.
  const fresh = await passwordSignIn(fx, fx.web, fx.alice.username, fx.alice.password);
  assert.ok(fresh.code, `a fresh sign-in gets a code: ${fresh.res.status}`);
  assertTokenSuccess(await exchangeCode(fx, fx.web, fresh.code));
  await sync();
  const after = await ssoAuthorize(fx, fx.web, signedIn.browser);
  assert.equal(after.code, undefined, 'caught up: the ended session gets no code');
});

test('a refused code is burnt: enabled again, the user cannot redeem it', async () => {
  const fx = await createFixture('lag-burn');
  const pending = await authorize(fx, fx.web);
  await ok(admin('PATCH', userPath(fx, fx.alice), { disabled: true }));
  assertOAuthError(await exchangeCode(fx, fx.web, pending.code), 400, 'invalid_grant', 'refused while disabled');
  await ok(admin('PATCH', userPath(fx, fx.alice), { disabled: false }));
  await sync();
  const replay = await exchangeCode(fx, fx.web, pending.code);
  assertOAuthError(replay, 400, 'invalid_grant', 'the same code once the user is enabled again');
  assert.match(replay.json.error_description, /already used/, 'refused as used, not as expired');
  // The user signs in normally again.
  await loginAndExchange(fx, fx.web);
});

test('a deleted user\'s code redeems to nothing, and the refusal is recorded', async () => {
  const fx = await createFixture('lag-del');
  const user = await createUser(fx, { username: 'leaving' });
  const pending = await authorize(fx, fx.web, { user });
  await sync();
  await ok(admin('DELETE', userPath(fx, user)), 204);
  assertOAuthError(await exchangeCode(fx, fx.web, pending.code), 400, 'invalid_grant', 'the code of a deleted user');
  const [event] = await eventsOf(fx, 'code.refused', user);
  assert.equal(event?.detail?.reason, 'user_deleted', JSON.stringify(event));
});

test('a refused code issues nothing even when 30 redemptions race', async () => {
  const fx = await createFixture('lag-race');
  const pending = await authorize(fx, fx.web);
  await ok(admin('PATCH', userPath(fx, fx.alice), { disabled: true }));
  const results = await Promise.all(Array.from({ length: 30 }, () => exchangeCode(fx, fx.web, pending.code)));
  for (const r of results) assertOAuthError(r, 400, 'invalid_grant', 'a racing redemption');
  assert.equal(results.filter((r) => /disabled/.test(r.json.error_description)).length, 1, 'exactly one claimed (and burnt) the code');
});

test('a revoked grant: refresh refused at once; its access token passes userinfo until the replica catches up', async () => {
  const fx = await createFixture('lag-rev');
  const { tokens } = await loginAndExchange(fx, fx.web);
  await sync();
  const revoked = await clientPost(fx, fx.web, endpoint(fx, 'revocation_endpoint'), { token: tokens.refresh_token, token_type_hint: 'refresh_token' });
  assert.equal(revoked.status, 200);
  assertOAuthError(await refresh(fx, fx.web, tokens.refresh_token), 400, 'invalid_grant', 'refresh of a revoked grant');
  assert.equal((await introspect(fx, fx.web, tokens.access_token)).active, false, 'introspection decides at the primary');
  assert.equal((await userinfo(fx, tokens.access_token)).status, 200, 'userinfo reads the lagging replica');
  await sync();
  assert.equal((await userinfo(fx, tokens.access_token)).status, 401, 'refused once the replica has the revocation');
});

test('allowed_groups: a member removed is refused at redemption and refresh at once; a member added signs in at once', async () => {
  const fx = await createFixture('lag-grp');
  const groups = `/organizations/${fx.slug}/groups`;
  await ok(admin('POST', groups, { name: 'staff' }), 201);
  const staffOnly = await createClient(fx, {
    client_id: 'staff-app', client_name: 'Staff App', grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['https://staff.example.test/cb'], scopes: ['openid', 'profile', 'groups'],
    token_endpoint_auth_method: 'client_secret_basic', allowed_groups: ['staff'],
  });
  await ok(admin('PUT', `${groups}/staff/members/${fx.alice.id}`), 204);
  const signedIn = await loginAndExchange(fx, staffOnly, { params: { scope: 'openid groups' } });
  const pending = await authorize(fx, staffOnly, { browser: signedIn.browser, params: { scope: 'openid groups' } });
  await sync();
  await ok(admin('DELETE', `${groups}/staff/members/${fx.alice.id}`), 204);

  const redeemed = await exchangeCode(fx, staffOnly, pending.code);
  assertOAuthError(redeemed, 400, 'invalid_grant', 'a code minted before the user left the allowed group');
  const [event] = await eventsOf(fx, 'code.refused', fx.alice);
  assert.equal(event?.detail?.reason, 'user_not_allowed', JSON.stringify(event));
  assertOAuthError(await refresh(fx, staffOnly, signedIn.tokens.refresh_token), 400, 'invalid_grant', 'refresh after leaving the group');
  const info = await userinfo(fx, signedIn.tokens.access_token);
  assert.equal(info.status, 200, 'userinfo reads the lagging replica');
  assert.deepEqual(info.json.groups, ['staff'], 'with the membership the replica still has');
  await sync();
  assert.equal((await userinfo(fx, signedIn.tokens.access_token)).status, 401, 'refused once the replica has the change');

  // The other way: added at the primary while the replica still shows the user outside.
  const bob = await createUser(fx, { username: 'bob' });
  await sync();
  await ok(admin('PUT', `${groups}/staff/members/${bob.id}`), 204);
  const bobIn = await loginAndExchange(fx, staffOnly, { user: bob, params: { scope: 'openid groups' } });
  assert.equal(bobIn.idToken.payload.sub, bob.id);
  const sso = await ssoAuthorize(fx, staffOnly, bobIn.browser, { scope: 'openid groups' });
  assert.ok(sso.code, `the SSO session too: ${sso.res.location}`);
});

test('a rotated client secret: the new one works at once; the old one passes client authentication until the replica catches up', async () => {
  const fx = await createFixture('lag-sec');
  const { tokens } = await loginAndExchange(fx, fx.web);
  await sync();
  const rotated = await ok(admin('POST', `/organizations/${fx.slug}/clients/webapp/secret`));
  const fresh = { ...fx.web, secret: rotated.client_secret };
  const withNew = assertTokenSuccess(await refresh(fx, fresh, tokens.refresh_token), 'the new secret, which the replica lacks');
  const withOld = await refresh(fx, fx.web, withNew.refresh_token);
  assertTokenSuccess(withOld, 'the old secret, while the replica still has it');
  await sync();
  assertOAuthError(await refresh(fx, fx.web, withOld.json.refresh_token), 401, 'invalid_client', 'the old secret once the replica caught up');
});

test('a password an admin replaced: the new one signs in at once; the old one only until the replica catches up', async () => {
  const fx = await createFixture('lag-pw');
  await sync();
  const replaced = `Pw-new-${randomBytes(6).toString('hex')}!`;
  await ok(admin('PUT', `/organizations/${fx.slug}/users/${fx.alice.id}/password`, { password: replaced }), 204);
  const withNew = await passwordSignIn(fx, fx.web, fx.alice.username, replaced);
  assert.ok(withNew.code, `the new password, which the replica lacks: ${withNew.res.status}`);
  assertTokenSuccess(await exchangeCode(fx, fx.web, withNew.code));
  const withOld = await passwordSignIn(fx, fx.web, fx.alice.username, fx.alice.password);
  assert.ok(withOld.code, `the old password, checked against the replica's row (README: the login form reads at the replica): ${withOld.res.status}`);
  await sync();
  const after = await passwordSignIn(fx, fx.web, fx.alice.username, fx.alice.password);
  assert.equal(after.code, undefined, 'the old password once the replica caught up');
});

test('refresh decides on the replica\'s read but writes on the primary\'s state: a reused token the replica shows unused revokes the grant', async () => {
  const fx = await createFixture('lag-reuse');
  const { tokens } = await loginAndExchange(fx, fx.web);
  await sync(); // the replica has the first refresh token, unused
  const second = assertTokenSuccess(await refresh(fx, fx.web, tokens.refresh_token));
  const third = assertTokenSuccess(await refresh(fx, fx.web, second.refresh_token), 'the child is used');
  // The first token again: the replica shows it unused, the primary knows its child was used.
  const reuse = await refresh(fx, fx.web, tokens.refresh_token);
  assertOAuthError(reuse, 400, 'invalid_grant', 'reuse of a rotated token whose child was used');
  assert.ok(calls(reuse, 'd1-primary') >= 2, 'the guarded write found the state changed, and the primary was asked');
  assertOAuthError(await refresh(fx, fx.web, third.refresh_token), 400, 'invalid_grant', 'the grant is revoked');
});

test('writes through the replica handle go to the primary', async () => {
  // A refresh rotates through the request's replica session: the primary (introspection) has the
  // rotation at once, although the replica has not been synced since before it.
  const fx = await createFixture('lag-rw');
  const { tokens } = await loginAndExchange(fx, fx.web);
  await sync();
  const next = assertTokenSuccess(await refresh(fx, fx.web, tokens.refresh_token));
  assert.equal((await introspect(fx, fx.web, next.refresh_token)).active, true, 'the new refresh token is at the primary');
  assert.equal((await introspect(fx, fx.web, tokens.refresh_token)).active, false, 'the old one is rotated at the primary');
  assert.equal((await userinfo(fx, next.access_token)).status, 200, 'the new access token works at once (the replica lacks it)');
});
