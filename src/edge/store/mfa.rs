//! Second-factor storage (D1): the sealed TOTP secret, its enrolment id and last accepted step,
//! and the sealed recovery-code key on the user row; hashed recovery codes. Single use of a code
//! is decided at the primary by a conditional UPDATE, so a code replayed anywhere, at once, is
//! refused. The SQL is in constants so that it is tested natively against the migrations
//! (store/sql_tests.rs).

use wasm_bindgen::JsValue;
use worker::Result;

use crate::edge::store::d1::{int, opt_text};
use crate::edge::store::database::Db;

/// What the TOTP secret and the recovery-code key are sealed for (crypto/keyring.rs), each with
/// the user id as associated data.
pub const TOTP_PURPOSE: &str = "totp-secrets";
pub const RECOVERY_KEY_PURPOSE: &str = "recovery-code-keys";

/// A confirmed enrolment, as stored (oidc/factor_secrets.rs makes it).
pub struct NewFactor {
    pub sealed_secret: String,
    /// Random: which enrolment this is (see `consume_step`).
    pub secret_id: String,
    pub recovery_key_sealed: String,
    pub recovery_hashes: Vec<String>,
}

pub(crate) const ENROL: &str = "UPDATE users SET totp_secret_sealed = ?3, totp_enrolled_at = ?4, totp_last_step = ?5, \
     totp_secret_id = ?6, recovery_key_sealed = ?7 \
     WHERE org = ?1 AND id = ?2 AND totp_secret_sealed IS NULL";
pub(crate) const ENROL_CLEAR_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = ?1 AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND totp_secret_sealed = ?2)";
pub(crate) const ENROL_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) SELECT ?1, ?2 \
     WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1 AND totp_secret_sealed = ?3)";

/// Store a confirmed enrolment — the sealed secret, the step its confirming code used (so that
/// code cannot be used again to sign in) and the recovery code hashes — in one transaction, only
/// if the user has no second factor yet. Whether it was stored.
pub async fn enrol(
    db: &Db,
    org: &str,
    user_id: &str,
    factor: &NewFactor,
    step: i64,
    now: i64,
) -> Result<bool> {
    let sealed_secret = factor.sealed_secret.as_str();
    let mut statements = vec![
        db.prepare(ENROL).bind(&[
            org.into(),
            user_id.into(),
            sealed_secret.into(),
            int(now),
            int(step),
            factor.secret_id.as_str().into(),
            factor.recovery_key_sealed.as_str().into(),
        ])?,
        db.prepare(ENROL_CLEAR_CODES)
            .bind(&[user_id.into(), sealed_secret.into()])?,
    ];
    for hash in &factor.recovery_hashes {
        statements.push(db.prepare(ENROL_CODE).bind(&[
            user_id.into(),
            hash.as_str().into(),
            sealed_secret.into(),
        ])?);
    }
    let results = db.batch(statements).await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1)
}

/// ?1 org, ?2 user, ?3 the new sealed recovery-code key, ?4 the enrolment (totp_secret_id).
pub(crate) const RENEW_KEY: &str = "UPDATE users SET recovery_key_sealed = ?3 \
     WHERE org = ?1 AND id = ?2 AND totp_secret_sealed IS NOT NULL AND totp_secret_id = ?4";
/// ?1 user, ?2 the new sealed key: only once this batch's key is the user's.
pub(crate) const RENEW_CLEAR_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = ?1 \
     AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND recovery_key_sealed = ?2)";
/// ?1 user, ?2 code hash, ?3 the new sealed key.
pub(crate) const RENEW_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) SELECT ?1, ?2 \
     WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1 AND recovery_key_sealed = ?3)";

/// Replace the user's recovery codes (used or not) with new ones under a new key, in one
/// transaction, only for the enrolment `secret_id` that was checked (an admin reset or a new
/// enrolment since leaves it untouched). Whether they were replaced.
pub async fn renew_recovery_codes(
    db: &Db,
    org: &str,
    user_id: &str,
    secret_id: &str,
    key_sealed: &str,
    hashes: &[String],
) -> Result<bool> {
    let mut statements = vec![
        db.prepare(RENEW_KEY).bind(&[
            org.into(),
            user_id.into(),
            key_sealed.into(),
            secret_id.into(),
        ])?,
        db.prepare(RENEW_CLEAR_CODES)
            .bind(&[user_id.into(), key_sealed.into()])?,
    ];
    for hash in hashes {
        statements.push(db.prepare(RENEW_CODE).bind(&[
            user_id.into(),
            hash.as_str().into(),
            key_sealed.into(),
        ])?);
    }
    let results = db.batch(statements).await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1)
}

pub(crate) const CONSUME_STEP: &str = "UPDATE users SET totp_last_step = ?3 WHERE org = ?1 AND id = ?2 \
     AND totp_secret_sealed IS NOT NULL AND totp_secret_id = ?4 AND totp_last_step < ?3 RETURNING id";

