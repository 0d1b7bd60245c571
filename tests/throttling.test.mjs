// Brute-force throttling as an attacker and a user see it: per account (whatever address the
// guesses come from) and per address (whatever names they try), a wait that starts after the
// organization's threshold and doubles, answered alike for unknown names; a success or an admin
// unlock resets the account; 429 with Retry-After for failed admin tokens; and none for client
// secrets, which are generated and unguessable.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createUser, authorizeUrl, isLoginPage, submitLogin, pageText,
  tokenRequest, randomIp, sleep, readJson, endpoint, basicAuth, loginAndExchange,
} from './support/oidc.mjs';
import { BASE, ADMIN_TOKEN } from './support/client.mjs';

let fx;
before(async () => {
  fx = await createFixture('thr');
});

/** One sign-in attempt from a browser at `ip` (a fresh one unless given). */
async function attempt(username, password, { ip = randomIp(), on = fx } = {}) {
  const browser = new Browser(undefined, ip);
  const page = await browser.get(authorizeUrl(on, on.web));
  assert.ok(isLoginPage(page), `a login page, got ${page.status}`);
  const res = await submitLogin(browser, page, username, password);
  const message = (pageText(res.text).match(/(Incorrect[^.]*\.( Too many[^.]*\.[^.]*\.)?|Too many[^.]*\.[^.]*\.)/) ?? [])[0];
  return { res, status: res.status, message, retryAfter: res.headers.get('retry-after') };
}

const waitOut = (seconds) => sleep(seconds * 1000 + 150);

test('per account: after 5 failures each attempt waits 1 s, then 2 s; a success resets the count', async () => {
  const user = await createUser(fx, { username: 'victim' });
  for (let i = 1; i <= 4; i++) {
    const a = await attempt('victim', 'wrong-password');
    assert.equal(a.status, 401, `failure ${i}`);
    assert.equal(a.message, 'Incorrect username or password.', `failure ${i}`);
  }
  const fifth = await attempt('victim', 'wrong-password');
  assert.equal(fifth.status, 401);
  assert.equal(fifth.message, 'Incorrect username or password. Too many failed sign-in attempts. Try again in 1 second.');
  // The right password, from yet another address, is not even checked while the account waits.
  const locked = await attempt('victim', user.password);
  assert.equal(locked.status, 429);
  assert.equal(locked.retryAfter, '1');
  assert.equal(locked.message, 'Too many failed sign-in attempts. Try again in 1 second.');
  assert.equal(locked.res.setCookies.find((c) => c.name === 'clavex_session'), undefined, 'no session while locked');
  const shown = await admin('GET', `/organizations/${fx.slug}/users/${user.id}`);
  assert.equal(shown.body.login_lock.failures, 5);
  assert.ok(shown.body.login_lock.locked_until > 0, JSON.stringify(shown.body.login_lock));

  await waitOut(1);
  const sixth = await attempt('victim', 'wrong-password');
  assert.equal(sixth.message, 'Incorrect username or password. Too many failed sign-in attempts. Try again in 2 seconds.');
  const again = await attempt('victim', user.password);
  assert.equal(again.status, 429);
  assert.equal(again.retryAfter, '2', 'the wait doubled');

  await waitOut(2);
  const success = await attempt('victim', user.password);
  assert.equal(success.status, 303, 'signed in once the wait is over');
  assert.ok(new URL(success.res.location).searchParams.get('code'));
  assert.equal((await admin('GET', `/organizations/${fx.slug}/users/${user.id}`)).body.login_lock, null, 'the success reset the account');
  const after = await attempt('victim', 'wrong-password');
  assert.equal(after.message, 'Incorrect username or password.', 'counting starts again from zero');
});

test('an unknown username gets the same answers, step by step, as a real one', async () => {
  const real = await createUser(fx, { username: 'realone' });
  const steps = async (name, rightPassword) => {
    const seen = [];
    for (let i = 0; i < 5; i++) {
      const a = await attempt(name, 'not-the-password');
      seen.push([a.status, a.message, a.retryAfter]);
    }
    const a = await attempt(name, rightPassword);
    seen.push([a.status, a.message, a.retryAfter]);
    return seen;
  };
  const forReal = await steps('realone', real.password);
  const forUnknown = await steps('nobody-here', real.password);
  assert.deepEqual(forUnknown, forReal);
  assert.equal(forReal[5][0], 429);
});

