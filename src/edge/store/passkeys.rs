//! Passkey storage (D1 tables `passkeys` and `passkey_challenges_used`, migration 0011p).
//!
//! A ceremony's challenge is sealed into the page that shows it (oidc/passkeys.rs), so showing a
//! page writes nothing. Finishing one claims the challenge at the D1 primary: an INSERT of its hash
//! whose primary key lets one finish through, with a random `claim` value, and the ceremony's own
//! write (the new passkey, or the used passkey's counter) in the same batch — one transaction, one
//! round trip — guarded on the claim row carrying this finish's value. Of 50 concurrent finishes of
//! one challenge exactly one writes; the others learn they lost from the claim's empty RETURNING.
//! The SQL is in constants, tested natively against the migrations (store/sql_tests.rs).

use serde::{Deserialize, Serialize};
use worker::Result;

use crate::edge::store::d1::{int, int_bool};
use crate::edge::store::database::Db;
use crate::edge::store::users::{User, user_columns};
use crate::protocol::account::PasskeyKeep;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Passkey {
    pub id: String,
    #[serde(skip_serializing)]
    pub org: String,
    #[serde(skip_serializing)]
    pub user_id: String,
    /// base64url. Not secret (the browser is told it), but the admin API does not return it.
    #[serde(skip_serializing)]
    pub credential_id: String,
    /// base64url COSE_Key: never returned.
    #[serde(skip_serializing)]
    pub public_key: String,
    #[serde(skip_serializing)]
    pub alg: i64,
    #[serde(skip_serializing)]
    pub sign_count: i64,
    #[serde(deserialize_with = "int_bool")]
    pub user_verified: bool,
    #[serde(deserialize_with = "int_bool")]
    pub backup_eligible: bool,
    #[serde(deserialize_with = "int_bool")]
    pub backed_up: bool,
    #[serde(deserialize_with = "crate::edge::store::d1::json_list")]
    pub transports: Vec<String>,
    pub aaguid: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A verified registration, to store.
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub org: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub public_key: &'a str,
    pub alg: i64,
    pub sign_count: i64,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub transports: &'a str,
    pub aaguid: &'a str,
    pub name: &'a str,
    pub now: i64,
}

/// The claim of one challenge: its hash, this finish's random value, and until when it matters.
pub struct Claim<'a> {
    pub challenge_hash: &'a str,
    pub org: &'a str,
    pub value: &'a str,
    pub expires_at: i64,
}

pub(crate) const CLAIM: &str = "INSERT INTO passkey_challenges_used (challenge_hash, org, claim, expires_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (challenge_hash) DO NOTHING RETURNING claim";

/// The ceremony's write happens only under this finish's claim (`hash`, `value`: parameters).
fn claimed(hash: &str, value: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM passkey_challenges_used WHERE challenge_hash = {hash} AND claim = {value})"
    )
}

fn claim_stmt(db: &Db, c: &Claim) -> Result<crate::edge::store::database::Stmt> {
    db.prepare(CLAIM).bind(&[
        c.challenge_hash.into(),
        c.org.into(),
        c.value.into(),
        int(c.expires_at),
    ])
}

/// ?1..?14 the passkey's columns, ?15 the challenge hash, ?16 the claim; the user must exist, be
/// enabled and be in the organization.
pub(crate) fn insert_sql() -> String {
    let claimed = claimed("?15", "?16");
    format!(
        "INSERT INTO passkeys (id, org, user_id, credential_id, public_key, alg, sign_count, user_verified, \
         backup_eligible, backed_up, transports, aaguid, name, created_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 \
         WHERE {claimed} AND EXISTS (SELECT 1 FROM users WHERE id = ?3 AND org = ?2 AND disabled = 0) \
         ON CONFLICT (org, credential_id) DO NOTHING RETURNING id"
    )
}

/// ?1 link token hash, ?2 claim nonce (store/links.rs `Claim::guarded`), ?3..?14 the passkey's
/// id, credential id, public key, alg, counter, UV, BE, BS, transports, AAGUID, name and time:
/// the passkey of the user whose link this request claimed, in the claim's batch (a link
/// finished with a passkey, oidc/setup_link.rs). No `ON CONFLICT`: a credential already
/// registered in the organization fails the whole batch, so the link stays unused rather than
/// used up with no way to sign in.
pub(crate) const INSERT_FOR_LINK: &str = "INSERT INTO passkeys (id, org, user_id, credential_id, \
     public_key, alg, sign_count, user_verified, backup_eligible, backed_up, transports, aaguid, name, created_at) \
     SELECT ?3, l.org, l.user_id, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 \
     FROM setup_links l WHERE l.token_hash = ?1 AND l.claim_nonce = ?2 AND l.reset_password = 1";

