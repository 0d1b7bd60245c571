// docs/integrations/rocket-chat.md must work as written: its Step 1 curl command registers the
// client against the real Worker, and its settings name the endpoints discovery actually serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BASE, ADMIN_TOKEN, admin, unique } from './support/client.mjs';
import { Browser, isLoginPage, submitLogin } from './support/oidc.mjs';
import { ROOT } from './support/worker.mjs';

const run = promisify(execFile);
const DOC = readFileSync(join(ROOT, 'docs', 'integrations', 'rocket-chat.md'), 'utf8');
const PUBLIC_ORIGIN = 'https://id.acme.eu';

/** The fenced code blocks of the doc: [{ lang, code }]. */
function codeBlocks(md) {
  return [...md.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2] }));
}

/** Every code block containing `curl`, in the doc's order. */
function curlBlocks() {
  return codeBlocks(DOC).filter((b) => /\bcurl\b/.test(b.code)).map((b) => b.code.replace(/^\$ /, '').trimEnd());
}

/** The Step 1 command: the one curl block that registers a client. */
function curlCommand() {
  const blocks = curlBlocks().filter((b) => b.startsWith(`curl -X POST ${PUBLIC_ORIGIN}/api/v1/organizations/acme/clients \\`));
  assert.equal(blocks.length, 1, 'exactly one client-registration curl block');
  return blocks[0];
}

/** The section "Roles and channel mapping": its text up to the next `## ` heading. */
function rolesSection() {
  const start = DOC.indexOf('## Roles and channel mapping');
  assert.ok(start >= 0, 'a "Roles and channel mapping" section');
  const end = DOC.indexOf('\n## ', start + 3);
  return DOC.slice(start, end === -1 ? undefined : end);
}

/** A doc command made to run here: the local origin, the test's token and organization. */
function localCommand(cmd, slug) {
  return cmd
    .replaceAll(PUBLIC_ORIGIN, BASE)
    .replaceAll('$ADMIN_TOKEN', ADMIN_TOKEN)
    .replaceAll('/organizations/acme/', `/organizations/${slug}/`);
}

/** Rows of the Markdown table whose header starts with `firstHeader`, as [cells]. */
function table(firstHeader) {
  const lines = DOC.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\|\\s*${firstHeader}\\s*\\|`).test(l));
  assert.ok(start >= 0, `a table with header "${firstHeader}"`);
  const rows = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split('|').map((c) => c.trim().replace(/^`([^`]*)`$/, '$1').replace(/^\*\*([^*]*)\*\*$/, '$1')));
  }
  return rows;
}

function settings() {
  return Object.fromEntries(table('Setting').map(([k, v]) => [k, v]));
}

/** A fresh organization standing in for `acme` (created on first use, so doc-only checks run without it). */
let orgPromise;
function freshOrg() {
  orgPromise ??= (async () => {
    const slug = unique('docs').toLowerCase();
    const res = await admin('POST', '/organizations', { slug, name: 'Acme (docs test)' });
    assert.equal(res.status, 201, `create organization → ${res.status} ${JSON.stringify(res.body)}`);
    return slug;
  })();
  return orgPromise;
}

test('the Step 1 curl command keeps the guide\'s exact text', () => {
  const cmd = curlCommand();
  assert.ok(cmd.startsWith(`curl -X POST ${PUBLIC_ORIGIN}/api/v1/organizations/acme/clients \\`), cmd.split('\n')[0]);
  assert.ok(cmd.includes(`-H 'Authorization: Bearer $ADMIN_TOKEN' \\`));
  assert.ok(cmd.includes('"token_endpoint_auth_method": "client_secret_post"'));
});

test('the Step 1 curl command, run with real curl, registers the client (201, cs_ secret)', async () => {
  const slug = await freshOrg();
  const cmd = localCommand(curlCommand(), slug);
  // Appended output options only: the command itself is run as documented.
  const { stdout } = await run('bash', ['-c', `${cmd} -sS -w '\\n%{http_code}'`], { timeout: 30_000 });
  const nl = stdout.lastIndexOf('\n');
  const status = Number(stdout.slice(nl + 1));
  const body = JSON.parse(stdout.slice(0, nl));
  assert.equal(status, 201, stdout);
  assert.match(body.client_secret, /^cs_[A-Za-z0-9_-]+$/, 'a cs_ secret of URL-safe characters');
  assert.equal(body.client_id, 'rocketchat');
  assert.equal(body.client_name, 'Rocket.Chat');
  assert.deepEqual(body.grant_types, ['authorization_code', 'refresh_token']);
  assert.deepEqual(body.redirect_uris, ['https://chat.acme.eu/_oauth/clavex']);
  assert.deepEqual(body.scopes, ['openid', 'profile', 'email']);
  assert.equal(body.token_endpoint_auth_method, 'client_secret_post');
});

test('the settings table has the guide\'s values', () => {
  const s = settings();
  assert.deepEqual(s, {
    Enable: 'True',
    URL: `${PUBLIC_ORIGIN}/acme`,
    'Token path': '/token',
    'Token sent via': 'Header',
    'Identity token sent via': 'Header',
    'Identity path': '/userinfo',
    'Authorize path': '/authorize',
    Scope: 'openid profile email',
    'Param name for access token': 'access_token',
    ID: 'rocketchat',
    Secret: 'cs_xxxxxxxxxxxxxxxx',
    'Login style': 'Redirect',
    'Button text': 'Sign in with Clavex',
    'Button text color': '#FFFFFF',
    'Button color': '#1D9E75',
  });
});

