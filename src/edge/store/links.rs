//! One-time links (D1 table `setup_links`, migration 0011l; rules in protocol/links.rs).
//!
//! THE CLAIM. A link is used by `claim`, and only there: one batch (one transaction, one round
//! trip) at the D1 primary whose first statement is the conditional write
//! `UPDATE setup_links SET used_at = now, claim_nonce = N WHERE token_hash = ? AND used_at IS NULL
//! AND revoked_at IS NULL AND expires_at > now AND <the user is enabled> RETURNING …` — of any
//! number of concurrent claims of one link exactly one changes the row. Every write the link
//! allows (the new password, the removal of the second factor, the end of the user's other
//! sessions) is a later statement of the same batch that names its user only through
//! `claim_nonce = N`, this request's random value: when the claim lost (already used, expired,
//! superseded, disabled user, or another request won), those statements match no row and
//! change nothing. So nothing can set a password from an unclaimed link, and a password is set
//! only together with the claim that allowed it, or not at all.
//!
//! A [`ClaimedLink`] is what a won claim did; only `claim` makes one. Another way to finish a
//! link (a passkey registered instead of a password, issue 16 item 1) adds its own statements
//! to the batch with [`Claim::guarded`], which binds them to the claim the same way, and reads
//! the outcome from the `ClaimedLink`.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::Result;

use crate::crypto::{random_token, token_hash};
use crate::edge::store::d1::{boolean, int, int_bool};
use crate::edge::store::database::{Db, Stmt};
use crate::edge::store::users::User;
use crate::protocol::links::{Purpose, Resets, Standing};

/// ?1 org, ?2 user, ?3 purpose, ?4 now: older unused links of the user for this purpose stop
/// working (only the newest link sent works).
pub(crate) const SUPERSEDE: &str = "UPDATE setup_links SET revoked_at = ?4 \
     WHERE org = ?1 AND user_id = ?2 AND purpose = ?3 AND used_at IS NULL AND revoked_at IS NULL \
     AND EXISTS (SELECT 1 FROM users u WHERE u.org = ?1 AND u.id = ?2 AND u.disabled = 0)";
/// ?1 token hash, ?2 org, ?3 user, ?4 purpose, ?5 resets the password, ?6 resets the second
/// factor, ?7 now, ?8 expiry: only for an enabled user of the organization.
pub(crate) const INSERT: &str = "INSERT INTO setup_links \
     (token_hash, org, user_id, purpose, reset_password, reset_second_factor, created_at, expires_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 \
     WHERE EXISTS (SELECT 1 FROM users u WHERE u.org = ?2 AND u.id = ?3 AND u.disabled = 0)";
/// ?1 token hash, ?2 org: the link and whose account it is, for its page.
pub(crate) const PEEK: &str = "SELECT l.user_id, l.purpose, l.reset_password, l.reset_second_factor, \
     l.expires_at, l.used_at IS NOT NULL AS used, l.revoked_at IS NOT NULL AS revoked, \
     u.username, u.email, u.disabled AS user_disabled, u.totp_secret_sealed IS NOT NULL AS enrolled, \
     (SELECT json_group_array(p.credential_id) FROM passkeys p WHERE p.org = l.org AND p.user_id = l.user_id) AS credential_ids \
     FROM setup_links l JOIN users u ON u.id = l.user_id AND u.org = l.org \
     WHERE l.token_hash = ?1 AND l.org = ?2";
/// How a link is finished, which decides which links the claim may take: only a link that
/// resets the password gives its holder a way to sign in (a new password, or a passkey instead),
/// and a link that resets only the second factor is finished with nothing.
#[derive(Debug, Clone, Copy)]
pub enum Finish<'a> {
    /// A new password (its hash).
    Password(&'a str),
    /// A passkey registered instead of a password (its insert is one of the claim's `extra`
    /// statements); a password the link resets is removed, not kept.
    Passkey,
    /// Nothing given: only a link that does not reset the password can be claimed so.
    Nothing,
}

