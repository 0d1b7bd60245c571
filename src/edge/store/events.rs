//! Audit events (D1 table `events`): written in one batch after a response, listed by the admin
//! API newest first, removed after each organization's retention by the hourly clean-up.

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::Result;

use crate::edge::store::d1::{int, opt_text};
use crate::edge::store::database::Db;
use crate::protocol::audit::{Event, Query};

/// Stores `events` in one batch (one round trip, after the response).
pub async fn insert(db: &Db, events: &[Event]) -> Result<()> {
    let mut statements = Vec::with_capacity(events.len());
    for e in events {
        statements.push(
            db.prepare(
                // Guarded on the organization, so an event of an organization deleted meanwhile
                // is dropped instead of failing the whole batch on the foreign key.
                "INSERT INTO events (org, at, type, user_id, client_id, ip, user_agent, detail) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM organizations WHERE slug = ?1)",
            )
            .bind(&[
                e.org.as_str().into(),
                int(e.at),
                e.kind.name().into(),
                opt_text(e.user_id.as_deref()),
                opt_text(e.client_id.as_deref()),
                opt_text(e.ip.as_deref()),
                opt_text(e.user_agent.as_deref()),
                JsValue::from_str(&serde_json::Value::Object(e.detail.clone()).to_string()),
            ])?,
        );
    }
    db.batch(statements).await?;
    Ok(())
}

/// An event as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub at: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(deserialize_with = "detail_object")]
    pub detail: serde_json::Value,
}

fn detail_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<serde_json::Value, D::Error> {
    let text = Option::<String>::deserialize(d)?.unwrap_or_default();
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::json!({})))
}

/// One page, newest first: at most `q.limit` events matching every filter given.
pub async fn list(db: &Db, org: &str, q: &Query, limit: u32) -> Result<Vec<StoredEvent>> {
    db.prepare(
        "SELECT id, at, type, user_id, client_id, ip, user_agent, detail FROM events WHERE org = ?1 \
         AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR client_id = ?4) \
         AND (?5 IS NULL OR at >= ?5) AND (?6 IS NULL OR at <= ?6) AND (?7 IS NULL OR id < ?7) \
         ORDER BY id DESC LIMIT ?8",
    )
    .bind(&[
        org.into(),
        opt_text(q.kind),
        opt_text(q.user_id.as_deref()),
        opt_text(q.client_id.as_deref()),
        q.since.map(int).unwrap_or(JsValue::NULL),
        q.until.map(int).unwrap_or(JsValue::NULL),
        q.before.map(int).unwrap_or(JsValue::NULL),
        int(limit as i64),
    ])?
    .all()
    .await?
    .results::<StoredEvent>()
}
