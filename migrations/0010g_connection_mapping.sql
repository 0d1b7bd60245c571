-- Per-connection claim mapping and JIT defaults (issue 17). All JSON text, checked by the admin
-- API (src/admin/connections.rs) before it writes; the rules are in
-- src/protocol/upstream_mapping.rs.
--
-- claim_mapping:  {"username"|"email"|"name"|"picture": upstream claim name}; '{}' reads the
--                 OpenID Connect Core §5.1 names (preferred_username, email, name, picture).
-- default_groups: names of this organization's groups a user created on a first sign-in joins.
-- groups_claim:   the upstream claim carrying group values; NULL: no group mapping.
-- group_mapping:  {upstream value: Clavex group name}; applied at every sign-in through the
--                 connection, adding and removing only the groups it names.
ALTER TABLE connections ADD COLUMN claim_mapping TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN default_groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE connections ADD COLUMN groups_claim TEXT;
ALTER TABLE connections ADD COLUMN group_mapping TEXT NOT NULL DEFAULT '{}';