/// ?1 token hash, ?2 org, ?3 now, ?4 nonce: THE single-use decision. A link that resets the
/// password is claimed only with a password or a passkey, and a passkey only finishes such a
/// link (one that resets only the second factor proves nothing that may sign in).
pub(crate) fn claim_sql(finish: Finish<'_>) -> String {
    format!(
        "UPDATE setup_links SET used_at = ?3, claim_nonce = ?4 \
         WHERE token_hash = ?1 AND org = ?2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?3 \
         AND EXISTS (SELECT 1 FROM users u WHERE u.id = setup_links.user_id AND u.org = setup_links.org AND u.disabled = 0){} \
         RETURNING user_id, purpose, reset_password, reset_second_factor",
        match finish {
            Finish::Password(_) => "",
            Finish::Passkey => " AND reset_password = 1",
            Finish::Nothing => " AND reset_password = 0",
        }
    )
}
/// The user of the link `?1` (token hash) claimed by this request (`?2` nonce), when the link
/// resets `what` — for statements of the claim's batch.
fn claimed_user(what: &str) -> String {
    format!(
        "(SELECT l.user_id FROM setup_links l WHERE l.token_hash = ?1 AND l.claim_nonce = ?2{what})"
    )
}
/// ?1 token hash, ?2 nonce, ?3 hash (NULL where a passkey replaces the password), ?4 now (s),
/// ?5 not-before (ms): the new password, and every session of the user started before now ends (OWASP Forgot Password Cheat Sheet: invalidate
/// existing sessions after a reset).
pub(crate) fn set_password_sql() -> String {
    format!(
        "UPDATE users SET password_hash = ?3, updated_at = ?4, \
         sessions_not_before_ms = MAX(COALESCE(sessions_not_before_ms, 0), ?5) \
         WHERE id = {}",
        claimed_user(" AND l.reset_password = 1")
    )
}
/// ?1, ?2, ?3 now (s), ?4 not-before (ms): the second factor and its recovery codes go, and the
/// sessions with them.
pub(crate) fn reset_totp_sql() -> String {
    format!(
        "UPDATE users SET totp_secret_sealed = NULL, totp_enrolled_at = NULL, totp_last_step = 0, \
         totp_secret_id = NULL, recovery_key_sealed = NULL, updated_at = ?3, \
         sessions_not_before_ms = MAX(COALESCE(sessions_not_before_ms, 0), ?4) \
         WHERE id = {}",
        claimed_user(" AND l.reset_second_factor = 1")
    )
}
pub(crate) fn reset_codes_sql() -> String {
    format!(
        "DELETE FROM recovery_codes WHERE user_id = {}",
        claimed_user(" AND l.reset_second_factor = 1")
    )
}
/// ?1, ?2: the upstream links confirmed with the password this claim replaces (migration 0012f).
pub(crate) fn drop_password_links_sql() -> String {
    format!(
        "DELETE FROM user_links WHERE confirmed_by_password = 1 AND user_id = {}",
        claimed_user(" AND l.reset_password = 1")
    )
}
/// ?1, ?2, ?3 the oldest grant that counts: the claimed user's live grants at clients that want
/// to be told of logouts (the columns of store/grants.rs `LOGOUT_TARGETS`), read in the claim's
/// transaction just before `revoke_grants_sql` revokes them — so the relying parties told are
/// exactly those whose grants this claim ended, and none when the claim lost.
pub(crate) fn logout_targets_sql() -> String {
    format!(
        "SELECT DISTINCT g.client_id, c.backchannel_logout_uri AS uri, \
         c.backchannel_logout_session_required AS session_required, g.sid \
         FROM grants g JOIN clients c ON c.org = g.org AND c.client_id = g.client_id \
         WHERE g.user_id = {} AND g.revoked_at IS NULL AND g.created_at >= ?3 \
         AND c.backchannel_logout_uri IS NOT NULL ORDER BY g.client_id, g.sid LIMIT 200",
        claimed_user("")
    )
}
/// ?1, ?2, ?3 now: the user's grants (their refresh and access tokens) are revoked.
pub(crate) fn revoke_grants_sql() -> String {
    format!(
        "UPDATE grants SET revoked_at = ?3 WHERE user_id = {} AND revoked_at IS NULL",
        claimed_user("")
    )
}
/// ?1, ?2: the account's failed sign-ins are forgotten (a locked-out user is let in with the
/// password just chosen).
pub(crate) fn unlock_sql() -> String {
    format!(
        "DELETE FROM throttles WHERE key = 'user:' || {} \
         AND scope = (SELECT l.org FROM setup_links l WHERE l.token_hash = ?1 AND l.claim_nonce = ?2)",
        claimed_user("")
    )
}
/// ?1, ?2: the user as stored after the batch's writes.
pub(crate) fn read_user_sql() -> String {
    format!("SELECT * FROM users WHERE id = {}", claimed_user(""))
}

