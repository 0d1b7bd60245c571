// V8 sampling profiles of a Worker under `wrangler dev`, through its inspector (the
// --inspector-port wrangler was given; the DevTools protocol's Profiler domain). Used by
// bench/run.mjs after the measured runs, in a separate pass, to show where the Worker's own isolate
// spends its time per request (wasm functions by Rust name, JS glue, GC) — the process CPU time of
// workerd also contains the dev proxy and the local D1/KV simulators, which this does not.
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

export async function connectProfiler(wranglerPid) {
  const args = readFileSync(`/proc/${wranglerPid}/cmdline`, 'utf8').split('\0');
  const i = args.indexOf('--inspector-port');
  if (i < 0) throw new Error('wrangler was started without --inspector-port');
  const ws = new WebSocket(`ws://127.0.0.1:${args[i + 1]}/ws`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    setTimeout(() => reject(new Error('inspector did not answer in 15 s')), 15_000).unref();
  });
  let next = 0;
  const pending = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d);
    if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
  });
  const call = (method, params = {}) => new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
    ws.send(JSON.stringify({ id, method, params }));
    setTimeout(() => { if (pending.delete(id)) reject(new Error(`${method}: no answer`)); }, 30_000).unref();
  });
  const sources = new Map();
  /** The source line of a script (Debugger.getScriptSource), to name anonymous functions. */
  /** Up to `n` characters of a script's source from a position (Debugger.getScriptSource). */
  async function textAt(scriptId, lineNumber, columnNumber, n) {
    if (!sources.has(scriptId)) {
      try { sources.set(scriptId, (await call('Debugger.getScriptSource', { scriptId })).scriptSource.split('\n')); } catch { sources.set(scriptId, []); }
    }
    const lines = sources.get(scriptId);
    let out = (lines[lineNumber] ?? '').slice(columnNumber);
    for (let l = lineNumber + 1; out.length < n && l < lines.length; l += 1) out += `\n${lines[l]}`;
    return out.slice(0, n);
  }
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 100 });
  return {
    start: () => call('Profiler.start'),
    async stop() { return (await call('Profiler.stop')).profile; },
    /**
     * Give anonymous JS functions in a summary the name they are assigned to or passed from, read
     * from the script's source (the Debugger domain is enabled only for this, after profiling).
     */
    async nameAnonymous(summaries) {
      const keys = new Set(summaries.flatMap((x) => x?.top ?? []).map((t) => t.name).filter((n) => n.startsWith('(anonymous ')));
      if (!keys.size) return;
      try { await call('Debugger.enable'); } catch { return; }
      const names = new Map();
      for (const key of keys) {
        const m = /^\(anonymous (.*)@(\d+):(-?\d+):(-?\d+)\)$/.exec(key);
        if (!m || Number(m[3]) < 0) continue;
        // What the function calls says what it is: wasm-bindgen's import shims are one-liners
        // such as `function(a, b) { return a.deriveBits(...) }`.
        const body = await textAt(m[2], Number(m[3]), Number(m[4]), 240);
        const calls = [...new Set([...body.matchAll(/\.([A-Za-z_$][\w$]*)\s*\(/g)].map((x) => x[1]))]
          .filter((c) => !['call', 'apply', 'bind', 'then'].includes(c)).slice(0, 3);
        const what = calls.length ? `calls ${calls.join(', ')}` : body.replace(/\s+/g, ' ').slice(0, 50);
        names.set(key, `(anonymous ${m[1]}:${Number(m[3]) + 1} ${what})`);
      }
      try { await call('Debugger.disable'); } catch { /* ignore */ }
      for (const x of summaries) {
        if (!x?.top) continue;
        const merged = new Map();
        for (const t of x.top) {
          const n = names.get(t.name) ?? t.name;
          merged.set(n, (merged.get(n) ?? 0) + t.msPerOp);
        }
        x.top = [...merged].sort((a, b) => b[1] - a[1]).map(([name, msPerOp]) => ({ name, msPerOp }));
      }
    },
    close: () => ws.close(),
  };
}

/** Group a name into a category for the summary. */
function category(name, url) {
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'gc';
  if (name === '(program)') return 'runtime (program)';
  if (/^wasm-function|::|^<|^core::|^alloc::/.test(name) || /\.wasm/.test(url)) return 'wasm';
  if (/js-to-wasm|wasm-to-js/.test(name)) return 'wasm↔js';
  return 'js';
}

/**
 * Self time per function and per category, in ms per operation (`ops` requests or flows), from
 * V8 CPU profiles. Idle time is reported apart.
 */
export function summarizeProfiles(profiles, ops) {
  const self = new Map();
  const cats = new Map();
  for (const profile of profiles) addProfile(profile, self, cats);
  const per = (ms) => ms / Math.max(1, ops);
  const busy = [...cats].filter(([c]) => c !== 'idle').reduce((a, [, v]) => a + v, 0);
  return {
    ops,
    busyMsPerOp: per(busy),
    categories: Object.fromEntries([...cats].map(([k, v]) => [k, per(v)])),
    top: [...self].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, ms]) => ({ name: name.slice(0, 120), msPerOp: per(ms) })),
  };
}

function addProfile(profile, self, cats) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (let i = 0; i < profile.samples.length; i += 1) {
    const n = byId.get(profile.samples[i]);
    const d = (profile.timeDeltas[i] ?? 0) / 1000;
    const url = n.callFrame.url ?? '';
    const cf = n.callFrame;
    const name = cf.functionName || `(anonymous ${url.split('/').pop() || 'script'}@${cf.scriptId}:${cf.lineNumber}:${cf.columnNumber})`;
    const cat = category(name, url);
    cats.set(cat, (cats.get(cat) ?? 0) + d);
    if (cat !== 'idle') self.set(name, (self.get(name) ?? 0) + d);
  }
}
