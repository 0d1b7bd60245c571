-- Custom attributes per organization (issue 18, item 2): a definition (name, JSON type, the scope
-- that releases it) and each user's value. The rules live in src/protocol/attributes.rs; the
-- admin API checks every name and value before it writes.
--
-- Names are unique per organization ignoring case (a `Department` next to a `department` would
-- be two claims a relying party could confuse). A value names its definition by (org, name):
-- deleting the definition deletes every value with it (ON DELETE CASCADE), deleting the user
-- deletes the user's values.

CREATE TABLE attributes (
  org         TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  name        TEXT NOT NULL COLLATE NOCASE,       -- claim-name syntax, never a reserved claim
  type        TEXT NOT NULL CHECK (type IN ('string', 'number', 'integer', 'boolean', 'string_array')),
  scope       TEXT NOT NULL,                      -- profile, email, phone, address or groups
  description TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (org, name)
);

-- One row per user and attribute that has a value; `value` is its JSON text. Every read of a
-- user gathers these with the user in the same query (src/edge/store/attributes.rs), so
-- userinfo and the token endpoint pay no extra round trip.
CREATE TABLE user_attributes (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  org     TEXT NOT NULL,
  name    TEXT NOT NULL COLLATE NOCASE,
  value   TEXT NOT NULL,
  PRIMARY KEY (user_id, name),
  FOREIGN KEY (org, name) REFERENCES attributes(org, name) ON DELETE CASCADE
);
CREATE INDEX user_attributes_definition ON user_attributes (org, name);

-- A client may take the attributes whose scope is granted in its ID tokens too, not only at
-- userinfo (the admin clients API's `attributes_in_id_token`).
ALTER TABLE clients ADD COLUMN attributes_in_id_token INTEGER NOT NULL DEFAULT 0;
