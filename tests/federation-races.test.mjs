// Upstream federation (issue 17): the upstream's callback is single use. The transaction travels
// sealed in a cookie that the callback clears, but the same callback URL with the same cookie
// sent 50 times at once — or later, from a copy of the cookie — must sign in exactly once: its
// first use is recorded at the D1 primary before the upstream is asked anything. The upstream is
// another Clavex organization of the same running Worker (no mocks).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, Browser, createFixture, createClient, createUser, admin, authorizeUrl, exchangeCode,
  assertTokenSuccess, decodeJwt, parseRedirect, submitLogin, isLoginPage, decodeEntities, pageText,
} from './support/oidc.mjs';

let up;
let down;
let upClient;
let jit;

before(async () => {
  up = await createFixture('fr-up');
  down = await createFixture('fr-down');
  upClient = await createClient(up, {
    client_id: 'clavex-down',
    client_name: 'Down',
    redirect_uris: [`${BASE}/${down.slug}/connections/callback`],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const res = await admin('POST', `/organizations/${down.slug}/connections`, {
    issuer: up.issuer, client_id: upClient.client_id, client_secret: upClient.secret, label: 'Upstream', jit_create: true,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  jit = res.body;
});

/** Up to the upstream's answer (not followed): the callback URL and the browser holding the cookie. */
async function toCallback(upUser) {
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(down, down.web));
  const link = [...login.text.matchAll(/<a class="upstream" href="([^"]+)">([^<]*)<\/a>/g)]
    .find((m) => decodeEntities(m[2]) === `Sign in with ${jit.label}`);
  assert.ok(link, 'a "Sign in with Upstream" link');
  const start = await browser.get(new URL(decodeEntities(link[1]), login.url));
  assert.equal(start.status, 302);
  const upLogin = await browser.get(start.location);
  assert.ok(isLoginPage(upLogin));
  const upAnswer = await submitLogin(browser, upLogin, upUser.username, upUser.password);
  assert.equal(upAnswer.status, 303);
  return { browser, url: upAnswer.location };
}

async function events(type) {
  const res = await admin('GET', `/organizations/${down.slug}/events?type=${type}&limit=200`);
  assert.equal(res.status, 200);
  return res.body.events;
}

test('the same callback 50 times at once: exactly one sign-in and one code, the rest a page saying it was used, no 5xx; later refused too', async () => {
  const upUser = await createUser(up, { username: 'racer', email: 'racer@up.example.test' });
  const { browser, url } = await toCallback(upUser);
  const cookies = browser.jar.clone();
  // Every request carries the cookie as it was before any answer cleared it.
  const answers = await Promise.all(Array.from({ length: 50 }, () => new Browser(cookies.clone(), browser.ip).get(url)));
  const statuses = answers.map((a) => a.status);
  assert.ok(statuses.every((s) => s < 500), `no 5xx: ${statuses.join(',')}`);
  const codes = answers.filter((a) => a.status === 302 && /[?&]code=/.test(a.location ?? ''));
  assert.equal(codes.length, 1, `exactly one code: ${statuses.join(',')}`);
  const sessions = answers.filter((a) => a.setCookies.some((c) => c.name === 'clavex_session' && c.value !== ''));
  assert.equal(sessions.length, 1, 'one SSO session started');
  for (const a of answers.filter((x) => x !== codes[0])) {
    assert.equal(a.status, 400);
    assert.match(pageText(a.text), /already used/);
    assert.doesNotMatch(a.location ?? '', /code=/);
  }
  const r = parseRedirect(codes[0].location);
  const tokens = assertTokenSuccess(await exchangeCode(down, down.web, r.params.code));
  const sub = decodeJwt(tokens.id_token).payload?.sub ?? decodeJwt(tokens.id_token).sub;
  const users = await admin('GET', `/organizations/${down.slug}/users?email=racer@up.example.test`);
  assert.equal(users.body.users.length, 1, 'one user created');
  assert.equal(users.body.users[0].id, sub);
  // Later, from another copy of the cookie: still refused.
  const later = await new Browser(cookies.clone(), browser.ip).get(url);
  assert.equal(later.status, 400);
  assert.match(pageText(later.text), /already used/);
  let replayed = [];
  for (let i = 0; i < 40 && replayed.length < 50; i += 1) {
    replayed = (await events('upstream.refused')).filter((e) => e.detail.reason === 'transaction_replayed' && e.detail.connection_id === jit.id);
    if (replayed.length < 50) await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(replayed.length, 50, '49 raced and 1 later, each recorded');
  const signins = (await events('upstream.signin')).filter((e) => e.user_id === sub);
  assert.equal(signins.length, 1, 'one upstream sign-in');
});
