//! Users (D1 table `users`). Contract used by the OIDC endpoints; the admin API owns writes.

use serde::{Deserialize, Serialize};
use worker::{D1Database, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Opaque, random, never reused: the `sub` claim.
    pub id: String,
    pub org: String,
    pub username: String,
    pub email: String,
    pub name: Option<String>,
    pub picture: Option<String>,
    #[serde(deserialize_with = "int_bool")]
    pub email_verified: bool,
    #[serde(deserialize_with = "int_bool")]
    pub disabled: bool,
    /// PHC-style string (see edge/password.rs). Never serialized into a response.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// SQLite has no boolean: D1 returns 0/1.
fn int_bool<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        _ => false,
    })
}

pub async fn get_user(db: &D1Database, org: &str, id: &str) -> Result<Option<User>> {
    db.prepare("SELECT * FROM users WHERE org = ?1 AND id = ?2")
        .bind(&[org.into(), id.into()])?
        .first::<User>(None)
        .await
}

/// The user a login form names: by username or by email, both case-insensitive.
pub async fn find_user_by_login(db: &D1Database, org: &str, login: &str) -> Result<Option<User>> {
    db.prepare(
        "SELECT * FROM users WHERE org = ?1 AND (username = ?2 COLLATE NOCASE OR email = ?2 COLLATE NOCASE) LIMIT 1",
    )
    .bind(&[org.into(), login.into()])?
    .first::<User>(None)
    .await
}
