// Authorization codes: entropy, single use (also under concurrency), replay revokes what the first
// redemption issued, and the code lifetime (src/protocol/lifetimes.rs CODE_SECONDS).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFixture, authorize, exchangeCode, assertTokenSuccess, assertOAuthError, userinfo, tokenRequest,
  lifetime, sleep,
} from './support/oidc.mjs';

let fx;
let agingCode; // obtained first, redeemed in the last test after the code lifetime has passed
let agingCodeIssuedAt;
let usedCode; // redeemed first, replayed 31 s later (while it would still be within its lifetime)
before(async () => {
  fx = await createFixture('codes');
  agingCode = (await authorize(fx, fx.web)).code;
  agingCodeIssuedAt = Date.now();
  usedCode = (await authorize(fx, fx.web)).code;
  assertTokenSuccess(await exchangeCode(fx, fx.web, usedCode), 'redemption of the code replayed at the end');
});

test('codes are ≥128 bits of printable ASCII and differ every time', async () => {
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await authorize(fx, fx.web)).code);
  for (const c of codes) {
    assert.match(c, /^[\x21-\x7e]+$/, 'printable ASCII, no spaces');
    assert.ok(c.length >= 22, `at least 22 characters (128 bits base64url): ${c.length}`);
  }
  assert.equal(new Set(codes).size, codes.length, 'all distinct');
});

test('a code works once; replay → 400 invalid_grant JSON', async () => {
  const { code } = await authorize(fx, fx.web);
  assertTokenSuccess(await exchangeCode(fx, fx.web, code), 'first redemption');
  assertOAuthError(await exchangeCode(fx, fx.web, code), 400, 'invalid_grant', 'replay');
});

test('replaying a code revokes the access token issued by its first redemption', async () => {
  const { code } = await authorize(fx, fx.web);
  const first = assertTokenSuccess(await exchangeCode(fx, fx.web, code));
  assert.equal((await userinfo(fx, first.access_token)).status, 200, 'works before the replay');
  await exchangeCode(fx, fx.web, code);
  const after = await userinfo(fx, first.access_token);
  assert.equal(after.status, 401, `userinfo after the replay: expected 401, got ${after.status} ${after.text}`);
});

test('replaying a code revokes the refresh token issued by its first redemption', async () => {
  const { code } = await authorize(fx, fx.web);
  const first = assertTokenSuccess(await exchangeCode(fx, fx.web, code));
  await exchangeCode(fx, fx.web, code);
  const res = await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
  assertOAuthError(res, 400, 'invalid_grant', 'refresh after code replay');
});

test('replaying a code also revokes tokens already refreshed from that grant', async () => {
  const { code } = await authorize(fx, fx.web);
  const first = assertTokenSuccess(await exchangeCode(fx, fx.web, code));
  const refreshed = assertTokenSuccess(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: first.refresh_token }), 'refresh');
  await exchangeCode(fx, fx.web, code);
  assert.equal((await userinfo(fx, refreshed.access_token)).status, 401, 'the refreshed access token is revoked with the grant');
  assertOAuthError(await tokenRequest(fx, fx.web, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token }), 400, 'invalid_grant', 'the refreshed refresh token');
});

test('10 concurrent redemptions of one code → exactly one 200, the rest 400 invalid_grant', async () => {
  const { code } = await authorize(fx, fx.web);
  const results = await Promise.all(Array.from({ length: 10 }, () => exchangeCode(fx, fx.web, code)));
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 1, `exactly one success: ${statuses.join(',')}`);
  for (const r of results.filter((x) => x.status !== 200)) assertOAuthError(r, 400, 'invalid_grant', 'losing redemption');
});

test('concurrent redemptions across several codes: never more than one token set per code', async () => {
  const codes = [];
  for (let i = 0; i < 4; i++) codes.push((await authorize(fx, fx.web)).code);
  const results = await Promise.all(codes.flatMap((code) => Array.from({ length: 5 }, () => exchangeCode(fx, fx.web, code).then((r) => ({ code, r })))));
  for (const code of codes) {
    const wins = results.filter((x) => x.code === code && x.r.status === 200).length;
    assert.equal(wins, 1, `code ${code.slice(0, 6)}…: ${wins} successful redemptions`);
  }
});

test('a redeemed code replayed more than 30 s later is still invalid_grant', async () => {
  const wait = agingCodeIssuedAt + 31_000 - Date.now();
  if (wait > 0) await sleep(wait);
  assertOAuthError(await exchangeCode(fx, fx.web, usedCode), 400, 'invalid_grant', 'late replay');
});

test('a code expires after CODE_SECONDS', async () => {
  const seconds = lifetime('CODE_SECONDS');
  const wait = agingCodeIssuedAt + (seconds + 2) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  assertOAuthError(await exchangeCode(fx, fx.web, agingCode), 400, 'invalid_grant', `code older than ${seconds} s`);
});
