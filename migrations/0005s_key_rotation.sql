-- Rotating KEY_ENCRYPTION_SECRET without losing second factors (issue 15, findings 7, 11, 12).
-- Sealed values now name the secret that sealed them (crypto/keyring.rs); nothing here changes
-- how existing values open.

-- Which enrolment a TOTP secret is: random, set with the secret and cleared with it, unchanged
-- when the secret is re-sealed under a new KEY_ENCRYPTION_SECRET. Accepting a TOTP step requires
-- it (store/mfa.rs consume_step), so a code checked against a stale copy of the row (a lagging
-- replica after an admin reset and re-enrolment) is not accepted for the new enrolment.
ALTER TABLE users ADD COLUMN totp_secret_id TEXT;
UPDATE users SET totp_secret_id = lower(hex(randomblob(12))) WHERE totp_secret_sealed IS NOT NULL;

-- The key of the user's recovery-code hashes (HMAC-SHA256): 32 random bytes made at enrolment,
-- sealed like the TOTP secret. A rotation re-seals it, so the hashes stay valid. NULL for users
-- enrolled before this migration: their codes keep their unsalted SHA-256 hashes (which cannot
-- be re-hashed without the codes) until they are used or the user enrols again.
ALTER TABLE users ADD COLUMN recovery_key_sealed TEXT;
