//! Groups, their members, and the SQL fragments that bring a user's groups and a client's role
//! map and restriction into the queries that already read the user or the client — so groups
//! cost no extra round trip on any sign-in path. The admin API owns writes.

use serde::Deserialize;
use worker::Result;

use crate::edge::store::d1::int;
use crate::edge::store::database::Db;

/// The names of the groups of the user whose row is `user` (a table alias), as a JSON array
/// column `group_names` (see `d1::json_list`).
pub fn user_groups_column(user: &str) -> String {
    format!(
        "(SELECT json_group_array(gr.name) FROM group_members gm JOIN groups gr ON gr.id = gm.group_id \
         WHERE gm.user_id = {user}.id) AS group_names"
    )
}

/// A client's role map as a JSON array column `role_map` of {group, role, position}, for the
/// client whose row is `client`.
pub fn client_role_map_column(client: &str) -> String {
    format!(
        "(SELECT json_group_array(json_object('group', gr.name, 'role', cr.role, 'position', cr.position)) \
         FROM client_roles cr JOIN groups gr ON gr.id = cr.group_id \
         WHERE cr.org = {client}.org AND cr.client_id = {client}.client_id) AS role_map"
    )
}

/// The role map and the restriction (`allowed_group_names`) of the client whose row is `client`.
pub fn client_group_columns(client: &str) -> String {
    format!(
        "{}, (SELECT json_group_array(gr.name) FROM client_allowed_groups ca JOIN groups gr ON gr.id = ca.group_id \
         WHERE ca.org = {client}.org AND ca.client_id = {client}.client_id) AS allowed_group_names",
        client_role_map_column(client)
    )
}

/// True when the grant `grant`'s user may use the grant's client: the client is open to all, or
/// the user is in one of its allowed groups. Used in reads and in the guards of refresh writes.
pub fn user_allowed_condition(grant: &str) -> String {
    format!(
        "(NOT EXISTS (SELECT 1 FROM client_allowed_groups ca WHERE ca.org = {grant}.org AND ca.client_id = {grant}.client_id) \
         OR EXISTS (SELECT 1 FROM client_allowed_groups ca JOIN group_members gm ON gm.group_id = ca.group_id \
                    WHERE ca.org = {grant}.org AND ca.client_id = {grant}.client_id AND gm.user_id = {grant}.user_id))"
    )
}

/// One entry of the `role_map` column.
#[derive(Debug, Deserialize)]
pub struct RoleMapRow {
    pub group: String,
    pub role: String,
    pub position: i64,
}

