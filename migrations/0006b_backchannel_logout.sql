-- OpenID Connect Back-Channel Logout 1.0: where a client is told that a user's session ended
-- (§2.2 backchannel_logout_uri; NULL: the client is not told), and whether it needs the
-- session id in the logout token (backchannel_logout_session_required).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;

-- The SSO session a grant was issued under (the ID token's `sid`, §2.1): a logout token for a
-- session names it, and a client that needs `sid` is told per session. NULL for grants from
-- before this migration.
ALTER TABLE grants ADD COLUMN sid TEXT;

-- Logout finds a user's live grants per client.
CREATE INDEX grants_user ON grants (user_id, revoked_at);
