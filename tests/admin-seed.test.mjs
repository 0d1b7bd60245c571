import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, BASE, ADMIN_TOKEN } from './support/client.mjs';
import { ROOT } from './support/worker.mjs';
import { GUIDE_CLIENT } from './admin-fixtures.mjs';

const dir = mkdtempSync(join(tmpdir(), 'clavex-seed-'));
const store = join(dir, 'demo.json');
// The shared test Worker must not keep `acme` around for other test files.
after(async () => {
  await admin('DELETE', '/organizations/acme');
  await admin('DELETE', '/organizations/acme-upstream');
  rmSync(dir, { recursive: true, force: true });
});

function seed() {
  return execFileSync(process.execPath, [join(ROOT, 'scripts', 'seed-demo.mjs'), BASE], {
    encoding: 'utf8',
    env: { ...process.env, CLAVEX_ADMIN_TOKEN: ADMIN_TOKEN, CLAVEX_DEMO_STORE: store },
  });
}

const printed = (out, label) => out.match(new RegExp(`${label}:\\s+(\\S+)`))?.[1];

test('seed-demo creates acme, the guide client and a demo user once, and prints what to paste', async () => {
  await admin('DELETE', '/organizations/acme');
  const first = seed();
  assert.match(first, /created organization acme/);
  assert.match(first, /created client rocketchat/);
  assert.match(first, /created user demo/);
  assert.equal(printed(first, 'URL'), `${BASE}/acme`);
  // The settings of step 2 of the guide, under the guide's own names.
  assert.equal(printed(first, 'Token path'), '/token');
  assert.equal(printed(first, 'Token sent via'), 'Header');
  assert.equal(printed(first, 'Identity token sent via'), 'Header');
  assert.equal(printed(first, 'Identity path'), '/userinfo');
  assert.equal(printed(first, 'Authorize path'), '/authorize');
  assert.equal(printed(first, 'Param name for access token'), 'access_token');
  assert.match(first, /Field map:\s+\{"name":"name","email":"email","username":"preferred_username","avatar":"picture"\}/);
  assert.match(first, /Scope:\s+openid profile email\n/);
  assert.equal(printed(first, 'Id'), 'rocketchat');
  assert.ok(first.includes(ADMIN_TOKEN));
  const secret = printed(first, 'Secret');
  assert.match(secret, /^cs_[A-Za-z0-9_-]{43}$/);
  const password = first.match(/Demo login:\s+demo \/ (\S+)/)?.[1];
  assert.ok(password && password.length >= 8, first);
  assert.equal(JSON.parse(readFileSync(store, 'utf8')).client_secret, secret);

  const org = await admin('GET', '/organizations/acme');
  assert.equal(org.body.name, 'Acme Corp');
  const client = await admin('GET', '/organizations/acme/clients/rocketchat');
  assert.equal(client.status, 200);
  // The guide's client, plus the callback of a Rocket.Chat running locally (default port 3000),
  // and the roles section's groups scope and role map.
  for (const [k, v] of Object.entries(GUIDE_CLIENT)) {
    if (k !== 'redirect_uris' && k !== 'scopes') assert.deepEqual(client.body[k], v, k);
  }
  assert.deepEqual(client.body.scopes, [...GUIDE_CLIENT.scopes, 'groups']);
  assert.deepEqual(client.body.role_mappings, [{ group: 'chat-admins', role: 'admin' }, { group: 'support', role: 'livechat-agent' }]);
  assert.match(first, /created group chat-admins/);
  assert.deepEqual(client.body.redirect_uris, [...GUIDE_CLIENT.redirect_uris, 'http://localhost:3000/_oauth/clavex']);
  assert.match(first, /http:\/\/localhost:3000\/_oauth\/clavex/);
  const users = await admin('GET', '/organizations/acme/users?username=demo');
  assert.equal(users.body.users.length, 1);
  assert.equal(users.body.users[0].email, 'demo@acme.test');
  assert.equal(users.body.users[0].has_password, true);
  assert.deepEqual(users.body.users[0].groups, ['chat-admins', 'support'], 'the demo user can try the roles section at once');

  // The demo connection: acme signs in with acme-upstream, whose client has acme's callback.
  assert.match(first, /created connection "Acme Upstream"/);
  const conns = (await admin('GET', '/organizations/acme/connections')).body.connections;
  assert.equal(conns.length, 1);
  assert.equal(conns[0].issuer, `${BASE}/acme-upstream`);
  assert.equal(conns[0].jit_create, true);
  const upClient = await admin('GET', '/organizations/acme-upstream/clients/clavex-acme');
  assert.deepEqual(upClient.body.redirect_uris, [conns[0].redirect_uri]);
  assert.match(first, /as\s+partner \/ \S+/);

  // A second run (the next `make dev`) changes nothing and prints the same credentials.
  const second = seed();
  assert.doesNotMatch(second, /created|rotated|reset/);
  assert.equal(printed(second, 'Secret'), secret);
  assert.equal(second.match(/Demo login:\s+demo \/ (\S+)/)?.[1], password);
  assert.equal((await admin('GET', '/organizations/acme/users')).body.users.length, 1);
  assert.equal((await admin('GET', '/organizations/acme/clients')).body.clients.length, 1);
  assert.equal((await admin('GET', '/organizations/acme/groups')).body.groups.length, 2);
  assert.equal((await admin('GET', '/organizations/acme/connections')).body.connections.length, 1);

  // Without the saved file the secret cannot be shown again: it is rotated, the password reset.
  rmSync(store);
  const third = seed();
  assert.match(third, /rotated the rocketchat secret/);
  assert.match(third, /reset the demo password/);
  assert.notEqual(printed(third, 'Secret'), secret);
});
