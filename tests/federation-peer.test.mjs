// Upstream connections (issue 17) against panva's oidc-provider (the OpenID-certified provider for
// Node, a devDependency), run by this test on 127.0.0.1: the real provider answers discovery,
// authorization, token, userinfo and JWKS. To show that Clavex checks the ID token in full, the
// test server can re-sign the provider's ID token after changing one thing (its nonce, audience,
// issuer or expiry, or the key that signs it) — each must be refused — or sign it with ES256, or
// with a key the provider only publishes afterwards (Clavex must fetch the JWKS again once).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import Provider from 'oidc-provider';
import {
  BASE, Browser, createFixture, admin, authorizeUrl, exchangeCode, assertTokenSuccess, decodeJwt,
  parseRedirect, isLoginPage, decodeEntities, pageText,
} from './support/oidc.mjs';

let down;
let conn;
let server;
let issuer;
const SECRET = randomBytes(24).toString('base64url');
const callbackUri = () => `${BASE}/${down.slug}/connections/callback`;

const rsa = (kid) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' } };
};
const main = rsa('main-rs256');
const impostor = rsa('main-rs256'); // same kid, another key
const rotated = rsa('rotated-rs256');
const ec = (() => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid: 'ec-1', privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid: 'ec-1', use: 'sig', alg: 'ES256' } };
})();
const publicJwk = ({ jwk }) => {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
};

/** What the test server does to the next ID token. */
let mode = 'as-is';
let publishRotated = false;
let jwksFetches = 0;
let account = 'acct-0';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function resign(idToken) {
  const [h, p] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  let key = main;
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'nonce': claims.nonce = 'not-the-one-sent'; break;
    case 'audience': claims.aud = 'someone-else'; break;
    case 'issuer': claims.iss = 'http://127.0.0.1:1'; break;
    case 'expired': claims.exp = now - 600; claims.iat = now - 900; break;
    case 'other-key': key = impostor; break;
    case 'rotated': key = rotated; break;
    case 'es256': key = ec; break;
    default: return idToken;
  }
  const es = key === ec;
  const head = b64({ ...header, alg: es ? 'ES256' : 'RS256', kid: key.kid });
  const body = b64(claims);
  const sig = cryptoSign('sha256', Buffer.from(`${head}.${body}`), es ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey);
  return `${head}.${body}.${sig.toString('base64url')}`;
}

before(async () => {
  down = await createFixture('peerdown');
  server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'clavex',
      client_secret: SECRET,
      redirect_uris: [callbackUri()],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email',
    }],
    jwks: { keys: [main.jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'profile', 'email'],
    routes: { authorization: '/authorize', token: '/token', userinfo: '/userinfo', jwks: '/jwks' },
    features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email');
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, name: `Peer ${sub}`, preferred_username: sub, email: `${sub}@peer.example.test`, email_verified: true }),
    }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/jwks') {
      jwksFetches += 1;
      const keys = [publicJwk(main), publicJwk(ec), ...(publishRotated ? [publicJwk(rotated)] : [])];
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys }));
      return;
    }
    if (path.startsWith('/interaction/')) {
      // No login page: whoever the test names (`account`) has signed in.
      await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
      return;
    }
    if (path === '/token' && mode !== 'as-is') {
      const end = res.end.bind(res);
      res.end = (chunk, ...rest) => {
        try {
          const json = JSON.parse(String(chunk));
          if (json.id_token) json.id_token = resign(json.id_token);
          const out = JSON.stringify(json);
          if (!res.headersSent) res.setHeader('Content-Length', Buffer.byteLength(out));
          return end(out, ...rest);
        } catch {
          return end(chunk, ...rest);
        }
      };
    }
    callback(req, res);
  });
  const res = await admin('POST', `/organizations/${down.slug}/connections`, {
    issuer, client_id: 'clavex', client_secret: SECRET, label: 'Peer', jit_create: true,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  conn = res.body;
});

