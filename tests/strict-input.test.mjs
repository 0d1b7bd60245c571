// Input Clavex must refuse, each with a clear error and nothing stored: URIs with control
// characters or not in the form they are used in, bodies that are not UTF-8, nesting too deep,
// repeated OAuth parameters at every endpoint, cross-site form posts, and weak passwords.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, admin, createFixture, createUser, authorizeUrl, isLoginPage, loginForm, formFields, parseForms,
  loginAndExchange, readJson, endpoint, basicAuth, authorize, submitLogin,
} from './support/oidc.mjs';
import { BASE, ADMIN_TOKEN } from './support/client.mjs';
import { newOrg, assertError } from './admin-fixtures.mjs';

let fx;
before(async () => {
  fx = await createFixture('strict');
});

/** POST raw bytes as JSON to the admin API. */
async function rawAdmin(method, path, bytes) {
  const res = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: bytes,
  });
  return { ...(await readJson(res)), headers: res.headers };
}

test('redirect URIs with CR/LF, whitespace or not in normalized form are refused, nothing stored', async () => {
  const org = await newOrg();
  const path = `/organizations/${org.slug}/clients`;
  for (const uri of [
    'https://app.example/cb\r\nLocation: https://evil.example/',
    'https://app.example/cb\n',
    'https://app.example/c b',
    'https://app.example/cb\t',
    'https://APP.example/cb',
    'https://app.example:443/cb',
    'https://app.example',
  ]) {
    const res = await admin('POST', path, { client_name: 'App', redirect_uris: [uri] });
    assertError(res, 400, 'invalid_field', 'redirect_uris');
  }
  const hint = await admin('POST', path, { client_name: 'App', redirect_uris: ['https://App.Example/cb'] });
  assert.match(hint.body.error_description, /https:\/\/app\.example\/cb/, 'the error names the form to register');
  assertError(await admin('POST', path, { client_name: 'App', redirect_uris: ['https://app.example/cb'], post_logout_redirect_uris: ['https://app.example/bye\n'] }),
    400, 'invalid_field', 'post_logout_redirect_uris');
  const users = `/organizations/${org.slug}/users`;
  assertError(await admin('POST', users, { username: 'pic', email: 'pic@acme.test', picture: 'https://cdn.acme.test/a.png\n' }), 400, 'invalid_field', 'picture');
  assertError(await admin('PATCH', `/organizations/${org.slug}`, { logo_url: 'https://cdn.acme.test/logo.png\r\n' }), 400, 'invalid_field', 'logo_url');
  assert.deepEqual((await admin('GET', path)).body.clients, [], 'no client stored');
  assert.deepEqual((await admin('GET', users)).body.users, [], 'no user stored');
});

test('admin bodies that are not valid UTF-8 are 400 invalid_request, never stored as U+FFFD', async () => {
  const org = await newOrg();
  const path = `/organizations/${org.slug}/users`;
  const body = (bad) => Buffer.concat([Buffer.from('{"username":"u8","email":"u8@acme.test","name":"'), Buffer.from(bad), Buffer.from('"}')]);
  for (const [what, bytes] of [
    ['a 0xFF byte', [0xff]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
  ]) {
    const res = await rawAdmin('POST', path, body(bytes));
    assert.equal(res.status, 400, what);
    assert.equal(res.json.error, 'invalid_request', what);
    assert.match(res.json.error_description, /UTF-8/, what);
  }
  assert.deepEqual((await admin('GET', path)).body.users, [], 'nothing stored');
  const ok = await rawAdmin('POST', path, Buffer.from('{"username":"u8","email":"u8@acme.test","name":"Zoë"}'));
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.json.name, 'Zoë');
});

test('too deeply nested JSON names the member it is under', async () => {
  const org = await newOrg();
  const deep = `{"client_name":"A","redirect_uris":["https://a.example/cb"],"role_mappings":${'['.repeat(30)}${']'.repeat(30)}}`;
  const res = await rawAdmin('POST', `/organizations/${org.slug}/clients`, Buffer.from(deep));
  assert.equal(res.status, 400);
  assert.equal(res.json.field, 'role_mappings');
});

test('every admin answer is no-store, a 404 for an unknown path included', async () => {
  for (const [path, token] of [['/nope', ADMIN_TOKEN], ['/organizations/x/nope', ADMIN_TOKEN], ['/nope', 'wrong'], ['/organizations', ADMIN_TOKEN]]) {
    const res = await admin('GET', path, undefined, { token });
    assert.match(res.headers.get('cache-control') ?? '', /no-store/, `${path}: ${res.status}`);
  }
});

