//! Re-sealing every stored sealed value under the current KEY_ENCRYPTION_SECRET, after a
//! rotation (README, "Rotating KEY_ENCRYPTION_SECRET"): organizations' signing keys, users' TOTP
//! secrets and recovery-code keys, and upstream connections' client secrets. Run by `POST /api/v1/maintenance/reseal` and, while previous
//! secrets are configured, by the hourly cron. Values are also re-sealed lazily when used
//! (oidc/signer.rs, oidc/factor_secrets.rs).
//!
//! Each write is guarded on the value read, so a concurrent lazy re-seal, admin reset or
//! re-enrolment is never overwritten; running it again changes nothing (idempotent). One run does
//! a bounded amount of work (`PAGE` × `PAGES` rows of each table) and says how many values are
//! left; the caller runs it again until none are.

use serde::{Deserialize, Serialize};
use worker::Result;

use crate::admin::connections::SECRET_PURPOSE as CONNECTION_PURPOSE;
use crate::crypto::Keyring;
use crate::crypto::keyring::Unreadable;
use crate::edge::store::d1::int;
use crate::edge::store::database::Db;
use crate::edge::store::keys::{RESEAL_KEY, SEALING_PURPOSE};
use crate::edge::store::mfa::{
    RECOVERY_KEY_PURPOSE as RECOVERY_PURPOSE, RESEAL_FACTORS, TOTP_PURPOSE,
};

/// Rows read and written per round trip, and round trips per table per run.
pub const PAGE: usize = 100;
pub const PAGES: usize = 20;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Re-sealed under the current secret by this run.
    pub resealed: u32,
    /// No configured secret opens them (see `unknown_key_ids`): they stay as they are.
    pub unreadable: u32,
    /// Still not sealed under the current secret after this run (unreadable ones included).
    pub left: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub key_id: String,
    pub previous_key_ids: Vec<String>,
    pub signing_keys: Counts,
    pub totp_secrets: Counts,
    pub recovery_keys: Counts,
    /// Client secrets of upstream connections (admin/connections.rs).
    pub connection_secrets: Counts,
    /// Key ids found on values that no configured secret matches: put those secrets back in
    /// KEY_ENCRYPTION_SECRET_PREVIOUS.
    pub unknown_key_ids: Vec<String>,
    /// Nothing is left: the previous secrets can be removed.
    pub done: bool,
}

/// What to do with one stored value. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Absent, or already under the current secret.
    Keep,
    Reseal(String),
    Unreadable(Unreadable),
}

pub fn step(keys: &Keyring, purpose: &str, sealed: Option<&str>, aad: &str) -> Step {
    match sealed {
        None => Step::Keep,
        Some(s) if keys.is_current(s) => Step::Keep,
        Some(s) => match keys.open_stored(purpose, s, aad.as_bytes()) {
            Ok(opened) => opened.resealed.map_or(Step::Keep, Step::Reseal),
            Err(why) => Step::Unreadable(why),
        },
    }
}

// `?1` the length of the current prefix, `?2` the prefix, `?3` the cursor, `?4` the page size.
pub(crate) const KEYS_PAGE: &str = "SELECT kid, private_key_sealed FROM signing_keys \
     WHERE substr(private_key_sealed, 1, ?1) != ?2 AND kid > ?3 ORDER BY kid LIMIT ?4";
pub(crate) const USERS_PAGE: &str = "SELECT id, org, totp_secret_sealed, recovery_key_sealed FROM users \
     WHERE ((totp_secret_sealed IS NOT NULL AND substr(totp_secret_sealed, 1, ?1) != ?2) \
     OR (recovery_key_sealed IS NOT NULL AND substr(recovery_key_sealed, 1, ?1) != ?2)) \
     AND id > ?3 ORDER BY id LIMIT ?4";
pub(crate) const CONNECTIONS_PAGE: &str = "SELECT id, client_secret_sealed FROM connections \
     WHERE substr(client_secret_sealed, 1, ?1) != ?2 AND id > ?3 ORDER BY id LIMIT ?4";
/// ?1 id, ?2 the sealed secret read, ?3 the re-sealed one: guarded on the value read, so a secret
/// replaced through the admin API meanwhile is never overwritten.
pub(crate) const RESEAL_CONNECTION: &str = "UPDATE connections SET client_secret_sealed = ?3 \
     WHERE id = ?1 AND client_secret_sealed = ?2";
