// Replica round trips on a COLD isolate (issue 18: one read per request). storage-budgets counts
// a warm isolate, where the organization, the client and the signing key come from its caches.
// Here each request is the first one a fresh Worker process serves: what it needs besides its
// own read is read in the same D1 batch (src/oidc/prime.rs), so the count is the same as warm.
// Its own Worker, restarted (same D1 and KV, so codes, sessions and tokens outlive it) before
// each measured request.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker } from './support/worker.mjs';

const adminToken = `cold-${randomBytes(18).toString('base64url')}`;
let worker = await startWorker({
  vars: { ADMIN_TOKEN: adminToken, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'), STORAGE_TIMING: 'on' },
});
after(() => worker.stop());
process.env.CLAVEX_URL = worker.url;
process.env.CLAVEX_ADMIN_TOKEN = adminToken;
const {
  Browser, createFixture, authorize, authorizeUrl, exchangeCode, assertTokenSuccess, tokenRequest, userinfo,
  loginForm, formFields, isLoginPage,
} = await import('./support/oidc.mjs');

/** A new Worker process on the same state: every isolate cache is empty. */
async function cold() {
  worker = await worker.restart();
}

function counts(res, what) {
  const header = res.headers.get('server-timing') ?? '';
  const count = (kind) => {
    const m = header.match(new RegExp(`${kind};count=(\\d+)`));
    assert.ok(m, `${what}: a Server-Timing count for ${kind}: ${header}`);
    return Number(m[1]);
  };
  return { primary: count('d1-primary'), replica: count('d1-replica'), header };
}

let fx;
before(async () => { fx = await createFixture('cold'); });

test('login POST on a cold isolate: the organization, the client and the user in one replica round trip', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page), 'a login page');
  await cold();
  const form = loginForm(page);
  const res = await browser.post(form.action, formFields(form, { username: fx.alice.username, password: fx.alice.password }));
  assert.equal(res.status, 303, `redirected back with a code: ${res.status} ${res.text.slice(0, 200)}`);
  assert.ok(new URL(res.location).searchParams.get('code'), 'a code');
  const c = counts(res, 'cold login POST');
  assert.equal(c.replica, 1, `one replica round trip: ${c.header}`);
  assert.equal(c.primary, 1, `one primary round trip (the attempt): ${c.header}`);
});

test('code exchange on a cold isolate: the organization, the client and the signing key in one replica round trip', async () => {
  const { code } = await authorize(fx, fx.web);
  await cold();
  const res = await exchangeCode(fx, fx.web, code);
  const body = assertTokenSuccess(res, 'cold code exchange');
  assert.ok(body.id_token, 'an ID token');
  const c = counts(res, 'cold code exchange');
  assert.equal(c.replica, 1, `one replica round trip: ${c.header}`);
  assert.equal(c.primary, 1, `one primary round trip (the claim): ${c.header}`);
});

test('refresh and userinfo on a cold isolate: one replica round trip each', async () => {
  const { code } = await authorize(fx, fx.web);
  const tokens = assertTokenSuccess(await exchangeCode(fx, fx.web, code));
  assert.ok(tokens.refresh_token, 'a refresh token');
  await cold();
  const refreshed = await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  const body = assertTokenSuccess(refreshed, 'cold refresh');
  assert.ok(body.access_token && body.refresh_token !== tokens.refresh_token, 'rotated');
  const r = counts(refreshed, 'cold refresh');
  assert.equal(r.replica, 1, `refresh: one replica round trip: ${r.header}`);
  await cold();
  const info = await userinfo(fx, body.access_token);
  assert.equal(info.status, 200);
  assert.equal(info.body.sub, fx.alice.id);
  const u = counts(info, 'cold userinfo');
  assert.equal(u.replica, 1, `userinfo: one replica round trip: ${u.header}`);
  assert.equal(u.primary, 0, `userinfo: nothing at the primary: ${u.header}`);
});

test('authorize with an SSO session on a cold isolate: the session from KV, then the organization, the client and the user in one replica round trip', async () => {
  const browser = new Browser();
  await authorize(fx, fx.web, { browser });
  await cold();
  const again = await authorize(fx, fx.web, { browser });
  assert.equal(again.loginShown, false, 'the session signs the user in');
  const c = counts(again.res, 'cold authorize with a session');
  assert.equal(c.replica, 1, `one replica round trip: ${c.header}`);
  assert.equal(c.primary, 0, `nothing at the primary: ${c.header}`);
});
