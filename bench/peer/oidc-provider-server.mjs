// The peer for `make bench`: panva's oidc-provider (the OpenID-certified provider for Node) set up
// as the equivalent of one Clavex organization — one issuer under the path /{org}, the same
// confidential client (client_secret_post, the same redirect URI and scopes), the same user, RS256
// keys, the default in-memory store, and a minimal login page of our own so that the password
// login flow and the SSO flow take the same requests as against Clavex.
//
// Usage: node bench/peer/oidc-provider-server.mjs   with env
//   PEER_PORT (required), PEER_ORG, PEER_CLIENT_ID, PEER_CLIENT_SECRET, PEER_REDIRECT_URI,
//   PEER_USERNAME, PEER_PASSWORD, PEER_EMAIL, PEER_NAME, PEER_PICTURE,
//   PEER_PBKDF2_ITERATIONS (the password check: PBKDF2-HMAC-SHA256, like Clavex; 0 = plain compare)
// Prints "listening <url>" when it answers. Only binds 127.0.0.1.
import http from 'node:http';
import { generateKeyPairSync, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

// oidc-provider's own in-memory adapter, but its default store is an LRU of 1,000 entries: under
// benchmark load that evicts the very sessions, grants and refresh tokens being measured. Same
// adapter and store type, with room for a whole run.
const store = new LRU({ maxSize: 1_000_000 });
class BenchMemoryAdapter extends MemoryAdapter {
  constructor(model) { super(model, store); }
}

const env = process.env;
const port = Number(env.PEER_PORT);
if (!port) throw new Error('PEER_PORT is required');
const org = env.PEER_ORG ?? 'acme';
const clientId = env.PEER_CLIENT_ID ?? 'rocketchat';
const clientSecret = env.PEER_CLIENT_SECRET ?? randomBytes(32).toString('base64url');
const redirectUri = env.PEER_REDIRECT_URI ?? 'https://chat.acme.eu/_oauth/clavex';
const user = {
  id: 'u-bench-0001',
  username: env.PEER_USERNAME ?? 'alice',
  email: env.PEER_EMAIL ?? 'alice@acme.eu',
  name: env.PEER_NAME ?? 'Alice Example',
  picture: env.PEER_PICTURE ?? 'https://chat.acme.eu/avatar/alice.png',
};
const password = env.PEER_PASSWORD ?? 'correct horse battery staple';
const iterations = Number(env.PEER_PBKDF2_ITERATIONS ?? 100000);
const pbkdf2Async = promisify(pbkdf2);
const salt = randomBytes(16);
const storedHash = iterations > 0 ? await pbkdf2Async(password, salt, iterations, 32, 'sha256') : null;

async function checkPassword(username, candidate) {
  if (username !== user.username && username !== user.email) return false;
  if (iterations === 0) return candidate === password;
  const hash = await pbkdf2Async(String(candidate ?? ''), salt, iterations, 32, 'sha256');
  return timingSafeEqual(hash, storedHash);
}

const issuer = `http://127.0.0.1:${port}/${org}`;
const mount = `/${org}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    client_name: 'Rocket.Chat',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'openid profile email',
  }],
  adapter: BenchMemoryAdapter,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'picture', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'profile', 'email'],
  routes: {
    authorization: '/authorize',
    token: '/token',
    userinfo: '/userinfo',
    jwks: '/jwks',
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
  },
  // A confidential client does not need PKCE (Clavex's client does not send it either).
  pkce: { required: () => false },
  // Refresh tokens for the client that may use them, without offline_access, rotated on every use
  // — what Clavex does.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  // First-party client: no consent page. The grant is created once per session and reused.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
  findAccount: async (_ctx, sub) => {
    if (sub !== user.id) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        name: user.name,
        picture: user.picture,
        preferred_username: user.username,
        email: user.email,
        email_verified: true,
      }),
    };
  },
  interactions: { url: (_ctx, interaction) => `${mount}/interaction/${interaction.uid}` },
  ttl: {
    AuthorizationCode: 60,
    AccessToken: 3600,
    IdToken: 3600,
    RefreshToken: 30 * 24 * 3600,
    Session: 12 * 3600,
    Interaction: 30 * 60,
    Grant: 30 * 24 * 3600,
  },
  renderError: (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
if (env.PEER_DEBUG) {
  for (const ev of ['grant.error', 'userinfo.error', 'authorization.error']) {
    provider.on(ev, (_ctx, err) => console.error(ev, err.message, err.error_detail ?? ''));
  }
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(uid, error) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>
<main><h1>Sign in</h1>${error ? `<p role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${mount}/interaction/${esc(uid)}/login">
<input type="hidden" name="uid" value="${esc(uid)}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></main></body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; if (body.length > 65536) req.destroy(); });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
    req.on('error', reject);
  });
}

const callback = provider.callback();

async function interaction(req, res, path) {
  const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(path);
  if (!m) return false;
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== m[1]) throw new Error('interaction mismatch');
    if (!m[2] && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(loginPage(details.uid));
      return true;
    }
    if (m[2] && req.method === 'POST') {
      const form = await readForm(req);
      if (!(await checkPassword(form.username, form.password))) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(loginPage(details.uid, 'Invalid username or password.'));
        return true;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
      return true;
    }
    res.writeHead(405).end();
  } catch (err) {
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end(String(err?.message ?? err));
  }
  return true;
}

const server = http.createServer(async (req, res) => {
  const url = req.url ?? '/';
  if (url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  if (url !== mount && !url.startsWith(`${mount}/`) && !url.startsWith(`${mount}?`)) {
    res.writeHead(404).end();
    return;
  }
  // Mounted like express's app.use(mount, ...): the provider sees the path below the mount.
  req.originalUrl = url;
  req.url = url.slice(mount.length) || '/';
  const path = req.url.split('?')[0];
  if (path.startsWith('/interaction/')) {
    await interaction(req, res, path);
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
