// Small HTTP helpers shared by the integration tests: the Worker's URL, admin calls, forms.
export const BASE = process.env.CLAVEX_URL ?? 'http://127.0.0.1:8787';
export const ADMIN_TOKEN = process.env.CLAVEX_ADMIN_TOKEN ?? '';

/**
 * A random documentation-prefix address (RFC 3849, 2001:db8::/32) to send as CF-Connecting-IP. On
 * Cloudflare the edge sets that header; `wrangler dev` passes a client's own through, so each
 * simulated client can have its own address and one test's failures (throttled per address)
 * never slow another's requests.
 */
export function randomIp() {
  const group = () => Math.floor(Math.random() * 0x10000).toString(16);
  return `2001:db8:${group()}:${group()}:${group()}:${group()}:${group()}:${group()}`;
}

const ADMIN_IP = randomIp();

/** Call the admin API; returns { status, headers, body } with body parsed as JSON when it is. */
export async function admin(method, path, body, { token = ADMIN_TOKEN, headers = {} } = {}) {
  // Wrong admin tokens are throttled per address: each comes from an address of its own, and
  // correct calls from this process's own address, which no test of wrong tokens ever locks.
  const ip = { 'CF-Connecting-IP': token === ADMIN_TOKEN ? ADMIN_IP : randomIp() };
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...ip, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!('Content-Type' in init.headers)) init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${BASE}/api/v1${path}`, init);
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A unique slug/name suffix so tests never collide with each other's data. */
export function unique(prefix = 't') {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
