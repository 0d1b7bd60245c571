-- Brute-force throttling and the audit trail (issue 9).

-- Consecutive failures per key, and until when the key is locked (milliseconds: a 1 s wait
-- must last a second, not whatever is left of the current one). D1's primary decides every
-- increment (an UPSERT), so the count holds across Cloudflare locations; reads of the lock may
-- come from a replica (a lag of well under a second only delays a lock by that much).
-- scope: the organization slug, or '' for the admin API. key: 'user:<id>' (an account),
-- 'login:<name>' (a username that matches no account, throttled alike so the answer does not
-- reveal which exist), 'ip:<address>', 'client:<id> ip:<address>', 'admin ip:<address>'.
CREATE TABLE throttles (
  scope        TEXT NOT NULL,
  key          TEXT NOT NULL,
  failures        INTEGER NOT NULL,
  locked_until_ms INTEGER NOT NULL DEFAULT 0,
  updated_at_ms   INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);

-- Per-organization policy (Keycloak's brute-force defaults, with its 1 s doubling wait capped at
-- 15 minutes): failures before the wait starts, per account and per client IP; the longest wait;
-- after how long without a failure a count starts again; and how long audit events are kept.
ALTER TABLE organizations ADD COLUMN throttle_account_failures INTEGER NOT NULL DEFAULT 5;
ALTER TABLE organizations ADD COLUMN throttle_ip_failures INTEGER NOT NULL DEFAULT 20;
ALTER TABLE organizations ADD COLUMN throttle_max_wait_seconds INTEGER NOT NULL DEFAULT 900;
ALTER TABLE organizations ADD COLUMN throttle_reset_seconds INTEGER NOT NULL DEFAULT 43200;
ALTER TABLE organizations ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 90;

-- What happened, per organization: never a secret, a password or a token.
CREATE TABLE events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the pagination cursor: newest first
  org        TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  at         INTEGER NOT NULL,
  type       TEXT NOT NULL,
  user_id    TEXT,
  client_id  TEXT,
  ip         TEXT,
  user_agent TEXT,
  detail     TEXT                                -- JSON object
);
CREATE INDEX events_org ON events (org, id);
CREATE INDEX events_org_type ON events (org, type, id);
CREATE INDEX events_at ON events (at);
