//! The account page's writes (issue 16, item 2), at the D1 primary: "sign out everywhere" and a
//! password change, each one batch (one transaction, one round trip). Both set the user's
//! `sessions_not_before_ms` — every SSO session started before it counts as ended wherever it is
//! read (protocol/account.rs) — and revoke every live grant of the user, which takes their
//! refresh and access tokens with it (token reads require `revoked_at IS NULL`).

use wasm_bindgen::JsValue;
use worker::Result;

use crate::edge::store::d1::int;
use crate::edge::store::database::Db;

/// ?1 org, ?2 user, ?3 not-before (unix ms). Never moves the time back (a slower, older request
/// of the same user cannot revive sessions a later one ended).
pub(crate) const END_SESSIONS: &str = "UPDATE users SET sessions_not_before_ms = MAX(COALESCE(sessions_not_before_ms, 0), ?3) \
     WHERE org = ?1 AND id = ?2";
/// ?1 org, ?2 user, ?3 new hash, ?4 now (s), ?5 not-before (unix ms).
pub(crate) const CHANGE_PASSWORD: &str = "UPDATE users SET password_hash = ?3, updated_at = ?4, \
     sessions_not_before_ms = MAX(COALESCE(sessions_not_before_ms, 0), ?5) WHERE org = ?1 AND id = ?2";
/// ?1 org, ?2 user, ?3 now (s).
pub(crate) const REVOKE_GRANTS: &str =
    "UPDATE grants SET revoked_at = ?3 WHERE org = ?1 AND user_id = ?2 AND revoked_at IS NULL";

fn changed(result: Option<&worker::D1Result>) -> bool {
    result
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1
}

/// End every session of the user started before `not_before_ms` and revoke every grant.
/// Whether the user exists.
pub async fn sign_out_everywhere(
    db: &Db,
    org: &str,
    user_id: &str,
    not_before_ms: i64,
    now: i64,
) -> Result<bool> {
    let (o, u) = (JsValue::from_str(org), JsValue::from_str(user_id));
    let results = db
        .batch(vec![
            db.prepare(END_SESSIONS)
                .bind(&[o.clone(), u.clone(), int(not_before_ms)])?,
            db.prepare(REVOKE_GRANTS).bind(&[o, u, int(now)])?,
        ])
        .await?;
    Ok(changed(results.first()))
}

/// Store the new password hash and, in the same transaction, end the user's other sessions,
/// revoke every grant and remove the upstream links the old password confirmed. Whether the user
/// exists.
pub async fn change_password(
    db: &Db,
    org: &str,
    user_id: &str,
    password_hash: &str,
    not_before_ms: i64,
    now: i64,
) -> Result<bool> {
    let (o, u) = (JsValue::from_str(org), JsValue::from_str(user_id));
    let results = db
        .batch(vec![
            db.prepare(CHANGE_PASSWORD).bind(&[
                o.clone(),
                u.clone(),
                password_hash.into(),
                int(now),
                int(not_before_ms),
            ])?,
            db.prepare(REVOKE_GRANTS)
                .bind(&[o.clone(), u.clone(), int(now)])?,
            // The upstream links confirmed with the old password go with it (migration 0012f).
            db.prepare(crate::edge::store::connections::DROP_PASSWORD_CONFIRMED_LINKS)
                .bind(&[o, u])?,
        ])
        .await?;
    Ok(changed(results.first()))
}
