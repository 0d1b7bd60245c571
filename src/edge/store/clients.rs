//! OAuth clients (D1 table `clients`). Contract used by the OIDC endpoints; the admin API owns
//! writes. JSON-array columns are decoded into vectors here.

use serde::{Deserialize, Serialize};
use worker::Result;

use crate::edge::store::database::Db;

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
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
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
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Client {
        Client {
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

pub async fn get_client(db: &Db, org: &str, client_id: &str) -> Result<Option<Client>> {
    Ok(db
        .prepare("SELECT * FROM clients WHERE org = ?1 AND client_id = ?2")
        .bind(&[org.into(), client_id.into()])?
        .first::<ClientRow>(None)
        .await?
        .map(Client::from))
}

// ---- Writes (admin API) ----

fn json_list(values: &[String]) -> wasm_bindgen::JsValue {
    serde_json::to_string(values)
        .expect("a list of strings serializes")
        .into()
}

/// ?1–?9 of both the INSERT and the UPDATE: the key, then every mutable column.
fn columns(c: &Client) -> Vec<wasm_bindgen::JsValue> {
    use crate::edge::store::d1::opt_text;
    vec![
        c.org.as_str().into(),
        c.client_id.as_str().into(),
        c.client_name.as_str().into(),
        c.token_endpoint_auth_method.as_str().into(),
        opt_text(c.secret_hash.as_deref()),
        json_list(&c.grant_types),
        json_list(&c.redirect_uris),
        json_list(&c.post_logout_redirect_uris),
        json_list(&c.scopes),
    ]
}

/// Inserts a client. Fails with a UNIQUE/PRIMARY KEY error when the id is taken in the org.
pub async fn insert_client(db: &Db, c: &Client) -> Result<()> {
    use crate::edge::store::d1::int;
    db.prepare(
        "INSERT INTO clients (org, client_id, client_name, token_endpoint_auth_method, secret_hash, \
         grant_types, redirect_uris, post_logout_redirect_uris, scopes, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind(&[columns(c), vec![int(c.created_at), int(c.updated_at)]].concat())?
    .run()
    .await?;
    Ok(())
}

pub async fn list_clients(db: &Db, org: &str) -> Result<Vec<Client>> {
    Ok(db
        .prepare("SELECT * FROM clients WHERE org = ?1 ORDER BY client_id")
        .bind(&[org.into()])?
        .all()
        .await?
        .results::<ClientRow>()?
        .into_iter()
        .map(Client::from)
        .collect())
}

/// Writes every mutable column (including the secret hash); `None` when the client is gone.
pub async fn update_client(db: &Db, c: &Client) -> Result<Option<Client>> {
    use crate::edge::store::d1::int;
    Ok(db
        .prepare(
            "UPDATE clients SET client_name = ?3, token_endpoint_auth_method = ?4, secret_hash = ?5, \
             grant_types = ?6, redirect_uris = ?7, post_logout_redirect_uris = ?8, scopes = ?9, \
             updated_at = ?10 WHERE org = ?1 AND client_id = ?2 RETURNING *",
        )
        .bind(&[columns(c), vec![int(c.updated_at)]].concat())?
        .first::<ClientRow>(None)
        .await?
        .map(Client::from))
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
