//! POST /{org}/token — the token endpoint (RFC 6749 §3.2, §4.1.3, §6; OIDC Core §3.1.3).

use serde_json::{Value, json};
use worker::{Request, Response, Result};

use crate::crypto::{random_token, token_hash};
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::clients::Client;
use crate::edge::store::d1::{first_row, is_foreign_key_violation};
use crate::edge::store::database::Db;
use crate::edge::store::grants::{self, Claim, NewGrant, TokenHashes, UserRefusal};
use crate::edge::store::keys::SigningKey;
use crate::edge::store::users::get_user;
use crate::oidc::request::{ClientRequest, client_request, oauth_error};
use crate::oidc::signer;
use crate::oidc::userinfo::profile;
use crate::protocol::acr;
use crate::protocol::audit::Kind;
use crate::protocol::claims::{id_token_extras, wants_groups_in_id_token};
use crate::protocol::code::{CodeGrant, Refusal};
use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::form::Form;
use crate::protocol::groups::{GroupClaims, roles_for};
use crate::protocol::id_token::{self, IdTokenInput};
use crate::protocol::lifetimes::{ACCESS_TOKEN_SECONDS, REFRESH_REUSE_GRACE_SECONDS};
use crate::protocol::mfa::{amr, factors_of};
use crate::protocol::refresh::{self, RefreshOutcome, RefreshState};
use crate::protocol::scopes;
use crate::protocol::token_request::{self, GrantRequest};

type Outcome = std::result::Result<Value, OAuthError>;

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    // A refresh token's record is read with the organization, the client and the key, in one
    // replica round trip (oidc/prime.rs).
    let refresh_read =
        |db: &Db, form: &Form| match (form.first("grant_type"), form.first("refresh_token")) {
            (Some("refresh_token"), Some(presented)) if !presented.is_empty() => {
                grants::find_refresh_statement(db, &token_hash(presented)).map(Some)
            }
            _ => Ok(None),
        };
    let ClientRequest {
        form,
        client,
        issuer,
        ahead,
    } = match client_request(&mut req, ctx, slug, true, refresh_read).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let outcome = match token_request::parse(&form) {
        Err(e) => Err(e),
        Ok(grant) if !client.grant_types.iter().any(|g| g == grant.grant_type()) => {
            Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!(
                    "the client is not registered for the {} grant",
                    grant.grant_type()
                ),
            ))
        }
        Ok(GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        }) => {
            exchange_code(
                ctx,
                slug,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await?
        }
        Ok(GrantRequest::RefreshToken {
            refresh_token,
            scope,
        }) => refresh(ctx, slug, &client, &refresh_token, scope.as_deref(), ahead).await?,
    };
    match outcome {
        Ok(body) => http::no_store(http::json(200, &body)?),
        Err(e) => oauth_error(&e, &issuer),
    }
}

