//! Sign-in through an upstream OpenID Connect provider (issue 17): Clavex as its relying party.
//!
//! - `GET /{org}/connections/{id}/start?request=…` — the login page's "Sign in with …" link,
//!   carrying the login form's sealed state (bound to this browser's CSRF cookie). Also reached
//!   from /authorize with `idp_hint` (oidc/interaction.rs). Sends the browser to the upstream
//!   with PKCE S256, `state` and `nonce`, the transaction sealed in a cookie
//!   (protocol/upstream.rs), nothing stored.
//! - `GET /{org}/connections/callback` — one redirect URI per organization. Opens the
//!   transaction (cookie and `state`; the cookie is cleared, so a second use finds none, and
//!   its first use is recorded at the D1 primary, so a copy of the cookie finds it used),
//!   exchanges the code, verifies the ID token, finds or makes the linked user, and hands the
//!   sign-in to the gate like every other path (oidc/interaction.rs): one factor
//!   (`amr` `fed`), so the second-factor policy may still ask for a local one.
//!
//! Upstream errors, timeouts and refusals end on a page that says what happened (4xx), never a
//! 5xx of Clavex's own; each is an `upstream.refused` event.

use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::{b64url, hex, random_bytes, random_token};
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::connections::{self as store, Connection};
use crate::edge::store::groups;
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::{User, get_user, insert_user_statement};
use crate::edge::upstream::{self as calls, ClientCredentials, UpstreamError};
use crate::oidc::form_state::{Authenticated, Interaction, StepKind, open_state};
use crate::oidc::forms::{append_cookie, refused_state, registered_client};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::request::{Accept, header, page_request};
use crate::oidc::{cookies, pages, screens};
use crate::protocol::audit::Kind;
use crate::protocol::form::Form;
use crate::protocol::upstream::{
    self, COOKIE, Identity, LinkDecision, LinkOptions, LocalMatch, Refusal, TRANSACTION_SECONDS,
    Transaction, TransactionError,
};
use crate::protocol::upstream_mapping::{self, GroupChanges};

const TITLE: &str = "Sign-in with another provider could not continue";

/// The cookie's path: only the connection endpoints receive it.
fn cookie_scope(slug: &str) -> String {
    format!("{slug}/connections")
}

pub fn redirect_uri(ctx: &Ctx, slug: &str) -> String {
    crate::admin::connections::redirect_uri(ctx, slug)
}

fn refused(
    ctx: &Ctx,
    slug: &str,
    connection_id: Option<&str>,
    client_id: Option<&str>,
    user_id: Option<&str>,
    reason: &str,
) {
    audit::note(
        ctx,
        Kind::UpstreamRefused,
        slug,
        user_id,
        client_id,
        detail([
            ("connection_id", json!(connection_id)),
            ("reason", json!(reason)),
        ]),
    );
}

/// GET /{org}/connections/{id}/start?request=<the login form's sealed state>.
pub async fn handle_start(
    mut req: Request,
    ctx: &Ctx,
    slug: &str,
    connection_id: &str,
) -> Result<Response> {
    let (org, params) =
        match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, TITLE).await? {
            Ok(parts) => parts,
            Err(resp) => return Ok(resp),
        };
    // The login page's state opens only in the browser it was shown in (its CSRF cookie): a
    // link copied into another browser, or made by another site, starts nothing.
    let csrf = cookies::read(header(&req, "Cookie").as_deref(), cookies::CSRF);
    let state = match open_state(
        &ctx.config.key_encryption_secret,
        slug,
        params.first("request").unwrap_or(""),
        csrf.as_deref(),
        csrf.as_deref(),
        ctx.now,
        StepKind::Login,
    ) {
        Ok(state) => state,
        Err(e) => return refused_state(&org, TITLE, e),
    };
    let Some(interaction) = state.interaction else {
        return pages::error(
            &org,
            400,
            TITLE,
            "Start again from the application.",
            "invalid_request",
            None,
        );
    };
    begin(ctx, &org, connection_id, &interaction, 302).await
}

