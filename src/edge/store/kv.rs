//! KV: SSO sessions, stored under the SHA-256 of their id so that a KV listing never reveals a
//! usable session. Every call is metered (store/meter.rs).
//!
//! KV is eventually consistent and has no compare-and-swap. A session is written and read where
//! the user's browser is, so propagation to other locations does not matter to it (a logout is
//! immediate there and reaches other locations within KV's propagation time). KV refuses
//! expirations under 60 s, so TTLs are clamped up and the real lifetime is checked from a
//! timestamp in the value.

use serde::{Deserialize, Serialize};
use worker::kv::KvStore;
use worker::{Error, Result};

use crate::crypto::token_hash;
use crate::edge::store::meter::{Meter, StorageKind};
use crate::protocol::lifetimes::KV_MIN_TTL_SECONDS;

/// The KV binding with the request's meter.
pub struct Kv {
    store: KvStore,
    meter: Meter,
}

fn kv_err(e: worker::kv::KvError) -> Error {
    Error::RustError(format!("KV: {e}"))
}

impl Kv {
    pub fn new(store: KvStore, meter: Meter) -> Kv {
        Kv { store, meter }
    }

    async fn get_json<T: for<'a> Deserialize<'a>>(&self, key: &str) -> Result<Option<T>> {
        self.meter
            .call(StorageKind::KvRead, self.store.get(key).json::<T>())
            .await
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T, ttl_seconds: i64) -> Result<()> {
        let put = self
            .store
            .put(key, serde_json::to_string(value)?)
            .map_err(kv_err)?
            .expiration_ttl(ttl_seconds.max(KV_MIN_TTL_SECONDS) as u64);
        self.meter.call(StorageKind::KvWrite, put.execute()).await
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        self.meter
            .call(StorageKind::KvWrite, self.store.delete(key))
            .await
    }

    /// One page of key names under `prefix`, and the cursor of the next page if there is one.
    pub async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let mut list = self.store.list().prefix(prefix.to_string());
        if let Some(c) = cursor {
            list = list.cursor(c);
        }
        let page = self.meter.call(StorageKind::KvRead, list.execute()).await?;
        let next = page.cursor.filter(|c| !page.list_complete && !c.is_empty());
        Ok((page.keys.into_iter().map(|k| k.name).collect(), next))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
    /// The factors the sign-in used (protocol/mfa.rs bits); a session from before second
    /// factors existed had a password only.
    #[serde(default = "password_only")]
    pub factors: u8,
    /// The session's public id (Back-Channel Logout 1.0 `sid`): random, kept by a step-up, and
    /// unrelated to the cookie's secret id. None for sessions from before sids.
    #[serde(default)]
    pub sid: Option<String>,
    /// When this session was started (unix ms), compared with the user's
    /// `sessions_not_before_ms`; kept by a step-up. None for sessions from before it: their
    /// `auth_time` stands in.
    #[serde(default)]
    pub started_ms: Option<i64>,
}

fn password_only() -> u8 {
    crate::protocol::mfa::PWD
}

fn session_key(org: &str, session_id: &str) -> String {
    format!("session:{org}:{}", token_hash(session_id))
}

pub async fn put_session(
    kv: &Kv,
    org: &str,
    session_id: &str,
    session: &Session,
    now: i64,
) -> Result<()> {
    kv.put_json(
        &session_key(org, session_id),
        session,
        session.expires_at - now,
    )
    .await
}

/// The session, if it exists and has not expired.
pub async fn get_session(
    kv: &Kv,
    org: &str,
    session_id: &str,
    now: i64,
) -> Result<Option<Session>> {
    let session = kv
        .get_json::<Session>(&session_key(org, session_id))
        .await?;
    Ok(session.filter(|s| s.expires_at > now))
}

pub async fn delete_session(kv: &Kv, org: &str, session_id: &str) -> Result<()> {
    kv.delete(&session_key(org, session_id)).await
}
