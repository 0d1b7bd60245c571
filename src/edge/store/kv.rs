//! KV: authorization codes and SSO sessions, stored under the SHA-256 of their value so that a
//! KV listing never reveals a usable code or session id.
//!
//! KV is eventually consistent and has no compare-and-swap: it holds these records but never
//! decides single use (the grants table in D1 does). It also refuses expirations under 60 s,
//! so TTLs are clamped up and the real lifetime is checked from a timestamp in the value.

use serde::{Deserialize, Serialize};
use worker::kv::KvStore;
use worker::{Error, Result};

use crate::crypto::token_hash;
use crate::protocol::code::CodeGrant;
use crate::protocol::lifetimes::{CODE_SECONDS, KV_MIN_TTL_SECONDS};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

fn code_key(org: &str, code: &str) -> String {
    format!("code:{org}:{}", token_hash(code))
}

fn session_key(org: &str, session_id: &str) -> String {
    format!("session:{org}:{}", token_hash(session_id))
}

fn ttl(seconds: i64) -> u64 {
    seconds.max(KV_MIN_TTL_SECONDS) as u64
}

fn kv_err(e: worker::kv::KvError) -> Error {
    Error::RustError(format!("KV: {e}"))
}

pub async fn put_code(kv: &KvStore, org: &str, code: &str, grant: &CodeGrant) -> Result<()> {
    kv.put(&code_key(org, code), serde_json::to_string(grant)?)
        .map_err(kv_err)?
        .expiration_ttl(ttl(CODE_SECONDS))
        .execute()
        .await
        .map_err(kv_err)
}

pub async fn get_code(kv: &KvStore, org: &str, code: &str) -> Result<Option<CodeGrant>> {
    kv.get(&code_key(org, code))
        .json::<CodeGrant>()
        .await
        .map_err(kv_err)
}

pub async fn delete_code(kv: &KvStore, org: &str, code: &str) -> Result<()> {
    kv.delete(&code_key(org, code)).await.map_err(kv_err)
}

pub async fn put_session(
    kv: &KvStore,
    org: &str,
    session_id: &str,
    session: &Session,
    now: i64,
) -> Result<()> {
    kv.put(
        &session_key(org, session_id),
        serde_json::to_string(session)?,
    )
    .map_err(kv_err)?
    .expiration_ttl(ttl(session.expires_at - now))
    .execute()
    .await
    .map_err(kv_err)
}

/// The session, if it exists and has not expired.
pub async fn get_session(
    kv: &KvStore,
    org: &str,
    session_id: &str,
    now: i64,
) -> Result<Option<Session>> {
    let session = kv
        .get(&session_key(org, session_id))
        .json::<Session>()
        .await
        .map_err(kv_err)?;
    Ok(session.filter(|s| s.expires_at > now))
}

pub async fn delete_session(kv: &KvStore, org: &str, session_id: &str) -> Result<()> {
    kv.delete(&session_key(org, session_id))
        .await
        .map_err(kv_err)
}
