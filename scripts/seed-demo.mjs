// Prints what a developer needs to use the local instance. The demo data (organization `acme`,
// client `rocketchat`, a demo user) is created here through the admin API once it exists.
const base = process.argv[2] ?? 'http://127.0.0.1:8787';
const health = await (await fetch(`${base}/healthz`)).json();
console.log(`\nClavex ${health.version} is running at ${base}`);