pub(crate) const LEFT: &str = "SELECT \
     (SELECT COUNT(*) FROM signing_keys WHERE substr(private_key_sealed, 1, ?1) != ?2) AS signing_keys, \
     (SELECT COUNT(*) FROM users WHERE totp_secret_sealed IS NOT NULL AND substr(totp_secret_sealed, 1, ?1) != ?2) AS totp_secrets, \
     (SELECT COUNT(*) FROM users WHERE recovery_key_sealed IS NOT NULL AND substr(recovery_key_sealed, 1, ?1) != ?2) AS recovery_keys, \
     (SELECT COUNT(*) FROM connections WHERE substr(client_secret_sealed, 1, ?1) != ?2) AS connection_secrets";

#[derive(Deserialize)]
struct KeyRow {
    kid: String,
    private_key_sealed: String,
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    org: String,
    totp_secret_sealed: Option<String>,
    recovery_key_sealed: Option<String>,
}

#[derive(Deserialize)]
struct ConnectionRow {
    id: String,
    client_secret_sealed: String,
}

#[derive(Deserialize)]
struct Left {
    signing_keys: u32,
    totp_secrets: u32,
    recovery_keys: u32,
    connection_secrets: u32,
}

/// Tallies one value's step into its counts (and the unknown key ids).
fn tally(step: &Step, counts: &mut Counts, unknown: &mut Vec<String>) {
    if let Step::Unreadable(why) = step {
        counts.unreadable += 1;
        if let Some(id) = why.missing_key_id()
            && !unknown.iter().any(|u| u == id)
        {
            unknown.push(id.to_string());
        }
    }
}

fn changed(result: &worker::D1Result) -> bool {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1
}

pub async fn run(db: &Db, keys: &Keyring) -> Result<Report> {
    let prefix = keys.current_prefix();
    let page_args = |cursor: &str| {
        [
            int(prefix.len() as i64),
            prefix.as_str().into(),
            cursor.into(),
            int(PAGE as i64),
        ]
    };
    let mut report = Report {
        key_id: keys.current_id().to_string(),
        previous_key_ids: keys.previous_ids().iter().map(|s| s.to_string()).collect(),
        ..Report::default()
    };

    let mut cursor = String::new();
    for _ in 0..PAGES {
        let rows = db
            .prepare(KEYS_PAGE)
            .bind(&page_args(&cursor))?
            .all()
            .await?
            .results::<KeyRow>()?;
        let mut writes = Vec::new();
        for row in &rows {
            let s = step(
                keys,
                SEALING_PURPOSE,
                Some(&row.private_key_sealed),
                &row.kid,
            );
            tally(&s, &mut report.signing_keys, &mut report.unknown_key_ids);
            if let Step::Reseal(new) = s {
                writes.push(db.prepare(RESEAL_KEY).bind(&[
                    row.kid.as_str().into(),
                    row.private_key_sealed.as_str().into(),
                    new.into(),
                ])?);
            }
        }
        if !writes.is_empty() {
            let results = db.batch(writes).await?;
            report.signing_keys.resealed += results.iter().filter(|r| changed(r)).count() as u32;
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => cursor = last.kid.clone(),
            _ => break,
        }
    }

    let mut cursor = String::new();
    for _ in 0..PAGES {
        let rows = db
            .prepare(USERS_PAGE)
            .bind(&page_args(&cursor))?
            .all()
            .await?
            .results::<UserRow>()?;
        let mut writes = Vec::new();
        let mut written = Vec::new();
        for row in &rows {
            let totp = step(
                keys,
                TOTP_PURPOSE,
                row.totp_secret_sealed.as_deref(),
                &row.id,
            );
            let recovery = step(
                keys,
                RECOVERY_PURPOSE,
                row.recovery_key_sealed.as_deref(),
                &row.id,
            );
            tally(&totp, &mut report.totp_secrets, &mut report.unknown_key_ids);
            tally(
                &recovery,
                &mut report.recovery_keys,
                &mut report.unknown_key_ids,
            );
            let new = |s: &Step, was: &Option<String>| match s {
                Step::Reseal(new) => Some(new.clone()),
                _ => was.clone(),
            };
            let reseals = (
                matches!(totp, Step::Reseal(_)),
                matches!(recovery, Step::Reseal(_)),
            );
            if reseals.0 || reseals.1 {
                let opt = crate::edge::store::d1::opt_text;
                writes.push(db.prepare(RESEAL_FACTORS).bind(&[
                    row.org.as_str().into(),
                    row.id.as_str().into(),
                    opt(row.totp_secret_sealed.as_deref()),
                    opt(row.recovery_key_sealed.as_deref()),
                    opt(new(&totp, &row.totp_secret_sealed).as_deref()),
                    opt(new(&recovery, &row.recovery_key_sealed).as_deref()),
                ])?);
                written.push(reseals);
            }
        }
        if !writes.is_empty() {
            let results = db.batch(writes).await?;
            for (result, (totp, recovery)) in results.iter().zip(written) {
                if changed(result) {
                    report.totp_secrets.resealed += totp as u32;
                    report.recovery_keys.resealed += recovery as u32;
                }
            }
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => cursor = last.id.clone(),
            _ => break,
        }
    }

    let mut cursor = String::new();
    for _ in 0..PAGES {
        let rows = db
            .prepare(CONNECTIONS_PAGE)
            .bind(&page_args(&cursor))?
            .all()
            .await?
            .results::<ConnectionRow>()?;
        let mut writes = Vec::new();
        for row in &rows {
            let s = step(
                keys,
                CONNECTION_PURPOSE,
                Some(&row.client_secret_sealed),
                &row.id,
            );
            tally(
                &s,
                &mut report.connection_secrets,
                &mut report.unknown_key_ids,
            );
            if let Step::Reseal(new) = s {
                writes.push(db.prepare(RESEAL_CONNECTION).bind(&[
                    row.id.as_str().into(),
                    row.client_secret_sealed.as_str().into(),
                    new.into(),
                ])?);
            }
        }
        if !writes.is_empty() {
            let results = db.batch(writes).await?;
            report.connection_secrets.resealed +=
                results.iter().filter(|r| changed(r)).count() as u32;
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => cursor = last.id.clone(),
            _ => break,
        }
    }

    let left = db
        .prepare(LEFT)
        .bind(&[int(prefix.len() as i64), prefix.as_str().into()])?
        .first::<Left>(None)
        .await?
        .unwrap_or(Left {
            signing_keys: 0,
            totp_secrets: 0,
            recovery_keys: 0,
            connection_secrets: 0,
        });
    report.signing_keys.left = left.signing_keys;
    report.totp_secrets.left = left.totp_secrets;
    report.recovery_keys.left = left.recovery_keys;
    report.connection_secrets.left = left.connection_secrets;
    report.done =
        left.signing_keys + left.totp_secrets + left.recovery_keys + left.connection_secrets == 0;
    Ok(report)
}