/// The statement that stores `p` for the link `claim` is about to claim (its `org` and `user_id`
/// are the link's, not `p`'s: the claim decides whose passkey it is).
pub fn insert_for_link(
    db: &Db,
    claim: &crate::edge::store::links::Claim,
    p: &NewPasskey<'_>,
) -> Result<crate::edge::store::database::Stmt> {
    claim.guarded(
        db,
        INSERT_FOR_LINK,
        &[
            p.id.into(),
            p.credential_id.into(),
            p.public_key.into(),
            int(p.alg),
            int(p.sign_count),
            crate::edge::store::d1::boolean(p.user_verified),
            crate::edge::store::d1::boolean(p.backup_eligible),
            crate::edge::store::d1::boolean(p.backed_up),
            p.transports.into(),
            p.aaguid.into(),
            p.name.into(),
            int(p.now),
        ],
    )
}

/// Whether a failed batch failed on the unique credential id (a passkey registered already).
pub fn is_duplicate_credential(error: &worker::Error) -> bool {
    let text = error.to_string();
    text.contains("UNIQUE constraint failed") && text.contains("credential_id")
}

#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    Stored,
    /// The challenge was used before (a replay, or another of concurrent finishes won).
    ChallengeUsed,
    /// The credential is already registered in this organization, or the user is gone/disabled.
    NotStored,
}

#[derive(Deserialize)]
struct Returned {
    #[allow(dead_code)]
    claim: Option<String>,
    #[allow(dead_code)]
    id: Option<String>,
}

fn returned_any(result: Option<&worker::D1Result>) -> bool {
    result
        .and_then(|r| r.results::<Returned>().ok())
        .is_some_and(|rows| !rows.is_empty())
}

/// Claim the challenge and store the passkey in one transaction at the primary.
pub async fn register(db: &Db, claim: &Claim<'_>, p: &NewPasskey<'_>) -> Result<Registered> {
    let results = db
        .batch(vec![
            claim_stmt(db, claim)?,
            db.prepare(insert_sql()).bind(&[
                p.id.into(),
                p.org.into(),
                p.user_id.into(),
                p.credential_id.into(),
                p.public_key.into(),
                int(p.alg),
                int(p.sign_count),
                crate::edge::store::d1::boolean(p.user_verified),
                crate::edge::store::d1::boolean(p.backup_eligible),
                crate::edge::store::d1::boolean(p.backed_up),
                p.transports.into(),
                p.aaguid.into(),
                p.name.into(),
                int(p.now),
                claim.challenge_hash.into(),
                claim.value.into(),
            ])?,
        ])
        .await?;
    if !returned_any(results.first()) {
        return Ok(Registered::ChallengeUsed);
    }
    Ok(if returned_any(results.get(1)) {
        Registered::Stored
    } else {
        Registered::NotStored
    })
}

/// ?1 org, ?2 passkey id, ?3 new counter, ?4 BS flag, ?5 now, ?6 the challenge hash, ?7 the
/// claim. The counter never goes down (a regressed one is reported, oidc/passkeys.rs).
pub(crate) fn used_sql() -> String {
    let claimed = claimed("?6", "?7");
    format!(
        "UPDATE passkeys SET sign_count = MAX(sign_count, ?3), backed_up = ?4, last_used_at = ?5 \
         WHERE org = ?1 AND id = ?2 AND {claimed} RETURNING id"
    )
}

#[derive(Debug, PartialEq, Eq)]
pub enum Used {
    Recorded,
    ChallengeUsed,
    /// Deleted between the read and this write.
    PasskeyGone,
}

/// Claim the challenge and record the passkey's use in one transaction at the primary.
pub async fn record_use(
    db: &Db,
    claim: &Claim<'_>,
    passkey_id: &str,
    sign_count: i64,
    backed_up: bool,
    now: i64,
) -> Result<Used> {
    let results = db
        .batch(vec![
            claim_stmt(db, claim)?,
            db.prepare(used_sql()).bind(&[
                claim.org.into(),
                passkey_id.into(),
                int(sign_count),
                crate::edge::store::d1::boolean(backed_up),
                int(now),
                claim.challenge_hash.into(),
                claim.value.into(),
            ])?,
        ])
        .await?;
    if !returned_any(results.first()) {
        return Ok(Used::ChallengeUsed);
    }
    Ok(if returned_any(results.get(1)) {
        Used::Recorded
    } else {
        Used::PasskeyGone
    })
}

