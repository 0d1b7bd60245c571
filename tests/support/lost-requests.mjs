// Preloaded into every test process by tests/run.mjs (NODE_OPTIONS=--import): the global `fetch`
// asks `wrangler dev` once more for a request wrangler itself lost, so every request a test makes
// — the helpers' and a test's own raw `fetch` bursts alike — is covered in one place.
//
// Why: wrangler 4.86's ProxyWorker (the public port; templates/startDevWorker/ProxyWorker.ts)
// forwards each request to the Worker over a pooled connection; when one has idled about 5 s, its
// client and server idle timers fire together and a request written into it fails before Clavex
// sees it (cloudflare/workers-sdk#15252, fixed in later wrangler versions). The ProxyWorker then
// answers a POST with its own 503 "Your worker restarted mid-request…", and queues a GET for a
// retry that can wait for minutes. A burst of 50 requests a few seconds after another burst meets
// it often enough to fail a full run now and then. Measured on this machine under load: Clavex
// logged no request and entered no handler for them.
//
// Asking again is safe because the lost request never ran; a request that did run and is asked
// again arrives twice, which every single-use test counts and refuses. Only requests to a local
// address are touched (the Worker under test, and the test's own receivers), and each retry is
// printed.
const LOST_REQUEST_MS = 60_000;
const WRANGLER_LOST = 'Your worker restarted mid-request';
const original = globalThis.fetch;

const local = (input) => {
  try {
    const host = new URL(typeof input === 'string' || input instanceof URL ? input : input.url).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  } catch {
    return false;
  }
};

globalThis.fetch = async function fetchAskingAgainWhenLost(input, init = {}) {
  // A Request object's body can be read once: leave those as they are.
  if (!local(input) || input instanceof Request) return original(input, init);
  const again = (why) => {
    console.log(`${init.method ?? 'GET'} ${input}: ${why}; asked again (wrangler dev lost the request)`);
    return original(input, init);
  };
  const timeout = AbortSignal.timeout(LOST_REQUEST_MS);
  const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
  let res;
  try {
    res = await original(input, { ...init, signal });
  } catch (e) {
    // Only our own timeout means "lost"; the caller's abort, or a refused connection, is theirs.
    if (!timeout.aborted || init.signal?.aborted) throw e;
    return again(`no answer in ${LOST_REQUEST_MS / 1000} s`);
  }
  if (res.status === 503 && (await res.clone().text()).startsWith(WRANGLER_LOST)) {
    return again("wrangler's own 503");
  }
  return res;
};