/// Accept a TOTP code's step: only later than the last step accepted (RFC 6238 §5.2: "the
/// verifier MUST NOT accept the second attempt of the OTP after the successful validation"), and
/// only for the enrolment whose secret the code was checked against (`secret_id`, read with that
/// secret): a row read before an admin reset and re-enrolment (a lagging replica) must not let
/// the old device's code through. The id, not the sealed text, because a rotation re-seals the
/// same secret to another text.
pub async fn consume_step(
    db: &Db,
    org: &str,
    user_id: &str,
    secret_id: Option<&str>,
    step: i64,
) -> Result<bool> {
    let Some(secret_id) = secret_id else {
        return Ok(false);
    };
    Ok(db
        .prepare(CONSUME_STEP)
        .bind(&[org.into(), user_id.into(), int(step), secret_id.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// `?2, ?3, …` for `n` candidate hashes after the user id; the time is the last parameter.
pub(crate) fn consume_recovery_sql(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("?{}", i + 2)).collect();
    format!(
        "UPDATE recovery_codes SET used_at = ?{} WHERE user_id = ?1 AND code_hash IN ({}) AND used_at IS NULL \
         RETURNING user_id",
        n + 2,
        list.join(", ")
    )
}

/// Use a recovery code once: `hashes` are the forms it may be stored in (oidc/factor_secrets.rs:
/// the keyed hash, or the unsalted hash of an enrolment made before keyed hashes).
pub async fn consume_recovery(db: &Db, user_id: &str, hashes: &[String], now: i64) -> Result<bool> {
    if hashes.is_empty() {
        return Ok(false);
    }
    let mut values: Vec<JsValue> = vec![user_id.into()];
    values.extend(hashes.iter().map(|h| JsValue::from_str(h)));
    values.push(int(now));
    Ok(db
        .prepare(consume_recovery_sql(hashes.len()))
        .bind(&values)?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

pub(crate) const RESEAL_FACTORS: &str = "UPDATE users SET totp_secret_sealed = ?5, recovery_key_sealed = ?6 \
     WHERE org = ?1 AND id = ?2 AND totp_secret_sealed IS ?3 AND recovery_key_sealed IS ?4";

/// Write a user's factor secrets back re-sealed under the current KEY_ENCRYPTION_SECRET, only if
/// both are still what was read (`was`): an admin reset, a re-enrolment or another re-seal in the
/// meantime wins. Whether it was written.
pub async fn reseal_factors(
    db: &Db,
    org: &str,
    user_id: &str,
    was: (Option<&str>, Option<&str>),
    resealed: (Option<&str>, Option<&str>),
) -> Result<bool> {
    let result = db
        .prepare(RESEAL_FACTORS)
        .bind(&[
            org.into(),
            user_id.into(),
            opt_text(was.0),
            opt_text(was.1),
            opt_text(resealed.0),
            opt_text(resealed.1),
        ])?
        .run()
        .await?;
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) == 1)
}

/// Remove the factor: ?1 org, ?2 user, ?3 1 where it may go only while a passkey remains (the
/// user's own removal where a second factor is required). The condition is in the UPDATE, so a
/// passkey removed at the same time (whose DELETE checks for TOTP the same way) cannot leave the
/// user with neither: D1 runs the two one after the other.
pub(crate) const RESET: &str = "UPDATE users SET totp_secret_sealed = NULL, totp_enrolled_at = NULL, totp_last_step = 0, \
     totp_secret_id = NULL, recovery_key_sealed = NULL WHERE org = ?1 AND id = ?2 \
     AND (?3 = 0 OR EXISTS (SELECT 1 FROM passkeys p WHERE p.org = ?1 AND p.user_id = ?2))";
/// Its recovery codes, only if the factor went (or was never there).
pub(crate) const RESET_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = ?2 \
     AND EXISTS (SELECT 1 FROM users WHERE org = ?1 AND id = ?2 AND totp_secret_sealed IS NULL)";

/// Remove a user's second factor and recovery codes: the admin reset, and the user's own removal
/// — there, where a second factor is required, only while a passkey remains
/// (`while_passkey_remains`). Whether it was removed (for the admin: whether the user exists).
pub async fn reset(db: &Db, org: &str, user_id: &str, while_passkey_remains: bool) -> Result<bool> {
    let binds = [
        JsValue::from_str(org),
        JsValue::from_str(user_id),
        JsValue::from_f64(if while_passkey_remains { 1.0 } else { 0.0 }),
    ];
    let results = db
        .batch(vec![
            db.prepare(RESET).bind(&binds)?,
            db.prepare(RESET_CODES).bind(&binds[..2])?,
        ])
        .await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1)
}
