//! Single use decided at the D1 primary (table `used_once`, migration 0011h): a sealed value
//! that travels in a cookie or a form — an upstream sign-in's transaction, a link confirmation
//! form — cannot record that it was used; its first use inserts its key here. The insert is the
//! decision (a conditional write, never a read then a write): of any number of concurrent uses
//! exactly one gets its row back, every other meets the PRIMARY KEY and gets none.

use serde_json::Value;
use worker::Result;

use crate::crypto::token_hash;
use crate::edge::store::d1::int;
use crate::edge::store::database::Db;

/// ?1 key, ?2 org, ?3 expires_at. A row back: this use is the first. Run natively against the
/// migrations (store/sql_tests.rs).
pub(crate) const CLAIM: &str = "INSERT INTO used_once (key, org, expires_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (key) DO NOTHING RETURNING key";

/// The stored key of `id` for `purpose`: its hash, so the table never holds a usable id.
pub fn key(purpose: &str, id: &str) -> String {
    format!("{purpose}:{}", token_hash(id))
}

/// Whether this is the first use of `id` for `purpose` (one round trip to the primary). Keep
/// the row until `expires_at`, when the sealed value is refused anyway.
pub async fn first_use(
    db: &Db,
    purpose: &str,
    org: &str,
    id: &str,
    expires_at: i64,
) -> Result<bool> {
    Ok(db
        .prepare(CLAIM)
        .bind(&[key(purpose, id).into(), org.into(), int(expires_at)])?
        .first::<Value>(None)
        .await?
        .is_some())
}
