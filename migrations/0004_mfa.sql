-- Second factor (issue 11): TOTP (RFC 6238) with single-use recovery codes, required per
-- organization or per client.

-- off: nobody is asked; optional: users may enrol (and are then always asked); required: every
-- user must have a second factor and enrols at the next sign-in.
ALTER TABLE organizations ADD COLUMN mfa TEXT NOT NULL DEFAULT 'off' CHECK (mfa IN ('off', 'optional', 'required'));
-- A client that requires a second factor even where the organization's policy is optional.
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

-- The TOTP secret only sealed (AES-256-GCM under a key derived from KEY_ENCRYPTION_SECRET, the
-- user id as associated data). totp_last_step is the last 30 s step accepted: a code is
-- accepted only for a later step, decided by a conditional UPDATE at the D1 primary, so a code
-- (or an older one) replayed within its window is refused everywhere.
ALTER TABLE users ADD COLUMN totp_secret_sealed TEXT;
ALTER TABLE users ADD COLUMN totp_enrolled_at INTEGER;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;

-- Recovery codes only hashed (SHA-256: each is 50 random bits shown once, and used at most once).
CREATE TABLE recovery_codes (
  user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  used_at   INTEGER,
  PRIMARY KEY (user_id, code_hash)
);

-- The factors of the sign-in a grant came from (RFC 8176 amr values, space-separated), for the
-- ID tokens issued from it at refresh.
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