/// Send the browser to the connection's upstream for `interaction`.
pub async fn begin(
    ctx: &Ctx,
    org: &Organization,
    connection_id: &str,
    interaction: &Interaction,
    status: u16,
) -> Result<Response> {
    let slug = org.slug.as_str();
    let Some(connection) = ctx
        .found(|db| async move { store::get(&db, slug, connection_id).await })
        .await?
    else {
        return pages::error(
            org,
            404,
            TITLE,
            "This sign-in option does not exist (any more). Start again from the application.",
            "invalid_request",
            None,
        );
    };
    let discovery =
        match calls::discover(&connection.issuer, ctx.config.secure_cookies(), ctx.now).await {
            Ok(d) => d,
            Err(e) => {
                refused(
                    ctx,
                    slug,
                    Some(&connection.id),
                    Some(&interaction.request.client_id),
                    None,
                    &e.reason(),
                );
                return unavailable(org, &connection, &e);
            }
        };
    let transaction = Transaction {
        connection_id: connection.id.clone(),
        state: random_token(""),
        nonce: random_token(""),
        // RFC 7636 §4.1: 32 random octets, base64url: 43 characters.
        code_verifier: b64url(&random_bytes::<32>()),
        request: interaction.request.clone(),
        hint_sub: interaction.hint_sub.clone(),
        expires_at: ctx.now + TRANSACTION_SECONDS,
    };
    let location = upstream::authorization_url(
        &discovery,
        &connection.client_id,
        &redirect_uri(ctx, slug),
        &connection.scopes,
        &transaction,
    );
    let sealed = upstream::seal_transaction(&ctx.config.key_encryption_secret, slug, &transaction);
    let cookie = cookies::set(
        COOKIE,
        &sealed,
        &cookie_scope(slug),
        ctx.config.secure_cookies(),
        TRANSACTION_SECONDS,
    );
    append_cookie(http::no_store(http::redirect(&location, status)?)?, &cookie)
}

fn unavailable(org: &Organization, c: &Connection, e: &UpstreamError) -> Result<Response> {
    let description = match e {
        UpstreamError::Unreachable => format!(
            "{} did not answer. Try again in a moment, or sign in another way.",
            c.label
        ),
        _ => format!(
            "{} could not be used for signing in ({}). Try again later, or sign in another way.",
            c.label,
            e.reason()
        ),
    };
    pages::error(
        org,
        400,
        TITLE,
        &description,
        "temporarily_unavailable",
        None,
    )
}

/// GET /{org}/connections/callback?code=…&state=… (or ?error=…&state=…).
pub async fn handle_callback(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (org, params) =
        match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, TITLE).await? {
            Ok(parts) => parts,
            Err(resp) => return Ok(resp),
        };
    let clear = cookies::clear(COOKIE, &cookie_scope(slug), ctx.config.secure_cookies());
    let sealed = cookies::read(header(&req, "Cookie").as_deref(), COOKIE);
    let opened = upstream::open_transaction(
        &ctx.config.key_encryption_secret,
        slug,
        sealed.as_deref(),
        params.first("state"),
        ctx.now,
    );
    let resp = match opened {
        // Single use at the D1 primary, before the upstream is asked anything: the cookie is
        // cleared by this answer, but the same cookie and callback URL sent again — 50 times at
        // once, or later from a copy of the cookie — must not each exchange the code and sign
        // in (an upstream's own code check may be neither atomic nor there at all).
        Ok(t) if !first_use(ctx, slug, &t).await? => {
            refused(
                ctx,
                slug,
                Some(&t.connection_id),
                Some(&t.request.client_id),
                None,
                "transaction_replayed",
            );
            pages::error(
                &org,
                400,
                TITLE,
                "This sign-in answer was already used. Start again from the application.",
                "invalid_request",
                None,
            )?
        }
        Ok(t) => callback(ctx, &req, &org, t, &params).await?,
        Err(e) => {
            let (reason, description) = match e {
                TransactionError::Missing => (
                    "transaction_missing",
                    "This sign-in was not started in this browser, or it was already used. Start again from the application.",
                ),
                TransactionError::Expired => (
                    "transaction_expired",
                    "This sign-in took too long. Start again from the application.",
                ),
                TransactionError::Invalid | TransactionError::StateMismatch => (
                    "state_mismatch",
                    "This sign-in answer does not belong to the sign-in started in this browser. Start again from the application.",
                ),
            };
            refused(ctx, slug, None, None, None, reason);
            pages::error(&org, 400, TITLE, description, "invalid_request", None)?
        }
    };
    // Single use: whatever happened, this browser's transaction is over.
    append_cookie(http::no_store(resp)?, &clear)
}