/// A group as the admin API shows it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub member_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const GROUP_COLUMNS: &str = "g.name, g.created_at, g.updated_at, \
     (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count";

/// Inserts a group. Fails with a UNIQUE error when the name (ignoring case) is taken in the org.
pub async fn insert_group(db: &Db, id: &str, org: &str, name: &str, now: i64) -> Result<()> {
    db.prepare(
        "INSERT INTO groups (id, org, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )
    .bind(&[id.into(), org.into(), name.into(), int(now)])?
    .run()
    .await?;
    Ok(())
}

pub async fn list_groups(db: &Db, org: &str) -> Result<Vec<Group>> {
    db.prepare(format!(
        "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.org = ?1 ORDER BY g.name COLLATE NOCASE"
    ))
    .bind(&[org.into()])?
    .all()
    .await?
    .results::<Group>()
}

/// The group named `name` (ignoring case).
pub async fn get_group(db: &Db, org: &str, name: &str) -> Result<Option<Group>> {
    db.prepare(format!(
        "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.org = ?1 AND g.name = ?2 COLLATE NOCASE"
    ))
    .bind(&[org.into(), name.into()])?
    .first::<Group>(None)
    .await
}

/// Renames a group; memberships, role maps and restrictions follow (they refer to its id). Fails
/// with a UNIQUE error when the new name is taken. `false` when the group is gone.
pub async fn rename_group(
    db: &Db,
    org: &str,
    name: &str,
    new_name: &str,
    now: i64,
) -> Result<bool> {
    Ok(db
        .prepare(
            "UPDATE groups SET name = ?3, updated_at = ?4 WHERE org = ?1 AND name = ?2 COLLATE NOCASE RETURNING id",
        )
        .bind(&[org.into(), name.into(), new_name.into(), int(now)])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// The clients restricted to a group (which keep it from being deleted).
pub async fn clients_restricted_to(db: &Db, org: &str, name: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Row {
        client_id: String,
    }
    Ok(db
        .prepare(
            "SELECT ca.client_id FROM client_allowed_groups ca JOIN groups g ON g.id = ca.group_id \
             WHERE g.org = ?1 AND g.name = ?2 COLLATE NOCASE ORDER BY ca.client_id",
        )
        .bind(&[org.into(), name.into()])?
        .all()
        .await?
        .results::<Row>()?
        .into_iter()
        .map(|r| r.client_id)
        .collect())
}

/// Deletes a group with its memberships and role mappings (they cascade). Fails with a FOREIGN
/// KEY error while a client is restricted to it. Whether it existed.
pub async fn delete_group(db: &Db, org: &str, name: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM groups WHERE org = ?1 AND name = ?2 COLLATE NOCASE RETURNING id")
        .bind(&[org.into(), name.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// Adds a user to the group named `name` (ignoring case), in a batch: nothing when the group is
/// gone (deleted since the connection named it) or the user already a member.
pub fn add_member_statement(
    db: &Db,
    org: &str,
    name: &str,
    user_id: &str,
    now: i64,
) -> Result<crate::edge::store::database::Stmt> {
    db.prepare(
        "INSERT OR IGNORE INTO group_members (group_id, user_id, created_at) \
         SELECT id, ?3, ?4 FROM groups WHERE org = ?1 AND name = ?2 COLLATE NOCASE",
    )
    .bind(&[org.into(), name.into(), user_id.into(), int(now)])
}

/// Removes a user from the group named `name`, in a batch.
pub fn remove_member_statement(
    db: &Db,
    org: &str,
    name: &str,
    user_id: &str,
) -> Result<crate::edge::store::database::Stmt> {
    db.prepare(
        "DELETE FROM group_members WHERE user_id = ?3 \
         AND group_id IN (SELECT id FROM groups WHERE org = ?1 AND name = ?2 COLLATE NOCASE)",
    )
    .bind(&[org.into(), name.into(), user_id.into()])
}

/// Adds a user to a group (idempotent). Whether both exist in the org.
pub async fn add_member(db: &Db, org: &str, name: &str, user_id: &str, now: i64) -> Result<bool> {
    let results = db
        .batch(vec![
            db.prepare(
                "INSERT OR IGNORE INTO group_members (group_id, user_id, created_at) \
                 SELECT g.id, u.id, ?4 FROM groups g JOIN users u ON u.org = g.org \
                 WHERE g.org = ?1 AND g.name = ?2 COLLATE NOCASE AND u.id = ?3",
            )
            .bind(&[org.into(), name.into(), user_id.into(), int(now)])?,
            db.prepare(
                "SELECT 1 AS found FROM group_members m JOIN groups g ON g.id = m.group_id \
                 WHERE g.org = ?1 AND g.name = ?2 COLLATE NOCASE AND m.user_id = ?3",
            )
            .bind(&[org.into(), name.into(), user_id.into()])?,
        ])
        .await?;
    Ok(match results.get(1) {
        Some(r) => !r.results::<serde_json::Value>()?.is_empty(),
        None => false,
    })
}

/// Removes a user from a group. Whether they were a member.
pub async fn remove_member(db: &Db, org: &str, name: &str, user_id: &str) -> Result<bool> {
    Ok(db
        .prepare(
            "DELETE FROM group_members WHERE user_id = ?3 \
             AND group_id = (SELECT id FROM groups WHERE org = ?1 AND name = ?2 COLLATE NOCASE) RETURNING user_id",
        )
        .bind(&[org.into(), name.into(), user_id.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}