/// Redeem a code: open it (no storage read — it carries its record), check it, then claim it and
/// store the tokens in one batch at the primary, which also judges the user again. One round
/// trip to the primary in every case but a late replay of an expired code by its own client,
/// which revokes with one round trip instead.
async fn exchange_code(
    ctx: &Ctx,
    slug: &str,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<Outcome> {
    let Some(record) = CodeGrant::open(code, &ctx.config.key_encryption_secret, slug) else {
        return Ok(Err(OAuthError::invalid_grant(
            "the authorization code is invalid",
        )));
    };
    let code_hash = token_hash(code);
    // The session handle: its writes go to the primary, and the reads after them in this request
    // see them (Sessions API: read-your-writes).
    let db = ctx.replica()?;
    match record.check_redemption(&client.client_id, redirect_uri, code_verifier, ctx.now) {
        Ok(()) => {}
        // Another client, redirect URI or verifier: refused, and nothing else happens — holding
        // an old code must not be enough to sign its user out (see `Refusal::NotBound`).
        Err(Refusal::NotBound(e)) => return Ok(Err(e)),
        Err(Refusal::Expired(e)) => {
            // Its own client presents it late: possibly redeemed before it expired, and now
            // replayed. What it issued is revoked (RFC 6749 §4.1.2) — the grants table
            // remembers every claim.
            if grants::revoke_by_code(&db, &code_hash, ctx.now).await? {
                let note = detail([("revoked", json!("the grant of its first redemption"))]);
                audit::note(
                    ctx,
                    Kind::CodeReplayed,
                    slug,
                    Some(&record.user_id),
                    Some(&client.client_id),
                    note,
                );
            }
            return Ok(Err(e));
        }
    }
    let access_token = random_token("");
    let refresh_token = client
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
        .then(|| random_token(""));
    let grant_id = random_token("grt_");
    // Everything else the response needs from storage is read before the claim: the claim is
    // the request's last storage call, so a storage failure before it leaves the code unused
    // (the client may retry it), and none can come after it.
    let extra = id_token_extra_claims(
        ctx,
        slug,
        client,
        &record.user_id,
        &record.scope,
        record.claims.as_deref(),
    )
    .await?;
    // The key is also opened before the code is spent: see signer::ready.
    let key = signer::ready(ctx, slug).await?;
    // The ID token is signed while the claim travels to the primary (both are ready to start:
    // nothing in the token depends on the claim's answer), so the signature's CPU time is spent
    // inside the round trip instead of after it. A token whose claim is lost is dropped unsent.
    let signing = sign_id_token(
        ctx,
        &key,
        slug,
        client,
        &record.user_id,
        record.auth_time,
        record.factors,
        record.acr,
        record.nonce.as_deref(),
        &access_token,
        record.sid.as_deref(),
        extra,
    );
    let amr_text = amr(record.factors).join(" ");
    let (access_hash, refresh_hash) = (
        token_hash(&access_token),
        refresh_token.as_deref().map(token_hash),
    );
    let grant = NewGrant {
        id: &grant_id,
        org: slug,
        client_id: &client.client_id,
        user_id: &record.user_id,
        code_hash: &code_hash,
        scope: &record.scope,
        claims: record.claims.as_deref(),
        auth_time: record.auth_time,
        amr: &amr_text,
        acr: record.acr,
        sid: record.sid.as_deref(),
        second_factor: crate::protocol::mfa::has_second_factor(record.factors),
        session_started_ms: record.session_started_ms,
    };
    let hashes = TokenHashes {
        access: &access_hash,
        refresh: refresh_hash.as_deref(),
    };
    let claiming = grants::claim_code_and_issue(&db, &grant, &hashes, ctx.now);
    let (claimed, id_token) = futures_util::future::join(claiming, signing).await;
    match claimed {
        Ok(Claim::Refused(why)) => {
            // The user was disabled, left the client's allowed groups or signed out everywhere
            // after the code was minted: the primary refused them, burnt the code and issued
            // nothing.
            let note = detail([("reason", json!(why.reason()))]);
            audit::note(
                ctx,
                Kind::CodeRefused,
                slug,
                Some(&record.user_id),
                Some(&client.client_id),
                note,
            );
            return Ok(Err(OAuthError::invalid_grant(match why {
                UserRefusal::UserDisabled => "the user is disabled",
                UserRefusal::UserNotAllowed => "the user may no longer use this client",
                UserRefusal::SecondFactorMissing => {
                    "the sign-in had no second factor, which this client now requires"
                }
                UserRefusal::SessionEnded => "the user has signed out of this session",
            })));
        }
        Ok(Claim::Won) => {
            let note = detail([("grant_id", json!(grant_id))]);
            audit::note(
                ctx,
                Kind::CodeRedeemed,
                slug,
                Some(&record.user_id),
                Some(&client.client_id),
                note,
            );
        }
        // Lost the claim: a replay, or a concurrent redemption. Exactly one request wins; every
        // other one has revoked what the winner got, in the same statement.
        Ok(Claim::Replayed(revoked)) => {
            let note = detail([("revoked_grant_id", json!(revoked))]);
            audit::note(
                ctx,
                Kind::CodeReplayed,
                slug,
                Some(&record.user_id),
                Some(&client.client_id),
                note,
            );
            return Ok(Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            )));
        }
        Err(e) if is_foreign_key_violation(&e) => {
            // The user (or the client) was deleted: the claim cannot even be stored, so nothing
            // is; the code can never redeem, as the user id is never reused.
            let note = detail([("reason", json!("user_deleted"))]);
            audit::note(
                ctx,
                Kind::CodeRefused,
                slug,
                Some(&record.user_id),
                Some(&client.client_id),
                note,
            );
            return Ok(Err(OAuthError::invalid_grant(
                "the user or client no longer exists",
            )));
        }
        Err(e) => return Err(e),
    }
    let id_token = id_token?;
    Ok(Ok(token_response(
        &access_token,
        refresh_token.as_deref(),
        &id_token,
        &record.scope,
    )))
}

