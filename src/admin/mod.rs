//! The admin REST API under /api/v1/ (organizations, clients, users, signing keys).

use worker::{Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;

/// `segments` are the path segments after /api/v1/.
pub async fn handle(_req: Request, _ctx: &Ctx, _segments: &[&str]) -> Result<Response> {
    http::not_found()
}
