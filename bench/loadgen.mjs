// The load generator of `make bench`: one small HTTP/1.1 client on keep-alive connections and a
// bounded pool of virtual users, used the same way for Clavex, the floor and the peer.
// Every run is bounded by a request (or flow) count and by wall time, whichever comes first.
import http from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';

/** One target server: a keep-alive agent limited to `sockets` connections. */
export function makeClient(baseUrl, sockets = 8) {
  const base = new URL(baseUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(base.hostname)) {
    throw new Error(`refusing to load anything but loopback: ${baseUrl}`);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  let sent = 0;
  /**
   * request(method, pathOrUrl, { headers, form, json, jar }) → { status, headers, body, ms }
   * `form` (an object) is sent as application/x-www-form-urlencoded, `json` as application/json
   * (the admin API's writes, used by the soak). `jar` (a Jar) sends its cookies and takes
   * Set-Cookie back.
   */
  function request(method, target, { headers = {}, form, json, jar, timeoutMs = 10_000 } = {}) {
    const url = new URL(target, base);
    if (url.host !== base.host) throw new Error(`off-target request: ${url}`);
    const h = { ...headers };
    let body;
    if (form !== undefined) {
      body = new URLSearchParams(form).toString();
      h['Content-Type'] = 'application/x-www-form-urlencoded';
      h['Content-Length'] = Buffer.byteLength(body);
    } else if (json !== undefined) {
      body = JSON.stringify(json);
      h['Content-Type'] = 'application/json';
      h['Content-Length'] = Buffer.byteLength(body);
    }
    if (jar) {
      const c = jar.header(url.pathname);
      if (c) h.Cookie = c;
    }
    const t0 = process.hrtime.bigint();
    sent += 1;
    return new Promise((resolve, reject) => {
      const req = http.request({
        agent, method, host: base.hostname, port: base.port, path: url.pathname + url.search, headers: h,
        timeout: timeoutMs,
      }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          if (jar) jar.take(res.headers['set-cookie'], url.pathname);
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => {
        const err = new Error(`timeout after ${timeoutMs} ms: ${method} ${url.pathname}`);
        err.fatal = true;
        req.destroy(err);
      });
      req.on('error', (err) => {
        // A server that hangs or is gone ends the scenario at once instead of timing out again.
        if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(err.code)) err.fatal = true;
        reject(err);
      });
      req.end(body);
    });
  }
  return { base, request, sent: () => sent, close: () => agent.destroy() };
}

/**
 * A minimal cookie jar for one host: honours Path and deletion (Max-Age<=0, past Expires), ignores
 * Domain; Secure cookies are still sent to 127.0.0.1, as browsers do for localhost.
 */
