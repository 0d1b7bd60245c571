// OpenID Connect Back-Channel Logout 1.0: a relying party's receiver on 127.0.0.1 that verifies
// every logout token against the organization's JWKS, as a relying party must (§2.6), and the
// events that send them: RP-initiated logout, an admin disabling or deleting the user.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  Browser, createFixture, createClient, createUser, loginAndExchange, endpoint, verifyJwt, admin, sleep, nowSeconds,
  parseForms, formFields,
} from './support/oidc.mjs';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
let fx; let receiver; let receiverUrl;
/** Logout tokens received, per path: [{ contentType, token }]. */
const received = new Map();
/** Answers to give per path, in turn (then 200). */
const answers = new Map();

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const path = new URL(req.url, 'http://x').pathname;
      const list = received.get(path) ?? [];
      list.push({ method: req.method, contentType: req.headers['content-type'], token: new URLSearchParams(body).get('logout_token'), body });
      received.set(path, list);
      const queue = answers.get(path) ?? [];
      res.writeHead(queue.length ? queue.shift() : 200, { 'Cache-Control': 'no-store' });
      res.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
  fx = await createFixture('bcl');
});
after(() => receiver?.close());

/** A client of `fx` told at a path of its own; returns it with `path`. */
async function toldClient(name, extra = {}) {
  const path = `/${name}/backchannel-logout`;
  const client = await createClient(fx, {
    client_id: name,
    client_name: name,
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [`https://${name}.example.test/cb`],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: `${receiverUrl}${path}`,
    ...extra,
  });
  return { ...client, path };
}

/** Waits until `path` has received `count` tokens (they are sent after the response). */
async function tokensAt(path, count, ms = 10_000) {
  const deadline = Date.now() + ms;
  while ((received.get(path)?.length ?? 0) < count && Date.now() < deadline) await sleep(50);
  return received.get(path) ?? [];
}

/** Verify a logout token as §2.6 tells a relying party to; returns its claims. */
async function verifyLogoutToken(token, client) {
  const jwt = verifyJwt(token, await fx.jwks());
  assert.equal(jwt.header.typ, 'logout+jwt', 'explicitly typed (§2.4)');
  const c = jwt.payload;
  assert.equal(c.iss, fx.issuer);
  assert.equal(c.aud, client.client_id);
  assert.ok(Math.abs(c.iat - nowSeconds()) < 60, `iat is now: ${c.iat}`);
  assert.ok(c.exp > nowSeconds() && c.exp - c.iat <= 300, `a short exp: ${c.exp - c.iat} s`);
  assert.ok(typeof c.jti === 'string' && c.jti.length >= 16, 'a jti');
  assert.deepEqual(c.events, { [EVENT]: {} });
  assert.equal(c.nonce, undefined, 'never a nonce (§2.4)');
  assert.ok(c.sub || c.sid, 'sub or sid');
  return c;
}

