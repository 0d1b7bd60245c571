//! Custom attributes (D1 tables `attributes`, `user_attributes`, migration 0007a): the
//! definitions the admin API manages, the SQL that writes a user's values, and the column that
//! brings a user's values into every query that already reads the user — so releasing them costs
//! userinfo and the token endpoint no extra round trip.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Result;

use crate::edge::store::d1::{int, opt_text};
use crate::edge::store::database::{Db, Stmt};

/// The values of the user whose row is `user` (a table alias), each with its name and the scope
/// that releases it, as a JSON array column `attribute_values` (see `d1::json_list`).
pub fn user_attributes_column(user: &str) -> String {
    format!(
        "(SELECT json_group_array(json_object('name', ad.name, 'scope', ad.scope, 'value', json(ua.value))) \
         FROM user_attributes ua JOIN attributes ad ON ad.org = ua.org AND ad.name = ua.name \
         WHERE ua.user_id = {user}.id) AS attribute_values"
    )
}

/// An attribute definition as stored and as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub scope: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "name, type, scope, description, created_at, updated_at";

pub async fn list(db: &Db, org: &str) -> Result<Vec<Definition>> {
    db.prepare(format!(
        "SELECT {COLUMNS} FROM attributes WHERE org = ?1 ORDER BY name"
    ))
    .bind(&[org.into()])?
    .all()
    .await?
    .results::<Definition>()
}

/// By name, ignoring case (names are unique that way).
pub async fn get(db: &Db, org: &str, name: &str) -> Result<Option<Definition>> {
    db.prepare(format!(
        "SELECT {COLUMNS} FROM attributes WHERE org = ?1 AND name = ?2"
    ))
    .bind(&[org.into(), name.into()])?
    .first::<Definition>(None)
    .await
}

/// Fails with a PRIMARY KEY error when the name is taken (ignoring case). Whether it was stored:
/// not when the organization already has `MAX_ATTRIBUTES` (counted in the same statement, so
/// concurrent creations cannot pass the limit together).
pub async fn insert(db: &Db, org: &str, d: &Definition) -> Result<bool> {
    let result = db
        .prepare(format!(
            "INSERT INTO attributes (org, name, type, scope, description, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
             WHERE (SELECT COUNT(*) FROM attributes WHERE org = ?1) < {}",
            crate::protocol::attributes::MAX_ATTRIBUTES
        ))
        .bind(&[
            org.into(),
            d.name.as_str().into(),
            d.kind.as_str().into(),
            d.scope.as_str().into(),
            opt_text(d.description.as_deref()),
            int(d.created_at),
            int(d.updated_at),
        ])?
        .run()
        .await?;
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}

/// Writes the scope and/or description (`Some(None)`: clear it); the definition afterwards.
pub async fn update(
    db: &Db,
    org: &str,
    name: &str,
    scope: Option<&str>,
    description: Option<Option<&str>>,
    now: i64,
) -> Result<Option<Definition>> {
    db.prepare(format!(
        "UPDATE attributes SET scope = COALESCE(?3, scope), \
         description = CASE WHEN ?4 = 1 THEN ?5 ELSE description END, updated_at = ?6 \
         WHERE org = ?1 AND name = ?2 RETURNING {COLUMNS}"
    ))
    .bind(&[
        org.into(),
        name.into(),
        opt_text(scope),
        crate::edge::store::d1::boolean(description.is_some()),
        opt_text(description.flatten()),
        int(now),
    ])?
    .first::<Definition>(None)
    .await
}

/// Deletes the definition and, by cascade, every user's value. Whether it existed.
pub async fn delete(db: &Db, org: &str, name: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM attributes WHERE org = ?1 AND name = ?2 RETURNING name")
        .bind(&[org.into(), name.into()])?
        .first::<Value>(None)
        .await?
        .is_some())
}

/// ?1 user, ?2 org, ?3 name, ?4 the value's JSON text, ?5 the type it was checked against.
/// Stores nothing unless the user is in the organization and the definition still has that type
/// (a definition deleted since the check takes no value).
pub(crate) const UPSERT_VALUE: &str = "INSERT INTO user_attributes (user_id, org, name, value) \
     SELECT ?1, ?2, a.name, ?4 FROM attributes a \
     WHERE a.org = ?2 AND a.name = ?3 AND a.type = ?5 \
       AND EXISTS (SELECT 1 FROM users u WHERE u.id = ?1 AND u.org = ?2) \
     ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value";

/// ?1 user, ?2 org, ?3 name.
pub(crate) const DELETE_VALUE: &str =
    "DELETE FROM user_attributes WHERE user_id = ?1 AND org = ?2 AND name = ?3";

/// One checked change of a user's value: set (with the type it was checked against) or remove.
#[derive(Debug)]
pub enum ValueWrite {
    Set {
        name: String,
        kind: String,
        value: Value,
    },
    Remove {
        name: String,
    },
}

/// The statements that apply `writes` to the user `user_id`, for a batch with the user's own
/// write (one transaction: all of it or nothing).
pub fn value_statements(
    db: &Db,
    org: &str,
    user_id: &str,
    writes: &[ValueWrite],
) -> Result<Vec<Stmt>> {
    writes
        .iter()
        .map(|w| match w {
            ValueWrite::Set { name, kind, value } => db.prepare(UPSERT_VALUE).bind(&[
                user_id.into(),
                org.into(),
                name.as_str().into(),
                value.to_string().into(),
                kind.as_str().into(),
            ]),
            ValueWrite::Remove { name } => {
                db.prepare(DELETE_VALUE)
                    .bind(&[user_id.into(), org.into(), name.as_str().into()])
            }
        })
        .collect()
}
