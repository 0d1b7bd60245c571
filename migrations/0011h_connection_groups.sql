-- A connection's groups by id, not by name (issue 17): `default_groups` and `group_mapping`
-- (migration 0010g) held group NAMES in JSON, so renaming a group silently dropped it from every
-- connection and deleting one was never refused. They now live in two tables that refer to the
-- group's id, like every other reference to a group (migration 0002): a rename is one UPDATE
-- that they follow, and deleting a group a connection names fails (the admin API answers 409
-- naming the connections) — the same as a group a client is restricted to. Deleting the
-- connection, or the whole organization, removes the rows within the same statement.
--
-- The admin API still speaks names: it resolves them to ids when it writes and reads the names
-- back (src/edge/store/connections.rs).

-- The groups a user created on a first sign-in through the connection joins.
CREATE TABLE connection_default_groups (
  connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  group_id      TEXT NOT NULL REFERENCES groups(id),
  PRIMARY KEY (connection_id, group_id)
);
CREATE INDEX connection_default_groups_group ON connection_default_groups (group_id);

-- {upstream group value → group}: applied at every sign-in through the connection.
CREATE TABLE connection_group_mapping (
  connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  upstream_value TEXT NOT NULL,
  group_id       TEXT NOT NULL REFERENCES groups(id),
  PRIMARY KEY (connection_id, upstream_value)
);
CREATE INDEX connection_group_mapping_group ON connection_group_mapping (group_id);

-- The existing rows, converted: each name to the id of the group it names now (ignoring case,
-- as names are unique that way). A name whose group was deleted meanwhile — which sign-ins
-- already skipped — is dropped.
INSERT OR IGNORE INTO connection_default_groups (connection_id, group_id)
  SELECT c.id, g.id FROM connections c, json_each(c.default_groups) j
  JOIN groups g ON g.org = c.org AND g.name = j.value COLLATE NOCASE;
INSERT OR IGNORE INTO connection_group_mapping (connection_id, upstream_value, group_id)
  SELECT c.id, j.key, g.id FROM connections c, json_each(c.group_mapping) j
  JOIN groups g ON g.org = c.org AND g.name = j.value COLLATE NOCASE;

ALTER TABLE connections DROP COLUMN default_groups;
ALTER TABLE connections DROP COLUMN group_mapping;
