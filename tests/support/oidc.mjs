// Helpers for the black-box OIDC tests: a cookie jar and a tiny "browser" that never follows
// redirects, HTML form parsing, PKCE, JWT decoding/verification against a JWKS, token-endpoint
// calls, and admin fixtures (a fresh organization with clients and a user per test file).
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { BASE, admin, unique, randomIp } from './client.mjs';
import { ROOT } from './worker.mjs';

export { BASE, admin, unique, randomIp };

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const b64url = (buf) => Buffer.from(buf).toString('base64url');
export const randomString = (bytes = 16) => randomBytes(bytes).toString('base64url');

/** A constant from src/protocol/lifetimes.rs, so timing tests follow the implementation's value. */
export function lifetime(name) {
  const src = readFileSync(join(ROOT, 'src', 'protocol', 'lifetimes.rs'), 'utf8');
  const m = src.match(new RegExp(`pub const ${name}: i64 = ([^;]+);`));
  assert.ok(m, `lifetimes.rs defines ${name}`);
  // Values are small integer expressions such as `30 * 24 * 3600`.
  if (!/^[\d\s*+()-]+$/.test(m[1])) throw new Error(`cannot evaluate ${name} = ${m[1]}`);
  return Function(`return (${m[1]});`)();
}

// ---------------------------------------------------------------------------------------------
// Cookies

/** Parse one Set-Cookie header into { name, value, attrs } (attribute names lower-cased). */
export function parseSetCookie(header) {
  const [pair, ...rest] = header.split(';');
  const eq = pair.indexOf('=');
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  const attrs = {};
  for (const part of rest) {
    const i = part.indexOf('=');
    const key = (i === -1 ? part : part.slice(0, i)).trim().toLowerCase();
    if (!key) continue;
    attrs[key] = i === -1 ? true : part.slice(i + 1).trim();
  }
  return { name, value, attrs, raw: header };
}

/** True when a Set-Cookie deletes the cookie (Max-Age<=0, an Expires in the past, or empty value with either). */
export function isDeletion(cookie) {
  if (cookie.attrs['max-age'] !== undefined && Number(cookie.attrs['max-age']) <= 0) return true;
  if (cookie.attrs.expires && Date.parse(cookie.attrs.expires) <= Date.now()) return true;
  return false;
}

/**
 * A minimal cookie jar for one origin. Honours Path and deletion; ignores Domain. Cookies marked
 * Secure are still sent over http://127.0.0.1, as browsers do for localhost.
 */
export class CookieJar {
  constructor() { this.cookies = new Map(); }

  /** Store the cookies of a response; returns the parsed Set-Cookie headers. */
  store(res, requestUrl) {
    const set = res.headers.getSetCookie().map(parseSetCookie);
    const reqPath = new URL(requestUrl).pathname;
    for (const c of set) {
      const path = typeof c.attrs.path === 'string' && c.attrs.path.startsWith('/')
        ? c.attrs.path : reqPath.replace(/\/[^/]*$/, '') || '/';
      const key = `${c.name};${path}`;
      if (isDeletion(c)) this.cookies.delete(key);
      else this.cookies.set(key, { name: c.name, value: c.value, path });
    }
    return set;
  }

