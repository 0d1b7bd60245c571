//! The benchmark floor: a fixed JSON body for every GET (including /healthz), nothing else.
use worker::{Context, Env, Request, Response, Result, event};

const BODY: &str = r#"{"status":"ok","service":"floor"}"#;

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let mut res = Response::ok(BODY)?;
    res.headers_mut().set("Content-Type", "application/json")?;
    Ok(res)
}