/// Whether this is the transaction's first callback (store/once.rs; one write at the primary).
async fn first_use(ctx: &Ctx, slug: &str, t: &Transaction) -> Result<bool> {
    crate::edge::store::once::first_use(
        &ctx.primary()?,
        "upstream-transaction",
        slug,
        &t.state,
        t.expires_at,
    )
    .await
}

async fn callback(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    t: Transaction,
    params: &Form,
) -> Result<Response> {
    let slug = org.slug.as_str();
    let connection_id = t.connection_id.as_str();
    let client_id = t.request.client_id.clone();
    let refuse = |reason: &str, user: Option<&str>| {
        refused(
            ctx,
            slug,
            Some(connection_id),
            Some(&client_id),
            user,
            reason,
        );
    };
    let Some(connection) = ctx
        .found(|db| async move { store::get(&db, slug, connection_id).await })
        .await?
    else {
        refuse("connection_deleted", None);
        return pages::error(
            org,
            400,
            TITLE,
            "This sign-in option was removed meanwhile. Start again from the application.",
            "invalid_request",
            None,
        );
    };
    let client =
        match registered_client(ctx, org, &t.request.client_id, &t.request.redirect_uri).await? {
            Ok(c) => c,
            Err(page) => return Ok(page),
        };
    let interaction = Interaction {
        request: t.request.clone(),
        hint_sub: t.hint_sub.clone(),
        // Never back to the upstream from here: a refusal after it shows the login page.
        idp_hint: None,
        link: None,
    };
    // Core §3.1.2.6: the upstream's error answer. access_denied (the person cancelled, or the
    // upstream refused them) goes back to the login page, where another way is offered.
    if let Some(error) = params.first("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        refuse(&format!("upstream_error:{code}"), None);
        if code == "access_denied" {
            let message = format!(
                "Sign-in with {} was cancelled or refused. Sign in another way, or try again.",
                connection.label
            );
            return screens::login(
                ctx,
                req,
                org,
                &client.client_name,
                &interaction,
                Some(&message),
                200,
            );
        }
        return pages::error(
            org,
            400,
            TITLE,
            &format!("{} could not sign you in ({code}).", connection.label),
            "access_denied",
            None,
        );
    }
    // RFC 9207 §2.4: an `iss` in the answer must be the issuer the request went to (mix-up).
    if params
        .first("iss")
        .is_some_and(|iss| iss != connection.issuer)
    {
        refuse("iss_mismatch", None);
        return failed(org, &connection, "it answered for another issuer");
    }
    let Some(code) = params.first("code").filter(|c| !c.is_empty()) else {
        refuse("no_code", None);
        return failed(org, &connection, "it sent no authorization code");
    };
    let identity = match verified_identity(ctx, &connection, &t, code).await? {
        Ok(identity) => upstream::mapped(identity, &connection.claim_mapping),
        Err(e) => {
            refuse(&e.reason(), None);
            return match e {
                UpstreamError::Unreachable | UpstreamError::Invalid(_) => {
                    unavailable(org, &connection, &e)
                }
                _ => failed(org, &connection, &e.reason()),
            };
        }
    };
    let mut user = match linked_user(ctx, org, &connection, &identity).await? {
        Ok(user) => user,
        // Issue 17 item 3: "otherwise ask the person to sign in to their existing Clavex
        // account once to confirm the link" — where the organization accepts passwords.
        Err(refusal) if org.password_signin => {
            audit::note(
                ctx,
                Kind::UpstreamRefused,
                slug,
                None,
                Some(&client_id),
                detail([
                    ("connection_id", json!(connection_id)),
                    ("reason", json!(refusal.reason())),
                    ("offered", json!("link_confirmation")),
                ]),
            );
            return crate::oidc::federation_link::offer(
                ctx,
                req,
                org,
                &client.client_name,
                &connection,
                &interaction,
                &identity.sub,
            );
        }
        Err(refusal) => {
            refuse(refusal.reason(), None);
            return pages::error(
                org,
                403,
                "This account cannot sign in here",
                refusal.explain(),
                "access_denied",
                None,
            );
        }
    };
    if user.disabled {
        refuse("user_disabled", Some(&user.id));
        return pages::error(
            org,
            403,
            "This account cannot sign in here",
            "This account is disabled. Ask an administrator.",
            "access_denied",
            None,
        );
    }
    // The groups the upstream says, mapped, before the gate reads them (`allowed_groups`, roles).
    let groups = upstream_groups(ctx, &connection, &identity, &mut user).await?;
    let factors = upstream::factors(connection.trust_upstream_mfa, &identity);
    audit::note(
        ctx,
        Kind::UpstreamSignIn,
        slug,
        Some(&user.id),
        Some(&client.client_id),
        detail([
            ("connection_id", json!(connection.id)),
            (
                "upstream_subject",
                json!(upstream::subject_hash(&identity.sub)),
            ),
            ("amr", json!(crate::protocol::mfa::amr(factors))),
            ("groups_added", json!(groups.add)),
            ("groups_removed", json!(groups.remove)),
        ]),
    );
    let authenticated = Authenticated {
        user_id: user.id.clone(),
        auth_time: upstream::auth_time(&identity, ctx.now),
        factors,
        in_this_interaction: true,
    };
    interaction::proceed(
        ctx,
        req,
        Continue {
            org,
            client: &client,
            interaction: &interaction,
            authenticated: Some(authenticated),
            user: Some(&user),
            origin: Origin::Fresh,
            consented: false,
            status: 302,
        },
    )
    .await
}

