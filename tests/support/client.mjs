// Small HTTP helpers shared by the integration tests: the Worker's URL, admin calls, forms.
export const BASE = process.env.CLAVEX_URL ?? 'http://127.0.0.1:8787';
export const ADMIN_TOKEN = process.env.CLAVEX_ADMIN_TOKEN ?? '';

/** Call the admin API; returns { status, headers, body } with body parsed as JSON when it is. */
export async function admin(method, path, body, { token = ADMIN_TOKEN, headers = {} } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...headers } };
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
