//! Grants and the tokens issued from them (D1). D1 is strongly consistent with one primary, so
//! single use of codes and rotation of refresh tokens are decided here, each by one statement
//! that only one of any number of concurrent requests can win.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Result, Result};

use crate::edge::store::d1::{int, opt_int, opt_text};
use crate::edge::store::database::{Db, Stmt};
use crate::edge::store::groups::{
    RoleMapRow, client_role_map_column, user_allowed_condition, user_groups_column,
};
use crate::edge::store::users::User;
use crate::protocol::lifetimes::{ACCESS_TOKEN_SECONDS, REFRESH_TOKEN_SECONDS};

pub struct NewGrant<'a> {
    pub id: &'a str,
    pub org: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub code_hash: &'a str,
    pub scope: &'a str,
    pub claims: Option<&'a str>,
    pub auth_time: i64,
    /// RFC 8176 values, space-separated.
    pub amr: &'a str,
    /// The acr value the request chose (protocol/acr.rs), if any.
    pub acr: Option<&'a str>,
    /// The SSO session's public id (ID token `sid`, back-channel logout).
    pub sid: Option<&'a str>,
    /// The sign-in had a second factor (protocol/mfa.rs `has_second_factor`).
    pub second_factor: bool,
    /// When the SSO session the code was minted under started (unix ms); None for a code
    /// minted before codes carried it.
    pub session_started_ms: Option<i64>,
}

/// Hashes of the tokens to store (the clear values only ever go to the client).
pub struct TokenHashes<'a> {
    pub access: &'a str,
    pub refresh: Option<&'a str>,
}

/// What a redemption's one round trip decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request claimed the code; its tokens are stored.
    Won,
    /// This request claimed the code, but its user may no longer have it: the code is burnt and
    /// nothing was issued (the claim is a revoked grant row without tokens).
    Refused(UserRefusal),
    /// The code had been claimed before (a replay, or a concurrent redemption that committed
    /// first): nothing was stored, and the earlier redemption's grant (this id) is now revoked.
    Replayed(String),
}

/// Why the primary refused a code's user at redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRefusal {
    UserDisabled,
    /// No longer in any of the client's `allowed_groups`.
    UserNotAllowed,
    /// Signed in without a second factor, which the client (`require_mfa`) or the organization
    /// (`mfa: required`) now requires.
    SecondFactorMissing,
    /// The code's session started before the user signed out everywhere (or changed or reset
    /// their password): that session is over, and so is what it was about to give.
    SessionEnded,
}

impl UserRefusal {
    /// For the audit trail.
    pub fn reason(self) -> &'static str {
        match self {
            UserRefusal::UserDisabled => "user_disabled",
            UserRefusal::UserNotAllowed => "user_not_allowed",
            UserRefusal::SecondFactorMissing => "second_factor_missing",
            UserRefusal::SessionEnded => "session_ended",
        }
    }
}

/// The claim of a code: insert the grant — live while the user is enabled and admitted by the
/// client, else already revoked — or, when the code was claimed before, mark that grant revoked.
/// ?1 id, ?2 org, ?3 client, ?4 user, ?5 code hash, ?6 scope, ?7 claims, ?8 auth_time, ?9 now,
/// ?10 amr, ?11 acr, ?12 sid, ?13 1 when the sign-in had a second factor, ?14 the session's
/// start in ms (NULL: not known, not checked). Run natively against
/// the migrations (store/sql_tests.rs).
pub(crate) fn claim_sql() -> String {
    // ?2 org, ?3 client, ?4 user, as a one-row "grant" the shared condition can name.
    let user_ok = format!(
        "EXISTS (SELECT 1 FROM (SELECT ?2 AS org, ?3 AS client_id, ?4 AS user_id) g \
         JOIN users u ON u.id = g.user_id AND u.org = g.org WHERE u.disabled = 0 AND {} AND {})",
        user_allowed_condition("g"),
        session_live_condition("u", "?14")
    );
    let factors_ok = format!("(?13 = 1 OR NOT {})", second_factor_required("?2", "?3"));
    format!(
        "INSERT INTO grants (id, org, client_id, user_id, code_hash, scope, claims, auth_time, created_at, amr, acr, sid, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, CASE WHEN {user_ok} AND {factors_ok} THEN NULL ELSE ?9 END) \
         ON CONFLICT (code_hash) DO UPDATE SET revoked_at = COALESCE(grants.revoked_at, excluded.created_at) \
         RETURNING id, revoked_at"
    )
}