test('an admin sees the lock and unlocks the account at once', async () => {
  const user = await createUser(fx, { username: 'unlockme' });
  for (let i = 0; i < 5; i++) await attempt('unlockme', 'wrong-password');
  assert.equal((await attempt('unlockme', user.password)).status, 429);
  const path = `/organizations/${fx.slug}/users/${user.id}/lock`;
  assert.equal((await admin('DELETE', path)).status, 204);
  assert.equal((await admin('DELETE', path)).status, 204, 'idempotent');
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/usr_none/lock`)).status, 404);
  const now = await attempt('unlockme', user.password);
  assert.equal(now.status, 303);
});

test('per address: failures across many names lock the address, not the names', async () => {
  const org = await createFixture('thrip');
  assert.equal((await admin('PATCH', `/organizations/${org.slug}`, { throttle_ip_failures: 3, throttle_account_failures: 50 })).status, 200);
  const ip = randomIp();
  const at = (name, password, where = ip) => attempt(name, password, { ip: where, on: org });
  assert.equal((await at('guess-1', 'pw-guess-1')).message, 'Incorrect username or password.');
  assert.equal((await at('guess-2', 'pw-guess-2')).message, 'Incorrect username or password.');
  assert.equal((await at('guess-3', 'pw-guess-3')).message, 'Incorrect username or password. Too many failed sign-in attempts. Try again in 1 second.');
  const blocked = await at('alice', org.alice.password);
  assert.equal(blocked.status, 429, 'even a real user with the right password waits at that address');
  assert.equal(blocked.retryAfter, '1');
  const elsewhere = await at('alice', org.alice.password, randomIp());
  assert.equal(elsewhere.status, 303, 'another address is not affected');
  await waitOut(1);
  assert.match((await at('guess-4', 'pw-guess-4')).message, /Try again in 2 seconds\.$/);
});

test('throttling settings are per organization and validated', async () => {
  const path = `/organizations/${fx.slug}`;
  const org = (await admin('GET', path)).body;
  assert.deepEqual(
    [org.throttle_account_failures, org.throttle_ip_failures, org.throttle_max_wait_seconds, org.throttle_reset_seconds, org.audit_retention_days],
    [5, 20, 900, 43200, 90],
  );
  for (const [member, value] of [['throttle_account_failures', 0], ['throttle_ip_failures', 'many'], ['throttle_max_wait_seconds', 86401], ['throttle_reset_seconds', 1.5], ['audit_retention_days', -1]]) {
    const res = await admin('PATCH', path, { [member]: value });
    assert.equal(res.status, 400, `${member}=${value}`);
    assert.equal(res.body.field, member);
  }
  assert.equal((await admin('GET', path)).body.throttle_account_failures, 5, 'nothing changed');
});

test('client secrets are not throttled: 20 wrong ones from the server\'s own address, then the right one gets 200', async () => {
  // Clavex generates every client secret with 256 random bits: guessing is hopeless, and a lock
  // keyed on the client (and address) would only let whoever shares the relying party's egress
  // address (a cloud NAT) lock its server out of the token endpoint.
  const { tokens } = await loginAndExchange(fx, fx.other, { auth: 'post' });
  const shared = randomIp();
  const wrong = { ...fx.other, secret: 'cs_guess' };
  const headers = { 'CF-Connecting-IP': shared };
  const guess = () => tokenRequest(fx, wrong, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { auth: 'post', headers });
  // Ten one after another, then ten at once.
  const answers = [];
  for (let i = 0; i < 10; i++) answers.push(await guess());
  answers.push(...await Promise.all(Array.from({ length: 10 }, guess)));
  for (const [i, r] of answers.entries()) {
    assert.equal(r.status, 401, `wrong secret ${i + 1}: invalid_client, never 429: ${r.text}`);
    assert.equal(r.json.error, 'invalid_client');
    assert.equal(r.headers.get('retry-after'), null);
  }
  const introspection = await fetch(endpoint(fx, 'introspection_endpoint'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers, Authorization: basicAuth('other', 'cs_guess') },
    body: new URLSearchParams({ token: tokens.access_token }),
  });
  assert.equal((await readJson(introspection)).status, 401, 'introspection: invalid_client, not 429');
  const server = await tokenRequest(fx, fx.other, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { auth: 'post', headers });
  assert.equal(server.status, 200, `the real server, from the same address, is served: ${server.text}`);
  assert.ok(server.json.access_token);
  // Every failure is still in the audit trail.
  let failed = [];
  for (let i = 0; i < 40 && failed.length < 21; i++) {
    failed = (await admin('GET', `/organizations/${fx.slug}/events?type=client.auth_failed&client_id=other&limit=100`)).body.events
      .filter((e) => e.ip === shared);
    if (failed.length < 21) await sleep(100);
  }
  assert.equal(failed.length, 21, 'each wrong secret is an audit event (20 at the token endpoint, 1 at introspection)');
});

test('admin API: wrong tokens from one address get 429 and Retry-After, even for the right token', async () => {
  const ip = randomIp();
  const call = (token) => fetch(`${BASE}/api/v1/organizations`, { headers: { Authorization: `Bearer ${token}`, 'CF-Connecting-IP': ip } });
  for (let i = 1; i <= 10; i++) assert.equal((await call(`wrong-${i}`)).status, 401, `wrong token ${i}`);
  const locked = await call('wrong-11');
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers.get('retry-after')) >= 1);
  assert.match(locked.headers.get('cache-control'), /no-store/);
  assert.equal((await locked.json()).error, 'too_many_requests');
  assert.equal((await call(ADMIN_TOKEN)).status, 429, 'the token is not checked while the address waits');
  assert.equal((await admin('GET', '/organizations')).status, 200, 'other addresses are not affected');
});
