//! The login page (shown by /authorize) and POST /{org}/login, which checks the password,
//! starts the SSO session and finishes the authorization.

use worker::{Headers, Request, Response, Result};

use crate::crypto::random_token;
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::password::verify_password;
use crate::edge::store::clients::{Client, get_client};
use crate::edge::store::database::Db;
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::{User, find_user_by_login};
use crate::oidc::login_state::{LoginState, StateError, open_state, seal_state};
use crate::oidc::login_throttle::Gate;
use crate::oidc::request::{Accept, header, page_request};
use crate::oidc::{cookies, pages};
use crate::protocol::audit::Kind;
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::form::Form;
use crate::protocol::lifetimes::LOGIN_FORM_SECONDS;
use crate::protocol::mfa;
use crate::protocol::origin::{origin_of, same_origin};
use crate::protocol::password_policy::normalize;
use crate::ui::{self, LoginPage};
use serde_json::json;

/// The same message whether the user is unknown, disabled or the password wrong, so the form
/// does not reveal which accounts exist.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

/// A well-formed hash that no password matches: checked when the user does not exist, so an
/// unknown username costs the same time as a wrong password.
const DUMMY_HASH: &str =
    "$pbkdf2-sha256$i=100000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The browser's CSRF token: the existing cookie, or a new one (with its Set-Cookie).
pub fn csrf_token(ctx: &Ctx, req: &Request, org: &str) -> (String, Option<String>) {
    match cookies::read(header(req, "Cookie").as_deref(), cookies::CSRF) {
        Some(existing) => (existing, None),
        None => {
            let token = random_token("");
            let cookie = cookies::set(
                cookies::CSRF,
                &token,
                org,
                ctx.config.secure_cookies(),
                LOGIN_FORM_SECONDS,
            );
            (token, Some(cookie))
        }
    }
}

/// What every page with a form needs: the sealed request bound to this browser's CSRF token,
/// the organization's brand and the form's action.
pub struct FormParts {
    pub sealed: String,
    pub csrf: String,
    pub set_cookie: Option<String>,
    pub brand: crate::ui::Brand,
    pub action: String,
}

pub fn form_parts(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    request: &AuthorizeRequest,
    endpoint: &str,
) -> FormParts {
    let (csrf, set_cookie) = csrf_token(ctx, req, &org.slug);
    FormParts {
        sealed: seal_state(
            &ctx.config.key_encryption_secret,
            &org.slug,
            request,
            &csrf,
            ctx.now,
        ),
        csrf,
        set_cookie,
        brand: pages::brand(org),
        action: format!("/{}/{endpoint}", org.slug),
    }
}

impl FormParts {
    /// The page as a response, setting the CSRF cookie if it is new.
    pub fn respond(self, status: u16, html: String) -> Result<Response> {
        let resp = http::html(status, html)?;
        match self.set_cookie {
            Some(cookie) => append_cookie(resp, &cookie),
            None => Ok(resp),
        }
    }
}

/// Render the login form for `request`.
pub fn show(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    request: &AuthorizeRequest,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let parts = form_parts(ctx, req, org, request, "login");
    let html = ui::render(&LoginPage {
        brand: &parts.brand,
        client_name,
        action: &parts.action,
        request: &parts.sealed,
        csrf_token: &parts.csrf,
        username: request.login_hint.as_deref().unwrap_or(""),
        error,
        // Where second factors are optional, the page says where to set one up (after signing in).
        account_mfa: (org.mfa == "optional")
            .then(|| format!("/{}/account/mfa", org.slug))
            .as_deref(),
    });
    parts.respond(status, html)
}

/// Open the sealed request a login or consent form posted, or answer with an error page.
fn open_form_state(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    form: &crate::protocol::form::Form,
) -> std::result::Result<LoginState, Result<Response>> {
    let cookie_csrf = cookies::read(header(req, "Cookie").as_deref(), cookies::CSRF);
    let opened = open_state(
        &ctx.config.key_encryption_secret,
        &org.slug,
        form.first("request").unwrap_or(""),
        cookie_csrf.as_deref(),
        form.first("csrf_token"),
        ctx.now,
    );
    opened.map_err(|e| {
        let (status, description) = match e {
            StateError::CsrfMismatch => (403, "The form could not be verified (missing or mismatched security token). Enable cookies and start again from the application."),
            StateError::Expired => (400, "The sign-in form has expired. Start again from the application."),
            StateError::Invalid => (400, "The sign-in form is not valid. Start again from the application."),
        };
        pages::error(org, status, "Sign-in could not continue", description, "invalid_request", None)
    })
}