/// protocol/account.rs `session_live` in SQL: the session started at `started` (ms, NULL when
/// unknown) is not one that `user`'s sign-out everywhere ended.
fn session_live_condition(user: &str, started: &str) -> String {
    format!(
        "({started} IS NULL OR {user}.sessions_not_before_ms IS NULL OR {started} >= {user}.sessions_not_before_ms)"
    )
}

/// Whether the client `client` of `org` (SQL expressions) or its organization requires a second
/// factor, as stored now: the policy the gate applied when it minted the code may have come from
/// an isolate's cached copy (oidc/client_cache.rs, oidc/request.rs), so redemption asks again.
fn second_factor_required(org: &str, client: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM clients c WHERE c.org = {org} AND c.client_id = {client} AND c.require_mfa <> 0) \
         OR EXISTS (SELECT 1 FROM organizations o WHERE o.slug = {org} AND o.mfa = 'required'))"
    )
}

/// Claim the code and store its tokens in one transaction — one round trip to the primary. The
/// grant row's UNIQUE code_hash is the claim: of concurrent redemptions exactly one inserts it.
/// Any other meets the conflict, which revokes the grant already there (RFC 6749 §4.1.2: "the
/// authorization server … SHOULD revoke (when possible) all tokens previously issued based on
/// that authorization code") in the same statement; its token inserts are guarded on its own
/// grant row existing, so they insert nothing.
///
/// The code was minted from a read that may be old (a replica, an SSO session, a sign-in up to
/// 60 s ago), so the user is judged again here, at the primary, in the same transaction: still
/// enabled and still admitted by the client's `allowed_groups`. If not, the grant row is
/// inserted already revoked and the token inserts, guarded on a live grant, insert nothing. The
/// claim itself is kept even then: a code is single use whatever its first redemption found, so
/// a code refused now can never redeem later (after the user is enabled again, say) — the
/// decision to refuse would otherwise last only until someone replays the code.
pub async fn claim_code_and_issue(
    db: &Db,
    grant: &NewGrant<'_>,
    tokens: &TokenHashes<'_>,
    now: i64,
) -> Result<Claim> {
    let mut statements = vec![
        db.prepare(claim_sql())
        .bind(&[
            grant.id.into(),
            grant.org.into(),
            grant.client_id.into(),
            grant.user_id.into(),
            grant.code_hash.into(),
            grant.scope.into(),
            opt_text(grant.claims),
            int(grant.auth_time),
            int(now),
            grant.amr.into(),
            opt_text(grant.acr),
            opt_text(grant.sid),
            crate::edge::store::d1::boolean(grant.second_factor),
            opt_int(grant.session_started_ms),
        ])?,
        // Why the user was refused, read in the same transaction (only looked at then).
        db.prepare(format!(
            "SELECT u.disabled, {} AS allowed, {} AS factor_required, {} AS session_live FROM (SELECT ?1 AS org, ?2 AS client_id, ?3 AS user_id) g \
             JOIN users u ON u.id = g.user_id AND u.org = g.org",
            user_allowed_condition("g"),
            second_factor_required("g.org", "g.client_id"),
            session_live_condition("u", "?4"),
        ))
        .bind(&[
            grant.org.into(),
            grant.client_id.into(),
            grant.user_id.into(),
            opt_int(grant.session_started_ms),
        ])?,
        db.prepare(
            "INSERT INTO access_tokens (token_hash, grant_id, scope, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM grants WHERE id = ?2 AND code_hash = ?6 AND revoked_at IS NULL)",
        )
        .bind(&[
            tokens.access.into(),
            grant.id.into(),
            grant.scope.into(),
            int(now),
            int(now + ACCESS_TOKEN_SECONDS),
            grant.code_hash.into(),
        ])?,
    ];
    if let Some(refresh) = tokens.refresh {
        statements.push(
            db.prepare(
                "INSERT INTO refresh_tokens (token_hash, grant_id, parent_hash, scope, created_at, expires_at) \
                 SELECT ?1, ?2, NULL, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM grants WHERE id = ?2 AND code_hash = ?6 AND revoked_at IS NULL)",
            )
            .bind(&[
                refresh.into(),
                grant.id.into(),
                grant.scope.into(),
                int(now),
                int(now + REFRESH_TOKEN_SECONDS),
                grant.code_hash.into(),
            ])?,
        );
    }
    let results = db.batch(statements).await?;
    #[derive(Deserialize)]
    struct Claimed {
        id: String,
        revoked_at: Option<i64>,
    }
    #[derive(Deserialize)]
    struct UserState {
        #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
        disabled: bool,
        #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
        allowed: bool,
        #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
        factor_required: bool,
        #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
        session_live: bool,
    }
    let Some(claimed) = results
        .first()
        .and_then(|r| r.results::<Claimed>().ok())
        .and_then(|rows| rows.into_iter().next())
    else {
        return Err(worker::Error::RustError(
            "the code's claim returned no row".into(),
        ));
    };
    // RETURNING gives this request's id when it inserted, the existing grant's after a conflict.
    if claimed.id != grant.id {
        return Ok(Claim::Replayed(claimed.id));
    }
    if claimed.revoked_at.is_none() {
        return Ok(Claim::Won);
    }
    let user = results
        .get(1)
        .and_then(|r| r.results::<UserState>().ok())
        .and_then(|rows| rows.into_iter().next());
    Ok(Claim::Refused(match user {
        Some(u) if !u.disabled && !u.session_live => UserRefusal::SessionEnded,
        Some(u) if !u.disabled && !u.allowed => UserRefusal::UserNotAllowed,
        Some(u) if !u.disabled && u.factor_required && !grant.second_factor => {
            UserRefusal::SecondFactorMissing
        }
        // Disabled (the user row must exist: the grant's foreign key held).
        _ => UserRefusal::UserDisabled,
    }))
}

