// Sign in with another identity provider (issue 17): upstream OpenID Connect connections. The
// upstream is a real identity provider run by the test itself — another Clavex organization of
// the same running Worker (no mocks): the Worker discovers it, sends the browser there, exchanges
// the code with its token endpoint and verifies its ID token against its JWKS, then links the
// upstream account to a user of this organization and hands the sign-in to the gate.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, Browser, createFixture, createClient, createUser, admin, authorizeUrl, exchangeCode,
  assertTokenSuccess, decodeJwt, verifyJwt, parseRedirect, submitLogin, isLoginPage, decodeEntities,
  pageText, RP_REDIRECT, OTHER_REDIRECT,
} from './support/oidc.mjs';

let down; // the organization people sign in to, with its relying parties
let up; // the upstream identity provider
let upClient; // Clavex's client at the upstream
let jit; // connection: creates users on first sign-in
let strict; // connection: neither creates nor links by e-mail
let byEmail; // connection: links to an existing user with the same verified e-mail
const conns = (path = '') => `/organizations/${down.slug}/connections${path}`;
const callbackUri = () => `${BASE}/${down.slug}/connections/callback`;

async function connection(body) {
  const res = await admin('POST', conns(), {
    issuer: up.issuer, client_id: upClient.client_id, client_secret: upClient.secret, ...body,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

before(async () => {
  up = await createFixture('upstream');
  down = await createFixture('down');
  upClient = await createClient(up, {
    client_id: 'clavex-down',
    client_name: 'Down',
    redirect_uris: [callbackUri()],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  jit = await connection({ label: 'Upstream', jit_create: true });
  strict = await connection({ label: 'Strict' });
  byEmail = await connection({ label: 'Linked', link_by_verified_email: true, token_endpoint_auth_method: 'client_secret_post' });
});

/** The "Sign in with {label}" link of a login page. */
function upstreamLink(page, label) {
  const links = [...page.text.matchAll(/<a class="upstream" href="([^"]+)">([^<]*)<\/a>/g)]
    .map((m) => ({ href: new URL(decodeEntities(m[1]), page.url).toString(), text: decodeEntities(m[2]) }));
  const link = links.find((l) => l.text === `Sign in with ${label}`);
  assert.ok(link, `a "Sign in with ${label}" link on the login page; got ${JSON.stringify(links.map((l) => l.text))}`);
  return link.href;
}

/**
 * Authorize at `down` for `client`, click "Sign in with {label}", sign in upstream as `upUser`.
 * Returns the answer of down's callback and what led there.
 */
async function viaUpstream(conn, upUser, { browser = new Browser(), client = down.web, params = {} } = {}) {
  const login = await browser.get(authorizeUrl(down, client, params));
  assert.ok(isLoginPage(login), `login page at down: ${login.status}`);
  const start = await browser.get(upstreamLink(login, conn.label));
  assert.equal(start.status, 302, `start redirects upstream: ${start.status} ${start.text.slice(0, 300)}`);
  assert.match(start.headers.get('cache-control') ?? '', /no-store/);
  const toUp = parseRedirect(start.location);
  assert.equal(toUp.base, `${up.issuer}/authorize`, 'sent to the upstream authorization endpoint');
  assert.equal(toUp.params.client_id, upClient.client_id);
  assert.equal(toUp.params.redirect_uri, callbackUri());
  assert.equal(toUp.params.code_challenge_method, 'S256');
  assert.ok(toUp.params.state && toUp.params.nonce && toUp.params.code_challenge);
  const upLogin = await browser.get(start.location);
  assert.ok(isLoginPage(upLogin), `upstream login page: ${upLogin.status}`);
  const upAnswer = await submitLogin(browser, upLogin, upUser.username, upUser.password);
  assert.equal(upAnswer.status, 303, `upstream answers with a redirect: ${upAnswer.status} ${upAnswer.text.slice(0, 300)}`);
  const back = parseRedirect(upAnswer.location);
  assert.equal(back.base, callbackUri(), 'upstream sends the browser to the callback');
  const callback = await browser.get(upAnswer.location);
  return { callback, callbackUrl: upAnswer.location, browser, toUp, start };
}

/** The RP's code from a redirect, exchanged: the decoded ID token (signature checked). */
async function codeToIdToken(res, client = down.web) {
  assert.equal(res.status, 302, `redirect back to the client: ${res.status} ${pageText(res.text).slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, client.redirect_uri);
  assert.ok(r.params.code, `a code: ${res.location}`);
  const tokens = assertTokenSuccess(await exchangeCode(down, client, r.params.code));
  const jwks = await down.jwks();
  assert.ok(verifyJwt(tokens.id_token, jwks), 'the ID token verifies against down\'s JWKS');
  return decodeJwt(tokens.id_token).payload ?? decodeJwt(tokens.id_token);
}

async function events(type) {
  const res = await admin('GET', `/organizations/${down.slug}/events?type=${type}&limit=200`);
  assert.equal(res.status, 200);
  return res.body.events;
}

async function eventually(type, pred) {
  for (let i = 0; i < 40; i += 1) {
    const found = (await events(type)).filter(pred);
    if (found.length) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no ${type} event as expected: ${JSON.stringify(await events(type))}`);
}

test('admin API: a connection is created with its redirect URI, never shows its secret, and is validated', async () => {
  assert.equal(jit.redirect_uri, callbackUri());
  assert.match(jit.id, /^con_[A-Za-z0-9_-]+$/);
  assert.equal(jit.client_secret, undefined);
  assert.deepEqual(jit.scopes, ['openid', 'profile', 'email']);
  assert.equal(jit.jit_create, true);
  assert.equal(jit.link_by_verified_email, false);
  assert.equal(jit.trust_upstream_mfa, false);
  const list = await admin('GET', conns());
  assert.equal(list.status, 200);
  assert.ok(list.body.connections.some((c) => c.id === jit.id));
  assert.ok(!JSON.stringify(list.body).includes(upClient.secret), 'the secret is never returned');
  const one = await admin('GET', conns(`/${jit.id}`));
  assert.equal(one.status, 200);
  assert.equal(one.body.label, 'Upstream');
  for (const [body, field] of [
    [{ issuer: 'http://idp.example.test', client_id: 'c', client_secret: 's', label: 'L' }, 'issuer'],
    [{ issuer: 'https://idp.example.test?x=1', client_id: 'c', client_secret: 's', label: 'L' }, 'issuer'],
    [{ issuer: 'https://idp.example.test', client_id: 'c', label: 'L' }, 'client_secret'],
    [{ issuer: 'https://idp.example.test', client_id: 'c', client_secret: 's', label: 'L', scopes: ['email'] }, 'scopes'],
    [{ issuer: 'https://idp.example.test', client_id: 'c', client_secret: 's', label: 'L', surprise: 1 }, 'surprise'],
  ]) {
    const res = await admin('POST', conns(), body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.field, field, JSON.stringify(res.body));
  }
  const temp = await connection({ label: 'Temporary' });
  const patched = await admin('PATCH', conns(`/${temp.id}`), { label: 'Renamed', jit_create: true });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.label, 'Renamed');
  assert.equal(patched.body.jit_create, true);
  assert.equal((await admin('DELETE', conns(`/${temp.id}`))).status, 204);
  assert.equal((await admin('GET', conns(`/${temp.id}`))).status, 404);
  assert.equal((await admin('GET', `/organizations/nope-${Date.now()}/connections`)).status, 404);
});

test('the login page offers a "Sign in with …" link per connection', async () => {
  const page = await new Browser().get(authorizeUrl(down, down.web));
  assert.ok(isLoginPage(page));
  for (const label of ['Upstream', 'Strict', 'Linked']) upstreamLink(page, label);
  assert.ok(!page.text.includes('Renamed'), 'a deleted connection is not offered');
});

let jitUser; // the upstream user created at down on first sign-in
let jitSub;

test('first sign-in creates the user (JIT), links it, and ends in a code; the ID token says amr fed', async () => {
  jitUser = await createUser(up, { username: 'ulla', name: 'Ulla Upstream', email: 'ulla@up.example.test' });
  const { callback } = await viaUpstream(jit, jitUser, { params: { nonce: 'rp-nonce-1' } });
  assert.match(callback.headers.get('set-cookie') ?? '', /clavex_upstream=;/, 'the transaction cookie is cleared');
  const idToken = await codeToIdToken(callback);
  assert.deepEqual(idToken.amr, ['fed']);
  assert.equal(idToken.acr, 'urn:clavex:acr:pwd', 'the one-factor level');
  assert.equal(idToken.nonce, 'rp-nonce-1', 'the RP\'s own nonce, not the upstream\'s');
  assert.notEqual(idToken.sub, jitUser.sub, 'a user of down, not the upstream\'s sub');
  jitSub = idToken.sub;
  const user = await admin('GET', `/organizations/${down.slug}/users/${jitSub}`);
  assert.equal(user.status, 200);
  assert.equal(user.body.username, 'ulla');
  assert.equal(user.body.email, 'ulla@up.example.test');
  assert.equal(user.body.name, 'Ulla Upstream');
  assert.equal(user.body.email_verified, true);
  await eventually('upstream.link.created', (e) => e.user_id === jitSub && e.detail.how === 'created');
  const signins = await eventually('upstream.signin', (e) => e.user_id === jitSub);
  assert.equal(signins[0].detail.connection_id, jit.id);
  assert.ok(!JSON.stringify(signins).includes(jitUser.sub), 'the upstream sub is recorded only hashed');
});

test('a returning user is the same user, with no new link', async () => {
  assert.ok(jitSub, 'the first sign-in ran');
  const { callback } = await viaUpstream(jit, jitUser);
  const idToken = await codeToIdToken(callback);
  assert.equal(idToken.sub, jitSub);
  await eventually('upstream.signin', (e) => e.user_id === jitSub);
  const links = (await events('upstream.link.created')).filter((e) => e.user_id === jitSub);
  assert.equal(links.length, 1, 'linked once');
});

test('admin API: a user\'s links are listed and removed; the next sign-in is a first one again', async () => {
  assert.ok(jitSub, 'the first sign-in ran');
  const links = await admin('GET', `/organizations/${down.slug}/users/${jitSub}/links`);
  assert.equal(links.status, 200);
  assert.equal(links.body.links.length, 1);
  assert.equal(links.body.links[0].connection_id, jit.id);
  assert.equal(links.body.links[0].upstream_sub, jitUser.sub);
  assert.equal(links.body.links[0].label, 'Upstream');
  assert.equal((await admin('DELETE', `/organizations/${down.slug}/users/${jitSub}/links/${jit.id}`)).status, 204);
  assert.equal((await admin('GET', `/organizations/${down.slug}/users/${jitSub}/links`)).body.links.length, 0);
  assert.equal((await admin('DELETE', `/organizations/${down.slug}/users/${jitSub}/links/${jit.id}`)).status, 204, 'idempotent');
  assert.equal((await admin('DELETE', `/organizations/${down.slug}/users/${jitSub}/links/con_nope`)).status, 404);
  // Unlinked, the same upstream account is a first sign-in: its address is now the local user's,
  // and this connection does not link by e-mail, so it is not given a second account: the page
  // offers to link by signing in once (tests/federation-link.test.mjs), and nothing is linked yet.
  const { callback } = await viaUpstream(jit, jitUser);
  assert.equal(callback.status, 200);
  assert.match(pageText(callback.text), /Link your Upstream account to your account here/);
  assert.doesNotMatch(callback.location ?? '', /code=/);
  assert.equal((await admin('GET', `/organizations/${down.slug}/users/${jitSub}/links`)).body.links.length, 0);
  // Linked again by enabling e-mail linking (both addresses verified): the same user.
  await admin('PATCH', conns(`/${jit.id}`), { link_by_verified_email: true });
  try {
    const again = await viaUpstream(jit, jitUser);
    assert.equal((await codeToIdToken(again.callback)).sub, jitSub);
  } finally {
    await admin('PATCH', conns(`/${jit.id}`), { link_by_verified_email: false });
  }
});

test('without JIT creation and without a link, no user is made: the page offers to link by signing in once', async () => {
  const nobody = await createUser(up, { username: 'nora', email: 'nora@up.example.test' });
  const { callback } = await viaUpstream(strict, nobody);
  assert.equal(callback.status, 200);
  assert.match(pageText(callback.text), /Link your Strict account to your account here/);
  const listed = await admin('GET', `/organizations/${down.slug}/users?email=nora@up.example.test`);
  assert.equal(listed.body.users.length, 0, 'no user was created');
  await eventually('upstream.refused', (e) => e.detail.reason === 'not_linked' && e.detail.connection_id === strict.id);
});

test('an e-mail address links an existing user only where the connection opts in and both sides verified it', async () => {
  const local = await createUser(down, { username: 'carol', email: 'carol@shared.example.test', email_verified: true });
  const upCarol = await createUser(up, { username: 'carol-up', email: 'carol@shared.example.test', email_verified: true });
  // Not opted in (even a connection that creates users would refuse: the address is someone's).
  // The page that offers to link by a password sign-in never says whose the address is.
  const refused = await viaUpstream(strict, upCarol);
  assert.equal(refused.callback.status, 200);
  assert.match(pageText(refused.callback.text), /Link your Strict account/);
  assert.ok(!pageText(refused.callback.text).includes('carol'), 'no account named');
  // The upstream does not vouch for the address: refused even where linking is on.
  const upDave = await createUser(up, { username: 'dave-up', email: 'dave@shared.example.test', email_verified: false });
  await createUser(down, { username: 'dave', email: 'dave@shared.example.test', email_verified: true });
  const unverified = await viaUpstream(byEmail, upDave);
  assert.equal(unverified.callback.status, 200);
  assert.match(pageText(unverified.callback.text), /Link your Linked account/);
  // Opted in, verified on both sides: linked to the existing user (client_secret_post this time).
  const linked = await viaUpstream(byEmail, upCarol);
  const idToken = await codeToIdToken(linked.callback);
  assert.equal(idToken.sub, local.sub);
  await eventually('upstream.link.created', (e) => e.user_id === local.sub && e.detail.how === 'email');
});

test('a forged state, or a callback without the transaction cookie, is refused', async () => {
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(down, down.web));
  const start = await browser.get(upstreamLink(login, jit.label));
  const { params } = parseRedirect(start.location);
  const forged = await browser.get(`${callbackUri()}?code=whatever&state=${encodeURIComponent(`${params.state}x`)}`);
  assert.equal(forged.status, 400);
  assert.match(pageText(forged.text), /does not belong to the sign-in started in this browser/);
  // Another browser (no cookie) with the right state.
  const elsewhere = await new Browser().get(`${callbackUri()}?code=whatever&state=${encodeURIComponent(params.state)}`);
  assert.equal(elsewhere.status, 400);
  assert.match(pageText(elsewhere.text), /not started in this browser, or it was already used/);
  await eventually('upstream.refused', (e) => e.detail.reason === 'state_mismatch');
});

test('a callback used once is refused the second time, also with the old cookie put back', async () => {
  const browser = new Browser();
  const before = browser.jar.clone();
  const { callback, callbackUrl } = await viaUpstream(jit, jitUser, { browser });
  await codeToIdToken(callback);
  const again = await browser.get(callbackUrl);
  assert.equal(again.status, 400, 'the cookie was cleared');
  assert.match(pageText(again.text), /already used/);
  // An attacker who kept the transaction cookie: the upstream's code is single use.
  void before;
  const replayer = new Browser();
  const login = await replayer.get(authorizeUrl(down, down.web));
  const start = await replayer.get(upstreamLink(login, jit.label));
  const kept = replayer.jar.clone();
  const upLogin = await replayer.get(start.location);
  const upAnswer = await submitLogin(replayer, upLogin, jitUser.username, jitUser.password);
  const first = await replayer.get(upAnswer.location);
  assert.equal(first.status, 302);
  replayer.jar = kept;
  const second = await replayer.get(upAnswer.location);
  assert.equal(second.status, 400, `replayed callback refused: ${pageText(second.text).slice(0, 200)}`);
  assert.match(pageText(second.text), /already used/, 'refused at the primary before the upstream is asked');
  assert.doesNotMatch(second.location ?? '', /code=/);
});

test('the upstream answering access_denied brings the login page back with a message', async () => {
  await admin('POST', `/organizations/${up.slug}/groups`, { name: 'staff' });
  await admin('PATCH', `/organizations/${up.slug}/clients/${upClient.client_id}`, { allowed_groups: ['staff'] });
  try {
    const outsider = await createUser(up, { username: 'olga' });
    const browser = new Browser();
    const login = await browser.get(authorizeUrl(down, down.web));
    const start = await browser.get(upstreamLink(login, jit.label));
    const upLogin = await browser.get(start.location);
    const upAnswer = await submitLogin(browser, upLogin, outsider.username, outsider.password);
    assert.equal(parseRedirect(upAnswer.location).params.error, 'access_denied', 'the real upstream refuses');
    const back = await browser.get(upAnswer.location);
    assert.equal(back.status, 200);
    assert.ok(isLoginPage(back), 'the login page again');
    assert.match(pageText(back.text), /Sign-in with Upstream was cancelled or refused/);
    await eventually('upstream.refused', (e) => e.detail.reason === 'upstream_error:access_denied');
  } finally {
    await admin('PATCH', `/organizations/${up.slug}/clients/${upClient.client_id}`, { allowed_groups: [] });
  }
});

test('an upstream that does not answer ends on a page, not a 5xx', async () => {
  const dead = await admin('POST', conns(), {
    issuer: 'http://127.0.0.1:9/nothing', client_id: 'c', client_secret: 's', label: 'Dead',
  });
  assert.equal(dead.status, 201);
  try {
    const browser = new Browser();
    const login = await browser.get(authorizeUrl(down, down.web));
    const res = await browser.get(upstreamLink(login, 'Dead'));
    assert.equal(res.status, 400);
    assert.match(pageText(res.text), /Dead (did not answer|could not be used)/);
  } finally {
    await admin('DELETE', conns(`/${dead.body.id}`));
  }
});

test('idp_hint at /authorize goes straight to the upstream; an unknown one shows the login page', async () => {
  const browser = new Browser();
  const res = await browser.get(authorizeUrl(down, down.web, { idp_hint: jit.id }));
  assert.equal(res.status, 302);
  assert.equal(parseRedirect(res.location).base, `${up.issuer}/authorize`);
  const upLogin = await browser.get(res.location);
  const upAnswer = await submitLogin(browser, upLogin, jitUser.username, jitUser.password);
  const idToken = await codeToIdToken(await browser.get(upAnswer.location));
  assert.equal(idToken.sub, jitSub);
  const unknown = await new Browser().get(authorizeUrl(down, down.web, { idp_hint: 'con_nope' }));
  assert.ok(isLoginPage(unknown));
});

test('an upstream sign-in is one factor: a client that requires a second one asks for local enrolment', async () => {
  const res = await admin('PATCH', `/organizations/${down.slug}/clients/other`, { require_mfa: true });
  assert.equal(res.status, 200);
  const { callback } = await viaUpstream(jit, jitUser, { client: down.other });
  assert.equal(callback.status, 200, 'a page, not a code');
  assert.match(pageText(callback.text), /authenticator|two-step|verification/i);
  assert.doesNotMatch(callback.location ?? '', /code=/);
  void OTHER_REDIRECT; void RP_REDIRECT;
});