/// One JSON line for the log: an error when anything is unreadable.
pub fn log(report: &Report, trigger: &str) {
    let mut line = serde_json::to_value(report).unwrap_or_default();
    line["event"] = "reseal".into();
    line["trigger"] = trigger.into();
    let unreadable = report.signing_keys.unreadable
        + report.totp_secrets.unreadable
        + report.recovery_keys.unreadable
        + report.connection_secrets.unreadable;
    if unreadable > 0 {
        line["level"] = "error".into();
        worker::console_error!("{line}");
    } else {
        worker::console_log!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "the old master secret, long enough";
    const NEW: &str = "the new master secret, long enough";

    #[test]
    fn each_value_is_kept_resealed_or_reported() {
        let old = Keyring::new(OLD, &[]).unwrap();
        let rotating = Keyring::new(NEW, &[OLD]).unwrap();
        let sealed_old = old.seal(TOTP_PURPOSE, b"s", b"usr_1");
        let sealed_new = rotating.seal(TOTP_PURPOSE, b"s", b"usr_1");
        assert_eq!(step(&rotating, TOTP_PURPOSE, None, "usr_1"), Step::Keep);
        assert_eq!(
            step(&rotating, TOTP_PURPOSE, Some(&sealed_new), "usr_1"),
            Step::Keep
        );
        let Step::Reseal(new) = step(&rotating, TOTP_PURPOSE, Some(&sealed_old), "usr_1") else {
            panic!("a value under the previous secret is re-sealed");
        };
        assert!(rotating.is_current(&new));
        assert_eq!(
            rotating.open(TOTP_PURPOSE, &new, b"usr_1").unwrap(),
            b"s".to_vec()
        );
        let removed = Keyring::new(NEW, &[]).unwrap();
        let Step::Unreadable(why) = step(&removed, TOTP_PURPOSE, Some(&sealed_old), "usr_1") else {
            panic!("a value under a removed secret is reported");
        };
        assert_eq!(why.missing_key_id(), Some(old.current_id()));
        let mut counts = Counts::default();
        let mut unknown = Vec::new();
        tally(&Step::Unreadable(why.clone()), &mut counts, &mut unknown);
        tally(&Step::Unreadable(why), &mut counts, &mut unknown);
        assert_eq!(counts.unreadable, 2);
        assert_eq!(unknown, vec![old.current_id().to_string()]);
    }
}