/// The passkey a browser named and the user its userHandle names, in one round trip (at the
/// primary, so a passkey deleted or a user disabled a moment ago elsewhere is seen).
pub async fn for_sign_in(
    db: &Db,
    org: &str,
    credential_id: &str,
    user_id: &str,
) -> Result<(Option<Passkey>, Option<User>)> {
    let results = db
        .batch(vec![
            db.prepare("SELECT * FROM passkeys WHERE org = ?1 AND credential_id = ?2")
                .bind(&[org.into(), credential_id.into()])?,
            db.prepare(format!(
                "SELECT {} FROM users WHERE org = ?1 AND id = ?2",
                user_columns()
            ))
            .bind(&[org.into(), user_id.into()])?,
        ])
        .await?;
    let passkey = results
        .first()
        .and_then(|r| r.results::<Passkey>().ok())
        .and_then(|rows| rows.into_iter().next());
    let user = match results.get(1) {
        Some(r) => r.results::<User>()?.into_iter().next(),
        None => None,
    };
    Ok((passkey, user))
}

pub async fn list(db: &Db, org: &str, user_id: &str) -> Result<Vec<Passkey>> {
    db.prepare("SELECT * FROM passkeys WHERE org = ?1 AND user_id = ?2 ORDER BY created_at, id")
        .bind(&[org.into(), user_id.into()])?
        .all()
        .await?
        .results()
}

/// Rename one of a user's passkeys. Whether it was theirs (and still there).
pub async fn rename(db: &Db, org: &str, user_id: &str, id: &str, name: &str) -> Result<bool> {
    Ok(db
        .prepare(
            "UPDATE passkeys SET name = ?4 WHERE org = ?1 AND user_id = ?2 AND id = ?3 RETURNING id",
        )
        .bind(&[org.into(), user_id.into(), id.into(), name.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// Delete one of a user's passkeys. Whether it was there.
pub async fn delete(db: &Db, org: &str, user_id: &str, id: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM passkeys WHERE org = ?1 AND user_id = ?2 AND id = ?3 RETURNING id")
        .bind(&[org.into(), user_id.into(), id.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// What a user's own removal of a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Not theirs, or gone already.
    NotFound,
    /// Refused: it must stay (protocol/account.rs `PasskeyKeep`).
    MustStay,
}

/// A user's removal of one of their passkeys: ?1 org, ?2 user, ?3 passkey, ?4 what must stay
/// (`keep_code`): 0 nothing, 1 their last passkey (a passwordless organization), 2 a second
/// factor — another passkey or TOTP (whose removal checks for a passkey the same way,
/// store/mfa.rs `RESET`). The count is inside the one statement, so removals sent at once
/// cannot together pass it: D1 runs statements one at a time at the primary.
pub const DELETE_BY_USER: &str = "DELETE FROM passkeys WHERE org = ?1 AND user_id = ?2 AND id = ?3 \
     AND (?4 = 0 OR (SELECT COUNT(*) FROM passkeys WHERE org = ?1 AND user_id = ?2) > 1 \
          OR (?4 = 2 AND EXISTS (SELECT 1 FROM users u WHERE u.org = ?1 AND u.id = ?2 AND u.totp_secret_sealed IS NOT NULL))) \
     RETURNING id";

/// `DELETE_BY_USER`'s ?4.
pub fn keep_code(keep: PasskeyKeep) -> i64 {
    match keep {
        PasskeyKeep::Nothing => 0,
        PasskeyKeep::LastPasskey => 1,
        PasskeyKeep::ASecondFactor => 2,
    }
}

/// Delete one of a user's passkeys on their own request, keeping what `keep` says must stay.
/// Only a refused delete where something must stay reads again, to tell "must stay" from "not
/// there".
pub async fn delete_by_user(
    db: &Db,
    org: &str,
    user_id: &str,
    id: &str,
    keep: PasskeyKeep,
) -> Result<Removal> {
    let removed = db
        .prepare(DELETE_BY_USER)
        .bind(&[
            org.into(),
            user_id.into(),
            id.into(),
            crate::edge::store::d1::int(keep_code(keep)),
        ])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some();
    if removed {
        return Ok(Removal::Removed);
    }
    if keep == PasskeyKeep::Nothing {
        return Ok(Removal::NotFound);
    }
    let there = db
        .prepare("SELECT id FROM passkeys WHERE org = ?1 AND user_id = ?2 AND id = ?3")
        .bind(&[org.into(), user_id.into(), id.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some();
    Ok(if there {
        Removal::MustStay
    } else {
        Removal::NotFound
    })
}
