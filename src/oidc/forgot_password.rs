//! "Forgot password?" (issue 16, item 4): GET /{org}/forgot-password asks for a username or an
//! e-mail address; the POST answers with the same page and status whether or not an account
//! matches, and only then — after the response, in `waitUntil` — looks the account up, makes a
//! `reset_password` link (single use, 30 minutes, edge/store/links.rs) and e-mails it to the
//! account's address (edge/email.rs). So neither the answer nor its timing tells whether the
//! account exists.
//!
//! Throttled per client address (before the answer: it counts every request alike, so a 429 says
//! nothing about any account) and per account (after the answer, silently: at most a few e-mails
//! to one account, whoever asks). Offered only where e-mail is configured; elsewhere the page
//! says to ask an administrator.

use serde_json::{Map, Value, json};
use worker::{Method, Request, Response, Result};

use crate::crypto::random_token;
use crate::edge::context::Ctx;
use crate::edge::email::{self, Mailer, Message};
use crate::edge::store::database::Db;
use crate::edge::store::orgs::Organization;
use crate::edge::store::throttles::{self, Limit};
use crate::edge::store::users::find_user_by_login;
use crate::edge::store::{events, links};
use crate::oidc::form_state::{FormState, Step, StepKind};
use crate::oidc::forms::{Submission, respond, seal_for_page, submitted};
use crate::oidc::pages;
use crate::oidc::request::{Accept, page_request};
use crate::protocol::audit::{Event, Kind};
use crate::protocol::links::{
    Purpose, RESET_PASSWORD_SECONDS, RESET_PER_ACCOUNT, RESET_PER_ADDRESS, ResetLimit, Resets,
    email_text, reset_account_key, reset_address_key, url,
};
use crate::protocol::throttle::in_words;
use crate::ui::{self, ForgotPasswordPage};

const TITLE: &str = "Forgot password";

fn limit(key: String, l: &ResetLimit) -> Limit {
    Limit {
        key,
        threshold: l.threshold,
        first_wait: l.first_wait,
        max_wait: l.max_wait,
        reset_after: l.reset_after,
    }
}

/// The page of an organization where no password signs in: there is none to reset, and no
/// e-mail is sent (before any account is looked up or counted).
fn no_passwords(org: &Organization) -> Result<Response> {
    pages::error(
        org,
        403,
        "Password sign-in is turned off",
        "This organization does not use passwords. Go back and sign in with one of the other ways offered.",
        "access_denied",
        None,
    )
}

fn not_offered(org: &Organization) -> Result<Response> {
    pages::error(
        org,
        404,
        "Forgot your password? Ask your administrator",
        "This organization does not send e-mail. Your administrator can send you a link to choose a new password.",
        "not_found",
        None,
    )
}

