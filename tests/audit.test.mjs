// The audit trail through the admin API: a whole sign-in (a failure, the success, the code
// issued and redeemed, a second sign-in through the SSO session, logout), a code replay and a
// refresh reuse with what they revoked, a revocation, a failed client authentication and admin
// changes — each with time, user, client, address and user agent, filtered and paginated, and
// never a password, secret or token.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, authorizeUrl, isLoginPage, submitLogin, exchangeCode,
  assertTokenSuccess, tokenRequest, endpoint, clientPost, randomIp, sleep, authorize,
} from './support/oidc.mjs';

let fx;
before(async () => {
  fx = await createFixture('audit');
});

const events = (query = '') => admin('GET', `/organizations/${fx.slug}/events${query}`);

/** Events are stored after the response (waitUntil): wait until `count` match the query. */
async function eventually(query, count) {
  for (let i = 0; i < 50; i++) {
    const res = await events(query);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (res.body.events.length >= count) return res.body.events;
    await sleep(100);
  }
  assert.fail(`fewer than ${count} events for ${query}: ${JSON.stringify((await events(query)).body)}`);
}

test('a whole sign-in, replay, reuse, revocation and logout are listed with who, where and what', async () => {
  const ip = randomIp();
  const browser = new Browser(undefined, ip);
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page));
  const failed = await submitLogin(browser, page, fx.alice.username, 'a wrong password');
  assert.equal(failed.status, 401);
  const res = await submitLogin(browser, failed, fx.alice.username, fx.alice.password);
  assert.equal(res.status, 303);
  const code = new URL(res.location).searchParams.get('code');
  const tokens = assertTokenSuccess(await exchangeCode(fx, fx.web, code));
  assert.equal((await exchangeCode(fx, fx.web, code)).status, 400, 'the replay is refused');
  // A second sign-in through the SSO session.
  await authorize(fx, fx.web, { browser });
  // A rotated refresh token presented after its successor was used is reuse.
  const second = await authorize(fx, fx.web, { browser });
  const t2 = assertTokenSuccess(await exchangeCode(fx, fx.web, second.code));
  const t2b = assertTokenSuccess(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: t2.refresh_token }));
  assertTokenSuccess(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: t2b.refresh_token }));
  assert.equal((await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: t2.refresh_token })).status, 400);
  const third = await authorize(fx, fx.web, { browser });
  const t3 = assertTokenSuccess(await exchangeCode(fx, fx.web, third.code));
  assert.equal((await clientPost(fx, fx.web, endpoint(fx, 'revocation_endpoint'), { token: t3.refresh_token })).status, 200);
  const out = await browser.get(`${endpoint(fx, 'end_session_endpoint')}?client_id=webapp`);
  assert.ok([200, 302].includes(out.status));

  const all = await eventually(`?user_id=${fx.alice.sub}&limit=500`, 12);
  const types = all.map((e) => e.type);
  for (const t of ['signin.failed', 'signin.succeeded', 'code.issued', 'code.redeemed', 'code.replayed', 'signin.sso',
    'refresh.reuse_detected', 'logout']) {
    assert.ok(types.includes(t), `${t} in ${types.join(', ')}`);
  }
  const byType = (t) => all.find((e) => e.type === t);
  const success = byType('signin.succeeded');
  assert.equal(success.client_id, 'webapp');
  assert.equal(success.ip, ip);
  assert.equal(success.user_agent, 'Mozilla/5.0 (clavex-tests)');
  assert.ok(Math.abs(success.at - Date.now() / 1000) < 120, 'a Unix-seconds time');
  // The first code's redemption is the oldest one listed (newest first).
  const redeemed = all.filter((e) => e.type === 'code.redeemed').at(-1);
  assert.equal(byType('code.replayed').detail.revoked_grant_id, redeemed.detail.grant_id, 'the replay names the grant it revoked');
  assert.ok(byType('refresh.reuse_detected').detail.revoked_grant_id);
  for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].id > all[i].id, 'newest first');

  const revoked = await eventually('?type=token.revoked', 1);
  assert.equal(revoked[0].client_id, 'webapp');
  const text = JSON.stringify(await events('?limit=500'));
  for (const secret of [fx.alice.password, 'a wrong password', code, tokens.access_token, tokens.refresh_token, fx.web.secret]) {
    assert.ok(!text.includes(secret), 'no password, code, token or secret in the trail');
  }
});

test('failed client authentication and admin changes are recorded, without secrets', async () => {
  const wrong = await tokenRequest(fx, { ...fx.other, secret: 'cs_not-it' }, { grant_type: 'refresh_token', refresh_token: 'x' }, { auth: 'post' });
  assert.equal(wrong.status, 401);
  const failures = await eventually('?type=client.auth_failed', 1);
  assert.equal(failures[0].client_id, 'other');

  const patched = await admin('PATCH', `/organizations/${fx.slug}/clients/other`, { client_name: 'Other (renamed)' });
  assert.equal(patched.status, 200);
  const pw = await admin('PUT', `/organizations/${fx.slug}/users/${fx.alice.sub}/password`, { password: 'a brand new passphrase' });
  assert.equal(pw.status, 204);
  const changes = await eventually('?type=admin.change', 2);
  const rename = changes.find((e) => e.client_id === 'other');
  assert.deepEqual(rename.detail.fields, ['client_name']);
  assert.equal(rename.detail.action, 'UpdateClient');
  const password = changes.find((e) => e.detail.action === 'SetPassword');
  assert.equal(password.user_id, fx.alice.sub);
  assert.deepEqual(password.detail.fields, ['password'], 'the member is named');
  assert.ok(!JSON.stringify(changes).includes('a brand new passphrase'), 'its value is not');
});

test('events are filtered by type, client and time, paginated, and bad filters name the parameter', async () => {
  await eventually('?type=code.issued', 2);
  const now = Math.floor(Date.now() / 1000);
  const page1 = await events('?type=code.issued&limit=1');
  assert.equal(page1.body.events.length, 1);
  assert.ok(page1.body.next_cursor);
  const page2 = await events(`?type=code.issued&limit=1&cursor=${page1.body.next_cursor}`);
  assert.equal(page2.body.events.length, 1);
  assert.ok(page2.body.events[0].id < page1.body.events[0].id);
  assert.deepEqual((await events(`?client_id=spa&since=${now - 3600}`)).body.events, []);
  assert.deepEqual((await events(`?until=${now - 3600}`)).body.events, [], 'nothing before the fixture existed');
  assert.ok((await events(`?client_id=webapp&since=${now - 3600}&until=${now + 60}`)).body.events.length > 0);
  for (const [query, field] of [['?type=nope', 'type'], ['?since=yesterday', 'since'], ['?limit=0', 'limit'], ['?color=red', 'color']]) {
    const res = await events(query);
    assert.equal(res.status, 400, query);
    assert.equal(res.body.field, field, query);
  }
  assert.equal((await admin('GET', '/organizations/no-such-org/events')).status, 404);
});