/// Issue a link for `user_id`: older unused links of the same purpose stop working, and the new
/// one is stored by its hash, in one batch. `false`: no such enabled user (nothing stored).
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    db: &Db,
    org: &str,
    user_id: &str,
    purpose: Purpose,
    resets: Resets,
    token: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool> {
    let (o, u, p) = (
        JsValue::from_str(org),
        JsValue::from_str(user_id),
        JsValue::from_str(purpose.as_str()),
    );
    let results = db
        .batch(vec![
            db.prepare(SUPERSEDE)
                .bind(&[o.clone(), u.clone(), p.clone(), int(now)])?,
            db.prepare(INSERT).bind(&[
                token_hash(token).into(),
                o,
                u,
                p,
                boolean(resets.password),
                boolean(resets.second_factor),
                int(now),
                int(expires_at),
            ])?,
        ])
        .await?;
    Ok(results
        .get(1)
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 1)
}

/// A link as its page shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Peeked {
    pub user_id: String,
    pub purpose: String,
    #[serde(deserialize_with = "int_bool")]
    pub reset_password: bool,
    #[serde(deserialize_with = "int_bool")]
    pub reset_second_factor: bool,
    pub expires_at: i64,
    #[serde(deserialize_with = "int_bool")]
    pub used: bool,
    #[serde(deserialize_with = "int_bool")]
    pub revoked: bool,
    pub username: String,
    pub email: String,
    #[serde(deserialize_with = "int_bool")]
    pub user_disabled: bool,
    #[serde(deserialize_with = "int_bool")]
    pub enrolled: bool,
    /// The user's passkeys' credential ids as a JSON array (base64url), read in the same query:
    /// the link page's registration excludes them (WebAuthn `excludeCredentials`), so an
    /// authenticator that holds one says so instead of making a second.
    #[serde(default = "empty_json_array")]
    pub credential_ids: String,
}

fn empty_json_array() -> String {
    "[]".into()
}

impl Peeked {
    pub fn standing(&self) -> Standing {
        Standing {
            used: self.used,
            revoked: self.revoked,
            expires_at: self.expires_at,
            user_disabled: self.user_disabled,
        }
    }

    pub fn purpose(&self) -> Purpose {
        Purpose::parse(&self.purpose).unwrap_or(Purpose::Recovery)
    }
}

/// The link `token` of `org` and its user, without using it (a GET must not: mail scanners
/// open links).
pub async fn peek(db: &Db, org: &str, token: &str) -> Result<Option<Peeked>> {
    db.prepare(PEEK)
        .bind(&[token_hash(token).into(), org.into()])?
        .first::<Peeked>(None)
        .await
}

/// A claim about to be made of one link, with this request's random nonce.
pub struct Claim {
    org: String,
    token_hash: String,
    nonce: String,
    now: i64,
}

impl Claim {
    pub fn new(org: &str, token: &str, now: i64) -> Claim {
        Claim {
            org: org.to_string(),
            token_hash: token_hash(token),
            nonce: random_token(""),
            now,
        }
    }

    /// A statement for this claim's batch that takes effect only if the claim wins: `sql` names
    /// the claimed link's user as `(SELECT l.user_id FROM setup_links l WHERE l.token_hash = ?1
    /// AND l.claim_nonce = ?2)` and binds its own values from ?3 on (`values`).
    pub fn guarded(&self, db: &Db, sql: &str, values: &[JsValue]) -> Result<Stmt> {
        let mut all = vec![
            JsValue::from_str(&self.token_hash),
            JsValue::from_str(&self.nonce),
        ];
        all.extend_from_slice(values);
        db.prepare(sql.to_string()).bind(&all)
    }
}