fn page(ctx: &Ctx, req: &Request, org: &Organization, sent: bool, status: u16) -> Result<Response> {
    let state = FormState {
        step: Step::ForgotPassword,
        interaction: None,
        authenticated: None,
        session: None,
        csrf: String::new(),
        expires_at: 0,
    };
    let sealed = seal_for_page(
        ctx,
        req,
        org,
        state,
        crate::protocol::lifetimes::LOGIN_FORM_SECONDS,
    );
    let html = ui::render(&ForgotPasswordPage {
        brand: &pages::brand(org),
        action: &format!("/{}/forgot-password", org.slug),
        state: &sealed.state,
        csrf_token: &sealed.csrf,
        sent,
        minutes: RESET_PASSWORD_SECONDS / 60,
    });
    respond(status, html, sealed.set_cookie)
}

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() == Method::Get {
        let (org, _) =
            match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, TITLE).await? {
                Ok(parts) => parts,
                Err(resp) => return Ok(resp),
            };
        if org.passwordless() {
            return no_passwords(&org);
        }
        if !email::configured(ctx) {
            return not_offered(&org);
        }
        return page(ctx, &req, &org, false, 200);
    }
    let Submission { org, form, .. } =
        match submitted(&mut req, ctx, slug, TITLE, StepKind::ForgotPassword).await? {
            Ok(s) => s,
            Err(resp) => return Ok(resp),
        };
    if org.passwordless() {
        return no_passwords(&org);
    }
    let Some(mailer) = email::mailer(ctx) else {
        return not_offered(&org);
    };
    let db = ctx.primary()?;
    if let Some(ip) = ctx.client_ip.as_deref() {
        let address = limit(reset_address_key(ip), &RESET_PER_ADDRESS);
        let counted = throttles::count_failure(&db, slug, &[address], ctx.now_ms).await?;
        if !counted.counted {
            let wait = counted.wait.unwrap_or(1);
            let resp = pages::error(
                &org,
                429,
                TITLE,
                &format!(
                    "Too many requests from your network. Try again in {}.",
                    in_words(wait)
                ),
                "slow_down",
                None,
            )?;
            resp.headers().set("Retry-After", &wait.to_string())?;
            return Ok(resp);
        }
    }
    let login = form.first("login").unwrap_or("").trim().to_string();
    if !login.is_empty() {
        let work = Work {
            db,
            mailer,
            org: org.clone(),
            issuer: ctx.config.issuer(slug),
            login,
            now: ctx.now,
            now_ms: ctx.now_ms,
            ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
        };
        ctx.defer(async move {
            if let Err(e) = work.run().await {
                worker::console_error!("forgot password: no e-mail sent: {e}");
            }
        });
    }
    page(ctx, &req, &org, true, 200)
}

/// What happens after the answer.
struct Work {
    db: Db,
    mailer: Mailer,
    org: Organization,
    issuer: String,
    login: String,
    now: i64,
    now_ms: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Work {
    async fn run(self) -> Result<()> {
        let slug = self.org.slug.as_str();
        let Some(user) = find_user_by_login(&self.db, slug, &self.login).await? else {
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        let account = limit(reset_account_key(&user.id), &RESET_PER_ACCOUNT);
        let counted = throttles::count_failure(&self.db, slug, &[account], self.now_ms).await?;
        if !counted.counted {
            self.record(
                Kind::LinkRefused,
                &user.id,
                [
                    ("reason", json!("throttled")),
                    ("purpose", json!(Purpose::ResetPassword.as_str())),
                ],
            )
            .await;
            return Ok(());
        }
        let token = random_token("");
        let expires_at = self.now + RESET_PASSWORD_SECONDS;
        let issued = links::issue(
            &self.db,
            slug,
            &user.id,
            Purpose::ResetPassword,
            Resets::PASSWORD,
            &token,
            self.now,
            expires_at,
        )
        .await?;
        if !issued {
            return Ok(());
        }
        let link = url(&self.issuer, &token);
        let (subject, text) = email_text(
            Purpose::ResetPassword,
            &self.org.name,
            &user.username,
            &link,
            RESET_PASSWORD_SECONDS,
        );
        let sent = self
            .mailer
            .send(&Message {
                from_name: &self.org.name,
                to: &user.email,
                subject: &subject,
                text: &text,
            })
            .await;
        self.record(
            Kind::LinkIssued,
            &user.id,
            [
                ("purpose", json!(Purpose::ResetPassword.as_str())),
                ("resets", json!(Resets::PASSWORD.names())),
                ("by", json!("forgot_password")),
                ("emailed", json!(sent.is_ok())),
            ],
        )
        .await;
        sent
    }

    /// An audit event of this request, stored directly: the request's own events were stored
    /// with its response, before this work ran.
    async fn record<const N: usize>(&self, kind: Kind, user_id: &str, pairs: [(&str, Value); N]) {
        let detail: Map<String, Value> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let event = Event {
            org: self.org.slug.clone(),
            at: self.now,
            kind,
            user_id: Some(user_id.to_string()),
            client_id: None,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            detail,
        }
        .scrubbed();
        worker::console_log!("{}", event.log_line());
        if let Err(e) = events::insert(&self.db, &[event]).await {
            worker::console_error!("audit events not stored: {e}");
        }
    }
}
