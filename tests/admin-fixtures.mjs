// Shared set-up for the admin API tests (not a test file itself): fresh organizations, clients
// and users with unique names, created through the API under test.
import assert from 'node:assert/strict';
import { admin, unique } from './support/client.mjs';

export const GUIDE_CLIENT = {
  client_id: 'rocketchat',
  client_name: 'Rocket.Chat',
  grant_types: ['authorization_code', 'refresh_token'],
  redirect_uris: ['https://chat.acme.eu/_oauth/clavex'],
  scopes: ['openid', 'profile', 'email'],
  token_endpoint_auth_method: 'client_secret_post',
};

/** A new organization; returns its JSON as the API answered it. */
export async function newOrg(fields = {}) {
  const slug = unique('org');
  const res = await admin('POST', '/organizations', { slug, name: `Org ${slug}`, ...fields });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

export async function newClient(org, fields = {}) {
  const res = await admin('POST', `/organizations/${org}/clients`, {
    client_name: 'Test app',
    redirect_uris: ['https://app.example/cb'],
    ...fields,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

export async function newUser(org, fields = {}) {
  const name = unique('u');
  const res = await admin('POST', `/organizations/${org}/users`, {
    username: name,
    email: `${name}@example.test`,
    ...fields,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

/** Asserts a JSON error response: status, `error` code, and the `field` when given. */
export function assertError(res, status, error, field) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.body.error, error, JSON.stringify(res.body));
  assert.equal(typeof res.body.error_description, 'string');
  if (field !== undefined) assert.equal(res.body.field, field, JSON.stringify(res.body));
}
