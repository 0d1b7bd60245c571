-- Single-use markers decided at the D1 primary (issue 17): a sealed value that travels in a
-- cookie or a form (an upstream sign-in's transaction, a link confirmation form) cannot itself
-- say it was used, so its first use inserts its key here and every other use meets the PRIMARY
-- KEY: of any number of concurrent uses exactly one inserts (INSERT … ON CONFLICT DO NOTHING
-- RETURNING, src/edge/store/once.rs). A row is kept until the sealed value it names has expired
-- (`expires_at`), after which the value is refused anyway; the scheduled clean-up deletes it.
CREATE TABLE used_once (
  key        TEXT PRIMARY KEY,   -- purpose ":" SHA-256 of the value's random id (never the id)
  org        TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX used_once_expiry ON used_once (expires_at);
