// An expired code replayed (issue 15, finding 4). RFC 6749 §4.1.2: a code used more than once
// SHOULD revoke what it issued — but only the party the code was issued to may trigger that:
// anyone else holding an old code (from a log, a referrer, a browser history) and any client_id
// of the organization must not be able to sign its user out of the relying party.
//
// To present a code after its 60 s without waiting a minute, this file starts two Workers that
// share one D1 database: NOW, and LATER, whose clock runs two minutes ahead
// (SIMULATED_CLOCK_OFFSET, development only, honoured for loopback requests alone). A code
// minted and redeemed at NOW is an expired code at LATER.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, freePort } from './support/worker.mjs';

const adminToken = `replay-${randomBytes(18).toString('base64url')}`;
const port = await freePort();
const vars = {
  ADMIN_TOKEN: adminToken,
  KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
  PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
  STORAGE_TIMING: 'on',
};
const NOW = await startWorker({ vars, port });
let LATER;
after(() => { NOW.stop(); LATER?.stop(); });
before(async () => {
  LATER = await startWorker({ vars: { ...vars, SIMULATED_CLOCK_OFFSET: '120' }, d1From: NOW.persistDir });
});
process.env.CLAVEX_URL = NOW.url;
process.env.CLAVEX_ADMIN_TOKEN = adminToken;
const {
  admin, createFixture, authorize, exchangeCode, tokenRequest, userinfo, pkce, assertTokenSuccess, assertOAuthError,
  RP_REDIRECT_2, sleep,
} = await import('./support/oidc.mjs');

/** Present `code` at LATER's token endpoint, where it is two minutes old. */
function lateExchange(fx, client, code, { redirect_uri = client.redirect_uri, code_verifier } = {}) {
  const form = { grant_type: 'authorization_code', code, redirect_uri };
  if (code_verifier !== undefined) form.code_verifier = code_verifier;
  const auth = client.token_endpoint_auth_method === 'none' ? 'none' : client.token_endpoint_auth_method === 'client_secret_post' ? 'post' : 'basic';
  return tokenRequest(fx, client, form, { auth, url: `${LATER.url}/${fx.slug}/token` });
}

/** How many calls to the D1 primary a response made (Server-Timing). */
function primaryCalls(res) {
  const m = (res.headers.get('server-timing') ?? '').match(/d1-primary;count=(\d+)/);
  assert.ok(m, `a Server-Timing header: ${res.headers.get('server-timing')}`);
  return Number(m[1]);
}

/** A code redeemed at NOW by its client: the victim's live tokens. */
async function redeemed(fx, client, { verifier } = {}) {
  const params = {};
  let pk;
  if (verifier) {
    pk = pkce();
    params.code_challenge = pk.challenge;
    params.code_challenge_method = 'S256';
  }
  const { code } = await authorize(fx, client, { params });
  const tokens = assertTokenSuccess(await exchangeCode(fx, client, code, { code_verifier: pk?.verifier }), 'the first redemption');
  return { code, tokens, verifier: pk?.verifier };
}

async function assertStillSignedIn(fx, client, tokens, what) {
  const info = await userinfo(fx, tokens.access_token);
  assert.equal(info.status, 200, `${what}: the victim's access token still works: ${info.text}`);
  if (tokens.refresh_token) {
    const res = await tokenRequest(fx, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, {
      auth: client.token_endpoint_auth_method === 'client_secret_post' ? 'post' : 'basic',
    });
    return assertTokenSuccess(res, `${what}: the victim's refresh token still works`);
  }
  return tokens;
}

async function replayEvents(fx) {
  await sleep(300); // events are written after the response
  return (await admin('GET', `/organizations/${fx.slug}/events?type=code.replayed`)).body.events;
}

let fx;
before(async () => { fx = await createFixture('replay'); });

