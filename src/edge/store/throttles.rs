//! Throttle counters (D1 table `throttles`, rules in protocol/throttle.rs), decided at the
//! primary: a failed guess is counted in the same transaction that checks no lock stands
//! (`count_failure`), and a right guess is let through only when none does (`admit`), so a count
//! holds across Cloudflare locations and under any number of concurrent guesses.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Result, Result};

use crate::edge::store::d1::int;
use crate::edge::store::database::{Db, Stmt};
use crate::protocol::throttle::{Counter, seconds_left};

#[derive(Deserialize)]
struct Row {
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

const COLUMNS: &str = "failures, locked_until_ms, updated_at_ms";

/// The key of the admin token's guesses from one address (login keys are in
/// protocol/throttle.rs).
pub fn admin_key(ip: &str) -> String {
    format!("admin {}", crate::protocol::throttle::address_key(ip))
}

/// One limit an attempt is under: a key, its threshold, and its waits (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub key: String,
    pub threshold: i64,
    /// The wait at the threshold, doubling with each further failure (1 s for accounts and
    /// addresses, Keycloak's shape; a whole step for the per-step TOTP cap).
    pub first_wait: i64,
    pub max_wait: i64,
    pub reset_after: i64,
}

/// What counting a failed guess found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// The failure was counted: none of the keys was locked, so the guess may be answered.
    pub counted: bool,
    /// Seconds any of the keys is locked for now (after this failure, if it was counted).
    pub wait: Option<i64>,
}

/// `?first, ?first+1, …` for `n` keys.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Count one failed guess under every limit, atomically with the check that none of them is
/// locked — one batch (one transaction, one round trip) at the primary. Of any number of
/// concurrent wrong guesses, exactly those that find no lock are counted, and only they may be
/// answered; the rest are refused unanswered (issue 15: "every guess counted before it is
/// answered"). The SQL is `throttle::after_failure`: the count restarts after `reset_after` quiet
/// seconds; from the threshold on, the key is locked for 1, 2, 4, … seconds, at most `max_wait`.
pub async fn count_failure(db: &Db, scope: &str, limits: &[Limit], now_ms: i64) -> Result<Counted> {
    let keys: Vec<JsValue> = limits.iter().map(|l| l.key.as_str().into()).collect();
    let none_locked = format!(
        "NOT EXISTS (SELECT 1 FROM throttles WHERE scope = ?1 AND key IN ({}) AND locked_until_ms > ?2)",
        placeholders(5, keys.len())
    );
    let mut statements = Vec::new();
    for limit in limits {
        let mut binds = vec![
            scope.into(),
            int(now_ms),
            limit.key.as_str().into(),
            int(limit.reset_after),
        ];
        binds.extend(keys.iter().cloned());
        statements.push(
            db.prepare(format!(
                "INSERT INTO throttles (scope, key, failures, locked_until_ms, updated_at_ms) \
                 SELECT ?1, ?3, 1, 0, ?2 WHERE {none_locked} \
                 ON CONFLICT (scope, key) DO UPDATE SET \
                 failures = CASE WHEN throttles.updated_at_ms > ?2 - ?4 * 1000 THEN throttles.failures + 1 ELSE 1 END, \
                 updated_at_ms = ?2 RETURNING failures"
            ))
            .bind(&binds)?,
        );
    }
    // Locks are set after every count, so each count above saw only locks older than this batch.
    for limit in limits {
        statements.push(
            db.prepare(
                "UPDATE throttles SET locked_until_ms = CASE WHEN failures >= ?3 \
                 THEN ?2 + 1000 * MIN(?4, ?6 * (1 << MIN(failures - ?3, 30))) ELSE 0 END \
                 WHERE scope = ?1 AND key = ?5 AND updated_at_ms = ?2",
            )
            .bind(&[
                scope.into(),
                int(now_ms),
                int(limit.threshold),
                int(limit.max_wait),
                limit.key.as_str().into(),
                int(limit.first_wait),
            ])?,
        );
    }
    statements.push(states(db, scope, &keys)?);
    let results = db.batch(statements).await?;
    let counted = results
        .first()
        .and_then(|r| r.results::<serde_json::Value>().ok())
        .is_some_and(|rows| !rows.is_empty());
    let wait = longest_wait(results.last(), now_ms)?;
    Ok(Counted { counted, wait })
}

