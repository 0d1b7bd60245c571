//! Signing keys (D1 table `signing_keys`). Contract used by the OIDC endpoints; the admin API owns
//! generation and rotation. Private keys are sealed with AES-256-GCM under the key derived from
//! KEY_ENCRYPTION_SECRET for "signing-keys" (crypto/keyring.rs, which names the secret in the
//! sealed value), with the kid as associated data.

use serde::{Deserialize, Serialize};
use worker::Result;

use crate::crypto::Keyring;
use crate::crypto::keyring::Opened;

use crate::edge::store::database::{Db, Stmt};
use crate::protocol::lifetimes::RETIRED_KEY_PUBLISHED_SECONDS;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: String,
    pub org: String,
    pub alg: String,
    /// JSON object with kty, n, e (base64url, no padding).
    pub public_jwk: String,
    pub private_key_sealed: String,
    /// active | retired
    pub status: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

pub const SEALING_PURPOSE: &str = "signing-keys";

impl SigningKey {
    /// The PKCS#8 private key, opened with whichever configured secret sealed it, and its
    /// re-sealed form when that was not the current one (write it back with `reseal`). A key
    /// no configured secret opens is a loud configuration error (edge/sealed.rs).
    pub fn private_pkcs8(&self, keys: &Keyring) -> Result<Opened> {
        keys.open_stored(
            SEALING_PURPOSE,
            &self.private_key_sealed,
            self.kid.as_bytes(),
        )
        .map_err(|why| {
            crate::edge::sealed::unreadable("signing_key", &self.org, &self.kid, &why, keys)
        })
    }
}

pub(crate) const RESEAL_KEY: &str =
    "UPDATE signing_keys SET private_key_sealed = ?3 WHERE kid = ?1 AND private_key_sealed = ?2";

/// Replace a key's sealed private half with `resealed` (the same key under the current secret),
/// only if it is still `was`: a concurrent re-seal or deletion is never overwritten. Whether it
/// was replaced.
pub async fn reseal(db: &Db, kid: &str, was: &str, resealed: &str) -> Result<bool> {
    let result = db
        .prepare(RESEAL_KEY)
        .bind(&[kid.into(), was.into(), resealed.into()])?
        .run()
        .await?;
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) == 1)
}

/// The key that signs new tokens for `org`.
pub async fn active_key(db: &Db, org: &str) -> Result<Option<SigningKey>> {
    active_key_statement(db, org)?
        .first::<SigningKey>(None)
        .await
}

/// The read `active_key` makes, to batch with others (oidc/prime.rs); its rows are
/// `SigningKey`s.
pub fn active_key_statement(db: &Db, org: &str) -> Result<Stmt> {
    db.prepare("SELECT * FROM signing_keys WHERE org = ?1 AND status = 'active' ORDER BY created_at DESC LIMIT 1")
        .bind(&[org.into()])
}

/// Keys in the JWKS: the active one, and retired ones while tokens they signed may still be live.
pub async fn published_keys(db: &Db, org: &str, now: i64) -> Result<Vec<SigningKey>> {
    db.prepare(
        "SELECT * FROM signing_keys WHERE org = ?1 AND (status = 'active' OR retired_at > ?2) ORDER BY created_at DESC",
    )
    .bind(&[org.into(), crate::edge::store::d1::int(now - RETIRED_KEY_PUBLISHED_SECONDS)])?
    .all()
    .await?
    .results::<SigningKey>()
}

// ---- Writes (admin API) ----

/// The INSERT for a key, to run alone or inside a batch with other statements.
pub fn insert_key_statement(db: &Db, key: &SigningKey) -> Result<Stmt> {
    use crate::edge::store::d1::int;
    db.prepare(
        "INSERT INTO signing_keys (kid, org, alg, public_jwk, private_key_sealed, status, created_at, retired_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(&[
        key.kid.as_str().into(),
        key.org.as_str().into(),
        key.alg.as_str().into(),
        key.public_jwk.as_str().into(),
        key.private_key_sealed.as_str().into(),
        key.status.as_str().into(),
        int(key.created_at),
        key.retired_at
            .map(int)
            .unwrap_or(wasm_bindgen::JsValue::NULL),
    ])
}

/// Every key of `org`, newest first.
pub async fn list_keys(db: &Db, org: &str) -> Result<Vec<SigningKey>> {
    db.prepare("SELECT * FROM signing_keys WHERE org = ?1 ORDER BY created_at DESC, rowid DESC")
        .bind(&[org.into()])?
        .all()
        .await?
        .results::<SigningKey>()
}

/// Makes `key` the active signer: in one transaction every active key of its organization is
/// retired (and stays published for RETIRED_KEY_PUBLISHED_SECONDS, see `published_keys`) and the
/// new one inserted, so there is never a moment with no active key or with two.
pub async fn rotate(db: &Db, key: &SigningKey, now: i64) -> Result<()> {
    let retire = db
        .prepare(
            "UPDATE signing_keys SET status = 'retired', retired_at = ?2 WHERE org = ?1 AND status = 'active'",
        )
        .bind(&[key.org.as_str().into(), crate::edge::store::d1::int(now)])?;
    db.batch(vec![retire, insert_key_statement(db, key)?])
        .await?;
    Ok(())
}
