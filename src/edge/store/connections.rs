//! Upstream OpenID Connect connections and the links of users to upstream accounts (D1 tables
//! `connections`, `user_links`, migration 0008f). The admin API owns connection writes; the
//! callback (oidc/federation.rs) writes links.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::Result;

use crate::edge::store::d1::{boolean, int, int_bool, json_text, opt_text};
use crate::edge::store::database::{Db, Stmt};
use crate::protocol::upstream_mapping::ClaimMapping;

/// A connection as stored. The sealed client secret is never serialized into a response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    pub org: String,
    pub issuer: String,
    pub client_id: String,
    #[serde(skip_serializing)]
    pub client_secret_sealed: String,
    pub token_endpoint_auth_method: String,
    pub scopes: String,
    pub label: String,
    #[serde(deserialize_with = "int_bool")]
    pub jit_create: bool,
    #[serde(deserialize_with = "int_bool")]
    pub link_by_verified_email: bool,
    #[serde(deserialize_with = "int_bool")]
    pub trust_upstream_mfa: bool,
    /// The upstream claims a new user's profile is read from (migration 0010g).
    #[serde(default, deserialize_with = "json_text")]
    pub claim_mapping: ClaimMapping,
    /// Names of groups a user created on a first sign-in joins.
    #[serde(default, deserialize_with = "json_text")]
    pub default_groups: Vec<String>,
    /// The upstream claim with group values, and what each value means here.
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default, deserialize_with = "json_text")]
    pub group_mapping: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The groups are stored by id (migration 0011h) and read back by their names as they are now,
/// so a renamed group stays in every connection that names it.
pub(crate) const COLUMNS: &str = "id, org, issuer, client_id, client_secret_sealed, \
     token_auth_method AS token_endpoint_auth_method, scopes, label, jit_create, \
     link_by_verified_email, trust_upstream_mfa, claim_mapping, groups_claim, created_at, \
     updated_at, \
     (SELECT json_group_array(name) FROM (SELECT g.name FROM connection_default_groups d \
      JOIN groups g ON g.id = d.group_id WHERE d.connection_id = connections.id \
      ORDER BY g.name COLLATE NOCASE)) AS default_groups, \
     (SELECT json_group_object(m.upstream_value, g.name) FROM connection_group_mapping m \
      JOIN groups g ON g.id = m.group_id WHERE m.connection_id = connections.id) AS group_mapping";

/// A JSON column's text.
fn json_column<T: Serialize>(value: &T) -> wasm_bindgen::JsValue {
    serde_json::to_string(value)
        .expect("maps and lists of strings serialize")
        .into()
}

pub async fn list(db: &Db, org: &str) -> Result<Vec<Connection>> {
    db.prepare(format!(
        "SELECT {COLUMNS} FROM connections WHERE org = ?1 ORDER BY created_at, id"
    ))
    .bind(&[org.into()])?
    .all()
    .await?
    .results::<Connection>()
}

pub async fn get(db: &Db, org: &str, id: &str) -> Result<Option<Connection>> {
    db.prepare(format!(
        "SELECT {COLUMNS} FROM connections WHERE org = ?1 AND id = ?2"
    ))
    .bind(&[org.into(), id.into()])?
    .first::<Connection>(None)
    .await
}

pub async fn insert(db: &Db, c: &Connection) -> Result<()> {
    let mut statements = vec![
        db.prepare(
            "INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, token_auth_method, \
             scopes, label, jit_create, link_by_verified_email, trust_upstream_mfa, created_at, updated_at, \
             claim_mapping, groups_claim) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .bind(&[
            c.id.as_str().into(),
            c.org.as_str().into(),
            c.issuer.as_str().into(),
            c.client_id.as_str().into(),
            c.client_secret_sealed.as_str().into(),
            c.token_endpoint_auth_method.as_str().into(),
            c.scopes.as_str().into(),
            c.label.as_str().into(),
            boolean(c.jit_create),
            boolean(c.link_by_verified_email),
            boolean(c.trust_upstream_mfa),
            int(c.created_at),
            int(c.updated_at),
            json_column(&c.claim_mapping),
            opt_text(c.groups_claim.as_deref()),
        ])?,
    ];
    statements.extend(default_groups_statements(db, c)?);
    statements.extend(group_mapping_statements(db, c)?);
    db.batch(statements).await?;
    Ok(())
}

