//! The benchmark floor: a fixed JSON body for every request (including /healthz), nothing else.
//! Two calibration paths, used only by their own rows of the report, cost one local storage read
//! each, so that the report can say what a D1 query or a KV read costs under `wrangler dev`:
//! GET /_calibrate/d1 (`SELECT 1` on D1) and GET /_calibrate/kv (a KV get of a missing key).
use worker::{Context, Env, Request, Response, Result, event};

const BODY: &str = r#"{"status":"ok","service":"floor"}"#;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/_calibrate/d1" => {
            let one: Option<u32> = env
                .d1("DB")?
                .prepare("SELECT 1 AS one")
                .first(Some("one"))
                .await?;
            if one != Some(1) {
                return Response::error("unexpected D1 answer", 500);
            }
        }
        "/_calibrate/kv" => {
            let _ = env.kv("KV")?.get("calibration").text().await?;
        }
        _ => {}
    }
    let mut res = Response::ok(BODY)?;
    res.headers_mut().set("Content-Type", "application/json")?;
    Ok(res)
}
