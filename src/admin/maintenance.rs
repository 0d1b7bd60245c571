//! /maintenance: operations on the whole deployment rather than one organization.

use crate::admin::Outcome;
use crate::edge::context::Ctx;
use crate::edge::{http, reseal};

/// POST /maintenance/reseal (no body): re-seal stored secrets under the current
/// KEY_ENCRYPTION_SECRET and say what is left (edge/reseal.rs). Idempotent.
pub async fn reseal(ctx: &Ctx) -> Outcome {
    let report = reseal::run(&ctx.primary()?, &ctx.config.key_encryption_secret).await?;
    reseal::log(&report, "admin");
    Ok(http::json(200, &report)?)
}
