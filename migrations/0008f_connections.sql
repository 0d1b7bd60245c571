-- Upstream OpenID Connect connections per organization (issue 17): Clavex as a relying party of
-- another identity provider. The rules live in src/protocol/upstream.rs; the admin API
-- (src/admin/connections.rs) checks every value before it writes.
--
-- The client secret is stored only sealed (AES-256-GCM under KEY_ENCRYPTION_SECRET, the
-- connection id as associated data), like TOTP secrets; the admin API never returns it.

CREATE TABLE connections (
  id                    TEXT PRIMARY KEY,          -- `con_` + 96 random bits, in URLs
  org                   TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  issuer                TEXT NOT NULL,             -- https (http only on a loopback host)
  client_id             TEXT NOT NULL,
  client_secret_sealed  TEXT NOT NULL,
  token_auth_method     TEXT NOT NULL DEFAULT 'client_secret_basic'
                        CHECK (token_auth_method IN ('client_secret_basic', 'client_secret_post')),
  scopes                TEXT NOT NULL,             -- space-separated, `openid` always among them
  label                 TEXT NOT NULL,             -- the button: "Sign in with {label}"
  jit_create            INTEGER NOT NULL DEFAULT 0,
  link_by_verified_email INTEGER NOT NULL DEFAULT 0,
  trust_upstream_mfa    INTEGER NOT NULL DEFAULT 0,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL
);
CREATE INDEX connections_org ON connections (org);

-- A Clavex user is linked to an upstream account by (connection, upstream `sub`), never by an
-- e-mail address alone (ASVS 5.0 6.8.1: "the IdP ID … and the user's ID in the IdP"). One
-- upstream account links to one user; a user may have one link per connection.
CREATE TABLE user_links (
  connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  upstream_sub  TEXT NOT NULL,
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  org           TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (connection_id, upstream_sub)
);
CREATE UNIQUE INDEX user_links_user ON user_links (connection_id, user_id);
CREATE INDEX user_links_by_user ON user_links (user_id);
