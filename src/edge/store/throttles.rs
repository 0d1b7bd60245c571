//! Throttle counters (D1 table `throttles`, rules in protocol/throttle.rs). Locks are read at
//! the nearest replica; every failure is counted at the primary in one batch, so a count holds
//! across Cloudflare locations and concurrent failures all count.

use std::collections::HashMap;

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::Result;

use crate::edge::store::d1::{int, opt_text};
use crate::edge::store::database::Db;
use crate::protocol::throttle::Counter;

#[derive(Deserialize)]
struct Row {
    key: String,
    failures: i64,
    locked_until_ms: i64,
    updated_at_ms: i64,
}

impl From<&Row> for Counter {
    fn from(r: &Row) -> Counter {
        Counter {
            failures: r.failures,
            locked_until: r.locked_until_ms,
            updated_at: r.updated_at_ms,
        }
    }
}

const COLUMNS: &str = "key, failures, locked_until_ms, updated_at_ms";

/// The key of an account (a user id), of a name that matches no account, and of an address.
pub fn user_key(user_id: &str) -> String {
    format!("user:{user_id}")
}
pub fn login_key(login: &str) -> String {
    format!("login:{}", login.to_lowercase())
}
pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}
pub fn admin_key(ip: &str) -> String {
    format!("admin ip:{ip}")
}

/// The counters a login form touches, in one read: the address's, the named user's (by id, when
/// the login names one) and the name's. Keyed by their keys.
pub async fn for_login(
    db: &Db,
    org: &str,
    login: &str,
    ip: Option<&str>,
) -> Result<HashMap<String, Counter>> {
    let rows = db
        .prepare(
            "SELECT key, failures, locked_until_ms, updated_at_ms FROM throttles WHERE scope = ?1 \
             AND key IN (?2, ?3, 'user:' || (SELECT id FROM users WHERE org = ?1 \
               AND (username = ?4 COLLATE NOCASE OR email = ?4 COLLATE NOCASE) LIMIT 1))",
        )
        .bind(&[
            org.into(),
            opt_text(ip.map(ip_key).as_deref()),
            login_key(login).into(),
            login.into(),
        ])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.iter().map(|r| (r.key.clone(), r.into())).collect())
}

/// One counter (for the admin API and the admin token check).
pub async fn get(db: &Db, scope: &str, key: &str) -> Result<Option<Counter>> {
    Ok(db
        .prepare(format!(
            "SELECT {COLUMNS} FROM throttles WHERE scope = ?1 AND key = ?2"
        ))
        .bind(&[scope.into(), key.into()])?
        .first::<Row>(None)
        .await?
        .as_ref()
        .map(Counter::from))
}

/// One more failure for each `(key, threshold)`, in one batch at the primary; the state after.
/// The SQL is `throttle::after_failure`: the count restarts after `reset_after` quiet seconds,
/// and from the threshold on the key is locked for 1, 2, 4, … seconds, at most `max_wait`.
/// `now_ms` is Unix milliseconds.
pub async fn record_failures(
    db: &Db,
    scope: &str,
    keys: &[(String, i64)],
    max_wait: i64,
    reset_after: i64,
    now_ms: i64,
) -> Result<HashMap<String, Counter>> {
    let mut statements = Vec::new();
    for (key, threshold) in keys {
        statements.push(
            db.prepare(
                "INSERT INTO throttles (scope, key, failures, locked_until_ms, updated_at_ms) VALUES (?1, ?2, 1, 0, ?3) \
                 ON CONFLICT (scope, key) DO UPDATE SET \
                 failures = CASE WHEN throttles.updated_at_ms > ?3 - ?4 * 1000 THEN throttles.failures + 1 ELSE 1 END, \
                 updated_at_ms = ?3",
            )
            .bind(&[scope.into(), key.as_str().into(), int(now_ms), int(reset_after)])?,
        );
        statements.push(
            db.prepare(
                "UPDATE throttles SET locked_until_ms = CASE WHEN failures >= ?3 \
                 THEN ?4 + 1000 * MIN(?5, 1 << MIN(failures - ?3, 30)) ELSE 0 END \
                 WHERE scope = ?1 AND key = ?2 RETURNING key, failures, locked_until_ms, updated_at_ms",
            )
            .bind(&[
                scope.into(),
                key.as_str().into(),
                int(*threshold),
                int(now_ms),
                int(max_wait),
            ])?,
        );
    }
    let results = db.batch(statements).await?;
    let mut out = HashMap::new();
    for r in results.iter().skip(1).step_by(2) {
        for row in r.results::<Row>()? {
            out.insert(row.key.clone(), (&row).into());
        }
    }
    Ok(out)
}

/// Forget a counter (a successful sign-in, or an admin unlocking an account).
pub async fn clear(db: &Db, scope: &str, key: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM throttles WHERE scope = ?1 AND key = ?2 RETURNING key")
        .bind(&[JsValue::from_str(scope), JsValue::from_str(key)])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}
