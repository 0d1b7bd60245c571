// Upstream federation (issue 17), the organization's and the connections' settings: password
// sign-in turned off, the audit event of an admin removing a link, per-connection claim mapping,
// default groups for JIT-created users and upstream groups mapped onto Clavex groups. The upstream
// is another Clavex organization of the same running Worker (its `groups` claim is real).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, Browser, createFixture, createClient, createUser, admin, authorizeUrl, exchangeCode,
  assertTokenSuccess, decodeJwt, parseRedirect, submitLogin, isLoginPage, decodeEntities, pageText,
} from './support/oidc.mjs';

let up; // the upstream identity provider
const upClients = new Map(); // down slug → Clavex's client at the upstream

before(async () => {
  up = await createFixture('fs-up');
});

/** A downstream organization with Clavex's client registered at the upstream for it. */
async function downstream(prefix) {
  const down = await createFixture(prefix);
  const client = await createClient(up, {
    client_id: `clavex-${down.slug}`,
    client_name: `Down ${down.slug}`,
    redirect_uris: [`${BASE}/${down.slug}/connections/callback`],
    scopes: ['openid', 'profile', 'email', 'groups'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  upClients.set(down.slug, client);
  return down;
}

async function connection(down, body) {
  const client = upClients.get(down.slug);
  const res = await admin('POST', `/organizations/${down.slug}/connections`, {
    issuer: up.issuer, client_id: client.client_id, client_secret: client.secret, ...body,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

function upstreamLink(page, label) {
  const links = [...page.text.matchAll(/<a class="upstream" href="([^"]+)">([^<]*)<\/a>/g)]
    .map((m) => ({ href: new URL(decodeEntities(m[1]), page.url).toString(), text: decodeEntities(m[2]) }));
  const link = links.find((l) => l.text === `Sign in with ${label}`);
  assert.ok(link, `a "Sign in with ${label}" link; got ${JSON.stringify(links.map((l) => l.text))}`);
  return link.href;
}

/** Authorize at `down`, click "Sign in with {label}", sign in upstream: down's callback answer. */
async function viaUpstream(down, conn, upUser, { browser = new Browser() } = {}) {
  const login = await browser.get(authorizeUrl(down, down.web));
  assert.equal(login.status, 200, `login page at down: ${login.status}`);
  const start = await browser.get(upstreamLink(login, conn.label));
  assert.equal(start.status, 302, `start: ${start.status} ${pageText(start.text).slice(0, 300)}`);
  const upLogin = await browser.get(start.location);
  assert.ok(isLoginPage(upLogin), `upstream login page: ${upLogin.status}`);
  const upAnswer = await submitLogin(browser, upLogin, upUser.username, upUser.password);
  assert.equal(upAnswer.status, 303, `upstream redirect: ${upAnswer.status} ${pageText(upAnswer.text).slice(0, 300)}`);
  return browser.get(upAnswer.location);
}

async function codeToIdToken(down, res) {
  assert.equal(res.status, 302, `redirect to the client: ${res.status} ${pageText(res.text).slice(0, 300)}`);
  const r = parseRedirect(res.location);
  assert.ok(r.params.code, `a code: ${res.location}`);
  const tokens = assertTokenSuccess(await exchangeCode(down, down.web, r.params.code));
  return decodeJwt(tokens.id_token).payload ?? decodeJwt(tokens.id_token);
}

async function eventually(down, type, pred) {
  let seen = [];
  for (let i = 0; i < 40; i += 1) {
    const res = await admin('GET', `/organizations/${down.slug}/events?type=${type}&limit=200`);
    assert.equal(res.status, 200);
    seen = res.body.events;
    const found = seen.filter(pred);
    if (found.length) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return assert.fail(`no ${type} event as expected: ${JSON.stringify(seen)}`);
}

test('password_signin false: the login page shows only the connections, and a posted password is refused 403', async () => {
  const down = await downstream('fs-pw');
  const org = `/organizations/${down.slug}`;
  const conn = await connection(down, { label: 'Upstream', jit_create: true });
  assert.equal((await admin('GET', org)).body.password_signin, true, 'on by default');
  // A login form shown while passwords were still accepted, kept to be posted afterwards.
  const kept = new Browser();
  const oldForm = await kept.get(authorizeUrl(down, down.web));
  assert.ok(isLoginPage(oldForm));

  const off = await admin('PATCH', org, { password_signin: false });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  assert.equal(off.body.password_signin, false);
  assert.equal((await admin('GET', org)).body.password_signin, false);
  const bad = await admin('PATCH', org, { password_signin: 'no' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.field, 'password_signin');

  const page = await new Browser().get(authorizeUrl(down, down.web));
  assert.equal(page.status, 200);
  assert.ok(!isLoginPage(page), 'no password field');
  assert.doesNotMatch(page.text, /name="password"/);
  upstreamLink(page, 'Upstream');

  // The server decides, not the hidden form: the right password is refused.
  const posted = await submitLogin(kept, oldForm, down.alice.username, down.alice.password);
  assert.equal(posted.status, 403, pageText(posted.text).slice(0, 300));
  assert.match(pageText(posted.text), /does not accept passwords/);
  assert.equal(posted.location ?? null, null, 'no redirect, no code');

  // The upstream still signs people in.
  const upUser = await createUser(up, { username: 'pia', email: 'pia@up.example.test' });
  const idToken = await codeToIdToken(down, await viaUpstream(down, conn, upUser));
  assert.deepEqual(idToken.amr, ['fed']);

  // Turned on again, the password form and the password work.
  assert.equal((await admin('PATCH', org, { password_signin: true })).body.password_signin, true);
  const browser = new Browser();
  const again = await browser.get(authorizeUrl(down, down.web));
  assert.ok(isLoginPage(again));
  const ok = await submitLogin(browser, again, down.alice.username, down.alice.password);
  assert.ok([302, 303].includes(ok.status), `signed in: ${ok.status} ${pageText(ok.text).slice(0, 200)}`);
  assert.match(ok.location, /code=/);
});

test('password_signin false without any connection or passkeys: the page says no way of signing in is set up', async () => {
  const down = await createFixture('fs-none');
  // With passkeys on (the default) the page offers "Sign in with a passkey" (tests/passkeys.test.mjs).
  assert.equal((await admin('PATCH', `/organizations/${down.slug}`, { password_signin: false, passkeys: false })).status, 200);
  const page = await new Browser().get(authorizeUrl(down, down.web));
  assert.equal(page.status, 200);
  assert.ok(!isLoginPage(page));
  assert.match(pageText(page.text), /No way of signing in is set up/);
});

test('an admin removing a link records upstream.link.removed besides admin.change; removing none records nothing', async () => {
  const down = await downstream('fs-unlink');
  const conn = await connection(down, { label: 'Upstream', jit_create: true });
  const upUser = await createUser(up, { username: 'uli', email: 'uli@up.example.test' });
  const { sub } = await codeToIdToken(down, await viaUpstream(down, conn, upUser));
  const path = `/organizations/${down.slug}/users/${sub}/links/${conn.id}`;
  assert.equal((await admin('DELETE', path)).status, 204);
  const [removed] = await eventually(down, 'upstream.link.removed', (e) => e.user_id === sub);
  assert.equal(removed.detail.connection_id, conn.id);
  assert.ok(removed.detail.upstream_subject, 'the upstream account, hashed');
  assert.ok(!JSON.stringify(removed).includes(upUser.sub), 'never the upstream sub itself');
  await eventually(down, 'admin.change', (e) => e.user_id === sub && e.detail.action === 'DeleteUserLink');
  // Idempotent 204 with no link left: no second removal event.
  assert.equal((await admin('DELETE', path)).status, 204);
  await new Promise((r) => setTimeout(r, 300));
  const all = await admin('GET', `/organizations/${down.slug}/events?type=upstream.link.removed&limit=200`);
  assert.equal(all.body.events.filter((e) => e.user_id === sub).length, 1);
});

test('connection mapping is validated: unknown groups are named, a group map needs its claim', async () => {
  const down = await downstream('fs-mapv');
  assert.equal((await admin('POST', `/organizations/${down.slug}/groups`, { name: 'known' })).status, 201);
  for (const [body, field, says] of [
    [{ default_groups: ['known', 'ghost'] }, 'default_groups', /ghost/],
    [{ default_groups: ['bad name'] }, 'default_groups', /bad name/],
    [{ groups_claim: 'groups', group_mapping: { eng: 'phantom' } }, 'group_mapping', /phantom/],
    [{ group_mapping: { eng: 'known' } }, 'group_mapping', /groups_claim/],
    [{ groups_claim: '' }, 'groups_claim', /groups_claim/],
    [{ claim_mapping: { phone: 'x' } }, 'claim_mapping', /claim_mapping/],
    [{ claim_mapping: { email: 7 } }, 'claim_mapping', /claim_mapping/],
    [{ claim_mapping: ['email'] }, 'claim_mapping', /claim_mapping/],
  ]) {
    const client = upClients.get(down.slug);
    const res = await admin('POST', `/organizations/${down.slug}/connections`, {
      issuer: up.issuer, client_id: client.client_id, client_secret: client.secret, label: 'X', ...body,
    });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.field, field, JSON.stringify(res.body));
    assert.match(res.body.error_description ?? res.body.description ?? JSON.stringify(res.body), says);
  }
  const conn = await connection(down, { label: 'Plain' });
  assert.deepEqual(conn.claim_mapping, {});
  assert.deepEqual(conn.default_groups, []);
  assert.equal(conn.groups_claim, null);
  assert.deepEqual(conn.group_mapping, {});
  const patched = await admin('PATCH', `/organizations/${down.slug}/connections/${conn.id}`, { default_groups: ['KNOWN'] });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.deepEqual(patched.body.default_groups, ['known'], 'stored as the group is named');
  const refused = await admin('PATCH', `/organizations/${down.slug}/connections/${conn.id}`, { default_groups: ['ghost'] });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.field, 'default_groups');
});

test('claim mapping, default groups and upstream groups mapped onto Clavex groups at each sign-in', async () => {
  const down = await downstream('fs-map');
  for (const name of ['engineering', 'operations', 'everyone', 'hand']) {
    assert.equal((await admin('POST', `/organizations/${down.slug}/groups`, { name })).status, 201);
  }
  for (const name of ['eng', 'ops', 'misc']) {
    assert.equal((await admin('POST', `/organizations/${up.slug}/groups`, { name })).status, 201);
  }
  const conn = await connection(down, {
    label: 'Mapped',
    jit_create: true,
    scopes: ['openid', 'profile', 'email', 'groups'],
    claim_mapping: { username: 'name', name: 'preferred_username' },
    default_groups: ['everyone'],
    groups_claim: 'groups',
    group_mapping: { eng: 'engineering', ops: 'operations' },
  });
  assert.deepEqual(conn.claim_mapping, { username: 'name', name: 'preferred_username' });
  assert.deepEqual(conn.group_mapping, { eng: 'engineering', ops: 'operations' });
  assert.equal(conn.groups_claim, 'groups');

  const gina = await createUser(up, { username: 'gina', name: 'Gina Up', email: 'gina@up.example.test' });
  const member = (org, group, id, method = 'PUT') => admin(method, `/organizations/${org.slug}/groups/${group}/members/${id}`);
  assert.equal((await member(up, 'eng', gina.sub)).status, 204);
  assert.equal((await member(up, 'misc', gina.sub)).status, 204);

  const first = await codeToIdToken(down, await viaUpstream(down, conn, gina));
  const userPath = `/organizations/${down.slug}/users/${first.sub}`;
  let user = (await admin('GET', userPath)).body;
  assert.equal(user.username, 'GinaUp', 'the username from the mapped claim (name)');
  assert.equal(user.name, 'gina', 'the name from the mapped claim (preferred_username)');
  assert.deepEqual(user.groups, ['engineering', 'everyone'], 'the default group and the mapped eng; misc is not mapped');

  // By hand: a group the map does not name, and one it does.
  assert.equal((await member(down, 'hand', first.sub)).status, 204);
  assert.equal((await member(down, 'operations', first.sub)).status, 204);
  // Upstream, gina leaves eng and stays out of ops: both mapped groups go, the others stay.
  assert.equal((await member(up, 'eng', gina.sub, 'DELETE')).status, 204);
  const second = await codeToIdToken(down, await viaUpstream(down, conn, gina));
  assert.equal(second.sub, first.sub);
  user = (await admin('GET', userPath)).body;
  assert.deepEqual(user.groups, ['everyone', 'hand']);

  // Joining ops upstream brings operations back at the next sign-in.
  assert.equal((await member(up, 'ops', gina.sub)).status, 204);
  await codeToIdToken(down, await viaUpstream(down, conn, gina));
  user = (await admin('GET', userPath)).body;
  assert.deepEqual(user.groups, ['everyone', 'hand', 'operations']);
  const signins = await eventually(down, 'upstream.signin', (e) => e.user_id === first.sub && e.detail.groups_added);
  assert.ok(signins.some((e) => JSON.stringify(e.detail.groups_added) === '["operations"]'));
});

test('a mapped group restricts a client at once: the sign-in that adds it is admitted', async () => {
  const down = await downstream('fs-gate');
  assert.equal((await admin('POST', `/organizations/${down.slug}/groups`, { name: 'staff' })).status, 201);
  const upGroup = `st${Date.now()}`;
  assert.equal((await admin('POST', `/organizations/${up.slug}/groups`, { name: upGroup })).status, 201);
  const conn = await connection(down, {
    label: 'Gate', jit_create: true, scopes: ['openid', 'profile', 'email', 'groups'],
    groups_claim: 'groups', group_mapping: { [upGroup]: 'staff' },
  });
  assert.equal((await admin('PATCH', `/organizations/${down.slug}/clients/webapp`, { allowed_groups: ['staff'] })).status, 200);
  const outsider = await createUser(up, { username: 'otto', email: 'otto@up.example.test' });
  const refused = await viaUpstream(down, conn, outsider);
  assert.equal(refused.status, 302);
  const denied = parseRedirect(refused.location);
  assert.equal(denied.params.error, 'access_denied', 'not a member: no code');
  assert.equal(denied.params.code, undefined);
  const insider = await createUser(up, { username: 'ines', email: 'ines@up.example.test' });
  assert.equal((await admin('PUT', `/organizations/${up.slug}/groups/${upGroup}/members/${insider.sub}`)).status, 204);
  const idToken = await codeToIdToken(down, await viaUpstream(down, conn, insider));
  assert.ok(idToken.sub);
});

test('concurrent PATCHes of one connection never write back each other\'s old values', async () => {
  const down = await downstream('fed-race');
  const c = await connection(down, { label: 'Race' });
  const path = `/organizations/${down.slug}/connections/${c.id}`;
  for (const trust of [true, false]) {
    // One PATCH changes trust_upstream_mfa while 19 rename the label, all at once: a PATCH that
    // read the row before the change and wrote every column after it would undo it.
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      admin('PATCH', path, i === 7 ? { trust_upstream_mfa: trust } : { label: `Race ${i}` })));
    for (const r of sent) assert.equal(r.status, 200, JSON.stringify(r.body));
    const now = await admin('GET', path);
    assert.equal(now.body.trust_upstream_mfa, trust, `trust_upstream_mfa ${trust} survived 19 concurrent renames`);
    assert.match(now.body.label, /^Race \d+$/);
  }
});

test('a connection\'s groups follow a rename, and a group it names cannot be deleted (409 naming the connection)', async () => {
  const down = await downstream('fs-ids');
  const group = (method, name, body) => admin(method, `/organizations/${down.slug}/groups${name ? `/${name}` : ''}`, body);
  for (const name of ['devs', 'starters', 'free']) assert.equal((await group('POST', null, { name })).status, 201);
  const upGroup = `dv${Date.now()}`;
  assert.equal((await admin('POST', `/organizations/${up.slug}/groups`, { name: upGroup })).status, 201);
  const conn = await connection(down, {
    label: 'ById', jit_create: true, scopes: ['openid', 'profile', 'email', 'groups'],
    default_groups: ['starters'], groups_claim: 'groups', group_mapping: { [upGroup]: 'devs' },
  });
  const path = `/organizations/${down.slug}/connections/${conn.id}`;

  // Renamed: the connection names the groups by their new names, and sign-ins apply them.
  assert.equal((await group('PATCH', 'devs', { name: 'developers' })).status, 200);
  assert.equal((await group('PATCH', 'starters', { name: 'newcomers' })).status, 200);
  const read = (await admin('GET', path)).body;
  assert.deepEqual(read.group_mapping, { [upGroup]: 'developers' });
  assert.deepEqual(read.default_groups, ['newcomers']);
  const vera = await createUser(up, { username: 'vera', email: 'vera@up.example.test' });
  assert.equal((await admin('PUT', `/organizations/${up.slug}/groups/${upGroup}/members/${vera.sub}`)).status, 204);
  const { sub } = await codeToIdToken(down, await viaUpstream(down, conn, vera));
  const user = (await admin('GET', `/organizations/${down.slug}/users/${sub}`)).body;
  assert.deepEqual(user.groups, ['developers', 'newcomers'], 'the renamed default and mapped groups applied');

  // Deleting a group the connection names: refused, naming the connection; nothing deleted.
  for (const name of ['developers', 'newcomers']) {
    const refused = await group('DELETE', name);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'conflict');
    assert.match(refused.body.error_description, new RegExp(`ById \\(${conn.id}\\)`));
    assert.equal((await group('GET', name)).status, 200, `${name} still there`);
  }
  assert.equal((await group('DELETE', 'free')).status, 204, 'a group no connection names goes');

  // Once the connection no longer names them, they can go.
  const cleared = await admin('PATCH', path, { default_groups: [], group_mapping: {} });
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  assert.deepEqual(cleared.body.default_groups, []);
  assert.deepEqual(cleared.body.group_mapping, {});
  assert.equal((await group('DELETE', 'developers')).status, 204);
  assert.equal((await group('DELETE', 'newcomers')).status, 204);
});
