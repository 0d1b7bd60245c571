// The test harness itself: every test process runs with tests/support/lost-requests.mjs preloaded
// (tests/run.mjs), so a request `wrangler dev` lost is asked again once — and only that one. A
// local server stands for wrangler's ProxyWorker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

async function serving(answers) {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push(req.method);
    const [status, body] = answers[Math.min(seen.length - 1, answers.length - 1)];
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/x`, seen, close: () => server.close() };
}

test('the preloaded fetch asks again once for wrangler\'s own 503, and never for another 503', async () => {
  assert.equal(globalThis.fetch.name, 'fetchAskingAgainWhenLost', 'the harness preloads it');
  const lost = await serving([[503, 'Your worker restarted mid-request. Please try sending the request again.'], [200, 'ok']]);
  const res = await fetch(lost.url, { method: 'POST', body: 'a=1' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.deepEqual(lost.seen, ['POST', 'POST']);
  lost.close();

  const real = await serving([[503, 'Clavex is unavailable'], [200, 'ok']]);
  const refused = await fetch(real.url, { method: 'POST', body: 'a=1' });
  assert.equal(refused.status, 503, 'a 503 of the Worker itself is the answer');
  assert.deepEqual(real.seen, ['POST']);
  real.close();

  const twice = await serving([[503, 'Your worker restarted mid-request.']]);
  assert.equal((await fetch(twice.url)).status, 503, 'asked again once, not forever');
  assert.deepEqual(twice.seen, ['GET', 'GET']);
  twice.close();
});