/// A submitted login or consent form, checked: POST, known organization, a sealed request bound
/// to this browser's CSRF cookie and not expired, and a client that still has its redirect URI.
pub struct Submitted {
    pub org: Organization,
    pub form: Form,
    pub request: AuthorizeRequest,
    pub client: Client,
}

pub async fn submitted_form(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    title: &str,
) -> Result<std::result::Result<Submitted, Response>> {
    let (org, form) = match page_request(req, ctx, slug, Accept::PostOnly, title).await? {
        Ok(parts) => parts,
        Err(resp) => return Ok(Err(resp)),
    };
    if let Some(page) = cross_site(ctx, req, &org, title)? {
        return Ok(Err(page));
    }
    let request = match open_form_state(ctx, req, &org, &form) {
        Ok(state) => state.request,
        Err(page) => return page.map(Err),
    };
    Ok(registered_client(ctx, &org, &request)
        .await?
        .map(|client| Submitted {
            org,
            form,
            request,
            client,
        }))
}

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Submitted {
        org,
        form,
        request,
        client,
    } = match submitted_form(&mut req, ctx, slug, "Sign-in could not continue").await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let login = form.first("username").unwrap_or("").trim();
    let password = form.first("password").unwrap_or("");
    // The form shown again keeps the name typed, so the cursor can go to the password.
    let retry = AuthorizeRequest {
        login_hint: Some(login.to_string()),
        ..request.clone()
    };
    let gate = Gate::open(ctx, &org, login).await?;
    if let Some(wait) = gate.locked_for(ctx.now_ms) {
        // Refused without checking the password, alike for every name: no guess is tested.
        let note = detail([
            ("login", json!(truncate(login))),
            ("retry_after", json!(wait)),
        ]);
        audit::note(
            ctx,
            Kind::SignInThrottled,
            slug,
            None,
            Some(&client.client_id),
            note,
        );
        let message = too_many(wait);
        let resp = show(
            ctx,
            &req,
            &org,
            &client.client_name,
            &retry,
            Some(&message),
            429,
        )?;
        resp.headers().set("Retry-After", &wait.to_string())?;
        return Ok(resp);
    }
    let checked = signs_in(ctx, slug, login, password).await?;
    let user = match checked {
        Checked {
            ok: true,
            user: Some(u),
        } => u,
        Checked { user, .. } => {
            let wait = gate.failed(ctx, &org, user.as_ref()).await?;
            let user_id = user.as_ref().map(|u| u.id.as_str());
            let note = detail([("login", json!(truncate(login)))]);
            audit::note(
                ctx,
                Kind::SignInFailed,
                slug,
                user_id,
                Some(&client.client_id),
                note,
            );
            let message = match wait {
                None => BAD_CREDENTIALS.to_string(),
                Some(wait) => format!("{BAD_CREDENTIALS} {}", too_many(wait)),
            };
            return show(
                ctx,
                &req,
                &org,
                &client.client_name,
                &retry,
                Some(&message),
                401,
            );
        }
    };
    // The account's failures are forgotten only once the sign-in cannot be held up by a second
    // factor: otherwise a known password would reset the count between guesses of the code.
    if user.totp_secret_sealed.is_none() {
        gate.succeeded(ctx, &org, &user).await?;
    }
    audit::note(
        ctx,
        Kind::SignInSucceeded,
        slug,
        Some(&user.id),
        Some(&client.client_id),
        Default::default(),
    );

    // The password was right: finish now, or ask for (or set up) the second factor first. The
    // SSO session starts only once every factor this sign-in needs is given.
    let sign_in = crate::oidc::mfa::SignIn {
        org: &org,
        client: &client,
        request: &request,
        user: &user,
        auth_time: ctx.now,
        factors: mfa::PWD,
    };
    crate::oidc::mfa::after_password(ctx, &req, sign_in).await
}

/// The user these credentials sign in, if any. The user is read at the nearest replica; a refusal
/// is only given after the primary agrees, since the replica may lag a user just created, enabled
/// or given a new password. The password is hashed again only if the primary's row differs, so a
/// wrong password, an unknown username and a disabled user all cost one hash and one primary
/// read: they look alike from outside (no account enumeration by timing).
/// What a password check found: the user the login names (as the primary has it when the check
/// failed), and whether the password signs them in.
struct Checked {
    user: Option<User>,
    ok: bool,
}