/// A replayed code revokes everything its first redemption issued (RFC 6749 §4.1.2: "the
/// authorization server … SHOULD revoke (when possible) all tokens previously issued based on
/// that authorization code").
/// Whether a live grant was revoked.
pub async fn revoke_by_code(db: &Db, code_hash: &str, now: i64) -> Result<bool> {
    let result = db
        .prepare("UPDATE grants SET revoked_at = ?2 WHERE code_hash = ?1 AND revoked_at IS NULL")
        .bind(&[code_hash.into(), int(now)])?
        .run()
        .await?;
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}

pub async fn revoke_grant(db: &Db, grant_id: &str, now: i64) -> Result<()> {
    db.prepare("UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .bind(&[grant_id.into(), int(now)])?
        .run()
        .await?;
    Ok(())
}

/// What a live access token gives access to.
#[derive(Deserialize)]
pub struct AccessGrant {
    pub grant_id: String,
    pub client_id: String,
    #[serde(rename = "token_scope")]
    pub scope: String,
    pub claims: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// How the client receives groups and roles, and its role map.
    pub groups_claim: String,
    pub roles_claim: String,
    #[serde(default, deserialize_with = "crate::edge::store::d1::json_list")]
    pub role_map: Vec<RoleMapRow>,
    /// The user's own columns (users.*) and groups; `user.org` is the grant's organization.
    #[serde(flatten)]
    pub user: User,
}

pub fn access_query(db: &Db, token_hash: &str, now: i64) -> Result<Stmt> {
    db.prepare(format!(
        "SELECT a.grant_id, a.scope AS token_scope, a.created_at AS issued_at, a.expires_at, g.client_id, g.claims, \
                c.groups_claim, c.roles_claim, {}, u.*, {}, {} \
         FROM access_tokens a JOIN grants g ON g.id = a.grant_id JOIN users u ON u.id = g.user_id \
         JOIN clients c ON c.org = g.org AND c.client_id = g.client_id \
         WHERE a.token_hash = ?1 AND a.expires_at > ?2 AND g.revoked_at IS NULL AND u.disabled = 0 AND {}",
        client_role_map_column("c"),
        user_groups_column("u"),
        crate::edge::store::attributes::user_attributes_column("u"),
        user_allowed_condition("g"),
    ))
    .bind(&[token_hash.into(), int(now)])
}

/// The access token's grant and user, if the token is live: not expired, grant not revoked,
/// user not disabled and still allowed to use the client; with the user's groups and the
/// client's role map. One query, so userinfo costs one D1 read.
pub async fn find_access(db: &Db, token_hash: &str, now: i64) -> Result<Option<AccessGrant>> {
    access_query(db, token_hash, now)?
        .first::<AccessGrant>(None)
        .await
}

pub async fn delete_access(db: &Db, token_hash: &str) -> Result<()> {
    db.prepare("DELETE FROM access_tokens WHERE token_hash = ?1")
        .bind(&[token_hash.into()])?
        .run()
        .await?;
    Ok(())
}

/// A refresh token with its grant and the state of its successor.
#[derive(Debug, Deserialize)]
pub struct RefreshRecord {
    pub token_hash: String,
    pub grant_id: String,
    pub parent_hash: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub replaced_by: Option<String>,
    pub org: String,
    pub client_id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub claims: Option<String>,
    pub amr: String,
    pub acr: Option<String>,
    pub sid: Option<String>,
    pub revoked_at: Option<i64>,
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    pub child_used: bool,
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    pub user_disabled: bool,
    /// Whether the user may (still) use the client (`groups::user_allowed_condition`).
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    pub user_allowed: bool,
}

pub async fn find_refresh(db: &Db, token_hash: &str) -> Result<Option<RefreshRecord>> {
    find_refresh_statement(db, token_hash)?
        .first::<RefreshRecord>(None)
        .await
}

/// The read `find_refresh` makes, to batch with others (oidc/prime.rs); its rows are
/// `RefreshRecord`s.
pub fn find_refresh_statement(db: &Db, token_hash: &str) -> Result<Stmt> {
    db.prepare(format!(
        "SELECT r.token_hash, r.grant_id, r.parent_hash, r.scope, r.created_at, r.expires_at, r.rotated_at, \
                r.replaced_by, g.org, g.client_id, g.user_id, g.auth_time, g.claims, g.amr, g.acr, g.sid, g.revoked_at, \
                u.disabled AS user_disabled, {} AS user_allowed, \
                EXISTS (SELECT 1 FROM refresh_tokens c WHERE c.parent_hash = r.token_hash AND c.replaced_by IS NOT NULL) \
                  AS child_used \
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id \
         WHERE r.token_hash = ?1",
        user_allowed_condition("g")
    ))
    .bind(&[token_hash.into()])
}

/// Rotate `old_hash` into new tokens in one transaction (one D1 round trip). The first UPDATE
/// claims the old token only if nobody rotated it first and its grant is still live at the
/// primary — so a decision taken on a replica's possibly stale read can never rotate a token
/// that was rotated, revoked or disabled meanwhile; every other statement is guarded on that
/// claim being this request's (its `replaced_by` is this request's random new hash), so a request
/// that loses the race writes nothing. Using a token also supersedes its siblings — the pairs
/// issued to retries of its parent — so only the line the client continued stays usable.
/// Returns whether this request won.
pub async fn rotate_and_issue(
    db: &Db,
    grant_id: &str,
    tokens: &TokenHashes<'_>,
    old_hash: &str,
    old_parent: Option<&str>,
    scope: &str,
    now: i64,
) -> Result<bool> {
    let new_hash = tokens.refresh.unwrap_or_default();
    let mut statements = vec![
        db.prepare(format!(
            "UPDATE refresh_tokens SET rotated_at = ?3, replaced_by = ?2 \
             WHERE token_hash = ?1 AND rotated_at IS NULL AND expires_at > ?3 \
             AND EXISTS (SELECT 1 FROM grants g JOIN users u ON u.id = g.user_id \
                         WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND u.disabled = 0 AND {})",
            user_allowed_condition("g")
        ))
        .bind(&[old_hash.into(), new_hash.into(), int(now)])?,
        db.prepare(
            "INSERT INTO refresh_tokens (token_hash, grant_id, parent_hash, scope, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
             WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ?3 AND replaced_by = ?1)",
        )
        .bind(&[
            new_hash.into(),
            grant_id.into(),
            old_hash.into(),
            scope.into(),
            int(now),
            int(now + REFRESH_TOKEN_SECONDS),
        ])?,
        db.prepare(
            "INSERT INTO access_tokens (token_hash, grant_id, scope, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5 \
             WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ?6 AND replaced_by = ?7)",
        )
        .bind(&[
            tokens.access.into(),
            grant_id.into(),
            scope.into(),
            int(now),
            int(now + ACCESS_TOKEN_SECONDS),
            old_hash.into(),
            new_hash.into(),
        ])?,
    ];
    if let Some(parent) = old_parent {
        statements.push(
            db.prepare(
                "UPDATE refresh_tokens SET rotated_at = ?3 \
                 WHERE parent_hash = ?1 AND token_hash != ?2 AND rotated_at IS NULL \
                 AND EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ?2 AND replaced_by = ?4)",
            )
            .bind(&[parent.into(), old_hash.into(), int(now), new_hash.into()])?,
        );
    }
    first_changed_one_row(&db.batch(statements).await?)
}