test('LATER really is two minutes on: a fresh code from NOW has expired there', async () => {
  const { code } = await authorize(fx, fx.web);
  const late = await lateExchange(fx, fx.web, code);
  assertOAuthError(late, 400, 'invalid_grant', 'a code presented at LATER');
  assert.match(late.json.error_description, /expired/);
  assertTokenSuccess(await exchangeCode(fx, fx.web, code), 'the same code at NOW, within its 60 s');
});

test('an expired code replayed by another client, or with another redirect URI, revokes nothing', async () => {
  const victim = await redeemed(fx, fx.web);
  // Another client of the organization, with its own valid secret, presenting the victim's code.
  const other = await lateExchange(fx, fx.other, victim.code, { redirect_uri: fx.web.redirect_uri });
  assertOAuthError(other, 400, 'invalid_grant', 'another client');
  assert.match(other.json.error_description, /another client/);
  assert.equal(primaryCalls(other), 0, 'refused before any write');
  let tokens = await assertStillSignedIn(fx, fx.web, victim.tokens, 'after another client replayed the code');
  // The right client, but another of its registered redirect URIs.
  const wrongUri = await lateExchange(fx, fx.web, victim.code, { redirect_uri: RP_REDIRECT_2 });
  assertOAuthError(wrongUri, 400, 'invalid_grant', 'another redirect_uri');
  assert.match(wrongUri.json.error_description, /redirect_uri/);
  assert.equal(primaryCalls(wrongUri), 0, 'refused before any write');
  tokens = await assertStillSignedIn(fx, fx.web, tokens, 'after a replay with another redirect_uri');
  // A burst of them changes nothing either.
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2
    ? lateExchange(fx, fx.other, victim.code, { redirect_uri: fx.web.redirect_uri })
    : lateExchange(fx, fx.web, victim.code, { redirect_uri: RP_REDIRECT_2 }))));
  for (const r of burst) assertOAuthError(r, 400, 'invalid_grant', 'a replay in the burst');
  await assertStillSignedIn(fx, fx.web, tokens, 'after 20 concurrent replays');
  assert.deepEqual((await replayEvents(fx)).filter((e) => e.client_id === 'webapp' || e.client_id === 'other'), [], 'no replay was recorded');
});

test('an expired PKCE code replayed with a wrong or missing verifier revokes nothing; with the right one it does', async () => {
  const victim = await redeemed(fx, fx.spa, { verifier: true });
  for (const code_verifier of [pkce().verifier, undefined]) {
    assertOAuthError(await lateExchange(fx, fx.spa, victim.code, { code_verifier }), 400, 'invalid_grant', `verifier ${code_verifier ?? 'missing'}`);
    await assertStillSignedIn(fx, fx.spa, victim.tokens, `after a replay with verifier ${code_verifier ?? 'missing'}`);
  }
  const right = await lateExchange(fx, fx.spa, victim.code, { code_verifier: victim.verifier });
  assertOAuthError(right, 400, 'invalid_grant', 'the right verifier, late');
  assert.equal((await userinfo(fx, victim.tokens.access_token)).status, 401, 'the legitimate replay revoked the access token');
});

test('the same replay by the code\'s own client revokes what the code issued (RFC 6749 §4.1.2)', async () => {
  const victim = await redeemed(fx, fx.web);
  const replays = await Promise.all(Array.from({ length: 10 }, () => lateExchange(fx, fx.web, victim.code)));
  for (const r of replays) {
    assertOAuthError(r, 400, 'invalid_grant', 'a late replay by the right client');
    assert.equal(primaryCalls(r), 1, 'one round trip: the revocation');
  }
  assert.equal((await userinfo(fx, victim.tokens.access_token)).status, 401, 'the access token is revoked');
  assertOAuthError(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: victim.tokens.refresh_token }),
    400, 'invalid_grant', 'the refresh token is revoked');
  const events = (await replayEvents(fx)).filter((e) => e.client_id === 'webapp');
  assert.equal(events.length, 1, `one replay event, however many requests raced: ${JSON.stringify(events)}`);
});