async fn signs_in(ctx: &Ctx, slug: &str, login: &str, password: &str) -> Result<Checked> {
    async fn check(user: Option<&User>, password: &str) -> Result<bool> {
        let stored = user
            .and_then(|u| u.password_hash.as_deref())
            .unwrap_or(DUMMY_HASH);
        // Hashes are of the NFKC form (protocol/password_policy.rs); a password set before
        // normalisation was hashed as typed, so a non-NFKC input is also tried as typed. Both
        // depend only on the input, so unknown and known users still cost the same.
        let normalized = normalize(password);
        let mut password_ok = !password.is_empty() && verify_password(&normalized, stored).await?;
        if !password_ok && normalized != password && !password.is_empty() {
            password_ok = verify_password(password, stored).await?;
        }
        Ok(password_ok && user.is_some_and(|u| !u.disabled && u.password_hash.is_some()))
    }
    let read = |db: Db| async move {
        if login.is_empty() {
            return Ok(None);
        }
        find_user_by_login(&db, slug, login).await
    };
    let at_replica = read(ctx.replica()?).await?;
    if at_replica.is_some() && check(at_replica.as_ref(), password).await? {
        return Ok(Checked {
            user: at_replica,
            ok: true,
        });
    }
    let at_primary = read(ctx.primary()?).await?;
    let same = |a: &User, b: &User| {
        a.id == b.id && a.password_hash == b.password_hash && a.disabled == b.disabled
    };
    let already_checked = match (&at_replica, &at_primary) {
        (Some(a), Some(b)) => same(a, b),
        _ => false,
    };
    let ok = !already_checked && check(at_primary.as_ref(), password).await?;
    Ok(Checked {
        user: at_primary,
        ok,
    })
}

/// The error page for a form POST that did not come from our own pages (Origin, else Referer),
/// if it did not.
pub fn cross_site(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    title: &str,
) -> Result<Option<Response>> {
    let expected = origin_of(&ctx.config.issuer(&org.slug)).unwrap_or_default();
    let origin = header(req, "Origin");
    let referer = header(req, "Referer");
    if same_origin(origin.as_deref(), referer.as_deref(), &expected) {
        return Ok(None);
    }
    pages::error(
        org,
        403,
        title,
        "This form was sent from another site. Start again from the application.",
        "invalid_request",
        None,
    )
    .map(Some)
}

/// Whether `password` is `user`'s (the account page's fresh password check).
pub async fn signs_in_user(ctx: &Ctx, slug: &str, user: &User, password: &str) -> Result<bool> {
    let checked = signs_in(ctx, slug, &user.username, password).await?;
    Ok(checked.ok && checked.user.is_some_and(|u| u.id == user.id))
}

/// "Try again in …", in plain words.
fn too_many(wait: i64) -> String {
    format!(
        "Too many failed sign-in attempts. Try again in {}.",
        crate::protocol::throttle::in_words(wait)
    )
}

/// A login name as the audit trail keeps it: at most 64 characters (a real one is shorter; a
/// longer one is noise, or a password typed in the wrong field).
fn truncate(login: &str) -> String {
    login.chars().take(64).collect()
}

/// The client a submitted form is for. It may have changed since the form was shown: it must
/// still exist and still have the redirect URI before anything is sent there. `Err` is the page.
pub async fn registered_client(
    ctx: &Ctx,
    org: &Organization,
    request: &AuthorizeRequest,
) -> Result<std::result::Result<Client, Response>> {
    let (slug, client_id) = (org.slug.as_str(), request.client_id.as_str());
    let found = ctx
        .fresh(
            |db| async move { get_client(&db, slug, client_id).await },
            |c| c.redirect_uris.contains(&request.redirect_uri),
        )
        .await?;
    let Some(client) = found else {
        let page = pages::error(
            org,
            400,
            "Unknown application",
            "The application is no longer registered.",
            "invalid_client",
            None,
        )?;
        return Ok(Err(page));
    };
    if !client.redirect_uris.contains(&request.redirect_uri) {
        let page = pages::error(
            org,
            400,
            "This application's redirect URI is not registered",
            "The redirect URI is no longer registered for this application.",
            "error_uri_mismatch",
            Some(&request.redirect_uri),
        )?;
        return Ok(Err(page));
    }
    Ok(Ok(client))
}

pub fn append_cookie(resp: Response, cookie: &str) -> Result<Response> {
    let headers: Headers = resp.headers().clone();
    headers.append("Set-Cookie", cookie)?;
    Ok(resp.with_headers(headers))
}