after(() => new Promise((r) => server.close(r)));

/** Authorize at down, take the "Sign in with Peer" link, follow the provider to the callback. */
async function signIn(name) {
  account = `${name}-${randomBytes(3).toString('hex')}`;
  const browser = new Browser();
  const login = await browser.get(authorizeUrl(down, down.web));
  assert.ok(isLoginPage(login));
  const m = /<a class="upstream" href="([^"]+)">Sign in with Peer<\/a>/.exec(login.text);
  assert.ok(m, 'the Peer link');
  let res = await browser.get(new URL(decodeEntities(m[1]), login.url));
  for (let i = 0; i < 8 && [302, 303].includes(res.status) && !res.location.startsWith(callbackUri()); i += 1) {
    res = await browser.get(new URL(res.location, res.url));
  }
  assert.ok(res.location?.startsWith(callbackUri()), `the provider sends the browser back: ${res.status} ${res.text.slice(0, 300)}`);
  assert.equal(parseRedirect(res.location).params.iss, issuer, 'RFC 9207 iss from the provider');
  return browser.get(res.location);
}

async function signedInSub(res) {
  assert.equal(res.status, 302, `a code for the client: ${res.status} ${pageText(res.text).slice(0, 300)}`);
  const { params } = parseRedirect(res.location);
  const tokens = assertTokenSuccess(await exchangeCode(down, down.web, params.code));
  const claims = decodeJwt(tokens.id_token).payload;
  assert.deepEqual(claims.amr, ['fed']);
  return claims.sub;
}

async function refusedFor(reason) {
  for (let i = 0; i < 40; i += 1) {
    const res = await admin('GET', `/organizations/${down.slug}/events?type=upstream.refused&limit=100`);
    if (res.body.events.some((e) => e.detail.reason === reason)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no upstream.refused event with reason ${reason}`);
}

test('oidc-provider as the upstream: a sign-in as the provider issued it creates the user (profile from userinfo)', async () => {
  mode = 'as-is';
  const sub = await signedInSub(await signIn('plain'));
  const user = await admin('GET', `/organizations/${down.slug}/users/${sub}`);
  assert.equal(user.body.username, account);
  assert.equal(user.body.email, `${account}@peer.example.test`);
  assert.equal(user.body.email_verified, true);
});

for (const [m, reason, text] of [
  ['nonce', 'ID token nonce does not match', /nonce does not match/],
  ['audience', 'ID token for another audience', /another audience/],
  ['issuer', 'ID token from another issuer', /another issuer/],
  ['expired', 'ID token expired', /expired/],
  ['other-key', 'ID token signature does not verify', /signature does not verify/],
]) {
  const what = { 'other-key': 'a signature by another key (same kid)', expired: 'an expiry in the past' }[m] ?? `another ${m}`;
  test(`an ID token with ${what} is refused`, async () => {
    mode = m;
    try {
      const res = await signIn(m);
      assert.equal(res.status, 400, `refused: ${res.status} ${pageText(res.text).slice(0, 300)}`);
      assert.match(pageText(res.text), text);
      assert.doesNotMatch(res.location ?? '', /code=/);
      const listed = await admin('GET', `/organizations/${down.slug}/users?username=${account}`);
      assert.equal(listed.body.users.length, 0, 'no user created');
      await refusedFor(reason);
    } finally {
      mode = 'as-is';
    }
  });
}

test('an ES256 ID token verifies (WebCrypto ECDSA P-256)', async () => {
  mode = 'es256';
  try {
    await signedInSub(await signIn('es256'));
  } finally {
    mode = 'as-is';
  }
});

test('a key the provider publishes only now is found by fetching the JWKS again, once', async () => {
  publishRotated = true;
  mode = 'rotated';
  try {
    const before = jwksFetches;
    await signedInSub(await signIn('rotated'));
    assert.equal(jwksFetches - before, 1, 'one more JWKS fetch');
  } finally {
    mode = 'as-is';
  }
});
