import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE } from './support/client.mjs';

test('GET /healthz answers JSON with the version', async () => {
  const res = await fetch(`${BASE}/healthz`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.match(body.version, /^\d+\.\d+\.\d+$/);
});

test('unknown API paths get a JSON 404', async () => {
  const res = await fetch(`${BASE}/api/v1/no-such-thing`);
  assert.equal(res.status, 404);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const body = await res.json();
  assert.equal(body.error, 'not_found');
});

test('health refuses POST with 405 and Allow', async () => {
  const res = await fetch(`${BASE}/healthz`, { method: 'POST' });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'GET, HEAD');
});
