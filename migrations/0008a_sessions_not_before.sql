-- "Sign out everywhere" (issue 16, item 2): a per-user time before which every SSO session of the
-- user counts as ended, wherever it is stored (KV has no query by user, and no location can
-- delete another's copy). Every place that trusts a session already reads the user row, so the
-- check costs no extra read (src/protocol/account.rs `session_live`).
--
-- Unix milliseconds, not seconds: a session another browser started in the same second as the
-- sign-out must end too, while the browser that changed its password keeps the fresh session it
-- gets at once afterwards. NULL: never signed out everywhere.
ALTER TABLE users ADD COLUMN sessions_not_before_ms INTEGER;
