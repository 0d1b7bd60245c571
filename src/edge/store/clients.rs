//! OAuth clients (D1 table `clients`). Contract used by the OIDC endpoints; the admin API owns
//! writes. JSON-array columns are decoded into vectors here.

use serde::{Deserialize, Serialize};
use worker::{D1Result, Result};

use crate::edge::store::assign::{Assignments, SqlValue};
use crate::edge::store::d1::json_list;
use crate::edge::store::database::{Db, Stmt};
use crate::edge::store::groups::{RoleMapRow, client_group_columns};
use crate::protocol::groups::{ClaimSettings, RoleMapping};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub org: String,
    pub client_id: String,
    pub client_name: String,
    /// client_secret_basic | client_secret_post | none
    pub token_endpoint_auth_method: String,
    /// SHA-256 hex of the secret (crypto::token_hash); None for public clients.
    pub secret_hash: Option<String>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The claim names this client reads groups and roles under.
    pub groups_claim: String,
    pub roles_claim: String,
    /// Groups and roles in the ID token too, not only at userinfo.
    pub groups_in_id_token: bool,
    /// The custom attributes whose scope is granted in the ID token too (protocol/attributes.rs).
    pub attributes_in_id_token: bool,
    /// Group → role value, in the order the admin gave.
    pub role_mappings: Vec<RoleMapping>,
    /// Only members of these groups may sign in; empty: every user of the organization.
    pub allowed_groups: Vec<String>,
    /// A second factor is required for this client (protocol/mfa.rs).
    pub require_mfa: bool,
    /// Back-Channel Logout 1.0 §2.2: where logout tokens are sent (None: not told).
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in every logout token.
    pub backchannel_logout_session_required: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }

    pub fn claim_settings(&self) -> ClaimSettings<'_> {
        ClaimSettings {
            groups_claim: &self.groups_claim,
            roles_claim: &self.roles_claim,
            in_id_token: self.groups_in_id_token,
            attributes_in_id_token: self.attributes_in_id_token,
        }
    }
}

