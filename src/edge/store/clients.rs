//! OAuth clients (D1 table `clients`). Contract used by the OIDC endpoints; the admin API owns
//! writes. JSON-array columns are decoded into vectors here.

use serde::{Deserialize, Serialize};
use worker::{D1Database, Result};

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

pub async fn get_client(db: &D1Database, org: &str, client_id: &str) -> Result<Option<Client>> {
    Ok(db
        .prepare("SELECT * FROM clients WHERE org = ?1 AND client_id = ?2")
        .bind(&[org.into(), client_id.into()])?
        .first::<ClientRow>(None)
        .await?
        .map(Client::from))
}