export class Jar {
  constructor() { this.cookies = new Map(); }
  take(setCookies, requestPath = '/') {
    for (const line of setCookies ?? []) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      if (i < 0) continue;
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      let path = null;
      let deleted = false;
      for (const a of attrs) {
        const j = a.indexOf('=');
        const k = (j < 0 ? a : a.slice(0, j)).trim().toLowerCase();
        const v = j < 0 ? '' : a.slice(j + 1).trim();
        if (k === 'max-age' && Number(v) <= 0) deleted = true;
        if (k === 'expires' && Date.parse(v) <= Date.now()) deleted = true;
        if (k === 'path' && v.startsWith('/')) path = v;
      }
      if (!path) path = requestPath.replace(/\/[^/]*$/, '') || '/';
      const key = `${name};${path}`;
      if (deleted) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }
  header(path = '/') {
    const matching = [...this.cookies.values()].filter((c) =>
      path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
  clone() { const j = new Jar(); j.cookies = new Map(this.cookies); return j; }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
export function htmlDecode(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/**
 * The login form of a page (the first form with a password input), as a browser would submit it:
 * { action, method, hidden: {name: value} (every named field but username/password, hidden ones
 * included, checked boxes, and the submit button's name/value), inputs: [names] }.
 */
export function parseLoginForm(html) {
  const attr = (tag, name) => {
    const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
    return m ? htmlDecode(m[2] ?? m[3] ?? m[4] ?? '') : undefined;
  };
  for (const [formHtml] of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const formTag = /<form\b[^>]*>/i.exec(formHtml)[0];
    const hidden = {};
    const inputs = [];
    for (const [tag] of formHtml.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(tag, 'name');
      if (!name) continue;
      inputs.push(name);
      const type = (attr(tag, 'type') ?? 'text').toLowerCase();
      if (['submit', 'button', 'image', 'reset', 'file', 'password'].includes(type)) continue;
      if ((type === 'checkbox' || type === 'radio') && !/\schecked\b/i.test(tag)) continue;
      if (name === 'username') continue;
      hidden[name] = attr(tag, 'value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : '');
    }
    if (!inputs.includes('password')) continue;
    const button = [...formHtml.matchAll(/<button\b[^>]*>/gi)].map(([t]) => t)
      .find((t) => (attr(t, 'type') ?? 'submit').toLowerCase() === 'submit' && attr(t, 'name'));
    if (button) hidden[attr(button, 'name')] = attr(button, 'value') ?? '';
    return { action: attr(formTag, 'action'), method: (attr(formTag, 'method') ?? 'get').toLowerCase(), hidden, inputs };
  }
  return null;
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// --- CPU time of processes, from /proc/<pid>/stat (utime + stime, in clock ticks) -------------

let ticksPerSecond = 100;
try {
  // getconf CLK_TCK is 100 on every Linux we run on; read it from the auxiliary vector if we can.
  const auxv = readFileSync('/proc/self/auxv');
  for (let i = 0; i + 16 <= auxv.length; i += 16) {
    if (Number(auxv.readBigUInt64LE(i)) === 17 /* AT_CLKTCK */) { ticksPerSecond = Number(auxv.readBigUInt64LE(i + 8)); break; }
  }
} catch { /* keep 100 */ }
export const CLK_TCK = ticksPerSecond;

function statOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15.
    return { pid, comm, ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) };
  } catch { return null; }
}

/** Descendant processes of `rootPid` (not including it) whose comm matches `name`. */
export function descendants(rootPid, name) {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => statOf(Number(d))).filter(Boolean);
  const children = new Map();
  for (const p of all) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(p);
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    for (const c of children.get(stack.pop()) ?? []) {
      if (!name || c.comm === name) out.push(c.pid);
      stack.push(c.pid);
    }
  }
  return out;
}

export function cmdline(pid) {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { return ''; }
}

/** Total CPU seconds (user + system) of the given pids; missing processes count as 0. */
export function cpuSeconds(pids) {
  return Object.values(cpuByPid(pids)).reduce((a, b) => a + b, 0);
}

/** CPU seconds (user + system) of each pid. */
export function cpuByPid(pids) {
  const out = {};
  for (const pid of pids) {
    const s = statOf(pid);
    out[pid] = s ? (s.utime + s.stime) / CLK_TCK : 0;
  }
  return out;
}

function diffCpu(after, before) {
  const out = {};
  for (const pid of Object.keys(after)) out[pid] = after[pid] - (before[pid] ?? 0);
  return out;
}

/**
 * Run `iteration(vu, i)` from `concurrency` virtual users until `maxIterations` have started or
 * `maxSeconds` have passed. An iteration returns nothing (success) or throws (error). Returns
 * latencies (ms) of successful iterations, error count, first errors, elapsed seconds and the CPU
 * seconds that `cpuPids` spent meanwhile.
 */
export async function runLoad({ concurrency, maxIterations, maxSeconds, iteration, cpuPids = [], maxErrors = 50, hooks, sent = () => 0 }) {
  await hooks?.before?.();
  const sent0 = sent();
  const latencies = [];
  const errors = [];
  let started = 0;
  let errorCount = 0;
  const deadline = performance.now() + maxSeconds * 1000;
  const cpu0 = cpuByPid(cpuPids);
  const t0 = performance.now();
  async function vu(id) {
    while (started < maxIterations && performance.now() < deadline && errorCount < maxErrors) {
      const i = started++;
      const s = performance.now();
      try {
        await iteration(id, i);
        latencies.push(performance.now() - s);
      } catch (err) {
        errorCount += 1;
        if (errors.length < 3) errors.push(String(err?.message ?? err).slice(0, 300));
        if (err?.fatal) errorCount = Math.max(errorCount, maxErrors);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, id) => vu(id)));
  const elapsed = (performance.now() - t0) / 1000;
  const cpuPerPid = diffCpu(cpuByPid(cpuPids), cpu0);
  const cpu = Object.values(cpuPerPid).reduce((a, b) => a + b, 0);
  const requests = sent() - sent0;
  await hooks?.after?.();
  latencies.sort((a, b) => a - b);
  return { latencies, ok: latencies.length, errors: errorCount, errorSamples: errors, elapsed, cpu, cpuPerPid, requests };
}

/** Merge several runLoad results (e.g. the rounds of the code-exchange scenario). */
export function mergeRuns(runs) {
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    latencies,
    ok: latencies.length,
    errors: runs.reduce((a, r) => a + r.errors, 0),
    errorSamples: runs.flatMap((r) => r.errorSamples).slice(0, 3),
    elapsed: runs.reduce((a, r) => a + r.elapsed, 0),
    cpu: runs.reduce((a, r) => a + r.cpu, 0),
    requests: runs.reduce((a, r) => a + (r.requests ?? 0), 0),
    cpuPerPid: runs.reduce((acc, r) => {
      for (const [pid, v] of Object.entries(r.cpuPerPid ?? {})) acc[pid] = (acc[pid] ?? 0) + v;
      return acc;
    }, {}),
  };
}

/** Rate, latency percentiles and CPU per op; `roles` (pid → role) splits the CPU by process role. */
export function summarize(run, roles = {}) {
  const byRole = {};
  for (const [pid, v] of Object.entries(run.cpuPerPid ?? {})) {
    const role = roles[pid] ?? 'other';
    byRole[role] = (byRole[role] ?? 0) + v;
  }
  return {
    cpuPerOpMsByRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, run.ok ? (v * 1000) / run.ok : NaN])),
    ok: run.ok,
    errors: run.errors,
    errorSamples: run.errorSamples,
    elapsed: run.elapsed,
    rate: run.ok / run.elapsed,
    p50: percentile(run.latencies, 50),
    p99: percentile(run.latencies, 99),
    cpuPerOpMs: run.ok ? (run.cpu * 1000) / run.ok : NaN,
    requestsPerOp: run.ok ? run.requests / (run.ok + run.errors) : NaN,
    cpu: run.cpu,
  };
}