/// The row as D1 returns it, with JSON arrays still as text.
#[derive(Deserialize)]
struct ClientRow {
    org: String,
    client_id: String,
    client_name: String,
    token_endpoint_auth_method: String,
    secret_hash: Option<String>,
    grant_types: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: String,
    created_at: i64,
    updated_at: i64,
    groups_claim: String,
    roles_claim: String,
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    groups_in_id_token: bool,
    #[serde(default, deserialize_with = "crate::edge::store::d1::int_bool")]
    attributes_in_id_token: bool,
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    require_mfa: bool,
    backchannel_logout_uri: Option<String>,
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    backchannel_logout_session_required: bool,
    #[serde(default, deserialize_with = "json_list")]
    role_map: Vec<RoleMapRow>,
    #[serde(default, deserialize_with = "json_list")]
    allowed_group_names: Vec<String>,
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl From<ClientRow> for Client {
    fn from(mut r: ClientRow) -> Client {
        r.role_map.sort_by_key(|m| m.position);
        r.allowed_group_names
            .sort_by_key(|g| g.to_ascii_lowercase());
        Client {
            role_mappings: r
                .role_map
                .into_iter()
                .map(|m| RoleMapping {
                    group: m.group,
                    role: m.role,
                })
                .collect(),
            allowed_groups: r.allowed_group_names,
            groups_claim: r.groups_claim,
            roles_claim: r.roles_claim,
            groups_in_id_token: r.groups_in_id_token,
            attributes_in_id_token: r.attributes_in_id_token,
            require_mfa: r.require_mfa,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            grant_types: list(&r.grant_types),
            redirect_uris: list(&r.redirect_uris),
            post_logout_redirect_uris: list(&r.post_logout_redirect_uris),
            scopes: list(&r.scopes),
            org: r.org,
            client_id: r.client_id,
            client_name: r.client_name,
            token_endpoint_auth_method: r.token_endpoint_auth_method,
            secret_hash: r.secret_hash,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Every column of the client row `c`, with its role map and restriction (one query: no extra
/// round trip for groups on any sign-in path).
fn select_client(db: &Db, condition: &str) -> Stmt {
    db.prepare(format!(
        "SELECT c.*, {} FROM clients c WHERE {condition}",
        client_group_columns("c")
    ))
}

pub async fn get_client(db: &Db, org: &str, client_id: &str) -> Result<Option<Client>> {
    Ok(client_statement(db, org, client_id)?
        .first::<ClientRow>(None)
        .await?
        .map(Client::from))
}

/// The read `get_client` makes, to batch with others (oidc/prime.rs); `client_of` reads its
/// result.
pub fn client_statement(db: &Db, org: &str, client_id: &str) -> Result<Stmt> {
    select_client(db, "c.org = ?1 AND c.client_id = ?2").bind(&[org.into(), client_id.into()])
}

pub fn client_of(result: &D1Result) -> Result<Option<Client>> {
    Ok(result
        .results::<ClientRow>()?
        .into_iter()
        .next()
        .map(Client::from))
}

// ---- Writes (admin API) ----

fn json_text(values: &[String]) -> wasm_bindgen::JsValue {
    serde_json::to_string(values)
        .expect("a list of strings serializes")
        .into()
}

/// ?1–?16 of the INSERT: the key, then every mutable column.
fn columns(c: &Client) -> Vec<wasm_bindgen::JsValue> {
    use crate::edge::store::d1::opt_text;
    vec![
        c.org.as_str().into(),
        c.client_id.as_str().into(),
        c.client_name.as_str().into(),
        c.token_endpoint_auth_method.as_str().into(),
        opt_text(c.secret_hash.as_deref()),
        json_text(&c.grant_types),
        json_text(&c.redirect_uris),
        json_text(&c.post_logout_redirect_uris),
        json_text(&c.scopes),
        c.groups_claim.as_str().into(),
        c.roles_claim.as_str().into(),
        crate::edge::store::d1::boolean(c.groups_in_id_token),
        crate::edge::store::d1::boolean(c.require_mfa),
        opt_text(c.backchannel_logout_uri.as_deref()),
        crate::edge::store::d1::boolean(c.backchannel_logout_session_required),
        crate::edge::store::d1::boolean(c.attributes_in_id_token),
    ]
}

/// Which of a client's group settings a write replaces (`None`: keep what is stored).
pub struct GroupWrites<'a> {
    pub role_mappings: Option<&'a [RoleMapping]>,
    pub allowed_groups: Option<&'a [String]>,
}

/// The statements that replace the group settings `groups` names: a group named that does not
/// exist, or was deleted meanwhile, fails the sub-select's NOT NULL and aborts the whole batch;
/// a client that does not exist fails the foreign key.
fn group_statements(
    db: &Db,
    org: &str,
    client_id: &str,
    groups: &GroupWrites<'_>,
) -> Result<Vec<Stmt>> {
    use crate::edge::store::d1::int;
    let key = || -> Vec<wasm_bindgen::JsValue> { vec![org.into(), client_id.into()] };
    const GROUP_ID: &str = "(SELECT id FROM groups WHERE org = ?1 AND name = ?3 COLLATE NOCASE)";
    let mut statements = Vec::new();
    if let Some(mappings) = groups.role_mappings {
        statements.push(
            db.prepare("DELETE FROM client_roles WHERE org = ?1 AND client_id = ?2")
                .bind(&key())?,
        );
        for (position, m) in mappings.iter().enumerate() {
            statements.push(
                db.prepare(format!(
                    "INSERT INTO client_roles (org, client_id, group_id, role, position) VALUES (?1, ?2, {GROUP_ID}, ?4, ?5)"
                ))
                .bind(&[key(), vec![m.group.as_str().into(), m.role.as_str().into(), int(position as i64)]].concat())?,
            );
        }
    }
    if let Some(allowed) = groups.allowed_groups {
        statements.push(
            db.prepare("DELETE FROM client_allowed_groups WHERE org = ?1 AND client_id = ?2")
                .bind(&key())?,
        );
        for name in allowed {
            statements.push(
                db.prepare(format!(
                    "INSERT INTO client_allowed_groups (org, client_id, group_id) VALUES (?1, ?2, {GROUP_ID})"
                ))
                .bind(&[key(), vec![name.as_str().into()]].concat())?,
            );
        }
    }
    Ok(statements)
}

/// Runs `first` and the group writes in one batch (one transaction), and reads the client back
/// at its end: the client as this write left it, `None` when there is no such client.
async fn write_and_read(
    db: &Db,
    org: &str,
    client_id: &str,
    first: Stmt,
    groups: &GroupWrites<'_>,
) -> Result<Option<Client>> {
    let mut statements = vec![first];
    statements.extend(group_statements(db, org, client_id, groups)?);
    statements.push(
        select_client(db, "c.org = ?1 AND c.client_id = ?2")
            .bind(&[org.into(), client_id.into()])?,
    );
    let results = db.batch(statements).await?;
    Ok(match results.last() {
        Some(r) => r
            .results::<ClientRow>()?
            .into_iter()
            .next()
            .map(Client::from),
        None => None,
    })
}

/// Inserts a client with its role map and restriction, in one batch: all of it or nothing.
/// Fails with a UNIQUE error when the id is taken.
pub async fn insert_client(db: &Db, c: &Client) -> Result<Option<Client>> {
    use crate::edge::store::d1::int;
    let insert = db
        .prepare(
            "INSERT INTO clients (org, client_id, client_name, token_endpoint_auth_method, secret_hash, \
             grant_types, redirect_uris, post_logout_redirect_uris, scopes, groups_claim, roles_claim, \
             groups_in_id_token, require_mfa, backchannel_logout_uri, backchannel_logout_session_required, \
             attributes_in_id_token, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )
        .bind(&[columns(c), vec![int(c.created_at), int(c.updated_at)]].concat())?;
    let groups = GroupWrites {
        role_mappings: Some(&c.role_mappings),
        allowed_groups: Some(&c.allowed_groups),
    };
    write_and_read(db, &c.org, &c.client_id, insert, &groups).await
}

/// Writes only the columns `changes` names (and `updated_at`), and the group settings `groups`
/// names, in one batch; the client as stored afterwards, `None` when there is no such client.
/// Whatever the request did not send keeps the value stored, whoever wrote it meanwhile.
pub async fn update_client(
    db: &Db,
    org: &str,
    client_id: &str,
    changes: &Assignments,
    groups: &GroupWrites<'_>,
    now: i64,
) -> Result<Option<Client>> {
    let mut changes = changes.clone();
    changes.set("updated_at", SqlValue::Int(now));
    let update = db
        .prepare(format!(
            "UPDATE clients SET {} WHERE org = ?1 AND client_id = ?2",
            changes.set_clause(3)
        ))
        .bind(&[vec![org.into(), client_id.into()], changes.values()].concat())?;
    write_and_read(db, org, client_id, update, groups).await
}

/// A new secret (its hash) for a confidential client; a public one is left without. The client
/// as stored afterwards (its `secret_hash` says whether this one was set), `None` when there is
/// no such client.
pub async fn set_secret(
    db: &Db,
    org: &str,
    client_id: &str,
    secret_hash: &str,
    now: i64,
) -> Result<Option<Client>> {
    let update = db
        .prepare(
            "UPDATE clients SET secret_hash = ?3, updated_at = ?4 \
             WHERE org = ?1 AND client_id = ?2 AND token_endpoint_auth_method <> 'none'",
        )
        .bind(&[
            org.into(),
            client_id.into(),
            secret_hash.into(),
            crate::edge::store::d1::int(now),
        ])?;
    let unchanged = GroupWrites {
        role_mappings: None,
        allowed_groups: None,
    };
    write_and_read(db, org, client_id, update, &unchanged).await
}

pub async fn list_clients(db: &Db, org: &str) -> Result<Vec<Client>> {
    Ok(db
        .prepare(format!(
            "SELECT c.*, {} FROM clients c WHERE c.org = ?1 ORDER BY c.client_id",
            client_group_columns("c")
        ))
        .bind(&[org.into()])?
        .all()
        .await?
        .results::<ClientRow>()?
        .into_iter()
        .map(Client::from)
        .collect())
}

/// Deletes a client (its grants and tokens cascade). Whether it existed.
pub async fn delete_client(db: &Db, org: &str, client_id: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM clients WHERE org = ?1 AND client_id = ?2 RETURNING client_id")
        .bind(&[org.into(), client_id.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}
