//! The admin REST API under /api/v1/ (organizations, clients, users, groups, custom attributes,
//! signing keys).
//!
//! Order of checks for every request: unknown path → 404 (before authentication, so that a
//! mistyped URL says so); `GET /openapi.json` is public (it describes the API and holds no data);
//! everything else needs the admin token (401); a known path with the wrong method → 405; then the
//! endpoint, whose failures are `ApiError`s turned into JSON here, in one place.

pub mod attributes;
pub mod auth;
pub mod body;
pub mod clients;
pub mod connections;
pub mod error;
pub mod events;
pub mod fields;
pub mod groups;
pub mod jwk;
pub mod keys;
pub mod links;
pub mod maintenance;
pub mod organizations;
pub mod routes;
pub mod standard_claims;
pub mod users;
pub mod validate;

use worker::{Request, Response, Result};

use crate::admin::error::ApiError;
use crate::admin::routes::{Endpoint, Matched};
use crate::edge::audit;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::throttles;
use crate::protocol::audit::Kind;
use crate::protocol::throttle;

/// The OpenAPI 3.1 description of this API, served at GET /api/v1/openapi.json.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Why an endpoint did not answer normally: a client mistake with its own status, or an internal
/// failure (D1, KV, WebCrypto) that the dispatcher answers without details (a 503 when storage
/// did not answer, else a 500).
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    Internal(worker::Error),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Api(e)
    }
}

