// The e-mail a Worker started with `startWorker({ email: true })` sent (tests/support/worker.mjs):
// wrangler dev simulates the `send_email` binding, logging each message's From, To and Subject
// with the path of a temporary file holding its text (miniflare's send_email worker). The file
// exists while that Worker runs.
import { readFileSync } from 'node:fs';

const BLOCK = /send_email binding called with MessageBuilder:\s*\nFrom: (.*)\nTo: (.*)\nSubject: (.*)\n\s*\nText: (\S+)/g;

/** Every message the Worker sent so far, oldest first: { from, to, subject, text }. */
export function messages(worker) {
  return [...worker.output().matchAll(BLOCK)].map((m) => ({
    from: m[1].trim(),
    to: m[2].trim(),
    subject: m[3].trim(),
    text: readFileSync(m[4], 'utf8'),
  }));
}

/** The messages to `address`. */
export function mailTo(worker, address) {
  return messages(worker).filter((m) => m.to === address);
}

/**
 * Wait until `address` has received `count` messages (e-mail may be sent after the response,
 * in waitUntil); returns them. Fails after `ms` without them.
 */
export async function waitForMail(worker, address, count = 1, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = mailTo(worker, address);
    if (got.length >= count) return got;
    if (Date.now() > deadline) throw new Error(`${got.length} of ${count} e-mails to ${address} arrived`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The one-time link in a message's text. */
export function linkIn(message) {
  const m = message.text.match(/https?:\/\/\S+\/setup\/[A-Za-z0-9_-]{43}/);
  if (!m) throw new Error(`no link in: ${message.text}`);
  return m[0];
}
