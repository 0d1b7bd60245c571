-- One-time links (issue 16, items 3 and 4): an invitation to set up an account (`setup`), an
-- administrator's recovery of a locked-out user (`recovery`), or a password reset the user asked
-- for by e-mail (`reset_password`). The token itself (32 random bytes, base64url, in the link's
-- path) is never stored: only its SHA-256, like every other high-entropy secret.
--
-- Single use is decided here, at the D1 primary, by one conditional write (src/edge/store/links.rs
-- `CLAIM`): `UPDATE … SET used_at = ?, claim_nonce = ? WHERE token_hash = ? AND used_at IS NULL
-- AND revoked_at IS NULL AND expires_at > ? … RETURNING`, so of any number of concurrent claims
-- exactly one changes the row. The writes the claim allows (the new password, the removal of the
-- second factor) run in the same batch, each guarded by `claim_nonce` — this request's random
-- value — so a request whose claim lost changes nothing.
--
-- A newer link for the same user and purpose revokes the older ones (`revoked_at`), so only the
-- last link an administrator sent (or the last reset e-mail) works.
CREATE TABLE setup_links (
  token_hash           TEXT PRIMARY KEY,                 -- SHA-256 hex of the token
  org                  TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  user_id              TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  purpose              TEXT NOT NULL CHECK (purpose IN ('setup', 'recovery', 'reset_password')),
  reset_password       INTEGER NOT NULL DEFAULT 1,       -- the link sets a new password
  reset_second_factor  INTEGER NOT NULL DEFAULT 0,       -- the link removes TOTP and recovery codes
  created_at           INTEGER NOT NULL,
  expires_at           INTEGER NOT NULL,
  used_at              INTEGER,
  claim_nonce          TEXT,                             -- the claiming request's random value
  revoked_at           INTEGER                           -- superseded by a newer link
);
CREATE INDEX setup_links_user ON setup_links (org, user_id, purpose);
CREATE INDEX setup_links_expiry ON setup_links (expires_at);