/// The statements that make the stored default groups `c.default_groups`: by id, each name
/// resolved in the same transaction. A group deleted since the admin API checked the names
/// makes the id NULL and the whole write fail (`is_group_gone`), never a silent gap; a
/// connection deleted meanwhile gets no rows (nothing to refer to).
fn default_groups_statements(db: &Db, c: &Connection) -> Result<Vec<Stmt>> {
    let mut out = vec![
        db.prepare("DELETE FROM connection_default_groups WHERE connection_id = ?1")
            .bind(&[c.id.as_str().into()])?,
    ];
    for name in &c.default_groups {
        out.push(
            db.prepare(
                "INSERT INTO connection_default_groups (connection_id, group_id) \
                 SELECT ?1, (SELECT id FROM groups WHERE org = ?2 AND name = ?3 COLLATE NOCASE) \
                 WHERE EXISTS (SELECT 1 FROM connections WHERE id = ?1)",
            )
            .bind(&[
                c.id.as_str().into(),
                c.org.as_str().into(),
                name.as_str().into(),
            ])?,
        );
    }
    Ok(out)
}

/// As `default_groups_statements`, for the group mapping.
fn group_mapping_statements(db: &Db, c: &Connection) -> Result<Vec<Stmt>> {
    let mut out = vec![
        db.prepare("DELETE FROM connection_group_mapping WHERE connection_id = ?1")
            .bind(&[c.id.as_str().into()])?,
    ];
    for (value, name) in &c.group_mapping {
        out.push(
            db.prepare(
                "INSERT INTO connection_group_mapping (connection_id, upstream_value, group_id) \
                 SELECT ?1, ?2, (SELECT id FROM groups WHERE org = ?3 AND name = ?4 COLLATE NOCASE) \
                 WHERE EXISTS (SELECT 1 FROM connections WHERE id = ?1)",
            )
            .bind(&[
                c.id.as_str().into(),
                value.as_str().into(),
                c.org.as_str().into(),
                name.as_str().into(),
            ])?,
        );
    }
    Ok(out)
}

/// Whether a write failed because a group it names was deleted meanwhile (its id NULL).
pub fn is_group_gone(e: &worker::Error) -> bool {
    let text = e.to_string();
    text.contains("NOT NULL") && text.contains("group_id")
}

/// The columns an update may write, with their values in `c`.
fn mutable_columns(c: &Connection) -> Vec<(&'static str, wasm_bindgen::JsValue)> {
    vec![
        ("issuer", c.issuer.as_str().into()),
        ("client_id", c.client_id.as_str().into()),
        (
            "client_secret_sealed",
            c.client_secret_sealed.as_str().into(),
        ),
        (
            "token_auth_method",
            c.token_endpoint_auth_method.as_str().into(),
        ),
        ("scopes", c.scopes.as_str().into()),
        ("label", c.label.as_str().into()),
        ("jit_create", boolean(c.jit_create)),
        ("link_by_verified_email", boolean(c.link_by_verified_email)),
        ("trust_upstream_mfa", boolean(c.trust_upstream_mfa)),
        ("claim_mapping", json_column(&c.claim_mapping)),
        ("groups_claim", opt_text(c.groups_claim.as_deref())),
    ]
}

/// Writes the columns in which `after` (the stored row with the PATCH merged in) differs from
/// `before` (the row as read), and `updated_at` — never the others: two PATCHes racing (one
/// turning `trust_upstream_mfa` off, one renaming the label) must not write back each other's
/// old values (issue 15, item 10). The default groups and the group mapping are replaced only
/// when they changed, in the same transaction. The connection afterwards, `None` when it is gone.
pub async fn update(
    db: &Db,
    before: &Connection,
    after: &Connection,
) -> Result<Option<Connection>> {
    let mut set = vec!["updated_at = ?3".to_string()];
    let mut values: Vec<wasm_bindgen::JsValue> = vec![
        after.org.as_str().into(),
        after.id.as_str().into(),
        int(after.updated_at),
    ];
    for ((name, old), (_, new)) in mutable_columns(before)
        .into_iter()
        .zip(mutable_columns(after))
    {
        if old != new {
            values.push(new);
            set.push(format!("{name} = ?{}", values.len()));
        }
    }
    let mut statements = vec![
        db.prepare(format!(
            "UPDATE connections SET {} WHERE org = ?1 AND id = ?2 RETURNING id",
            set.join(", ")
        ))
        .bind(&values)?,
    ];
    if before.default_groups != after.default_groups {
        statements.extend(default_groups_statements(db, after)?);
    }
    if before.group_mapping != after.group_mapping {
        statements.extend(group_mapping_statements(db, after)?);
    }
    let read = statements.len();
    statements.push(
        db.prepare(format!(
            "SELECT {COLUMNS} FROM connections WHERE org = ?1 AND id = ?2"
        ))
        .bind(&[after.org.as_str().into(), after.id.as_str().into()])?,
    );
    let results = db.batch(statements).await?;
    match results.get(read) {
        Some(r) => Ok(r.results::<Connection>()?.into_iter().next()),
        None => Ok(None),
    }
}