/// Rotate a refresh token. The token is read at the nearest replica (the primary only when the
/// replica does not have it yet) and every write is guarded at the primary on the state the
/// decision assumed, so a stale read can cost a retry but never a wrong answer: one round trip to
/// the primary in the common case, two when a race is lost. A replica can lag but never runs
/// ahead: rotation, supersession, revocation and expiry only ever move one way, so an outcome
/// that refuses the token holds at the primary too. Group membership is the exception (a user
/// can be added back), so a refusal for it is read again at the primary first.
async fn refresh(
    ctx: &Ctx,
    slug: &str,
    client: &Client,
    presented: &str,
    scope: Option<&str>,
    read_ahead: Option<worker::D1Result>,
) -> Result<Outcome> {
    // One session for the whole request: after a lost race the re-read sees the winner's write.
    let db = ctx.replica()?;
    let old_hash = token_hash(presented);
    // Two rounds at most: a refresh whose guarded write finds the state changed re-reads the
    // token (in the session, which now sees that write) and is then judged as the retry (or
    // reuse) it is.
    for round in 0..2 {
        let found = if round == 0 {
            // A user the replica shows outside the client's allowed groups may have been added
            // moments ago: membership is not monotonic, so that refusal is asked of the primary.
            let hash = old_hash.as_str();
            match read_ahead.as_ref().map(first_row::<grants::RefreshRecord>) {
                // Read at the replica with the organization and the client (oidc/prime.rs).
                Some(at_replica) => match at_replica? {
                    Some(r) if r.user_allowed => Some(r),
                    _ => grants::find_refresh(&ctx.primary()?, hash).await?,
                },
                None => {
                    ctx.fresh(
                        |db| async move { grants::find_refresh(&db, hash).await },
                        |r| r.user_allowed,
                    )
                    .await?
                }
            }
        } else {
            grants::find_refresh(&db, &old_hash).await?
        };
        let Some(record) = found.filter(|r| r.org == slug) else {
            return Ok(Err(OAuthError::invalid_grant(
                "the refresh token is invalid",
            )));
        };
        let state = RefreshState {
            issued_to_client: record.client_id == client.client_id,
            expires_at: record.expires_at,
            grant_revoked: record.revoked_at.is_some() || record.user_disabled,
            user_allowed: record.user_allowed,
            rotated_at: record.rotated_at,
            superseded: record.rotated_at.is_some() && record.replaced_by.is_none(),
            child_used: record.child_used,
        };
        // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
        let granted = match scope {
            None => record.scope.clone(),
            Some(asked) => {
                let asked = scopes::parse(asked);
                if asked.iter().any(|s| !scopes::contains(&record.scope, s)) {
                    return Ok(Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "the scope exceeds what was granted",
                    )));
                }
                scopes::join(&asked)
            }
        };
        let access_token = random_token("");
        let new_refresh = random_token("");
        let new_hash = token_hash(&new_refresh);
        let tokens = TokenHashes {
            access: &token_hash(&access_token),
            refresh: Some(&new_hash),
        };
        let rotate = match refresh::decide(&state, ctx.now) {
            RefreshOutcome::Invalid(why) => return Ok(Err(OAuthError::invalid_grant(why))),
            RefreshOutcome::ReuseDetected => {
                grants::revoke_grant(&db, &record.grant_id, ctx.now).await?;
                let note = detail([("revoked_grant_id", json!(record.grant_id))]);
                audit::note(
                    ctx,
                    Kind::RefreshReuseDetected,
                    slug,
                    Some(&record.user_id),
                    Some(&client.client_id),
                    note,
                );
                return Ok(Err(OAuthError::invalid_grant(
                    "the refresh token was already used; the grant is revoked",
                )));
            }
            RefreshOutcome::Rotate => true,
            // Another child of the presented token; nothing else changes.
            RefreshOutcome::GraceReissue => false,
        };
        // Everything else the response needs from storage is read before the write that uses
        // up the presented token: a storage failure before it leaves the token usable, and
        // none can come after it.
        let extra = id_token_extra_claims(
            ctx,
            slug,
            client,
            &record.user_id,
            &granted,
            record.claims.as_deref(),
        )
        .await?;
        // Opened before the token is used up: see signer::ready.
        let key = signer::ready(ctx, slug).await?;
        let stored = if rotate {
            let parent = record.parent_hash.as_deref();
            grants::rotate_and_issue(
                &db,
                &record.grant_id,
                &tokens,
                &old_hash,
                parent,
                &granted,
                ctx.now,
            )
            .await?
        } else {
            let since = ctx.now - REFRESH_REUSE_GRACE_SECONDS;
            grants::issue_retry(
                &db,
                &record.grant_id,
                &tokens,
                &old_hash,
                &granted,
                since,
                ctx.now,
            )
            .await?
        };
        if !stored {
            continue; // the state changed at the primary: judge this one again
        }
        // OIDC Core §12.2: same iss, sub, aud and auth_time as the original ID token; new iat.
        let id_token = sign_id_token(
            ctx,
            &key,
            slug,
            client,
            &record.user_id,
            record.auth_time,
            factors_of(&record.amr),
            acr::from_stored(record.acr.as_deref()),
            None,
            &access_token,
            record.sid.as_deref(),
            extra,
        )
        .await?;
        return Ok(Ok(token_response(
            &access_token,
            Some(&new_refresh),
            &id_token,
            &granted,
        )));
    }
    // The state changed under two guarded writes in a row: something is hammering this token.
    // Treat it as reuse.
    if let Some(record) = grants::find_refresh(&db, &old_hash).await? {
        grants::revoke_grant(&db, &record.grant_id, ctx.now).await?;
        let note = detail([("revoked_grant_id", json!(record.grant_id))]);
        audit::note(
            ctx,
            Kind::RefreshReuseDetected,
            slug,
            Some(&record.user_id),
            Some(&client.client_id),
            note,
        );
    }
    Ok(Err(OAuthError::invalid_grant(
        "the refresh token was already used; the grant is revoked",
    )))
}

