// The OpenID Connect requests of `make bench`, written once and sent the same way to Clavex and to
// the peer (and, for the single-request scenarios, to the floor, which answers anything).
// A target is { client (loadgen makeClient), path ('/acme'), clientId, clientSecret, redirectUri,
// username, password }.
import { randomBytes } from 'node:crypto';
import { Jar, parseLoginForm } from './loadgen.mjs';

const rand = () => randomBytes(12).toString('base64url');
/** What a browser sends on the front-channel requests (authorize, login). */
const BROWSER = { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'User-Agent': 'Mozilla/5.0 (clavex-bench)' };

function fail(what, res) {
  const body = (res.body ?? '').replace(/\s+/g, ' ').slice(0, 200);
  return new Error(`${what}: HTTP ${res.status} ${res.headers?.location ?? ''} ${body}`);
}

export function authorizePath(t, state, nonce) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: t.clientId, redirect_uri: t.redirectUri, scope: 'openid profile email', state, nonce,
  });
  return `${t.path}/authorize?${q}`;
}

/**
 * Follow same-origin redirects from `res` until either the client's redirect URI (→ { code }) or a
 * page (→ { page }). At most 5 hops.
 */
async function follow(t, res, jar, state) {
  for (let hop = 0; hop < 6; hop += 1) {
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.location ?? '';
      if (loc.startsWith(t.redirectUri)) {
        const u = new URL(loc);
        const code = u.searchParams.get('code');
        if (!code) throw new Error(`redirect without code: ${loc.slice(0, 200)}`);
        if (state && u.searchParams.get('state') !== state) throw new Error('state mismatch');
        return { code };
      }
      const next = new URL(loc, t.client.base);
      if (next.host !== t.client.base.host) throw new Error(`unexpected redirect: ${loc.slice(0, 200)}`);
      res = await t.client.request('GET', next.pathname + next.search, { jar, headers: BROWSER });
      continue;
    }
    if (res.status === 200) return { page: res.body };
    throw fail('authorize', res);
  }
  throw new Error('too many redirects');
}

/** GET authorize without a session and follow to the login page: { jar, form, state }. */
export async function openLoginForm(t) {
  const jar = new Jar();
  const state = rand();
  const res = await t.client.request('GET', authorizePath(t, state, rand()), { jar, headers: BROWSER });
  const r = await follow(t, res, jar, state);
  if (!r.page) throw new Error('expected a login page, got a code (a session cookie leaked?)');
  const form = parseLoginForm(r.page);
  if (!form || form.method !== 'post' || !form.action) throw new Error('no login form on the page');
  if (!form.inputs.includes('username') || !form.inputs.includes('password')) throw new Error('login form lacks username/password');
  return { jar, form, state };
}

/** POST the login form alone (no redirect followed). Returns the response. */
export async function postLogin(t, { jar, form }) {
  const res = await t.client.request('POST', form.action, {
    jar, headers: BROWSER, form: { ...form.hidden, username: t.username, password: t.password },
  });
  if (res.status < 300 || res.status >= 400) throw fail('login POST', res);
  return res;
}

/** The password login flow up to the code: authorize → login page → POST → code. { code, jar } */
export async function loginToCode(t) {
  const opened = await openLoginForm(t);
  const res = await postLogin(t, opened);
  const r = await follow(t, res, opened.jar, opened.state);
  if (!r.code) throw new Error('login did not end at the redirect URI with a code');
  return { code: r.code, jar: opened.jar };
}

/** With an SSO session (jar), GET authorize → code. */
export async function ssoCode(t, jar) {
  const state = rand();
  const res = await t.client.request('GET', authorizePath(t, state, rand()), { jar, headers: BROWSER });
  const r = await follow(t, res, jar, state);
  if (!r.code) throw new Error('SSO authorize showed a page instead of redirecting with a code');
  return r.code;
}

function tokenJson(res, what) {
  if (res.status !== 200) throw fail(what, res);
  const body = JSON.parse(res.body);
  if (!body.access_token) throw new Error(`${what}: no access_token`);
  return body;
}

export async function exchangeCode(t, code) {
  const res = await t.client.request('POST', `${t.path}/token`, {
    form: { grant_type: 'authorization_code', code, redirect_uri: t.redirectUri, client_id: t.clientId, client_secret: t.clientSecret },
  });
  return tokenJson(res, 'code exchange');
}

export async function refresh(t, refreshToken) {
  const res = await t.client.request('POST', `${t.path}/token`, {
    form: { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: t.clientId, client_secret: t.clientSecret },
  });
  return tokenJson(res, 'refresh');
}

export async function userinfo(t, accessToken) {
  const res = await t.client.request('GET', `${t.path}/userinfo`, { headers: { Authorization: `Bearer ${accessToken}` } });
  if (res.status !== 200) throw fail('userinfo', res);
  const body = JSON.parse(res.body);
  if (!body.sub) throw new Error('userinfo without sub');
  return body;
}

export async function getJson(t, path, what) {
  const res = await t.client.request('GET', path, {});
  if (res.status !== 200) throw fail(what, res);
  return JSON.parse(res.body);
}