/// What a won claim did. Its fields are private and only `claim` makes one: holding one means
/// the link was used, by this request, and its writes are stored.
#[derive(Debug)]
pub struct ClaimedLink {
    user: User,
    /// The relying parties whose grants the claim revoked and that want to be told.
    logout_targets: Vec<crate::protocol::logout_token::GrantAt>,
    purpose: Purpose,
    resets: Resets,
}

impl ClaimedLink {
    /// The user as stored after the claim's writes.
    pub fn user(&self) -> &User {
        &self.user
    }
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }
    /// Taken once, to tell those relying parties (oidc/backchannel.rs `announce_held`).
    pub fn take_logout_targets(&mut self) -> Vec<crate::protocol::logout_token::GrantAt> {
        std::mem::take(&mut self.logout_targets)
    }
    pub fn resets(&self) -> Resets {
        self.resets
    }
}

#[derive(Deserialize)]
struct ClaimRow {
    purpose: String,
    #[serde(deserialize_with = "int_bool")]
    reset_password: bool,
    #[serde(deserialize_with = "int_bool")]
    reset_second_factor: bool,
}

/// Use the link: the claim, then in the same transaction the new password (where the link resets
/// it, `finish`: a new hash, or none where a passkey replaces it — see [`Finish`] for which
/// links each finish may claim),
/// the removal of the second factor (where it resets that), the end of every earlier session
/// and grant of the user, and `extra` (statements made by [`Claim::guarded`]). `None`: the claim
/// lost and nothing changed; the caller reads why with `peek`.
pub async fn claim(
    db: &Db,
    claim: Claim,
    finish: Finish<'_>,
    not_before_ms: i64,
    extra: Vec<Stmt>,
) -> Result<Option<ClaimedLink>> {
    let now = claim.now;
    let mut statements = vec![db.prepare(claim_sql(finish)).bind(&[
        JsValue::from_str(&claim.token_hash),
        JsValue::from_str(&claim.org),
        int(now),
        JsValue::from_str(&claim.nonce),
    ])?];
    let new_hash = match finish {
        Finish::Password(hash) => Some(JsValue::from_str(hash)),
        Finish::Passkey => Some(JsValue::NULL),
        Finish::Nothing => None,
    };
    if let Some(hash) = new_hash {
        statements.push(claim.guarded(
            db,
            &set_password_sql(),
            &[hash, int(now), int(not_before_ms)],
        )?);
        statements.push(claim.guarded(db, &drop_password_links_sql(), &[])?);
    }
    statements.push(claim.guarded(db, &reset_totp_sql(), &[int(now), int(not_before_ms)])?);
    statements.push(claim.guarded(db, &reset_codes_sql(), &[])?);
    let targets_at = statements.len();
    statements.push(claim.guarded(
        db,
        &logout_targets_sql(),
        &[int(now - crate::protocol::lifetimes::REFRESH_TOKEN_SECONDS)],
    )?);
    statements.push(claim.guarded(db, &revoke_grants_sql(), &[int(now)])?);
    statements.push(claim.guarded(db, &unlock_sql(), &[])?);
    statements.extend(extra);
    statements.push(claim.guarded(db, &read_user_sql(), &[])?);
    let results = db.batch(statements).await?;
    let won = match results.first() {
        Some(r) => r.results::<ClaimRow>()?.into_iter().next(),
        None => None,
    };
    let Some(won) = won else {
        return Ok(None);
    };
    let user = match results.last() {
        Some(r) => r.results::<User>()?.into_iter().next(),
        None => None,
    };
    let Some(user) = user else {
        // The claim won, so its user existed in the same transaction.
        return Err(worker::Error::RustError(
            "a claimed link's user was not read back".into(),
        ));
    };
    let logout_targets = match results.get(targets_at) {
        Some(r) => crate::edge::store::grants::targets(r.results()?),
        None => Vec::new(),
    };
    Ok(Some(ClaimedLink {
        user,
        logout_targets,
        purpose: Purpose::parse(&won.purpose).unwrap_or(Purpose::Recovery),
        resets: Resets {
            password: won.reset_password,
            second_factor: won.reset_second_factor,
        },
    }))
}

/// ?1 before: links expired long enough ago that their page need not tell "used" or "expired"
/// from "unknown" any more (the hourly clean-up, edge/cleanup.rs).
pub const CLEAN_UP: &str = "DELETE FROM setup_links WHERE expires_at < ?1";
