// Concurrent guesses against one account (issue 15): how many of a burst of wrong passwords are
// answered "incorrect" (tested) and how many get 429 (refused untested), and whether the right
// password sent last signs in. Six bursts of 40 login POSTs — 39 wrong, the right one last —
// each from distinct addresses, each against a fresh account, all at once. Prints a table.
//
//   node bench/bursts.mjs [DIR]   DIR: a checkout with a built Worker (default: this one)
//
// Only 127.0.0.1 is contacted; bounded: 6 × 40 requests.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { startWorker, snapshotWorker } from '../tests/support/worker.mjs';

const dir = resolve(process.argv[2] ?? '.');
const snapshot = snapshotWorker(dir, 'clavex-bursts');
const admin = `bursts-${randomBytes(18).toString('base64url')}`;
const worker = await startWorker({
  config: snapshot.config, cwd: snapshot.dir,
  vars: { ADMIN_TOKEN: admin, KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url') },
});
const ip = () => `198.18.${Math.floor(Math.random() * 255)}.${1 + Math.floor(Math.random() * 253)}`;
const api = async (method, path, body) => {
  const res = await fetch(`${worker.url}/api/v1${path}`, {
    method, headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json', 'CF-Connecting-IP': ip() },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
};
try {
  const slug = `bursts${randomBytes(3).toString('hex')}`;
  await api('POST', '/organizations', { slug, name: 'Bursts' });
  await api('POST', `/organizations/${slug}/clients`, {
    client_id: 'rp', client_name: 'RP', redirect_uris: ['https://rp.example.test/cb'],
    grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic',
  });
  const rows = [];
  for (let burst = 1; burst <= 6; burst += 1) {
    const username = `victim${burst}`;
    const password = `Pw-${randomBytes(9).toString('base64url')}!`;
    await api('POST', `/organizations/${slug}/users`, { username, email: `${username}@example.test`, password });
    const url = `${worker.url}/${slug}/authorize?client_id=rp&redirect_uri=${encodeURIComponent('https://rp.example.test/cb')}&response_type=code&scope=openid&state=s`;
    const page = await fetch(url);
    const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const html = await page.text();
    const field = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
    const form = { request: field('request'), csrf_token: field('csrf_token') };
    const post = (pw) => fetch(`${worker.url}/${slug}/login`, {
      method: 'POST', redirect: 'manual',
      headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded', 'CF-Connecting-IP': ip() },
      body: new URLSearchParams({ ...form, username, password: pw }),
    }).then(async (r) => { await r.arrayBuffer(); return r.status; });
    const t0 = Date.now();
    const statuses = await Promise.all([...Array.from({ length: 39 }, (_, i) => post(`wrong-${i}-guess`)), post(password)]);
    const ms = Date.now() - t0;
    const wrong = statuses.slice(0, 39);
    rows.push({ burst, answered: wrong.filter((s) => s === 401).length, refused: wrong.filter((s) => s === 429).length, right: statuses[39], ms });
  }
  console.log(`\nBursts of 39 wrong passwords + the right one last, at once, distinct addresses (threshold 5) — ${dir}\n`);
  console.log('| burst | wrong answered "incorrect" | wrong refused 429 | right password | burst ms |');
  console.log('|--:|--:|--:|--|--:|');
  for (const r of rows) console.log(`| ${r.burst} | ${r.answered} | ${r.refused} | ${r.right === 303 ? 'signed in (303)' : r.right} | ${r.ms} |`);
} finally {
  worker.stop();
  snapshot.remove();
}