/// Claims the ID token carries beyond the standard ones: those asked for with the `claims`
/// parameter, groups and roles when the client is configured for them (or asks), custom
/// attributes likewise. Reads the user only then, keeping the common path to zero user reads.
async fn id_token_extra_claims(
    ctx: &Ctx,
    slug: &str,
    client: &Client,
    user_id: &str,
    scope: &str,
    claims: Option<&str>,
) -> Result<serde_json::Map<String, Value>> {
    let wants_profile = claims
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .is_some_and(|v| v.get("id_token").is_some());
    let probe = GroupClaims {
        settings: client.claim_settings(),
        groups: &[],
        roles: Vec::new(),
    };
    // A client taking custom attributes in its ID tokens needs the user read (with the values,
    // in the same query) — like one taking groups; every other client keeps the common path.
    if !wants_profile
        && !client.attributes_in_id_token
        && !wants_groups_in_id_token(scope, claims, &probe)
    {
        return Ok(serde_json::Map::new());
    }
    let Some(user) = ctx
        .found(|db| async move { get_user(&db, slug, user_id).await })
        .await?
    else {
        return Ok(serde_json::Map::new());
    };
    let groups = GroupClaims {
        settings: client.claim_settings(),
        groups: &user.groups,
        roles: roles_for(&client.role_mappings, &user.groups),
    };
    Ok(id_token_extras(&profile(&user), scope, claims, &groups))
}

#[allow(clippy::too_many_arguments)]
async fn sign_id_token(
    ctx: &Ctx,
    key: &SigningKey,
    slug: &str,
    client: &Client,
    sub: &str,
    auth_time: i64,
    factors: u8,
    acr: Option<&str>,
    nonce: Option<&str>,
    access_token: &str,
    sid: Option<&str>,
    extra: serde_json::Map<String, Value>,
) -> Result<String> {
    let issuer = ctx.config.issuer(slug);
    let claims = id_token::claims(IdTokenInput {
        issuer: &issuer,
        sub,
        client_id: &client.client_id,
        auth_time,
        nonce,
        access_token,
        now: ctx.now,
        factors,
        acr,
        sid,
        extra,
    });
    signer::sign_with(ctx, key, &claims).await
}

fn token_response(
    access_token: &str,
    refresh_token: Option<&str>,
    id_token: &str,
    scope: &str,
) -> Value {
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "id_token": id_token,
        "scope": scope,
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    body
}