test('URL + paths in the settings table are the endpoints local discovery serves', async () => {
  const s = settings();
  const slug = await freshOrg();
  const issuer = s.URL.replace(PUBLIC_ORIGIN, BASE).replace(/\/acme$/, `/${slug}`);
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200, `discovery for ${issuer}`);
  const d = await res.json();
  assert.equal(d.issuer, issuer);
  assert.equal(`${issuer}${s['Token path']}`, d.token_endpoint);
  assert.equal(`${issuer}${s['Identity path']}`, d.userinfo_endpoint);
  assert.equal(`${issuer}${s['Authorize path']}`, d.authorization_endpoint);
  for (const scope of s.Scope.split(' ')) assert.ok(d.scopes_supported.includes(scope), `scope ${scope} supported`);
});

test('the field map names claims Clavex serves, and the doc\'s IDs agree with each other', async () => {
  const fieldMap = JSON.parse(codeBlocks(DOC).find((b) => b.lang === 'json').code);
  assert.deepEqual(fieldMap, { name: 'name', email: 'email', username: 'preferred_username', avatar: 'picture' });
  const d = await (await fetch(`${BASE}/${await freshOrg()}/.well-known/openid-configuration`)).json();
  for (const claim of Object.values(fieldMap)) assert.ok(d.claims_supported.includes(claim), `claim ${claim} supported`);

  const registration = JSON.parse(curlCommand().match(/-d '([\s\S]*)'/)[1]);
  assert.equal(settings().ID, registration.client_id);
  const troubleshooting = table('Symptom');
  assert.equal(troubleshooting.length, 7);
  const mismatch = troubleshooting.find(([symptom]) => symptom === 'error_uri_mismatch');
  assert.ok(mismatch, 'an error_uri_mismatch row');
  assert.ok(mismatch[2].includes(registration.redirect_uris[0]), 'the fix names the registered redirect URI');
  assert.ok(DOC.includes('http://127.0.0.1:8787/acme'), 'the local issuer is documented');
  assert.match(DOC, /make dev/);
});

test('the roles section, run as written, gives Rocket.Chat the roles and groups its settings read', async () => {
  const section = rolesSection();
  const slug = unique('docs-roles').toLowerCase();
  assert.equal((await admin('POST', '/organizations', { slug, name: 'Acme (roles)' })).status, 201);
  const step1 = await run('bash', ['-c', `${localCommand(curlCommand(), slug)} -sS`], { timeout: 30_000 });
  const secret = JSON.parse(step1.stdout).client_secret;
  const password = `Pw-${unique('p')}`;
  const user = await admin('POST', `/organizations/${slug}/users`, { username: 'jane', email: 'jane@acme.eu', name: 'Jane', password });
  assert.equal(user.status, 201);

  // Every command of the section, as written: curl fails the script on an HTTP error (-f).
  const commands = curlBlocks().filter((b) => section.includes(b));
  assert.equal(commands.length, 2, 'two curl blocks: groups and members, then the client');
  for (const block of commands) {
    const script = `set -e\ncurl() { command curl -sS -f "$@"; echo; }\n${localCommand(block, slug).replaceAll('$USER_ID', user.body.id)}`;
    await run('bash', ['-c', script], { timeout: 30_000 });
  }
  const patch = JSON.parse(commands[1].match(/-d '([\s\S]*)'/)[1]);

  // Rocket.Chat's side, as the section's table sets it.
  const rc = Object.fromEntries(table('Enterprise setting'));
  const rolesField = rc['Roles/Groups field name'];
  const groupsField = rc['Roles/Groups field for channel mapping'];
  const channelMap = JSON.parse(codeBlocks(section).find((b) => b.lang === 'json').code);
  const callback = 'https://chat.acme.eu/_oauth/clavex';
  const browser = new Browser();
  const page = await browser.get(`${BASE}/${slug}/authorize?client_id=rocketchat&redirect_uri=${encodeURIComponent(callback)}`
    + `&response_type=code&state=s&scope=${encodeURIComponent(rc.Scope)}`);
  assert.ok(isLoginPage(page), `a login page, got ${page.status} ${page.text.slice(0, 200)}`);
  const done = await submitLogin(browser, page, 'jane', password);
  const code = new URL(done.location).searchParams.get('code');
  assert.ok(code, done.location);
  const tokens = await (await fetch(`${BASE}/${slug}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: callback, client_id: 'rocketchat', client_secret: secret }),
  })).json();
  const identity = await (await fetch(`${BASE}/${slug}/userinfo`, { headers: { Authorization: `Bearer ${tokens.access_token}` } })).json();

  // Manager.ts: identity[rolesClaim] must be a top-level array of strings; values equal role names.
  const roles = identity[rolesField];
  assert.ok(Array.isArray(roles) && roles.every((r) => typeof r === 'string'), `${rolesField}: ${JSON.stringify(identity)}`);
  assert.deepEqual(roles, patch.role_mappings.map((m) => m.role), 'jane is in every mapped group, so she has every mapped role');
  assert.deepEqual(rc['Roles to Sync'].split(','), patch.role_mappings.map((m) => m.role), 'Roles to Sync lists the mapped roles');
  // mapSSOGroupsToChannels: each channel-map key is matched with groups.includes(key).
  const groups = identity[groupsField];
  assert.ok(Array.isArray(groups) && groups.every((g) => typeof g === 'string'), `${groupsField}: ${JSON.stringify(identity)}`);
  for (const key of Object.keys(channelMap)) assert.ok(groups.includes(key), `channel map key ${key} matches a group`);
});