/// Store the pair issued to a retry within the grace window: another child of `parent`. Guarded
/// at the primary like a rotation: only while `parent` was rotated no earlier than
/// `rotated_since`, none of its children has been used, and the grant is live — the replica read
/// the decision was taken on may be stale. Returns whether the pair was stored.
#[allow(clippy::too_many_arguments)]
pub async fn issue_retry(
    db: &Db,
    grant_id: &str,
    tokens: &TokenHashes<'_>,
    parent: &str,
    scope: &str,
    rotated_since: i64,
    now: i64,
) -> Result<bool> {
    let still_a_retry = format!(
        "EXISTS (SELECT 1 FROM refresh_tokens p JOIN grants g ON g.id = p.grant_id \
         JOIN users u ON u.id = g.user_id \
         WHERE p.token_hash = ?3 AND p.rotated_at >= ?4 AND p.replaced_by IS NOT NULL \
         AND g.revoked_at IS NULL AND u.disabled = 0 AND {} \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens c WHERE c.parent_hash = ?3 AND c.replaced_by IS NOT NULL))",
        user_allowed_condition("g")
    );
    let refresh = tokens.refresh.unwrap_or_default();
    let statements = vec![
        db.prepare(format!(
            "INSERT INTO refresh_tokens (token_hash, grant_id, parent_hash, scope, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?5, ?6, ?7 WHERE {still_a_retry}"
        ))
        .bind(&[
            refresh.into(),
            grant_id.into(),
            parent.into(),
            int(rotated_since),
            scope.into(),
            int(now),
            int(now + REFRESH_TOKEN_SECONDS),
        ])?,
        db.prepare(format!(
            "INSERT INTO access_tokens (token_hash, grant_id, scope, created_at, expires_at) \
             SELECT ?1, ?2, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ?8 AND parent_hash = ?3) \
             AND {still_a_retry}"
        ))
        .bind(&[
            tokens.access.into(),
            grant_id.into(),
            parent.into(),
            int(rotated_since),
            scope.into(),
            int(now),
            int(now + ACCESS_TOKEN_SECONDS),
            refresh.into(),
        ])?,
    ];
    first_changed_one_row(&db.batch(statements).await?)
}