/// The connections of `org` that name the group `name` (default groups or group mapping):
/// "label (id)", for the 409 of a group deletion.
pub async fn naming_group(db: &Db, org: &str, name: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        label: String,
    }
    let rows = db
        .prepare(
            "SELECT c.id, c.label FROM connections c WHERE c.org = ?1 AND c.id IN ( \
             SELECT d.connection_id FROM connection_default_groups d JOIN groups g ON g.id = d.group_id \
             WHERE g.org = ?1 AND g.name = ?2 COLLATE NOCASE \
             UNION SELECT m.connection_id FROM connection_group_mapping m JOIN groups g ON g.id = m.group_id \
             WHERE g.org = ?1 AND g.name = ?2 COLLATE NOCASE) ORDER BY c.created_at, c.id",
        )
        .bind(&[org.into(), name.into()])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows
        .into_iter()
        .map(|r| format!("{} ({})", r.label, r.id))
        .collect())
}

/// Deletes the connection and, by cascade, its links. Whether it existed.
pub async fn delete(db: &Db, org: &str, id: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM connections WHERE org = ?1 AND id = ?2 RETURNING id")
        .bind(&[org.into(), id.into()])?
        .first::<Value>(None)
        .await?
        .is_some())
}

/// The user linked to (connection, upstream sub), if any.
pub async fn linked_user(
    db: &Db,
    connection_id: &str,
    upstream_sub: &str,
) -> Result<Option<String>> {
    db.prepare("SELECT user_id FROM user_links WHERE connection_id = ?1 AND upstream_sub = ?2")
        .bind(&[connection_id.into(), upstream_sub.into()])?
        .first::<String>(Some("user_id"))
        .await
}

/// The INSERT of a link. A second link of the same upstream account, or of the same user on
/// this connection, fails with a UNIQUE error (two concurrent first sign-ins: one wins).
/// `by_password`: confirmed with the local password, so removed when that password is replaced
/// ([`DROP_PASSWORD_CONFIRMED_LINKS`]).
pub fn link_statement(
    db: &Db,
    org: &str,
    connection_id: &str,
    upstream_sub: &str,
    user_id: &str,
    now: i64,
    by_password: bool,
) -> Result<Stmt> {
    db.prepare(
        "INSERT INTO user_links (connection_id, upstream_sub, user_id, org, created_at, confirmed_by_password) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        connection_id.into(),
        upstream_sub.into(),
        user_id.into(),
        org.into(),
        int(now),
        crate::edge::store::d1::boolean(by_password),
    ])
}

/// ?1 org, ?2 user: the upstream links that rest on the user's password (migration 0012f), for
/// the batch that replaces that password.
pub(crate) const DROP_PASSWORD_CONFIRMED_LINKS: &str =
    "DELETE FROM user_links WHERE org = ?1 AND user_id = ?2 AND confirmed_by_password = 1";

/// A user's link to an upstream account, as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    pub connection_id: String,
    pub label: String,
    pub issuer: String,
    pub upstream_sub: String,
    pub created_at: i64,
}

pub async fn links_of(db: &Db, org: &str, user_id: &str) -> Result<Vec<Link>> {
    db.prepare(
        "SELECT l.connection_id, c.label, c.issuer, l.upstream_sub, l.created_at FROM user_links l \
         JOIN connections c ON c.id = l.connection_id \
         WHERE l.org = ?1 AND l.user_id = ?2 ORDER BY l.created_at, l.connection_id",
    )
    .bind(&[org.into(), user_id.into()])?
    .all()
    .await?
    .results::<Link>()
}

/// Removes the user's link on that connection (the next sign-in there is a first one again).
/// The upstream `sub` of the link removed, if there was one.
pub async fn unlink(
    db: &Db,
    org: &str,
    user_id: &str,
    connection_id: &str,
) -> Result<Option<String>> {
    db.prepare(
        "DELETE FROM user_links WHERE org = ?1 AND user_id = ?2 AND connection_id = ?3 \
         RETURNING upstream_sub",
    )
    .bind(&[org.into(), user_id.into(), connection_id.into()])?
    .first::<String>(Some("upstream_sub"))
    .await
}

/// The user of `org` holding `email` (ignoring case), with whether it is verified.
pub async fn user_by_email(db: &Db, org: &str, email: &str) -> Result<Option<(String, bool)>> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        #[serde(deserialize_with = "int_bool")]
        email_verified: bool,
    }
    Ok(db
        .prepare(
            "SELECT id, email_verified FROM users WHERE org = ?1 AND email = ?2 COLLATE NOCASE LIMIT 1",
        )
        .bind(&[org.into(), email.into()])?
        .first::<Row>(None)
        .await?
        .map(|r| (r.id, r.email_verified)))
}
