// The OpenID Connect Core §5.1 claims as a relying party receives them (issue 18): released by
// scope at userinfo (§5.4: profile, phone, address), only those with a value; in the ID token
// only when asked for with the claims parameter (as for profile and email); advertised in
// discovery; described on the consent page.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, createClient, createUser, admin, loginAndExchange, userinfo, verifyJwt, Browser,
  authorizeUrl, isLoginPage, submitLogin, tokenRequest, assertTokenSuccess, RP_REDIRECT,
} from './support/oidc.mjs';

const PROFILE_CLAIMS = {
  given_name: 'Ada', family_name: 'Lovelace', middle_name: 'King', nickname: 'Ada',
  profile: 'https://people.example.test/ada', website: 'http://ada.example/', gender: 'female',
  birthdate: '1815-12-10', zoneinfo: 'Europe/London', locale: 'en-GB',
};
const ADDRESS = { street_address: '12 St James\'s Square', locality: 'London', postal_code: 'SW1Y 4JH', country: 'GB' };

let fx;
let rp; // a client registered for every standard scope
let ada; // a user with every claim
let bare; // a user with none of the new ones
before(async () => {
  fx = await createFixture('std');
  rp = await createClient(fx, {
    client_id: 'claims-rp',
    client_name: 'Claims RP',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [RP_REDIRECT],
    scopes: ['openid', 'profile', 'email', 'phone', 'address'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  ada = await createUser(fx, {
    username: 'ada', name: 'Ada Lovelace', ...PROFILE_CLAIMS,
    phone_number: '+442079460000', phone_number_verified: true, address: ADDRESS,
  });
  bare = await createUser(fx, { username: 'bare' });
});

const signIn = (user, scope, extra = {}) => loginAndExchange(fx, rp, { user, params: { scope, ...extra } });

test('discovery advertises the phone and address scopes and every standard claim', () => {
  for (const s of ['profile', 'email', 'phone', 'address']) assert.ok(fx.discovery.scopes_supported.includes(s), s);
  for (const c of [...Object.keys(PROFILE_CLAIMS), 'name', 'preferred_username', 'picture', 'updated_at',
    'email', 'email_verified', 'phone_number', 'phone_number_verified', 'address']) {
    assert.ok(fx.discovery.claims_supported.includes(c), c);
  }
});

test('a client can register phone and address; an unknown scope is still refused', async () => {
  assert.deepEqual(rp.scopes, ['openid', 'profile', 'email', 'phone', 'address']);
  const res = await admin('POST', `/organizations/${fx.slug}/clients`, {
    client_name: 'x', redirect_uris: [RP_REDIRECT], scopes: ['openid', 'telephone'],
  });
  assert.equal(res.status, 400);
  assert.equal(res.body.field, 'scopes');
});

test('scope profile → every profile claim with a value, and nothing of phone, address or email', async () => {
  const { tokens } = await signIn(ada, 'openid profile');
  const u = (await userinfo(fx, tokens.access_token)).json;
  for (const [k, v] of Object.entries(PROFILE_CLAIMS)) assert.equal(u[k], v, k);
  assert.equal(u.name, 'Ada Lovelace');
  assert.equal(u.preferred_username, 'ada');
  assert.ok(Number.isInteger(u.updated_at));
  for (const k of ['phone_number', 'phone_number_verified', 'address', 'email']) assert.equal(u[k], undefined, k);
});

test('scope phone → phone_number and phone_number_verified (a boolean) only', async () => {
  const { tokens } = await signIn(ada, 'openid phone');
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.deepEqual(Object.keys(u).sort(), ['phone_number', 'phone_number_verified', 'sub']);
  assert.equal(u.phone_number, '+442079460000');
  assert.equal(u.phone_number_verified, true);
});

test('scope address → the address object only, with the members it has', async () => {
  const { tokens } = await signIn(ada, 'openid address');
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.deepEqual(Object.keys(u).sort(), ['address', 'sub']);
  assert.deepEqual(u.address, ADDRESS);
});

test('only claims with a value are released: no nulls, no phone_number_verified without a number', async () => {
  const { tokens } = await signIn(bare, 'openid profile phone address');
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.deepEqual(Object.keys(u).sort(), ['name', 'picture', 'preferred_username', 'sub', 'updated_at']);
  for (const v of Object.values(u)) assert.notEqual(v, null);
});

test('a claim cleared by the admin API is no longer released', async () => {
  const temp = await createUser(fx, { locale: 'de-DE', phone_number: '+4930123456', address: { country: 'DE' } });
  const { tokens } = await signIn(temp, 'openid profile phone address');
  const first = (await userinfo(fx, tokens.access_token)).json;
  assert.equal(first.locale, 'de-DE');
  assert.equal(first.phone_number_verified, false);
  const res = await admin('PATCH', `/organizations/${fx.slug}/users/${temp.id}`, { locale: null, phone_number: null, address: null, nickname: 'T' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const after = (await userinfo(fx, tokens.access_token)).json;
  for (const k of ['locale', 'phone_number', 'phone_number_verified', 'address']) assert.equal(after[k], undefined, k);
  assert.equal(after.nickname, 'T');
});

test('ID token: no standard claims unless asked with the claims parameter, then exactly those asked', async () => {
  const jwks = await fx.jwks();
  const plain = await signIn(ada, 'openid profile phone address');
  const p = verifyJwt(plain.tokens.id_token, jwks).payload;
  for (const k of [...Object.keys(PROFILE_CLAIMS), 'phone_number', 'phone_number_verified', 'address']) {
    assert.equal(p[k], undefined, `${k} not in the ID token`);
  }
  const claims = JSON.stringify({ id_token: { phone_number: null, phone_number_verified: null, address: { essential: true }, birthdate: null, zoneinfo: null } });
  const asked = await signIn(ada, 'openid profile phone address', { claims });
  const c = verifyJwt(asked.tokens.id_token, jwks).payload;
  assert.equal(c.phone_number, '+442079460000');
  assert.equal(c.phone_number_verified, true);
  assert.deepEqual(c.address, ADDRESS);
  assert.equal(c.birthdate, '1815-12-10');
  assert.equal(c.zoneinfo, 'Europe/London');
  assert.equal(c.given_name, undefined, 'not asked');
  const none = await signIn(bare, 'openid phone address', { claims });
  const n = verifyJwt(none.tokens.id_token, jwks).payload;
  for (const k of ['phone_number', 'phone_number_verified', 'address', 'birthdate']) assert.equal(n[k], undefined, k);
});

test('a refreshed ID token carries the claims asked for, as they are now', async () => {
  const jwks = await fx.jwks();
  const user = await createUser(fx, { phone_number: '+4930123456', zoneinfo: 'Europe/Berlin' });
  const claims = JSON.stringify({ id_token: { phone_number: null, zoneinfo: null } });
  const { tokens } = await signIn(user, 'openid phone', { claims });
  assert.equal(verifyJwt(tokens.id_token, jwks).payload.phone_number, '+4930123456');
  const res = await admin('PATCH', `/organizations/${fx.slug}/users/${user.id}`, { phone_number: '+4930654321', zoneinfo: null });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const t = assertTokenSuccess(await tokenRequest(fx, rp, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), 'refresh');
  const c = verifyJwt(t.id_token, jwks).payload;
  assert.equal(c.phone_number, '+4930654321');
  assert.equal(c.zoneinfo, undefined, 'cleared');
});

test('the claims parameter names claims for userinfo too', async () => {
  const claims = JSON.stringify({ userinfo: { locale: null, address: null } });
  const { tokens } = await signIn(ada, 'openid', { claims });
  const u = (await userinfo(fx, tokens.access_token)).json;
  assert.deepEqual(Object.keys(u).sort(), ['address', 'locale', 'sub']);
});

test('the consent page says what phone and address let the application see', async () => {
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(fx, rp, { scope: 'openid phone address', prompt: 'consent' }));
  assert.ok(isLoginPage(login), `login page expected, got ${login.status}`);
  const page = await submitLogin(browser, login, ada.username, ada.password);
  assert.equal(page.status, 200, `consent page expected, got ${page.status} ${page.location ?? ''}`);
  assert.match(page.text, /See your phone number/);
  assert.match(page.text, /See your postal address/);
  assert.doesNotMatch(page.text, /See your email address/, 'email was not asked');
});
