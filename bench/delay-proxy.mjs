// A delaying HTTP proxy for the benchmark's far-user section: it stands for a network distance.
// Every request waits a fixed `delayMs`, then is forwarded unchanged (method, path, headers with
// Host, body) to `upstream` over a keep-alive agent; the answer comes back unchanged (status,
// headers including every Set-Cookie and Location, body). Only hop-by-hop headers are dropped,
// as any proxy must. Listens on 127.0.0.1 only and forwards only to a loopback upstream.
import http from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authenticate', 'proxy-authorization']);
const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/** Raw header pairs without the hop-by-hop ones (Set-Cookie stays one pair per cookie). */
function endToEnd(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/**
 * Start a proxy to `upstream` (a loopback URL) that adds `delayMs` to every request, on `port`
 * (0: any free one; a fixed one lets a Worker be told its public URL before it starts).
 * Returns { url, port, delayMs, close() }.
 */
export async function startDelayProxy({ upstream, delayMs, port: wantedPort = 0 }) {
  const up = new URL(upstream);
  if (!LOOPBACK.includes(up.hostname)) throw new Error(`delay proxy forwards only to loopback, not ${upstream}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16, maxFreeSockets: 16 });
  const server = http.createServer((req, res) => {
    setTimeout(() => {
      const headers = endToEnd(req.rawHeaders);
      const out = http.request({ agent, method: req.method, host: up.hostname, port: up.port, path: req.url, headers }, (upRes) => {
        res.writeHead(upRes.statusCode, upRes.statusMessage, endToEnd(upRes.rawHeaders));
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      });
      out.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`delay proxy: ${err.message}`);
      });
      req.pipe(out);
    }, delayMs);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(wantedPort, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`, port, delayMs,
    close: () => { server.closeAllConnections?.(); server.close(); agent.destroy(); },
  };
}