  header(url) {
    const p = new URL(url).pathname;
    const matching = [...this.cookies.values()].filter((c) =>
      p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  get size() { return this.cookies.size; }
  clone() { const j = new CookieJar(); j.cookies = new Map(this.cookies); return j; }
  names() { return [...this.cookies.values()].map((c) => c.name); }
  /** Set a cookie by hand (e.g. to replay an old value). */
  set(name, value, path = '/') { this.cookies.set(`${name};${path}`, { name, value, path }); }
}

/**
 * A browser stand-in: a cookie jar and fetch with redirect: 'manual'. Every response is returned
 * with its body read: { status, headers, location, text, url, setCookies }.
 */
export class Browser {
  /** Each browser has its own address (see randomIp): sign-in failures are throttled per address. */
  constructor(jar = new CookieJar(), ip = randomIp()) { this.jar = jar; this.ip = ip; }

  async request(url, { method = 'GET', form, headers = {} } = {}) {
    const h = { 'User-Agent': 'Mozilla/5.0 (clavex-tests)', Accept: 'text/html,*/*', 'CF-Connecting-IP': this.ip, ...headers };
    const cookie = this.jar.header(url);
    if (cookie) h.Cookie = cookie;
    let body;
    if (form !== undefined) {
      body = form instanceof URLSearchParams ? form : new URLSearchParams(form);
      h['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await send(url, { method, headers: h, body, redirect: 'manual' });
    const setCookies = this.jar.store(res, url);
    const text = await res.text();
    return { status: res.status, headers: res.headers, location: res.headers.get('location'), text, url: String(url), setCookies };
  }

  get(url, opts = {}) { return this.request(url, { ...opts, method: 'GET' }); }
  post(url, form, opts = {}) { return this.request(url, { ...opts, method: 'POST', form }); }
}

/**
 * `fetch`. A request `wrangler dev` itself lost is asked again once by the global `fetch` that
 * tests/run.mjs preloads into every test process (tests/support/lost-requests.mjs), for every
 * request alike; this name stays for the helpers that use it.
 */
export function send(url, init = {}) {
  return fetch(url, init);
}

// ---------------------------------------------------------------------------------------------
// HTML

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
export function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function parseAttrs(tag) {
  const attrs = {};
  const body = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
  const re = /([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g;
  let m;
  while ((m = re.exec(body))) attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

/** Visible text of a page with tags stripped and entities decoded (for message checks). */
export function pageText(html) {
  return decodeEntities(html.replace(/<script[\s\S]*?<\/script>/gi, ' ').replace(/<style[\s\S]*?<\/style>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ');
}

/**
 * Every <form> of a page: { method, action, inputs: [{name,type,value}], buttons: [{name,value,type}] }.
 * `action` is resolved against `pageUrl`.
 */
export function parseForms(html, pageUrl) {
  const forms = [];
  const re = /<form\b[^>]*>[\s\S]*?<\/form>/gi;
  let m;
  while ((m = re.exec(html))) {
    const formHtml = m[0];
    const open = parseAttrs(formHtml.match(/^<form\b[^>]*>/i)[0]);
    const inputs = [...formHtml.matchAll(/<input\b[^>]*>/gi)].map((t) => parseAttrs(t[0]))
      .map((a) => ({ name: a.name, type: (a.type || 'text').toLowerCase(), value: a.value ?? '', attrs: a }));
    const buttons = [...formHtml.matchAll(/<button\b[^>]*>/gi)].map((t) => parseAttrs(t[0]))
      .map((a) => ({ name: a.name, type: (a.type || 'submit').toLowerCase(), value: a.value ?? '', attrs: a }));
    forms.push({
      method: (open.method || 'get').toLowerCase(),
      action: new URL(open.action ?? '', pageUrl).toString(),
      rawAction: open.action,
      inputs,
      buttons,
      html: formHtml,
    });
  }
  return forms;
}

/** The login form of a page (the form with a password input); asserts it exists. */
export function loginForm(page) {
  const forms = parseForms(page.text, page.url);
  const form = forms.find((f) => f.inputs.some((i) => i.name === 'password'));
  assert.ok(form, `expected a login form with a password input; got status ${page.status}:\n${page.text.slice(0, 600)}`);
  return form;
}

/** True when the page shows a login form. */
export function isLoginPage(page) {
  return page.status === 200 && /text\/html/.test(page.headers.get('content-type') ?? '')
    && parseForms(page.text, page.url).some((f) => f.inputs.some((i) => i.name === 'password'));
}

/** Form fields a browser would submit: every named input (hidden ones included) with overrides. */
export function formFields(form, overrides = {}, { button } = {}) {
  const fields = new URLSearchParams();
  for (const i of form.inputs) {
    if (!i.name || ['submit', 'button', 'image', 'reset', 'file'].includes(i.type)) continue;
    if ((i.type === 'checkbox' || i.type === 'radio') && !('checked' in i.attrs)) continue;
    if (i.name in overrides) continue;
    fields.append(i.name, i.value);
  }
  for (const [k, v] of Object.entries(overrides)) fields.append(k, v);
  if (button && button.name) fields.append(button.name, button.value);
  return fields;
}

// ---------------------------------------------------------------------------------------------
// PKCE and JWT

export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge, method: 'S256' };
}

export function decodeJwt(token) {
  assert.equal(typeof token, 'string', 'a JWT string');
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'a JWS in compact serialization has three parts');
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], 'base64url') };
}

/** Verify an RS256 JWT against a JWKS ({keys}); returns { header, payload }. Asserts on failure. */
export function verifyJwt(token, jwks) {
  const jwt = decodeJwt(token);
  assert.equal(jwt.header.alg, 'RS256', 'ID tokens are signed with RS256');
  assert.ok(jwt.header.kid, 'the JWT header carries a kid');
  const jwk = jwks.keys.find((k) => k.kid === jwt.header.kid);
  assert.ok(jwk, `kid ${jwt.header.kid} is in the JWKS (kids: ${jwks.keys.map((k) => k.kid).join(', ')})`);
  const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
  const ok = cryptoVerify('RSA-SHA256', Buffer.from(jwt.signingInput), key, jwt.signature);
  assert.ok(ok, 'the ID token signature verifies with the JWKS key');
  return jwt;
}

/** OIDC Core 3.1.3.6: left half of SHA-256 of the ASCII access token, base64url. */
export function atHash(accessToken) {
  const digest = createHash('sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Fixtures

export const RP_REDIRECT = 'https://rp.example.test/callback';
export const RP_REDIRECT_2 = 'http://localhost:3000/cb';
export const RP_LOGOUT = 'https://rp.example.test/logged-out';
export const SPA_REDIRECT = 'https://spa.example.test/cb';
export const OTHER_REDIRECT = 'https://other.example.test/cb';

async function created(res, what) {
  assert.equal(res.status, 201, `admin: create ${what} → expected 201, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * A fresh organization with:
 *  - `web`: confidential, client_secret_basic, authorization_code + refresh_token, two redirect URIs,
 *    a post-logout redirect URI;
 *  - `other`: confidential, client_secret_post, authorization_code + refresh_token;
 *  - `spa`: public (none), authorization_code only;
 *  - `alice`: a user with every profile field.
 * Also loads discovery and JWKS.
 */
export async function createFixture(prefix = 'oidc', { name: orgName } = {}) {
  const slug = unique(prefix).toLowerCase();
  const name = orgName ?? `Clavex Test ${slug}`;
  const org = await created(await admin('POST', '/organizations', { slug, name }), `organization ${slug}`);
  const issuer = `${BASE}/${slug}`;
  const fx = { slug, name, org, issuer };
  fx.web = await createClient(fx, {
    client_id: 'webapp',
    client_name: 'Web App',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [RP_REDIRECT, RP_REDIRECT_2],
    post_logout_redirect_uris: [RP_LOGOUT],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  fx.other = await createClient(fx, {
    client_id: 'other',
    client_name: 'Other App',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [OTHER_REDIRECT],
    post_logout_redirect_uris: ['https://other.example.test/bye'],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'client_secret_post',
  });
  fx.spa = await createClient(fx, {
    client_id: 'spa',
    client_name: 'Single Page App',
    grant_types: ['authorization_code'],
    redirect_uris: [SPA_REDIRECT],
    scopes: ['openid', 'profile', 'email'],
    token_endpoint_auth_method: 'none',
  });
  fx.alice = await createUser(fx, { username: 'alice', name: 'Alice Liddell' });
  fx.discovery = await getJson(`${issuer}/.well-known/openid-configuration`);
  fx.jwks = async () => getJson(fx.discovery.jwks_uri ?? `${issuer}/jwks`);
  return fx;
}

async function getJson(url) {
  const res = await fetch(url);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url} → ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Register a client; returns the admin response body plus `secret` (client_secret or undefined). */
export async function createClient(fx, body) {
  const c = await created(await admin('POST', `/organizations/${fx.slug}/clients`, body), `client ${body.client_id}`);
  return { ...body, ...c, client_id: c.client_id ?? body.client_id, secret: c.client_secret, redirect_uri: body.redirect_uris[0] };
}

/** Create a user with a random password; returns the admin body plus `password` and `sub` (= id). */
/** Any other member (`given_name`, `phone_number`, `address`, …) is sent as given. */
export async function createUser(fx, { username, name, email, picture, email_verified = true, password, ...claims } = {}) {
  const uname = username ?? `u${randomBytes(4).toString('hex')}`;
  const body = {
    username: uname,
    email: email ?? `${uname}@example.test`,
    name: name ?? `User ${uname}`,
    password: password ?? `Pw-${randomString(12)}!`,
    picture: picture ?? `https://cdn.example.test/avatars/${uname}.png`,
    email_verified,
    ...claims,
  };
  const u = await created(await admin('POST', `/organizations/${fx.slug}/users`, body), `user ${uname}`);
  assert.ok(u.id, 'admin user response carries an id');
  return { ...body, ...u, password: body.password, sub: u.id };
}

// ---------------------------------------------------------------------------------------------
// Authorization flow

export function endpoint(fx, name) {
  const url = fx.discovery?.[name];
  assert.ok(url, `discovery advertises ${name}`);
  return url;
}

/** Build an authorize URL for `client` (defaults: code flow, openid profile email, a random state). */
export function authorizeUrl(fx, client, params = {}) {
  const url = new URL(endpoint(fx, 'authorization_endpoint'));
  const p = {
    client_id: client.client_id,
    redirect_uri: client.redirect_uri,
    response_type: 'code',
    scope: 'openid profile email',
    state: randomString(12),
    ...params,
  };
  for (const [k, v] of Object.entries(p)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
  return url;
}

export function withoutQuery(uri) { const u = new URL(uri); return `${u.origin}${u.pathname}`; }

/** Parse a redirect Location into { url, params: plain object, base } (base = origin + path). */
export function parseRedirect(location) {
  assert.ok(location, 'expected a Location header');
  const url = new URL(location);
  return { url, params: Object.fromEntries(url.searchParams), base: `${url.origin}${url.pathname}` };
}

/** Submit the login form shown on `page`. */
export async function submitLogin(browser, page, username, password, extra = {}) {
  const form = loginForm(page);
  assert.equal(form.method, 'post', 'the login form posts');
  const fields = formFields(form, { username, password, ...extra });
  return browser.post(form.action, fields);
}

/**
 * Run an authorization request in `browser` until the redirect back to the client, logging in
 * with `user` if a login page is shown. Returns { code, state, params, location, res, loginShown }.
 */
export async function authorize(fx, client, { browser = new Browser(), user = fx.alice, params = {} } = {}) {
  const url = authorizeUrl(fx, client, params);
  let res = await browser.get(url);
  let loginShown = false;
  if (res.status === 200 && isLoginPage(res)) {
    loginShown = true;
    res = await submitLogin(browser, res, user.username, user.password);
  }
  assert.ok([302, 303].includes(res.status), `expected a redirect back to the client, got ${res.status}: ${res.text.slice(0, 400)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, withoutQuery(url.searchParams.get('redirect_uri')), `redirected to the redirect_uri: ${res.location}`);
  assert.equal(r.params.error, undefined, `no error in the redirect: ${res.location}`);
  assert.ok(r.params.code, `a code in the redirect: ${res.location}`);
  return { code: r.params.code, state: r.params.state, params: r.params, location: res.location, res, loginShown, browser, request: url };
}

/** Basic credentials: RFC 6749 §2.3.1 form-urlencoding (default) or raw as some clients send them. */
export function basicAuth(id, secret, { raw = false } = {}) {
  const enc = (s) => (raw ? s : encodeURIComponent(s).replace(/%20/g, '+'));
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/**
 * POST to the token endpoint. `auth`: 'basic' | 'basic-raw' | 'post' | 'none' | false (nothing).
 * Returns { status, headers, body (parsed JSON or text), json }.
 */
export async function tokenRequest(fx, client, form, { auth = 'basic', headers = {}, url } = {}) {
  const h = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', ...headers };
  const body = new URLSearchParams(form);
  if (auth === 'basic') h.Authorization = basicAuth(client.client_id, client.secret);
  if (auth === 'basic-raw') h.Authorization = basicAuth(client.client_id, client.secret, { raw: true });
  if (auth === 'post') { body.set('client_id', client.client_id); body.set('client_secret', client.secret); }
  if (auth === 'none') body.set('client_id', client.client_id);
  const res = await send(url ?? endpoint(fx, 'token_endpoint'), { method: 'POST', headers: h, body });
  return readJson(res);
}

export async function readJson(res) {
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: json ?? text, json, text };
}

/** Exchange a code; defaults to the client's first redirect URI and Basic auth. */
export function exchangeCode(fx, client, code, { redirect_uri = client.redirect_uri, code_verifier, auth, extra = {} } = {}) {
  const form = { grant_type: 'authorization_code', code, redirect_uri, ...extra };
  if (code_verifier) form.code_verifier = code_verifier;
  return tokenRequest(fx, client, form, { auth: auth ?? (client.token_endpoint_auth_method === 'none' ? 'none' : 'basic') });
}

/** Assert a token response is a success per RFC 6749 §5.1 and return its JSON body. */
export function assertTokenSuccess(res, what = 'token response') {
  assert.equal(res.status, 200, `${what}: expected 200, got ${res.status} ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what}: application/json`);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/, `${what}: Cache-Control: no-store`);
  return res.json;
}

/** Assert an OAuth error response (JSON body with `error`). */
export function assertOAuthError(res, status, error, what = 'response') {
  const errors = Array.isArray(error) ? error : [error];
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(res.status), `${what}: expected status ${statuses.join('/')}, got ${res.status} ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what}: errors are JSON, got ${res.headers.get('content-type')}: ${res.text.slice(0, 200)}`);
  assert.ok(errors.includes(res.json?.error), `${what}: expected error ${errors.join(' or ')}, got ${res.text}`);
  assert.equal(res.json.access_token, undefined, `${what}: no access_token in an error`);
}

/** Full login for `client` and code exchange; returns { tokens, idToken (decoded), code, auth }. */
export async function loginAndExchange(fx, client = fx.web, { browser = new Browser(), user = fx.alice, params = {}, auth } = {}) {
  const p = { ...params };
  let verifier;
  if (client.token_endpoint_auth_method === 'none' && !p.code_challenge) {
    const pk = pkce();
    verifier = pk.verifier;
    p.code_challenge = pk.challenge;
    p.code_challenge_method = 'S256';
  }
  const a = await authorize(fx, client, { browser, user, params: p });
  const res = await exchangeCode(fx, client, a.code, { code_verifier: verifier, auth });
  const tokens = assertTokenSuccess(res, 'code exchange');
  return { tokens, idToken: tokens.id_token ? decodeJwt(tokens.id_token) : undefined, code: a.code, auth: a, browser };
}

/** GET userinfo with a Bearer header. */
export async function userinfo(fx, accessToken, { method = 'GET', headers = {} } = {}) {
  const res = await send(endpoint(fx, 'userinfo_endpoint'), {
    method, headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/json', ...headers },
  });
  return readJson(res);
}

/** Client-authenticated POST (revoke, introspect) with Basic credentials by default. */
export async function clientPost(fx, client, url, form, { auth = 'basic' } = {}) {
  const h = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
  const body = new URLSearchParams(form);
  if (auth === 'basic') h.Authorization = basicAuth(client.client_id, client.secret);
  if (auth === 'post') { body.set('client_id', client.client_id); body.set('client_secret', client.secret); }
  if (auth === 'none') body.set('client_id', client.client_id);
  const res = await send(url, { method: 'POST', headers: h, body });
  return readJson(res);
}

/** Assert an HTML error page: status, text/html, no Location, and no code anywhere. */
export function assertErrorPage(res, status = 400, what = 'response') {
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(res.status), `${what}: expected an error page with status ${statuses.join('/')}, got ${res.status} Location=${res.location} ${res.text.slice(0, 200)}`);
  assert.equal(res.location, null, `${what}: no redirect (Location must be absent)`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/, `${what}: an HTML page`);
}

/** Assert an error redirect to `redirectUri` with `error`, the exact `state` and `iss`. */
export function assertErrorRedirect(fx, res, redirectUri, error, state, what = 'response') {
  assert.ok([302, 303].includes(res.status), `${what}: expected an error redirect, got ${res.status}: ${res.text.slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.equal(r.base, withoutQuery(redirectUri), `${what}: redirected to the client's redirect_uri: ${res.location}`);
  const errors = Array.isArray(error) ? error : [error];
  assert.ok(errors.includes(r.params.error), `${what}: expected error=${errors.join('|')}, got ${res.location}`);
  assert.equal(r.params.code, undefined, `${what}: no code with an error`);
  assert.ok(r.params.error_description, `${what}: an error_description accompanies the error: ${res.location}`);
  assert.equal(r.params.state, state, `${what}: state echoed exactly`);
  assert.equal(r.params.iss, fx.issuer, `${what}: iss is the issuer (RFC 9207)`);
  return r.params;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for clients whose exact headers matter (fetch always adds Accept, Accept-Encoding, …)

/**
 * One HTTP/1.1 request with exactly `headers` (plus Host and Content-Length). Returns
 * { status, headers (lower-cased object), text, json }.
 */
export function rawHttp(method, url, headers = {}, body) {
  const u = new URL(url);
  const h = { ...headers };
  if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ method, hostname: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers: h, setHost: true }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