async function events(type, userId) {
  const res = await admin('GET', `/organizations/${fx.slug}/events?type=${type}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.events.filter((e) => e.user_id === userId);
}

test('discovery advertises back-channel logout with sid', () => {
  assert.equal(fx.discovery.backchannel_logout_supported, true);
  assert.equal(fx.discovery.backchannel_logout_session_supported, true);
  assert.ok(fx.discovery.claims_supported.includes('sid'), 'sid among claims_supported');
});

test('the admin API keeps the settings and refuses addresses Clavex must not call', async () => {
  const c = await toldClient('settings', { backchannel_logout_session_required: true });
  assert.equal(c.backchannel_logout_uri, `${receiverUrl}${c.path}`);
  assert.equal(c.backchannel_logout_session_required, true);
  for (const bad of ['http://rp.example.test/bcl', 'https://rp.example.test/bcl#frag', 'bcl', 'javascript:alert(1)']) {
    const res = await admin('PATCH', `/organizations/${fx.slug}/clients/${c.client_id}`, { backchannel_logout_uri: bad });
    assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.field, 'backchannel_logout_uri');
  }
  const kept = await admin('GET', `/organizations/${fx.slug}/clients/${c.client_id}`);
  assert.equal(kept.body.backchannel_logout_uri, `${receiverUrl}${c.path}`, 'a refused PATCH changes nothing');
  const cleared = await admin('PATCH', `/organizations/${fx.slug}/clients/${c.client_id}`, { backchannel_logout_uri: '' });
  assert.equal(cleared.status, 200);
  assert.equal(cleared.body.backchannel_logout_uri, null);
});

test('signing out at Clavex: each relying party of the user gets a verified logout token naming the session in its ID token', async () => {
  const chat = await toldClient('chat1');
  const wiki = await toldClient('wiki1', { backchannel_logout_session_required: true });
  const user = await createUser(fx);
  const browser = new Browser();
  const a = await loginAndExchange(fx, chat, { browser, user });
  const b = await loginAndExchange(fx, wiki, { browser, user });
  const sid = a.idToken.payload.sid;
  assert.ok(typeof sid === 'string' && sid.length >= 16, `the ID token carries a sid: ${JSON.stringify(a.idToken.payload)}`);
  assert.equal(b.idToken.payload.sid, sid, 'one SSO session, one sid for both clients');
  // The sid survives refresh (OIDC Core §12.2: the same session).
  const refreshed = await fetch(endpoint(fx, 'token_endpoint'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${Buffer.from(`${chat.client_id}:${chat.secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: a.tokens.refresh_token }),
  });
  assert.equal(refreshed.status, 200);
  const again = verifyJwt((await refreshed.json()).id_token, await fx.jwks());
  assert.equal(again.payload.sid, sid);

  const res = await browser.get(`${fx.issuer}/logout`);
  assert.equal(res.status, 200, 'signed out');
  for (const client of [chat, wiki]) {
    const [got, ...more] = await tokensAt(client.path, 1);
    assert.ok(got, `${client.client_id} was told`);
    assert.equal(more.length, 0, 'once');
    assert.equal(got.method, 'POST');
    assert.equal(got.contentType, 'application/x-www-form-urlencoded');
    const claims = await verifyLogoutToken(got.token, client);
    assert.equal(claims.sub, user.sub);
    assert.equal(claims.sid, sid);
  }
  // The same logout again (the cookie is gone, and so is the session): nobody is told twice.
  const replay = await browser.get(`${fx.issuer}/logout`);
  assert.equal(replay.status, 200);
  await sleep(500);
  assert.equal(received.get(chat.path).length, 1, 'a second logout tells no one');
  const delivered = await events('logout.backchannel', user.sub);
  assert.equal(delivered.length, 2, JSON.stringify(delivered));
  for (const e of delivered) {
    assert.equal(e.detail.delivered, true);
    assert.equal(e.detail.attempts, 1);
    assert.equal(e.detail.status, 200);
  }
});

test('a user who signed in elsewhere is not named by another user\'s logout', async () => {
  const chat = await toldClient('chat2');
  const alice = await createUser(fx);
  const bob = await createUser(fx);
  await loginAndExchange(fx, chat, { user: alice });
  const bobBrowser = new Browser();
  await loginAndExchange(fx, chat, { browser: bobBrowser, user: bob });
  assert.equal((await bobBrowser.get(`${fx.issuer}/logout`)).status, 200);
  const got = await tokensAt(chat.path, 1);
  await sleep(300);
  assert.equal(got.length, 1);
  assert.equal((await verifyLogoutToken(got[0].token, chat)).sub, bob.sub, 'only bob');
});

test('disabling a user tells every relying party by sub; a client that needs sid gets one token per session', async () => {
  const chat = await toldClient('chat3');
  const wiki = await toldClient('wiki3', { backchannel_logout_session_required: true });
  const quiet = await createClient(fx, {
    client_id: 'quiet3', client_name: 'quiet', redirect_uris: ['https://quiet.example.test/cb'], scopes: ['openid', 'profile', 'email'],
  });
  const user = await createUser(fx);
  const first = await loginAndExchange(fx, wiki, { user });
  const second = await loginAndExchange(fx, wiki, { user });
  await loginAndExchange(fx, chat, { user });
  await loginAndExchange(fx, quiet, { user });
  const sids = [first.idToken.payload.sid, second.idToken.payload.sid].sort();
  assert.notEqual(sids[0], sids[1], 'two browsers, two sessions');
  const res = await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { disabled: true });
  assert.equal(res.status, 200);
  const [toChat] = await tokensAt(chat.path, 1);
  const chatClaims = await verifyLogoutToken(toChat.token, chat);
  assert.equal(chatClaims.sub, user.sub);
  assert.equal(chatClaims.sid, undefined, 'sub alone: every session of the user at the RP (§2.6)');
  const toWiki = await tokensAt(wiki.path, 2);
  assert.equal(toWiki.length, 2);
  const wikiSids = [];
  for (const t of toWiki) {
    const c = await verifyLogoutToken(t.token, wiki);
    assert.equal(c.sub, user.sub);
    wikiSids.push(c.sid);
  }
  assert.deepEqual(wikiSids.sort(), sids);
});

