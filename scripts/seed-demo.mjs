// Creates the demo data of `make dev` through the admin API, once: organization `acme`, the
// Rocket.Chat guide's client `rocketchat`, a demo user, and the guide's demo groups and role map,
// and a demo upstream connection (organization `acme-upstream` as the other provider). Idempotent: what exists is kept, so a
// second `make dev` (same .wrangler/state) works. The client secret and the demo password exist
// only in API responses, so they are kept in .wrangler/demo.json (git-ignored, beside the local
// state) to be printed again later; if that file is lost, the secret is rotated and the password
// reset instead. Usage: node scripts/seed-demo.mjs http://127.0.0.1:8787
// CLAVEX_ADMIN_TOKEN and CLAVEX_DEMO_STORE override the token and that file (used by the tests).
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const base = (process.argv[2] ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
const STORE = process.env.CLAVEX_DEMO_STORE || join(ROOT, '.wrangler', 'demo.json');

const ORG = { slug: 'acme', name: 'Acme Corp' };
// Exactly the body of step 1 of the Rocket.Chat guide.
const CLIENT = {
  client_id: 'rocketchat',
  client_name: 'Rocket.Chat',
  grant_types: ['authorization_code', 'refresh_token'],
  redirect_uris: ['https://chat.acme.eu/_oauth/clavex'],
  scopes: ['openid', 'profile', 'email'],
  token_endpoint_auth_method: 'client_secret_post',
};
// A Rocket.Chat started locally answers on ROCKETCHAT_URL (its ROOT_URL; Rocket.Chat's default
// is http://localhost:3000); its callback is registered too, so it can sign in against this
// instance without an error_uri_mismatch.
const ROCKETCHAT_URL = (process.env.ROCKETCHAT_URL || 'http://localhost:3000').replace(/\/$/, '');
const LOCAL_CALLBACK = `${ROCKETCHAT_URL}/_oauth/clavex`;
const USER = { username: 'demo', email: 'demo@acme.test', name: 'Demo User', email_verified: true };

function adminToken() {
  if (process.env.CLAVEX_ADMIN_TOKEN) return process.env.CLAVEX_ADMIN_TOKEN;
  const vars = readFileSync(join(ROOT, '.dev.vars'), 'utf8');
  const line = vars.split('\n').find((l) => l.startsWith('ADMIN_TOKEN='));
  if (!line) throw new Error('ADMIN_TOKEN is missing from .dev.vars (run scripts/setup.sh)');
  return line.slice('ADMIN_TOKEN='.length).trim().replace(/^"(.*)"$/, '$1');
}
const token = adminToken();

async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${base}/api/v1${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function expect(res, statuses, what) {
  if (!statuses.includes(res.status)) {
    throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res;
}

const saved = existsSync(STORE) ? JSON.parse(readFileSync(STORE, 'utf8')) : {};
const save = () => {
  mkdirSync(dirname(STORE), { recursive: true });
  writeFileSync(STORE, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
};

// Organization.
let org = await api('GET', `/organizations/${ORG.slug}`);
if (org.status === 404) {
  org = expect(await api('POST', '/organizations', ORG), [201], 'creating organization acme');
  console.log('created organization acme');
}
expect(org, [200, 201], 'reading organization acme');
const issuer = org.body.issuer;

// Client: a known secret must belong to this database's client; when in doubt, rotate.
let client = await api('GET', `/organizations/${ORG.slug}/clients/${CLIENT.client_id}`);
if (client.status === 404) {
  const body = { ...CLIENT, redirect_uris: [...CLIENT.redirect_uris, LOCAL_CALLBACK] };
  client = expect(await api('POST', `/organizations/${ORG.slug}/clients`, body), [201], 'creating client rocketchat');
  saved.client_secret = client.body.client_secret;
  saved.client_created_at = client.body.created_at;
  save();
  console.log('created client rocketchat');
} else {
  expect(client, [200], 'reading client rocketchat');
  if (!client.body.redirect_uris.includes(LOCAL_CALLBACK)) {
    const redirect_uris = [...client.body.redirect_uris, LOCAL_CALLBACK];
    expect(await api('PATCH', `/organizations/${ORG.slug}/clients/${CLIENT.client_id}`, { redirect_uris }), [200],
      'registering the local Rocket.Chat callback');
    console.log(`registered ${LOCAL_CALLBACK} for rocketchat`);
  }
  if (!saved.client_secret || saved.client_created_at !== client.body.created_at) {
    const rotated = expect(await api('POST', `/organizations/${ORG.slug}/clients/${CLIENT.client_id}/secret`), [200],
      'rotating the rocketchat secret');
    saved.client_secret = rotated.body.client_secret;
    saved.client_created_at = client.body.created_at;
    save();
    console.log('rotated the rocketchat secret (the saved one was missing)');
  }
}

// Demo user.
const found = expect(await api('GET', `/organizations/${ORG.slug}/users?username=${USER.username}`), [200], 'looking up demo');
let user = found.body.users[0];
if (!user) {
  saved.password = randomBytes(12).toString('base64url');
  const created = expect(await api('POST', `/organizations/${ORG.slug}/users`, { ...USER, password: saved.password }), [201],
    'creating the demo user');
  user = created.body;
  saved.user_id = user.id;
  save();
  console.log('created user demo');
} else if (!saved.password || saved.user_id !== user.id) {
  saved.password = randomBytes(12).toString('base64url');
  expect(await api('PUT', `/organizations/${ORG.slug}/users/${user.id}/password`, { password: saved.password }), [204],
    'resetting the demo password');
  saved.user_id = user.id;
  save();
  console.log('reset the demo password (the saved one was missing)');
}

// The guide's "Roles and channel mapping" section, ready to try: groups chat-admins and support
// with the demo user in both, and the client asking for the groups scope with the role map.
const GROUPS = ['chat-admins', 'support'];
const ROLE_MAPPINGS = [{ group: 'chat-admins', role: 'admin' }, { group: 'support', role: 'livechat-agent' }];
for (const name of GROUPS) {
  const group = await api('GET', `/organizations/${ORG.slug}/groups/${name}`);
  if (group.status === 404) {
    expect(await api('POST', `/organizations/${ORG.slug}/groups`, { name }), [201], `creating group ${name}`);
    console.log(`created group ${name}`);
  } else {
    expect(group, [200], `reading group ${name}`);
  }
  expect(await api('PUT', `/organizations/${ORG.slug}/groups/${name}/members/${user.id}`), [204], `adding demo to ${name}`);
}
const current = expect(await api('GET', `/organizations/${ORG.slug}/clients/${CLIENT.client_id}`), [200], 'reading client rocketchat');
if (!current.body.scopes.includes('groups') || current.body.role_mappings.length === 0) {
  const scopes = [...new Set([...current.body.scopes, 'groups'])];
  expect(await api('PATCH', `/organizations/${ORG.slug}/clients/${CLIENT.client_id}`, { scopes, role_mappings: ROLE_MAPPINGS }), [200],
    'mapping roles on rocketchat');
  console.log('mapped chat-admins → admin and support → livechat-agent on rocketchat (groups scope)');
}

// "Sign in with another identity provider": a second organization, acme-upstream, stands for
// the provider people already have accounts at; acme gets a connection to it (users created on
// first sign-in), so the login page shows its button and it works at once.
const UPSTREAM = { slug: 'acme-upstream', name: 'Acme Upstream' };
const UP_CLIENT_ID = 'clavex-acme';
const PARTNER = { username: 'partner', email: 'partner@upstream.acme.test', name: 'Pat Partner', email_verified: true };
let upOrg = await api('GET', `/organizations/${UPSTREAM.slug}`);
if (upOrg.status === 404) {
  upOrg = expect(await api('POST', '/organizations', UPSTREAM), [201], 'creating organization acme-upstream');
  console.log('created organization acme-upstream');
}
expect(upOrg, [200, 201], 'reading organization acme-upstream');
const upIssuer = upOrg.body.issuer;
const partnerFound = expect(await api('GET', `/organizations/${UPSTREAM.slug}/users?username=${PARTNER.username}`), [200], 'looking up partner');
let partner = partnerFound.body.users[0];
if (!partner) {
  saved.partner_password = randomBytes(12).toString('base64url');
  partner = expect(await api('POST', `/organizations/${UPSTREAM.slug}/users`, { ...PARTNER, password: saved.partner_password }), [201],
    'creating the upstream user partner').body;
  saved.partner_id = partner.id;
  save();
  console.log('created user partner at acme-upstream');
} else if (!saved.partner_password || saved.partner_id !== partner.id) {
  saved.partner_password = randomBytes(12).toString('base64url');
  expect(await api('PUT', `/organizations/${UPSTREAM.slug}/users/${partner.id}/password`, { password: saved.partner_password }), [204],
    'resetting the partner password');
  saved.partner_id = partner.id;
  save();
  console.log('reset the partner password (the saved one was missing)');
}
const connections = expect(await api('GET', `/organizations/${ORG.slug}/connections`), [200], 'listing connections').body.connections;
let demoConnection = connections.find((c) => c.issuer === upIssuer);
if (!demoConnection) {
  // Its client secret at the upstream exists only in an API answer: a new client, or a new secret.
  const callback = `${issuer}/connections/callback`;
  let upClient = await api('GET', `/organizations/${UPSTREAM.slug}/clients/${UP_CLIENT_ID}`);
  let upSecret;
  if (upClient.status === 404) {
    upClient = expect(await api('POST', `/organizations/${UPSTREAM.slug}/clients`, {
      client_id: UP_CLIENT_ID, client_name: 'Acme Corp (Clavex)', redirect_uris: [callback],
      scopes: ['openid', 'profile', 'email'], token_endpoint_auth_method: 'client_secret_basic',
    }), [201], 'creating the upstream client');
    upSecret = upClient.body.client_secret;
  } else {
    expect(upClient, [200], 'reading the upstream client');
    upSecret = expect(await api('POST', `/organizations/${UPSTREAM.slug}/clients/${UP_CLIENT_ID}/secret`), [200],
      'rotating the upstream client secret').body.client_secret;
  }
  demoConnection = expect(await api('POST', `/organizations/${ORG.slug}/connections`, {
    issuer: upIssuer, client_id: UP_CLIENT_ID, client_secret: upSecret, label: 'Acme Upstream', jit_create: true,
  }), [201], 'creating the demo connection').body;
  console.log('created connection "Acme Upstream" (acme signs in with acme-upstream)');
}

const health = await (await fetch(`${base}/healthz`)).json();
console.log(`
Clavex ${health.version} is running at ${base}

  Issuer (organization acme):  ${issuer}
  Discovery:                   ${issuer}/.well-known/openid-configuration
  Admin token:                 ${token}
                               (curl -H "Authorization: Bearer $ADMIN_TOKEN" ${base}/api/v1/organizations)

  Demo login:                  ${USER.username} / ${saved.password}   (or ${USER.email})

  Sign in with another provider: the login page's "Sign in with Acme Upstream" button goes to
                               organization acme-upstream (${upIssuer}); sign in there as
                               ${PARTNER.username} / ${saved.partner_password}; the first sign-in creates the user at acme.
                               idp_hint=${demoConnection.id} at /authorize goes straight there.

  Client:                      ${CLIENT.client_id}
  Client secret:               ${saved.client_secret}

Rocket.Chat (Administration > Settings > OAuth > Add custom OAuth, name it "clavex"):
  Enable:                         True
  URL:                            ${issuer}
  Token path:                     /token
  Token sent via:                 Header
  Identity token sent via:        Header
  Identity path:                  /userinfo
  Authorize path:                 /authorize
  Scope:                          openid profile email
  Param name for access token:    access_token
  Id:                             ${CLIENT.client_id}
  Secret:                         ${saved.client_secret}
  Login style:                    Redirect
  Button text:                    Sign in with Clavex   (text color #FFFFFF, button color #1D9E75)
  Field map:                      {"name":"name","email":"email","username":"preferred_username","avatar":"picture"}
  Also enable:                    Merge users, Show button on login page

  Roles (Enterprise, guide section "Roles and channel mapping"):
    set Scope to "openid profile email groups", Roles/Groups field name "roles", field for channel
    mapping "groups"; demo is in chat-admins (role admin) and support (role livechat-agent).

  Registered callbacks:           ${CLIENT.redirect_uris[0]}
                                  ${LOCAL_CALLBACK}   (set ROCKETCHAT_URL to register another)
  Rocket.Chat's server must reach ${base}: for Rocket.Chat in a container, start with
  HOST=0.0.0.0 make dev and use this machine's address instead of 127.0.0.1.
  Guide: docs/integrations/rocket-chat.md
`);
