// A real browser for the tests of the server-rendered pages: Debian's headless Chromium (installed
// by scripts/setup.sh) driven by puppeteer-core, which downloads no browser of its own.
// One browser per test file; every page gets a fresh profile-less context (its own cookies, like a
// new visitor) and its own client address.
import assert from 'node:assert/strict';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { PNG } from 'pngjs';
import { randomIp } from './client.mjs';
import { ROOT } from './worker.mjs';

export const SCREENSHOTS = join(ROOT, 'tests', 'output', 'screenshots');

// Generous but finite: a stuck browser must fail the test, never hang the suite.
const LAUNCH_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 15_000;

const executable = (p) => { try { accessSync(p, constants.X_OK); return true; } catch { return false; } };

/** The Chromium binary: CHROMIUM_PATH if set, else /usr/bin/chromium, else `chromium` on PATH. */
export function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  return (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'chromium')).find(executable) ?? '/usr/bin/chromium';
}

/**
 * Launch headless Chromium. Throws (so the test file fails, never skips) when Chromium is missing:
 * scripts/setup.sh installs it, so a missing browser is a broken set-up, not an optional extra.
 */
export async function launchBrowser() {
  const path = chromiumPath();
  if (!executable(path)) {
    throw new Error(`Chromium not found at ${path}: run scripts/setup.sh (it installs the Debian chromium package), or set CHROMIUM_PATH`);
  }
  // A throw-away profile per launch: no state from an earlier run or another engineer's browser.
  const userDataDir = mkdtempSync(join(tmpdir(), 'clavex-chromium-'));
  const args = [
    '--disable-gpu',
    '--disable-dev-shm-usage', // containers often have a tiny /dev/shm
    '--no-first-run',
    '--no-default-browser-check',
    '--lang=en-US',
  ];
  // Chromium's sandbox refuses to run as root (CI containers, this machine).
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: path,
      headless: true,
      userDataDir,
      args,
      timeout: LAUNCH_TIMEOUT_MS,
      protocolTimeout: LAUNCH_TIMEOUT_MS,
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(`Chromium at ${path} did not start: ${e.message}`);
  }
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try { await close(); } finally { rmSync(userDataDir, { recursive: true, force: true }); }
  };
  return browser;
}

/**
 * A new page in a context of its own (own cookies), with its own CF-Connecting-IP (sign-in
 * failures are throttled per address, see randomIp) and JavaScript on or off: the pages must work
 * without it. `page.ip` is the address used.
 */
export async function newPage(browser, { javaScript = true, ip = randomIp() } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  await page.setJavaScriptEnabled(javaScript);
  await page.setExtraHTTPHeaders({ 'CF-Connecting-IP': ip });
  await page.setViewport({ width: 480, height: 720 });
  page.ip = ip;
  return page;
}

/**
 * Answer every request to the given origins (a client's redirect URI, which does not exist here)
 * with a tiny 200 page, so the browser really arrives there and page.url() is the full redirect.
 * Everything else goes to the server untouched.
 */
export async function stubOrigins(page, uris) {
  const origins = new Set(uris.map((u) => new URL(u).origin));
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (origins.has(new URL(req.url()).origin)) {
      req.respond({ status: 200, contentType: 'text/html', body: '<!doctype html><title>client</title><p>back at the client</p>' });
    } else {
      req.continue();
    }
  });
}

/** Click a submit button and wait for the page it leads to; returns the navigation's response. */
export async function submit(page, selector = 'button[type=submit]') {
  const [res] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return res;
}

/** The text a user sees (innerText: rendered, hidden elements left out). */
export const visibleText = (page) => page.evaluate(() => document.body.innerText);

/** Save a full-page PNG under tests/output/screenshots/ and return its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  rmSync(path, { force: true }); // a picture left by an earlier run must not pass for this one
  await page.screenshot({ path, fullPage: true, type: 'png' });
  return path;
}

/** Assert `path` is a non-empty PNG that decodes to a picture with pixels. */
export function assertPng(path) {
  assert.ok(statSync(path).size > 0, `${path} is not empty`);
  const png = PNG.sync.read(readFileSync(path)); // throws on anything that is not a PNG
  assert.ok(png.width > 0 && png.height > 0, `${path} has pixels (${png.width}x${png.height})`);
}