/// A right guess is answered only if none of its keys is locked, read at the primary in one
/// batch that also forgets the failures of `reset` (the account) when none is locked. `Some` is
/// the wait of the lock that refuses it.
pub async fn admit(
    db: &Db,
    scope: &str,
    limits: &[Limit],
    reset: Option<&str>,
    now_ms: i64,
) -> Result<Option<i64>> {
    let keys: Vec<JsValue> = limits.iter().map(|l| l.key.as_str().into()).collect();
    let mut statements = Vec::new();
    if let Some(reset) = reset {
        let mut binds = vec![scope.into(), int(now_ms), reset.into()];
        binds.extend(keys.iter().cloned());
        statements.push(
            db.prepare(format!(
                "DELETE FROM throttles WHERE scope = ?1 AND key = ?3 AND NOT EXISTS \
                 (SELECT 1 FROM throttles WHERE scope = ?1 AND key IN ({}) AND locked_until_ms > ?2)",
                placeholders(4, keys.len())
            ))
            .bind(&binds)?,
        );
    }
    statements.push(states(db, scope, &keys)?);
    let results = db.batch(statements).await?;
    longest_wait(results.last(), now_ms)
}

/// Give back a reserved failure that turned out to be a right guess: one less failure under
/// every limit (and no lock left standing below a threshold), or the account's count forgotten
/// (`reset`: ASVS 6.3.1, a success resets the account). One batch at the primary.
pub async fn refund(
    db: &Db,
    scope: &str,
    limits: &[Limit],
    reset: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    let mut statements = Vec::new();
    for limit in limits {
        if reset == Some(limit.key.as_str()) {
            statements.push(
                db.prepare("DELETE FROM throttles WHERE scope = ?1 AND key = ?2")
                    .bind(&[scope.into(), limit.key.as_str().into()])?,
            );
            continue;
        }
        statements.push(
            db.prepare(
                "UPDATE throttles SET failures = MAX(failures - 1, 0), \
                 locked_until_ms = CASE WHEN failures - 1 >= ?3 THEN locked_until_ms ELSE 0 END, \
                 updated_at_ms = ?4 WHERE scope = ?1 AND key = ?2",
            )
            .bind(&[
                scope.into(),
                limit.key.as_str().into(),
                int(limit.threshold),
                int(now_ms),
            ])?,
        );
    }
    db.batch(statements).await?;
    Ok(())
}

fn states(db: &Db, scope: &str, keys: &[JsValue]) -> Result<Stmt> {
    let mut binds = vec![JsValue::from_str(scope)];
    binds.extend(keys.iter().cloned());
    db.prepare(format!(
        "SELECT {COLUMNS} FROM throttles WHERE scope = ?1 AND key IN ({})",
        placeholders(2, keys.len())
    ))
    .bind(&binds)
}

fn longest_wait(result: Option<&D1Result>, now_ms: i64) -> Result<Option<i64>> {
    let Some(result) = result else {
        return Ok(None);
    };
    Ok(result
        .results::<Row>()?
        .iter()
        .filter_map(|r| seconds_left(r.locked_until_ms, now_ms))
        .max())
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

/// Forget a counter (a successful sign-in, or an admin unlocking an account).
pub async fn clear(db: &Db, scope: &str, key: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM throttles WHERE scope = ?1 AND key = ?2 RETURNING key")
        .bind(&[JsValue::from_str(scope), JsValue::from_str(key)])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}