fn failed(org: &Organization, c: &Connection, why: &str) -> Result<Response> {
    pages::error(
        org,
        400,
        TITLE,
        &format!(
            "The answer from {} could not be accepted: {why}. Start again from the application.",
            c.label
        ),
        "access_denied",
        None,
    )
}

/// The code exchanged and the ID token verified in full: who signed in upstream.
async fn verified_identity(
    ctx: &Ctx,
    c: &Connection,
    t: &Transaction,
    code: &str,
) -> Result<std::result::Result<Identity, UpstreamError>> {
    let discovery = match calls::discover(&c.issuer, ctx.config.secure_cookies(), ctx.now).await {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let keys = &ctx.config.key_encryption_secret;
    let secret = keys
        .open_stored(
            crate::admin::connections::SECRET_PURPOSE,
            &c.client_secret_sealed,
            c.id.as_bytes(),
        )
        .map_err(|why| {
            crate::edge::sealed::unreadable("connection_secret", &c.org, &c.id, &why, keys)
        })?;
    let secret = String::from_utf8(secret.plaintext).unwrap_or_default();
    let creds = ClientCredentials {
        client_id: &c.client_id,
        client_secret: &secret,
        method: &c.token_endpoint_auth_method,
    };
    let tokens = match calls::exchange_code(
        &discovery,
        &creds,
        code,
        &redirect_uri(ctx, &c.org),
        &t.code_verifier,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let Some(id_token) = tokens["id_token"].as_str() else {
        return Ok(Err(UpstreamError::Invalid(
            "the token response has no ID token".into(),
        )));
    };
    let jws = match upstream::parse_jws(id_token) {
        Ok(j) => j,
        Err(e) => return Ok(Err(UpstreamError::Token(e))),
    };
    if let Err(e) = calls::verify_signature(&discovery, &jws, ctx.now).await {
        return Ok(Err(e));
    }
    let identity = match upstream::check_claims(
        &jws.claims,
        &upstream::Expected {
            issuer: &c.issuer,
            client_id: &c.client_id,
            nonce: &t.nonce,
            now: ctx.now,
        },
    ) {
        Ok(identity) => identity,
        Err(e) => return Ok(Err(UpstreamError::Token(e))),
    };
    // Core §5.4: many providers (Clavex among them) release the profile at userinfo only.
    let (Some(uri), Some(access_token), true) = (
        discovery.userinfo_endpoint.as_deref(),
        tokens["access_token"].as_str(),
        upstream::needs_userinfo(&identity, &c.claim_mapping, c.groups_claim.as_deref()),
    ) else {
        return Ok(Ok(identity));
    };
    Ok(calls::userinfo(uri, access_token)
        .await
        .map(|info| upstream::with_userinfo(identity, &info)))
}

/// The user linked to the upstream account: found by (connection, sub), or — on a first
/// sign-in — linked or created as the connection allows (protocol/upstream.rs `decide_link`),
/// decided at the D1 primary so that a user or link made moments ago elsewhere counts.
async fn linked_user(
    ctx: &Ctx,
    org: &Organization,
    c: &Connection,
    identity: &Identity,
) -> Result<std::result::Result<User, Refusal>> {
    let slug = org.slug.as_str();
    let (cid, sub) = (c.id.as_str(), identity.sub.as_str());
    if let Some(user_id) = ctx
        .found(|db| async move { store::linked_user(&db, cid, sub).await })
        .await?
    {
        let uid = user_id.as_str();
        return Ok(ctx
            .found(|db| async move { get_user(&db, slug, uid).await })
            .await?
            .ok_or(Refusal::NotLinked));
    }
    let db = ctx.primary()?;
    let by_email = match &identity.email {
        Some(email) => store::user_by_email(&db, slug, email).await?,
        None => None,
    };
    let options = LinkOptions {
        jit_create: c.jit_create,
        link_by_verified_email: c.link_by_verified_email,
    };
    let local = by_email.as_ref().map(|(id, verified)| LocalMatch {
        user_id: id,
        email_verified: *verified,
    });
    let user_id = match upstream::decide_link(options, identity, local) {
        LinkDecision::Refuse(r) => return Ok(Err(r)),
        LinkDecision::LinkExisting(user_id) => {
            let link = store::link_statement(&db, slug, cid, sub, &user_id, ctx.now, false)?;
            match db.batch(vec![link]).await {
                Ok(_) => link_created(ctx, slug, c, &user_id, "email"),
                // A concurrent first sign-in linked it (or this user to another account).
                Err(e) if crate::edge::store::d1::is_unique_violation(&e) => {}
                Err(e) => return Err(e),
            }
            store::linked_user(&db, cid, sub).await?
        }
        LinkDecision::Create => match create_user(ctx, &db, slug, c, identity).await? {
            Ok(user_id) => Some(user_id),
            Err(r) => return Ok(Err(r)),
        },
    };
    let Some(user_id) = user_id else {
        return Ok(Err(Refusal::NotLinked));
    };
    Ok(get_user(&db, slug, &user_id)
        .await?
        .ok_or(Refusal::NotLinked))
}

/// Applies the connection's group mapping to `user` (protocol/upstream_mapping.rs): only the
/// groups the map names are added or removed, in one batch at the primary, and the user is read
/// again so the gate sees the groups as they now are. Nothing where the connection maps none.
async fn upstream_groups(
    ctx: &Ctx,
    c: &Connection,
    identity: &Identity,
    user: &mut User,
) -> Result<GroupChanges> {
    let Some(claim) = c.groups_claim.as_deref() else {
        return Ok(GroupChanges::default());
    };
    if c.group_mapping.is_empty() {
        return Ok(GroupChanges::default());
    }
    let said = upstream_mapping::upstream_groups(&identity.claims, claim);
    let changes = upstream_mapping::group_changes(&c.group_mapping, &said, &user.groups);
    if changes.is_empty() {
        return Ok(changes);
    }
    let db = ctx.primary()?;
    let mut statements = Vec::new();
    for name in &changes.add {
        statements.push(groups::add_member_statement(
            &db, &c.org, name, &user.id, ctx.now,
        )?);
    }
    for name in &changes.remove {
        statements.push(groups::remove_member_statement(
            &db, &c.org, name, &user.id,
        )?);
    }
    db.batch(statements).await?;
    if let Some(fresh) = get_user(&db, &c.org, &user.id).await? {
        *user = fresh;
    }
    Ok(changes)
}

fn link_created(ctx: &Ctx, slug: &str, c: &Connection, user_id: &str, how: &str) {
    audit::note(
        ctx,
        Kind::UpstreamLinkCreated,
        slug,
        Some(user_id),
        None,
        detail([("connection_id", json!(c.id)), ("how", json!(how))]),
    );
}

/// A new user from the ID token's claims, inserted with its link in one batch (both or
/// neither). A taken username is tried once more with a random suffix; a taken e-mail address
/// is a refusal (the account is someone's, and this connection does not link by e-mail).
async fn create_user(
    ctx: &Ctx,
    db: &crate::edge::store::database::Db,
    slug: &str,
    c: &Connection,
    identity: &Identity,
) -> Result<std::result::Result<String, Refusal>> {
    let Some(email) = identity
        .email
        .as_deref()
        .and_then(|e| crate::admin::validate::email("email", e).ok())
    else {
        return Ok(Err(Refusal::NoEmail));
    };
    let clean = |v: &Option<String>, max: usize| {
        v.clone()
            .filter(|s| s.chars().count() <= max && !s.chars().any(char::is_control))
    };
    let picture = clean(&identity.picture, 2048).filter(|p| {
        p.starts_with("https://") && crate::admin::validate::http_url("picture", p).is_ok()
    });
    for suffix in [None, Some(hex(&random_bytes::<3>()))] {
        let user = User {
            name: clean(&identity.name, 200),
            picture: picture.clone(),
            email_verified: identity.email_verified,
            ..User::new(
                crate::admin::users::new_id(),
                slug,
                upstream::username_for(identity, suffix.as_deref()),
                email.clone(),
                ctx.now,
            )
        };
        let mut statements = vec![
            insert_user_statement(db, &user)?,
            store::link_statement(db, slug, &c.id, &identity.sub, &user.id, ctx.now, false)?,
        ];
        // The connection's default groups, in the same batch: a new user is never seen
        // without them. The groups are stored by id: a group a connection names cannot be deleted.
        for name in &c.default_groups {
            statements.push(groups::add_member_statement(
                db, slug, name, &user.id, ctx.now,
            )?);
        }
        match db.batch(statements).await {
            Ok(_) => {
                link_created(ctx, slug, c, &user.id, "created");
                return Ok(Ok(user.id));
            }
            Err(e) if crate::edge::store::d1::is_unique_violation(&e) => {
                let text = e.to_string();
                if text.contains("user_links") {
                    // A concurrent first sign-in of the same account created its user first.
                    return Ok(store::linked_user(db, &c.id, &identity.sub)
                        .await?
                        .ok_or(Refusal::NotLinked));
                }
                if text.contains("email") {
                    return Ok(Err(Refusal::EmailBelongsToAnother));
                }
                // The username: once more with a suffix.
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Err(Refusal::NotLinked))
}
