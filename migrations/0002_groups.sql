-- Groups and roles (issue 10): groups per organization, their members, a per-client map from
-- group to role value, and the groups a client is restricted to.
--
-- Everything refers to a group by its id, never its name, so a rename is one UPDATE and every
-- membership, role map and restriction follows it.

CREATE TABLE groups (
  id         TEXT PRIMARY KEY,                   -- grp_ + 128 random bits; never shown
  org        TEXT NOT NULL REFERENCES organizations(slug) ON DELETE CASCADE,
  name       TEXT NOT NULL,                      -- letters, digits, - _ . (protocol/groups.rs)
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_org_name ON groups (org, name COLLATE NOCASE);

CREATE TABLE group_members (
  group_id   TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

-- Members of group_id get `role` at the client. Deleting the group drops its mappings.
CREATE TABLE client_roles (
  org       TEXT NOT NULL,
  client_id TEXT NOT NULL,
  group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  role      TEXT NOT NULL,
  position  INTEGER NOT NULL,                    -- the order the admin gave
  PRIMARY KEY (org, client_id, group_id, role),
  FOREIGN KEY (org, client_id) REFERENCES clients(org, client_id) ON DELETE CASCADE
);

-- A client with rows here admits only members of these groups. The group reference has no
-- ON DELETE action: deleting a group a client is restricted to fails (the admin API answers 409)
-- rather than silently opening the client to everyone. Deleting the client, or the whole
-- organization, removes the rows first within the same statement.
CREATE TABLE client_allowed_groups (
  org       TEXT NOT NULL,
  client_id TEXT NOT NULL,
  group_id  TEXT NOT NULL REFERENCES groups(id),
  PRIMARY KEY (org, client_id, group_id),
  FOREIGN KEY (org, client_id) REFERENCES clients(org, client_id) ON DELETE CASCADE
);
CREATE INDEX client_allowed_groups_group ON client_allowed_groups (group_id);
CREATE INDEX client_roles_group ON client_roles (group_id);

-- How the client receives them: the claim names (Rocket.Chat's "Roles/Groups field name" and
-- "field for channel mapping") and whether the ID token carries them as well as userinfo.
ALTER TABLE clients ADD COLUMN groups_claim TEXT NOT NULL DEFAULT 'groups';
ALTER TABLE clients ADD COLUMN roles_claim TEXT NOT NULL DEFAULT 'roles';
ALTER TABLE clients ADD COLUMN groups_in_id_token INTEGER NOT NULL DEFAULT 0;