impl From<worker::Error> for Failure {
    fn from(e: worker::Error) -> Failure {
        Failure::Internal(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::Internal(e.into())
    }
}

pub type Outcome = std::result::Result<Response, Failure>;

/// `segments` are the path segments after /api/v1/.
pub async fn handle(mut req: Request, ctx: &Ctx, segments: &[&str]) -> Result<Response> {
    let method = req.method().to_string();
    let matched = routes::find(&method, segments);
    match matched {
        // no-store on every admin answer, a 404 included: a cached "not found" for a path that
        // is about to exist would be as wrong as a cached secret.
        Matched::NotFound => return http::no_store(http::not_found()?),
        Matched::Found(Endpoint::OpenApi, _) => return openapi(),
        _ => {}
    }
    // Admin tokens are guesses like passwords: a wrong one is counted per address before it is
    // answered, atomically with the check that the address is not waiting out earlier failures,
    // and a right one is let through only when it is not (oidc/attempts.rs explains the rule).
    if let Some(refused) = admin_token_refused(&req, ctx).await? {
        return http::no_store(refused);
    }
    let (endpoint, params) = match matched {
        Matched::Found(endpoint, params) => (endpoint, params),
        Matched::MethodNotAllowed(allow) => {
            return http::no_store(http::method_not_allowed(&allow)?);
        }
        Matched::NotFound => return http::no_store(http::not_found()?),
    };
    let outcome = dispatch(endpoint, &mut req, ctx, &params).await;
    // Clients are cached per isolate (oidc/client_cache.rs) and carry group names: any write
    // under an organization drops its clients here, so this isolate never serves the old ones.
    if let (false, Some(org)) = (method == "GET", params.first()) {
        crate::oidc::client_cache::forget_org(org);
    }
    if let Ok(resp) = &outcome {
        record_change(ctx, endpoint, &method, segments, &params, resp);
    }
    // Admin responses carry secrets and personal data: never cached (RFC 9111 §5.2.2.5).
    http::no_store(match outcome {
        Ok(resp) => resp,
        Err(Failure::Api(e)) => {
            http::api_error(e.status, e.error, &e.description, e.field.as_deref())?
        }
        // The dispatcher answers (edge/failure.rs): 503 `temporarily_unavailable` when storage
        // did not answer, else 500 `server_error`, in this API's JSON shape, logged once.
        Err(Failure::Internal(e)) => return Err(e),
    })
}

async fn dispatch(endpoint: Endpoint, req: &mut Request, ctx: &Ctx, p: &[&str]) -> Outcome {
    use Endpoint::*;
    match endpoint {
        OpenApi => Ok(openapi()?),
        ListOrgs => organizations::list(ctx).await,
        CreateOrg => organizations::create(req, ctx).await,
        GetOrg => organizations::get(ctx, p[0]).await,
        UpdateOrg => organizations::update(req, ctx, p[0]).await,
        DeleteOrg => organizations::delete(ctx, p[0]).await,
        ListClients => clients::list(ctx, p[0]).await,
        CreateClient => clients::create(req, ctx, p[0]).await,
        GetClient => clients::get(ctx, p[0], p[1]).await,
        ReplaceClient => clients::replace(req, ctx, p[0], p[1]).await,
        UpdateClient => clients::update(req, ctx, p[0], p[1]).await,
        DeleteClient => clients::delete(ctx, p[0], p[1]).await,
        RotateClientSecret => clients::rotate_secret(ctx, p[0], p[1]).await,
        ListUsers => users::list(req, ctx, p[0]).await,
        CreateUser => users::create(req, ctx, p[0]).await,
        GetUser => users::get(ctx, p[0], p[1]).await,
        UpdateUser => users::update(req, ctx, p[0], p[1]).await,
        DeleteUser => users::delete(ctx, p[0], p[1]).await,
        SetPassword => users::set_password(req, ctx, p[0], p[1]).await,
        ListKeys => keys::list(ctx, p[0]).await,
        RotateKey => keys::rotate(ctx, p[0]).await,
        ListGroups => groups::list(ctx, p[0]).await,
        CreateGroup => groups::create(req, ctx, p[0]).await,
        GetGroup => groups::get(ctx, p[0], p[1]).await,
        UpdateGroup => groups::update(req, ctx, p[0], p[1]).await,
        DeleteGroup => groups::delete(ctx, p[0], p[1]).await,
        ListAttributes => attributes::list(ctx, p[0]).await,
        CreateAttribute => attributes::create(req, ctx, p[0]).await,
        GetAttribute => attributes::get(ctx, p[0], p[1]).await,
        UpdateAttribute => attributes::update(req, ctx, p[0], p[1]).await,
        DeleteAttribute => attributes::delete(ctx, p[0], p[1]).await,
        ListConnections => connections::list(ctx, p[0]).await,
        CreateConnection => connections::create(req, ctx, p[0]).await,
        GetConnection => connections::get(ctx, p[0], p[1]).await,
        UpdateConnection => connections::update(req, ctx, p[0], p[1]).await,
        DeleteConnection => connections::delete(ctx, p[0], p[1]).await,
        ListUserLinks => connections::links(ctx, p[0], p[1]).await,
        DeleteUserLink => connections::unlink(ctx, p[0], p[1], p[2]).await,
        ListMembers => groups::members(req, ctx, p[0], p[1]).await,
        AddMember => groups::add_member(ctx, p[0], p[1], p[2]).await,
        RemoveMember => groups::remove_member(ctx, p[0], p[1], p[2]).await,
        UnlockUser => users::unlock(ctx, p[0], p[1]).await,
        ResetMfa => users::reset_mfa(ctx, p[0], p[1]).await,
        LogoutUser => users::logout(ctx, p[0], p[1]).await,
        SetupLink => links::setup(req, ctx, p[0], p[1]).await,
        RecoveryLink => links::recovery(req, ctx, p[0], p[1]).await,
        ListPasskeys => users::passkeys(ctx, p[0], p[1]).await,
        DeletePasskey => users::delete_passkey(ctx, p[0], p[1], p[2]).await,
        ListEvents => events::list(req, ctx, p[0]).await,
        Reseal => maintenance::reseal(ctx).await,
    }
}

/// The audit record of a successful admin write: which endpoint, on what, and the names of the
/// members sent — never their values, so no password or secret can reach the trail.
fn record_change(
    ctx: &Ctx,
    endpoint: Endpoint,
    method: &str,
    segments: &[&str],
    params: &[&str],
    resp: &Response,
) {
    if method == "GET" || resp.status_code() >= 400 {
        return;
    }
    // The organization: the first path parameter, or the one just created (its Location).
    let org = match params.first() {
        Some(org) => org.to_string(),
        None => resp
            .headers()
            .get("Location")
            .ok()
            .flatten()
            .and_then(|l| l.rsplit('/').next().map(str::to_string))
            .unwrap_or_default(),
    };
    let user_id = match endpoint {
        Endpoint::GetUser
        | Endpoint::UpdateUser
        | Endpoint::DeleteUser
        | Endpoint::SetPassword
        | Endpoint::UnlockUser
        | Endpoint::ResetMfa
        | Endpoint::LogoutUser
        | Endpoint::SetupLink
        | Endpoint::RecoveryLink
        | Endpoint::DeletePasskey
        | Endpoint::DeleteUserLink => params.get(1).copied(),
        Endpoint::AddMember | Endpoint::RemoveMember => params.get(2).copied(),
        _ => None,
    };
    let client_id = match endpoint {
        Endpoint::ReplaceClient
        | Endpoint::UpdateClient
        | Endpoint::DeleteClient
        | Endpoint::RotateClientSecret => params.get(1).copied(),
        _ => None,
    };
    let detail = audit::detail([
        ("action", serde_json::json!(format!("{endpoint:?}"))),
        ("method", serde_json::json!(method)),
        (
            "path",
            serde_json::json!(format!("/api/v1/{}", segments.join("/"))),
        ),
        ("fields", serde_json::json!(ctx.admin_fields())),
    ]);
    audit::note(ctx, Kind::AdminChange, &org, user_id, client_id, detail);
}

fn openapi() -> Result<Response> {
    let resp = Response::ok(OPENAPI)?;
    resp.headers().set("Content-Type", "application/json")?;
    resp.headers().set("X-Content-Type-Options", "nosniff")?;
    Ok(resp)
}

/// A JSON response with a Location header for a newly created resource (RFC 9110 §15.3.2).
pub fn created<T: serde::Serialize>(location: &str, body: &T) -> Outcome {
    let resp = http::json(201, body)?;
    resp.headers().set("Location", location)?;
    Ok(resp)
}

pub fn no_content() -> Outcome {
    Ok(Response::empty()?.with_status(204))
}

/// The answer for a request whose admin token may not proceed, if it may not.
async fn admin_token_refused(req: &Request, ctx: &Ctx) -> Result<Option<Response>> {
    let header = req.headers().get("Authorization")?;
    let verdict = auth::judge(header.as_deref(), &ctx.config.admin_token);
    if verdict == auth::Verdict::Missing {
        return auth::check(req, &ctx.config.admin_token);
    }
    let limits: Vec<throttles::Limit> = ctx
        .client_ip
        .as_deref()
        .map(|ip| throttles::Limit {
            key: throttles::admin_key(ip),
            threshold: throttle::ADMIN_FAILURES,
            first_wait: 1,
            max_wait: throttle::ADMIN_MAX_WAIT,
            reset_after: throttle::ADMIN_RESET_AFTER,
        })
        .into_iter()
        .collect();
    let db = ctx.primary()?;
    let locked = match (&verdict, limits.is_empty()) {
        (_, true) => None,
        (auth::Verdict::Allowed, false) => {
            throttles::admit(&db, "", &limits, None, ctx.now_ms).await?
        }
        (_, false) => {
            let counted = throttles::count_failure(&db, "", &limits, ctx.now_ms).await?;
            if counted.counted {
                None
            } else {
                Some(counted.wait.unwrap_or(1))
            }
        }
    };
    if let Some(wait) = locked {
        let resp = http::api_error(
            429,
            "too_many_requests",
            &format!("too many wrong admin tokens from this address; retry in {wait} s"),
            None,
        )?;
        resp.headers().set("Retry-After", &wait.to_string())?;
        return Ok(Some(resp));
    }
    if verdict == auth::Verdict::Wrong {
        // Not an organization's event: a JSON log line only.
        audit::note(
            ctx,
            Kind::AdminAuthFailed,
            "",
            None,
            None,
            Default::default(),
        );
    }
    auth::check(req, &ctx.config.admin_token)
}