/// Whether a batch's first statement — the guarded one the rest depend on — changed a row.
fn first_changed_one_row(results: &[D1Result]) -> Result<bool> {
    let changes = results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    Ok(changes == 1)
}

/// A refresh token's grant, for revocation and introspection.
#[derive(Deserialize)]
pub struct RefreshGrant {
    pub grant_id: String,
    pub org: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub username: String,
}

fn live_refresh_query(db: &Db, token_hash: &str, now: i64) -> Result<Stmt> {
    db.prepare(format!(
        "SELECT r.grant_id, g.org, g.client_id, g.user_id, r.scope, r.created_at, r.expires_at, u.username \
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id \
         WHERE r.token_hash = ?1 AND r.rotated_at IS NULL AND r.expires_at > ?2 AND g.revoked_at IS NULL AND u.disabled = 0 \
         AND {}",
        user_allowed_condition("g")
    ))
    .bind(&[token_hash.into(), int(now)])
}

/// A live token of either kind (an access token, or a refresh token not rotated, not expired,
/// grant not revoked), for introspection: both look-ups in one batch, one round trip.
pub async fn find_live(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> Result<(Option<AccessGrant>, Option<RefreshGrant>)> {
    let results = db
        .batch(vec![
            access_query(db, token_hash, now)?,
            live_refresh_query(db, token_hash, now)?,
        ])
        .await?;
    let access = match results.first() {
        Some(r) => r.results::<AccessGrant>()?.into_iter().next(),
        None => None,
    };
    let refresh = match results.get(1) {
        Some(r) => r.results::<RefreshGrant>()?.into_iter().next(),
        None => None,
    };
    Ok((access, refresh))
}

#[derive(Clone, Copy)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Who a token (live or not) belongs to: its kind, grant id, organization and client id. For
/// revocation, which must only touch the requesting client's own tokens. Both tables are asked
/// in one batch (one round trip); a token is in one of them at most.
pub async fn owner(
    db: &Db,
    token_hash: &str,
) -> Result<Option<(TokenKind, String, String, String)>> {
    #[derive(Deserialize)]
    struct Owner {
        grant_id: String,
        org: String,
        client_id: String,
    }
    let query = |table: &str| {
        db.prepare(format!(
            "SELECT t.grant_id, g.org, g.client_id FROM {table} t JOIN grants g ON g.id = t.grant_id WHERE t.token_hash = ?1"
        ))
        .bind(&[JsValue::from_str(token_hash)])
    };
    let results = db
        .batch(vec![query("access_tokens")?, query("refresh_tokens")?])
        .await?;
    for (result, kind) in results.iter().zip([TokenKind::Access, TokenKind::Refresh]) {
        if let Some(o) = result.results::<Owner>()?.into_iter().next() {
            return Ok(Some((kind, o.grant_id, o.org, o.client_id)));
        }
    }
    Ok(None)
}

/// ?1 org, ?2 user, ?3 the oldest grant that counts.
pub(crate) const LOGOUT_TARGETS: &str = "SELECT DISTINCT g.client_id, c.backchannel_logout_uri AS uri, \
        c.backchannel_logout_session_required AS session_required, g.sid \
     FROM grants g JOIN clients c ON c.org = g.org AND c.client_id = g.client_id \
     WHERE g.user_id = ?2 AND g.org = ?1 AND g.revoked_at IS NULL AND g.created_at >= ?3 \
       AND c.backchannel_logout_uri IS NOT NULL \
     ORDER BY g.client_id, g.sid LIMIT 200";

/// A user's live grants at clients that want to be told of logouts (a
/// `backchannel_logout_uri`), from the last `REFRESH_TOKEN_SECONDS` (an older grant has no
/// token left that could keep a relying party's session going). Bounded.
pub async fn logout_targets(
    db: &Db,
    org: &str,
    user_id: &str,
    now: i64,
) -> Result<Vec<crate::protocol::logout_token::GrantAt>> {
    let rows = db
        .prepare(LOGOUT_TARGETS)
        .bind(&[
            org.into(),
            user_id.into(),
            int(now - crate::protocol::lifetimes::REFRESH_TOKEN_SECONDS),
        ])?
        .all()
        .await?
        .results::<TargetRow>()?;
    Ok(targets(rows))
}

/// A row of `LOGOUT_TARGETS` (or of a statement with the same columns, store/links.rs).
#[derive(Deserialize)]
pub(crate) struct TargetRow {
    client_id: String,
    uri: String,
    #[serde(deserialize_with = "crate::edge::store::d1::int_bool")]
    session_required: bool,
    sid: Option<String>,
}

pub(crate) fn targets(rows: Vec<TargetRow>) -> Vec<crate::protocol::logout_token::GrantAt> {
    rows.into_iter()
        .map(|r| crate::protocol::logout_token::GrantAt {
            client_id: r.client_id,
            uri: r.uri,
            session_required: r.session_required,
            sid: r.sid,
        })
        .collect()
}
