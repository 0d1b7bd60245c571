-- Passkeys (issue 16 item 1): WebAuthn credentials a user registered on the account page, used to
-- sign in without a password (src/protocol/webauthn.rs, src/oidc/passkeys.rs).
--
-- The public key is stored as the authenticator sent it (a COSE_Key, base64url) with its COSE
-- algorithm: nothing secret is here, but the admin API still never returns it. A credential id
-- is unique per organization (WebAuthn §7.1 step 22: a credential id registered to another user
-- must be refused), and a user's passkeys go with the user.
CREATE TABLE passkeys (
  id             TEXT PRIMARY KEY,               -- opaque, random; what the admin API and forms name
  org            TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  credential_id  TEXT NOT NULL,                  -- base64url of the authenticator's credential id
  public_key     TEXT NOT NULL,                  -- base64url of the COSE_Key
  alg            INTEGER NOT NULL,               -- COSE algorithm: -7 ES256, -8 EdDSA, -257 RS256
  sign_count     INTEGER NOT NULL DEFAULT 0,
  user_verified  INTEGER NOT NULL DEFAULT 0,     -- the registration was user-verified
  backup_eligible INTEGER NOT NULL DEFAULT 0,    -- BE flag: a synced passkey (amr swk, not hwk)
  backed_up      INTEGER NOT NULL DEFAULT 0,     -- BS flag at the last use
  transports     TEXT NOT NULL DEFAULT '[]',     -- JSON list the browser reported (hints only)
  aaguid         TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  name           TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  last_used_at   INTEGER
);
CREATE UNIQUE INDEX passkeys_org_credential ON passkeys (org, credential_id);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- Ceremony challenges already used. A challenge lives in the sealed state of the page that showed
-- it (bound to the browser's CSRF cookie and the organization, expiring with the page), so
-- showing a page writes nothing; finishing a ceremony inserts the challenge's hash here at the D1
-- primary, and the unique key lets exactly one finish of a challenge through, at every location.
-- Rows are kept until the page could no longer be posted anyway (cleanup deletes them after).
CREATE TABLE passkey_challenges_used (
  challenge_hash TEXT PRIMARY KEY,
  org            TEXT NOT NULL,
  claim          TEXT NOT NULL,                  -- random per finish: lets the same batch know it won
  expires_at     INTEGER NOT NULL
);

-- Per organization: whether passkeys are offered (default on). `password_signin` (0009g) off with
-- passkeys on makes the organization passwordless.
ALTER TABLE organizations ADD COLUMN passkeys INTEGER NOT NULL DEFAULT 1;