test('a repeated parameter is invalid_request at userinfo, token, revocation, introspection and logout', async () => {
  const { tokens } = await loginAndExchange(fx, fx.web);
  const ui = endpoint(fx, 'userinfo_endpoint');
  const q = await readJson(await fetch(`${ui}?access_token=${tokens.access_token}&access_token=${tokens.access_token}`));
  assert.equal(q.status, 400);
  assert.equal(q.json.error, 'invalid_request');
  const form = await readJson(await fetch(ui, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `access_token=${tokens.access_token}&access_token=${tokens.access_token}`,
  }));
  assert.equal(form.status, 400);
  assert.equal(form.json.error, 'invalid_request');

  const post = (name, body) => fetch(endpoint(fx, name), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basicAuth(fx.web.client_id, fx.web.secret) },
    body,
  }).then(readJson);
  for (const [name, body] of [
    ['token_endpoint', `grant_type=refresh_token&refresh_token=${tokens.refresh_token}&grant_type=refresh_token`],
    ['token_endpoint', `grant_type=refresh_token&refresh_token=${tokens.refresh_token}&refresh_token=other`],
    ['revocation_endpoint', `token=${tokens.access_token}&token=${tokens.refresh_token}`],
    ['introspection_endpoint', `token=${tokens.access_token}&token=x`],
  ]) {
    const res = await post(name, body);
    assert.equal(res.status, 400, `${name}: ${res.text}`);
    assert.equal(res.json.error, 'invalid_request', name);
    assert.match(res.json.error_description, /repeated/);
  }
  // Nothing happened: the refresh token still works, the access token too.
  assert.equal((await post('token_endpoint', `grant_type=refresh_token&refresh_token=${tokens.refresh_token}`)).status, 200);
  const logout = await new Browser().get(`${endpoint(fx, 'end_session_endpoint')}?client_id=webapp&client_id=other`);
  assert.equal(logout.status, 400);
  assert.match(logout.headers.get('content-type'), /^text\/html/);
});

test('login and consent posts from another site are refused even with the token and cookie', async () => {
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  assert.ok(isLoginPage(page));
  const form = loginForm(page);
  const fields = formFields(form, { username: fx.alice.username, password: fx.alice.password });
  for (const headers of [{ Origin: 'https://evil.example' }, { Origin: 'null' }, { Referer: 'https://evil.example/page' }]) {
    const res = await browser.post(form.action, fields, { headers });
    assert.equal(res.status, 403, JSON.stringify(headers));
    assert.equal(res.setCookies.find((c) => c.name === 'clavex_session'), undefined, 'no session');
    assert.equal(res.location, null, 'no redirect with a code');
  }
  const ours = new URL(fx.issuer).origin;
  const res = await browser.post(form.action, fields, { headers: { Origin: ours } });
  assert.equal(res.status, 303, 'our own origin signs in');

  const consentPage = await browser.get(authorizeUrl(fx, fx.web, { prompt: 'consent' }));
  const [consentForm] = parseForms(consentPage.text, consentPage.url);
  assert.ok(consentForm, `a consent form, got ${consentPage.status}`);
  const consent = formFields(consentForm, { decision: 'allow' });
  const cross = await browser.post(consentForm.action, consent, { headers: { Origin: 'https://evil.example' } });
  assert.equal(cross.status, 403);
  assert.equal(cross.location, null);
});

test('passwords: 8-256 characters, not a common one, NFKC-normalised before hashing', async () => {
  const org = await newOrg();
  const path = `/organizations/${org.slug}/users`;
  for (const password of ['seven77', 'password1', 'Sunshine1', 'iloveyou', 'x'.repeat(257)]) {
    const res = await admin('POST', path, { username: 'weak', email: 'weak@acme.test', password });
    assertError(res, 400, 'invalid_field', 'password');
  }
  const common = await admin('POST', path, { username: 'weak', email: 'weak@acme.test', password: 'qwertyuiop' });
  assert.match(common.body.error_description, /common/);
  assert.deepEqual((await admin('GET', path)).body.users, [], 'nothing stored');
  const user = await admin('POST', path, { username: 'ok', email: 'ok@acme.test', password: 'x'.repeat(256) });
  assert.equal(user.status, 201);
  assertError(await admin('PUT', `${path}/${user.body.id}/password`, { password: 'football1' }), 400, 'invalid_field', 'password');

  // Typed with full-width characters, signed in with their ASCII equivalents (NFKC folds them).
  const wide = await createUser(fx, { username: 'wide', password: 'Ｋｉｗｉ-ｆｒｕｉｔ-４２' });
  const a = await authorize(fx, fx.web, { user: { ...wide, password: 'Kiwi-fruit-42' } });
  assert.ok(a.code, 'the normalised password signs in');
  const browser = new Browser();
  const page = await browser.get(authorizeUrl(fx, fx.web));
  const wrong = await submitLogin(browser, page, 'wide', 'Kiwi-fruit-43');
  assert.equal(wrong.status, 401, 'a different password still fails');
});
