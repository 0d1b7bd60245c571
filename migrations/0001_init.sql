-- Clavex schema, version 1. A landed migration is never edited: later changes are new files.
-- Times are Unix seconds. Secrets are stored only as SHA-256 (high-entropy tokens) or as a slow
-- salted hash (passwords); private keys only sealed with AES-256-GCM under KEY_ENCRYPTION_SECRET.

CREATE TABLE organizations (
  slug          TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  logo_url      TEXT,
  primary_color TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

CREATE TABLE clients (
  org                        TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  client_id                  TEXT NOT NULL,
  client_name                TEXT NOT NULL,
  token_endpoint_auth_method TEXT NOT NULL,
  secret_hash                TEXT,               -- SHA-256 hex of the secret; NULL for public clients
  grant_types                TEXT NOT NULL,      -- JSON array
  redirect_uris              TEXT NOT NULL,      -- JSON array
  post_logout_redirect_uris  TEXT NOT NULL DEFAULT '[]',
  scopes                     TEXT NOT NULL,      -- JSON array
  created_at                 INTEGER NOT NULL,
  updated_at                 INTEGER NOT NULL,
  PRIMARY KEY (org, client_id)
);

CREATE TABLE users (
  id             TEXT PRIMARY KEY,               -- opaque, random; the `sub` claim; never reused
  org            TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  username       TEXT NOT NULL,
  email          TEXT NOT NULL,
  name           TEXT,
  picture        TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0,
  disabled       INTEGER NOT NULL DEFAULT 0,
  password_hash  TEXT,                           -- PHC-style string: algorithm, parameters, salt, hash
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_org_username ON users (org, username COLLATE NOCASE);
CREATE UNIQUE INDEX users_org_email ON users (org, email COLLATE NOCASE);

CREATE TABLE signing_keys (
  kid                TEXT PRIMARY KEY,
  org                TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  alg                TEXT NOT NULL,
  public_jwk         TEXT NOT NULL,              -- JSON: kty, n, e
  private_key_sealed TEXT NOT NULL,              -- PKCS#8, AES-256-GCM sealed
  status             TEXT NOT NULL CHECK (status IN ('active', 'retired')),
  created_at         INTEGER NOT NULL,
  retired_at         INTEGER
);
CREATE INDEX signing_keys_org ON signing_keys (org, status);

-- A grant is what one authorization code turned into. Its row is also the code's single-use
-- claim: D1 is strongly consistent, so of any number of concurrent INSERTs with the same
-- code_hash exactly one succeeds (KV, which holds the code itself, has no compare-and-swap).
CREATE TABLE grants (
  id         TEXT PRIMARY KEY,
  org        TEXT NOT NULL,
  client_id  TEXT NOT NULL,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_hash  TEXT NOT NULL UNIQUE,
  scope      TEXT NOT NULL,
  claims     TEXT,                               -- the `claims` request parameter, JSON
  auth_time  INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  FOREIGN KEY (org, client_id) REFERENCES clients(org, client_id) ON DELETE CASCADE
);

CREATE TABLE access_tokens (
  token_hash TEXT PRIMARY KEY,                   -- SHA-256 hex of the opaque token
  grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
  scope      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);

CREATE TABLE refresh_tokens (
  token_hash  TEXT PRIMARY KEY,                  -- SHA-256 hex of the opaque token
  grant_id    TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
  parent_hash TEXT,                              -- the token it was issued for; NULL for the first
  scope       TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  rotated_at  INTEGER,                           -- set once: used for a refresh, or superseded
  replaced_by TEXT                               -- the child issued when it was used; NULL if superseded
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent_hash);
