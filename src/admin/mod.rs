//! The admin REST API under /api/v1/ (organizations, clients, users, groups, signing keys).
//!
//! Order of checks for every request: unknown path → 404 (before authentication, so that a
//! mistyped URL says so); `GET /openapi.json` is public (it describes the API and holds no data);
//! everything else needs the admin token (401); a known path with the wrong method → 405; then the
//! endpoint, whose failures are `ApiError`s turned into JSON here, in one place.

pub mod auth;
pub mod body;
pub mod clients;
pub mod error;
pub mod fields;
pub mod groups;
pub mod jwk;
pub mod keys;
pub mod organizations;
pub mod routes;
pub mod users;
pub mod validate;

use worker::{Request, Response, Result};

use crate::admin::error::ApiError;
use crate::admin::routes::{Endpoint, Matched};
use crate::edge::context::Ctx;
use crate::edge::http;

/// The OpenAPI 3.1 description of this API, served at GET /api/v1/openapi.json.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Why an endpoint did not answer normally: a client mistake with its own status, or an internal
/// failure (D1, KV, WebCrypto) that becomes a 500 without details.
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
    if let Some(denied) = auth::check(&req, &ctx.config.admin_token)? {
        return http::no_store(denied);
    }
    let (endpoint, params) = match matched {
        Matched::Found(endpoint, params) => (endpoint, params),
        Matched::MethodNotAllowed(allow) => {
            return http::no_store(http::method_not_allowed(&allow)?);
        }
        Matched::NotFound => return http::no_store(http::not_found()?),
    };
    let outcome = dispatch(endpoint, &mut req, ctx, &params).await;
    // Admin responses carry secrets and personal data: never cached (RFC 9111 §5.2.2.5).
    http::no_store(match outcome {
        Ok(resp) => resp,
        Err(Failure::Api(e)) => {
            http::api_error(e.status, e.error, &e.description, e.field.as_deref())?
        }
        Err(Failure::Internal(e)) => {
            worker::console_error!("admin {method} /api/v1/{}: {e}", segments.join("/"));
            http::api_error(
                500,
                "server_error",
                "the request could not be completed",
                None,
            )?
        }
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
        ListMembers => groups::members(req, ctx, p[0], p[1]).await,
        AddMember => groups::add_member(ctx, p[0], p[1], p[2]).await,
        RemoveMember => groups::remove_member(ctx, p[0], p[1], p[2]).await,
    }
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
