// How the admin API treats request bodies: media type, size, syntax, JSON types. Bad input is
// always a 4xx JSON error and never writes anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, unique, BASE, ADMIN_TOKEN } from './support/client.mjs';
import { newOrg, assertError } from './admin-fixtures.mjs';

const LIMIT = 64 * 1024;

async function raw(method, path, body, headers = {}) {
  const res = await fetch(`${BASE}/api/v1${path}`, {
    method, body, headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...headers }, duplex: 'half',
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: json ?? text };
}

async function orgExists(slug) {
  return (await admin('GET', `/organizations/${slug}`)).status === 200;
}

test('a body that is not application/json is 415', async () => {
  const slug = unique('o');
  const json = JSON.stringify({ slug, name: 'x' });
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp']) {
    assertError(await raw('POST', '/organizations', json, { 'Content-Type': type }), 415, 'unsupported_media_type');
  }
  // fetch labels a string body text/plain unless told otherwise; a Blob without a type sends none.
  assertError(await raw('POST', '/organizations', new Blob([json])), 415, 'unsupported_media_type');
  assert.equal(await orgExists(slug), false);
  const org = await newOrg();
  assertError(await raw('PATCH', `/organizations/${org.slug}`, '{"name":"y"}', { 'Content-Type': 'text/plain' }), 415, 'unsupported_media_type');
  assert.equal((await admin('GET', `/organizations/${org.slug}`)).body.name, org.name);
});

test('application/json with parameters is accepted', async () => {
  const slug = unique('o');
  const res = await raw('POST', '/organizations', JSON.stringify({ slug, name: 'x' }), { 'Content-Type': 'Application/JSON; charset=utf-8' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
});

test('a body over 64 KiB is 413, whether declared by Content-Length or streamed', async () => {
  const slug = unique('o');
  const big = JSON.stringify({ slug, name: 'x'.repeat(LIMIT) });
  assertError(await raw('POST', '/organizations', big, { 'Content-Type': 'application/json' }), 413, 'payload_too_large');
  // Streamed (chunked): no Content-Length to check up front, so the read body is measured.
  const stream = new ReadableStream({
    start(c) { c.enqueue(new TextEncoder().encode(big)); c.close(); },
  });
  assertError(await raw('POST', '/organizations', stream, { 'Content-Type': 'application/json' }), 413, 'payload_too_large');
  assert.equal(await orgExists(slug), false);
  // Just under the limit gets through to validation (name too long), proving the cap is the size.
  const under = JSON.stringify({ slug, name: 'x'.repeat(LIMIT - 100) });
  assertError(await raw('POST', '/organizations', under, { 'Content-Type': 'application/json' }), 400, 'invalid_field', 'name');
});

test('malformed JSON and non-object bodies are 400 invalid_request', async () => {
  for (const body of ['{"slug":', '', 'slug=acme', '[]', 'null', '"acme"', '42', '{"slug":"a",}']) {
    const res = await raw('POST', '/organizations', body, { 'Content-Type': 'application/json' });
    assertError(res, 400, 'invalid_request');
  }
});

test('wrong JSON types are 400 invalid_field naming the member, never 500', async () => {
  const org = await newOrg();
  const cases = [
    ['POST', '/organizations', { slug: 5, name: 'x' }, 'slug'],
    ['POST', '/organizations', { slug: unique('o'), name: { first: 'x' } }, 'name'],
    ['POST', '/organizations', { slug: unique('o'), name: 'x', logo_url: ['https://a.example/l.png'] }, 'logo_url'],
    ['PATCH', `/organizations/${org.slug}`, { name: true }, 'name'],
    ['POST', `/organizations/${org.slug}/clients`, { client_name: 'x', redirect_uris: { 0: 'https://a.example/' } }, 'redirect_uris'],
    ['POST', `/organizations/${org.slug}/clients`, { client_name: 'x', redirect_uris: ['https://a.example/'], grant_types: [null] }, 'grant_types'],
    ['POST', `/organizations/${org.slug}/users`, { username: ['a'], email: 'a@example.test' }, 'username'],
    ['POST', `/organizations/${org.slug}/users`, { username: 'a', email: 'a@example.test', disabled: 'no' }, 'disabled'],
    ['POST', `/organizations/${org.slug}/users`, { username: 'a', email: 'a@example.test', email_verified: 1 }, 'email_verified'],
  ];
  for (const [method, path, body, field] of cases) {
    assertError(await admin(method, path, body), 400, 'invalid_field', field);
  }
});

test('deeply nested JSON is refused cleanly', async () => {
  const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  const res = await raw('POST', '/organizations', deep, { 'Content-Type': 'application/json' });
  assertError(res, 400, 'invalid_request');
});

test('admin responses are never cached', async () => {
  const org = await newOrg();
  for (const res of [
    await admin('GET', '/organizations'),
    await admin('GET', `/organizations/${org.slug}`),
    await admin('GET', '/organizations/nope-nope'),
    await admin('POST', '/organizations', {}),
    await admin('GET', '/organizations', undefined, { token: 'wrong-token-value' }),
  ]) {
    assert.equal(res.headers.get('cache-control'), 'no-store');
  }
});
