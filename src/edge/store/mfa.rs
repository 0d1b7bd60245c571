//! Second-factor storage (D1): the sealed TOTP secret and last accepted step on the user row,
//! and hashed recovery codes. Single use of a code is decided at the primary by a conditional
//! UPDATE, so a code replayed anywhere, at once, is refused.

use wasm_bindgen::JsValue;
use worker::Result;

use crate::edge::store::d1::int;
use crate::edge::store::database::Db;

/// Store a confirmed enrolment — the sealed secret, the step its confirming code used (so that
/// code cannot be used again to sign in) and the recovery code hashes — in one transaction, only
/// if the user has no second factor yet. Whether it was stored.
pub async fn enrol(
    db: &Db,
    org: &str,
    user_id: &str,
    sealed_secret: &str,
    step: i64,
    recovery_hashes: &[String],
    now: i64,
) -> Result<bool> {
    let mut statements = vec![
        db.prepare(
            "UPDATE users SET totp_secret_sealed = ?3, totp_enrolled_at = ?4, totp_last_step = ?5 \
             WHERE org = ?1 AND id = ?2 AND totp_secret_sealed IS NULL",
        )
        .bind(&[
            org.into(),
            user_id.into(),
            sealed_secret.into(),
            int(now),
            int(step),
        ])?,
        db.prepare("DELETE FROM recovery_codes WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND totp_secret_sealed = ?2)")
            .bind(&[user_id.into(), sealed_secret.into()])?,
    ];
    for hash in recovery_hashes {
        statements.push(
            db.prepare(
                "INSERT INTO recovery_codes (user_id, code_hash) SELECT ?1, ?2 \
                 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1 AND totp_secret_sealed = ?3)",
            )
            .bind(&[user_id.into(), hash.as_str().into(), sealed_secret.into()])?,
        );
    }
    let results = db.batch(statements).await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1)
}

/// Accept a TOTP code's step: only later than the last step accepted (RFC 6238 §5.2: "the
/// verifier MUST NOT accept the second attempt of the OTP after the successful validation").
pub async fn consume_step(db: &Db, org: &str, user_id: &str, step: i64) -> Result<bool> {
    Ok(db
        .prepare(
            "UPDATE users SET totp_last_step = ?3 WHERE org = ?1 AND id = ?2 \
             AND totp_secret_sealed IS NOT NULL AND totp_last_step < ?3 RETURNING id",
        )
        .bind(&[org.into(), user_id.into(), int(step)])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// Use a recovery code once.
pub async fn consume_recovery(db: &Db, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
    Ok(db
        .prepare(
            "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL \
             RETURNING user_id",
        )
        .bind(&[user_id.into(), code_hash.into(), int(now)])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// Remove a user's second factor and recovery codes (the admin reset). Whether the user exists.
pub async fn reset(db: &Db, org: &str, user_id: &str) -> Result<bool> {
    let results = db
        .batch(vec![
            db.prepare(
                "UPDATE users SET totp_secret_sealed = NULL, totp_enrolled_at = NULL, totp_last_step = 0 \
                 WHERE org = ?1 AND id = ?2",
            )
            .bind(&[JsValue::from_str(org), JsValue::from_str(user_id)])?,
            db.prepare(
                "DELETE FROM recovery_codes WHERE user_id = ?2 AND EXISTS (SELECT 1 FROM users WHERE org = ?1 AND id = ?2)",
            )
            .bind(&[JsValue::from_str(org), JsValue::from_str(user_id)])?,
        ])
        .await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1)
}