test('deleting a user tells the relying parties before the grants are gone', async () => {
  const chat = await toldClient('chat4');
  const user = await createUser(fx);
  await loginAndExchange(fx, chat, { user });
  assert.equal((await admin('DELETE', `/organizations/${fx.slug}/users/${user.id}`)).status, 204);
  const [got] = await tokensAt(chat.path, 1);
  assert.ok(got, 'told');
  assert.equal((await verifyLogoutToken(got.token, chat)).sub, user.sub);
});

test('a recovery link used tells the relying parties whose grants it ended — once, also when it is posted 20 times at once', async () => {
  const chat = await toldClient('chat5');
  const user = await createUser(fx);
  const before = await loginAndExchange(fx, chat, { user });
  const link = await admin('POST', `/organizations/${fx.slug}/users/${user.id}/recovery-link`, { reset: ['password'] });
  assert.equal(link.status, 200, JSON.stringify(link.body));
  const browser = new Browser();
  const page = await browser.get(link.body.link);
  assert.equal(page.status, 200);
  const form = parseForms(page.text, page.url).find((f) => !/id="passkey-add"/.test(f.html));
  const password = 'a recovered passphrase 1';
  const posts = await Promise.all(Array.from({ length: 20 }, () => browser.post(form.action, formFields(form, { new_password: password, confirm_password: password }))));
  assert.equal(posts.filter((r) => r.status === 303).length, 1, posts.map((r) => r.status).join(','));
  const [got] = await tokensAt(chat.path, 1);
  assert.ok(got, 'told');
  const claims = await verifyLogoutToken(got.token, chat);
  assert.equal(claims.sub, user.sub);
  assert.equal(claims.sub, before.idToken.payload.sub);
  await sleep(500);
  assert.equal((await tokensAt(chat.path, 1)).length, 1, 'told once: only the winning claim ended the grant');
  // A link that is refused (used) tells nobody again.
  assert.equal((await browser.post(form.action, formFields(form, { new_password: password, confirm_password: password }))).status, 410);
  await sleep(500);
  assert.equal(received.get(chat.path).length, 1);
});

test('a receiver that fails is tried again, with bounded attempts, and each delivery is in the audit trail', async () => {
  const flaky = await toldClient('flaky5');
  const down = await toldClient('down5');
  const refusing = await toldClient('refusing5');
  answers.set(flaky.path, [503]);
  answers.set(down.path, [503, 503, 503, 503, 503]);
  answers.set(refusing.path, [400, 400]);
  const user = await createUser(fx);
  const browser = new Browser();
  for (const c of [flaky, down, refusing]) await loginAndExchange(fx, c, { browser, user });
  assert.equal((await browser.get(`${fx.issuer}/logout`)).status, 200);
  assert.equal((await tokensAt(flaky.path, 2)).length, 2, 'tried again after a 503');
  assert.equal((await tokensAt(down.path, 3)).length, 3, 'three attempts in all');
  await sleep(1500);
  assert.equal(received.get(down.path).length, 3, 'and no more');
  assert.equal(received.get(refusing.path).length, 1, 'a 400 is the RP\'s answer: not retried');
  let logged = [];
  for (let i = 0; i < 40 && logged.length < 3; i++) { logged = await events('logout.backchannel', user.sub); await sleep(250); }
  const byClient = Object.fromEntries(logged.map((e) => [e.client_id, e.detail]));
  assert.deepEqual(byClient[flaky.client_id], { delivered: true, attempts: 2, status: 200, sid: true });
  assert.deepEqual(byClient[down.client_id], { delivered: false, attempts: 3, status: 503, sid: true });
  assert.deepEqual(byClient[refusing.client_id], { delivered: false, attempts: 1, status: 400, sid: true });
});
