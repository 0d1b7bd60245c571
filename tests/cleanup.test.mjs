// The hourly clean-up (src/edge/cleanup.rs, cron in wrangler.toml) must never delete anything
// that is still live. `wrangler dev --test-scheduled` (tests/support/worker.mjs) lets the test
// fire the cron the way Cloudflare does.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, admin, createFixture, loginAndExchange, tokenRequest, assertTokenSuccess, userinfo } from './support/oidc.mjs';

let fx;
before(async () => { fx = await createFixture('cleanup'); });

async function runCron() {
  const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent('17 * * * *')}`);
  assert.equal(res.status, 200, `the scheduled handler ran: ${await res.text()}`);
}

test('the scheduled clean-up keeps live access and refresh tokens working', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const rotated = assertTokenSuccess(
    await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
    'refresh before the clean-up',
  );
  await runCron();
  assert.equal((await userinfo(fx, rotated.access_token)).status, 200, 'the live access token still works');
  assertTokenSuccess(
    await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: rotated.refresh_token }),
    'the live refresh token still refreshes',
  );
});

test('after the clean-up, reuse of a rotated refresh token is still detected', async () => {
  // Rotated tokens are kept until they expire: deleting them early would turn a replay into an
  // unknown token and lose the family revocation.
  const { tokens } = await loginAndExchange(fx, fx.web);
  const next = assertTokenSuccess(
    await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
  );
  assertTokenSuccess(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: next.refresh_token }));
  await runCron();
  const replay = await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assert.equal(replay.status, 400);
  assert.match(replay.json?.error_description ?? (await replay.text?.()) ?? '', /revoked|used/);
});

test('the clean-up keeps audit events within the organization\'s retention', async () => {
  await loginAndExchange(fx, fx.web);
  const list = () => admin('GET', `/organizations/${fx.slug}/events?type=code.redeemed`);
  let before = [];
  for (let i = 0; i < 50 && before.length === 0; i++) {
    before = (await list()).body.events;
    if (before.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(before.length > 0, 'events are recorded');
  assert.equal((await admin('PATCH', `/organizations/${fx.slug}`, { audit_retention_days: 1 })).status, 200);
  await runCron();
  assert.deepEqual((await list()).body.events.map((e) => e.id), before.map((e) => e.id), 'events of today are kept');
});
