//! POST /{org}/login: check the password — counted before it is answered (oidc/attempts.rs) —
//! then let the gate (oidc/interaction.rs) decide what follows: the second factor, consent, or
//! the code. The login page itself is rendered by oidc/screens.rs.

use serde_json::json;
use worker::{Request, Response, Result};

use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::password::verify_password;
use crate::edge::store::d1::first_row;
use crate::edge::store::database::Db;
use crate::edge::store::users::{User, find_user_by_login, find_user_by_login_statement};
use crate::oidc::attempts::{Attempt, Verdict};
use crate::oidc::form_state::{Authenticated, Interaction, StepKind};
use crate::oidc::forms::{Submission, registered_client, submitted_with};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::{device, pages, screens};
use crate::protocol::audit::Kind;
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::form::Form;
use crate::protocol::mfa::PWD;
use crate::protocol::password_policy::normalize;
use crate::protocol::throttle::{name_key, user_key};

/// The same message whether the user is unknown, disabled or the password wrong, so the form
/// does not reveal which accounts exist.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

/// A well-formed hash that no password matches: checked when the user does not exist, so an
/// unknown username costs the same time as a wrong password.
const DUMMY_HASH: &str =
    "$pbkdf2-sha256$i=100000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

const TITLE: &str = "Sign-in could not continue";

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    // The user the form names is read with the organization and the client, in one replica
    // round trip (oidc/prime.rs).
    let named = |db: &Db, form: &Form| {
        let login = form.first("username").unwrap_or("").trim();
        if login.is_empty() {
            return Ok(None);
        }
        find_user_by_login_statement(db, slug, login).map(Some)
    };
    let Submission {
        org,
        form,
        state,
        ahead,
    } = match submitted_with(&mut req, ctx, slug, TITLE, StepKind::Login, named).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    // The organization signs people in only through its upstream connections: a password is
    // refused here, before any account is looked up or counted — the hidden form is not the rule.
    if !org.password_signin {
        return pages::error(
            &org,
            403,
            "Password sign-in is turned off",
            "This organization does not accept passwords. Go back and sign in with one of the other providers offered.",
            "access_denied",
            None,
        );
    }
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
    let request = &interaction.request;
    let client =
        match registered_client(ctx, &org, &request.client_id, &request.redirect_uri).await? {
            Ok(c) => c,
            Err(page) => return Ok(page),
        };
    let login = form.first("username").unwrap_or("").trim();
    let password = form.first("password").unwrap_or("");
    // The form shown again keeps the name typed, so the cursor can go to the password.
    let retry = Interaction {
        request: AuthorizeRequest {
            login_hint: Some(login.to_string()),
            ..request.clone()
        },
        hint_sub: interaction.hint_sub.clone(),
        // The person chose the password form: no detour to an upstream any more.
        idp_hint: None,
        link: None,
    };
    // The account is named by the replica's read (a user created a moment ago elsewhere may be
    // counted under its name until the replica has it); the password is checked only once the
    // attempt is reserved at the primary (oidc/attempts.rs).
    let at_replica = match &ahead {
        Some(read) => first_row::<User>(read)?,
        None => lookup(ctx.replica()?, slug, login).await?,
    };
    let (account, trusted) = match &at_replica {
        Some(u) => (user_key(&u.id), device::knows(ctx, &req, slug, &u.id)),
        None => (name_key(login), false),
    };
    // A right password resets the account's failures only when no second factor is still to
    // come: otherwise a known password would reset the count between guesses of the code.
    let reset = at_replica
        .as_ref()
        .is_some_and(|u| u.totp_secret_sealed.is_none());
    let replica_user_id = at_replica.as_ref().map(|u| u.id.clone());
    let (verdict, checked) = Attempt::new(ctx, &org, account.clone(), trusted)
        .guess(ctx, reset, || async {
            let checked = signs_in(ctx, slug, login, password, at_replica).await?;
            Ok((checked.ok, checked))
        })
        .await?;
    let known = checked
        .as_ref()
        .and_then(|c| c.user.as_ref())
        .map(|u| u.id.clone());
    let user_id = known.or(replica_user_id);
    // A name that matches no account is recorded only as the hash its count is kept under:
    // it is often a password typed into the wrong field.
    let who = |d: &mut serde_json::Map<String, serde_json::Value>| {
        if user_id.is_none() {
            d.insert("unknown_login".into(), json!(account));
        }
    };
    match verdict {
        Verdict::Throttled { wait } => {
            let mut note = detail([("retry_after", json!(wait))]);
            who(&mut note);
            audit::note(
                ctx,
                Kind::SignInThrottled,
                slug,
                user_id.as_deref(),
                Some(&client.client_id),
                note,
            );
            let resp = screens::login(
                ctx,
                &req,
                &org,
                &client.client_name,
                &retry,
                Some(&too_many(wait)),
                429,
            )?;
            resp.headers().set("Retry-After", &wait.to_string())?;
            Ok(resp)
        }
        Verdict::Wrong { wait } => {
            let mut note = serde_json::Map::new();
            who(&mut note);
            audit::note(
                ctx,
                Kind::SignInFailed,
                slug,
                user_id.as_deref(),
                Some(&client.client_id),
                note,
            );
            let message = match wait {
                None => BAD_CREDENTIALS.to_string(),
                Some(wait) => format!("{BAD_CREDENTIALS} {}", too_many(wait)),
            };
            screens::login(
                ctx,
                &req,
                &org,
                &client.client_name,
                &retry,
                Some(&message),
                401,
            )
        }
        Verdict::Accepted => {
            let user = checked
                .and_then(|c| c.user)
                .expect("a right password names its user");
            let authenticated = Authenticated {
                user_id: user.id.clone(),
                auth_time: ctx.now,
                factors: PWD,
                in_this_interaction: true,
            };
            interaction::proceed(
                ctx,
                &req,
                Continue {
                    org: &org,
                    client: &client,
                    interaction: &interaction,
                    authenticated: Some(authenticated),
                    user: Some(&user),
                    origin: Origin::Fresh,
                    consented: false,
                    status: 303,
                },
            )
            .await
        }
    }
}

/// The user these credentials sign in, if any. The user is read at the nearest replica; a refusal
/// is only given after the primary agrees, since the replica may lag a user just created, enabled
/// or given a new password. The password is hashed again only if the primary's row differs, so a
/// wrong password, an unknown username and a disabled user all cost one hash and one primary
/// read: they look alike from outside (no account enumeration by timing).
/// What a password check found: the user the login names (as the primary has it when the check
/// failed), and whether the password signs them in.
pub(crate) struct Checked {
    pub(crate) user: Option<User>,
    pub(crate) ok: bool,
}

/// The user a login names, at `db`.
pub(crate) async fn lookup(db: Db, slug: &str, login: &str) -> Result<Option<User>> {
    if login.is_empty() {
        return Ok(None);
    }
    find_user_by_login(&db, slug, login).await
}

pub(crate) async fn signs_in(
    ctx: &Ctx,
    slug: &str,
    login: &str,
    password: &str,
    at_replica: Option<User>,
) -> Result<Checked> {
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
    if at_replica.is_some() && check(at_replica.as_ref(), password).await? {
        return Ok(Checked {
            user: at_replica,
            ok: true,
        });
    }
    let at_primary = lookup(ctx.primary()?, slug, login).await?;
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

/// Whether `password` is `user`'s (the account page's fresh password check).
pub async fn signs_in_user(ctx: &Ctx, slug: &str, user: &User, password: &str) -> Result<bool> {
    let at_replica = lookup(ctx.replica()?, slug, &user.username).await?;
    let checked = signs_in(ctx, slug, &user.username, password, at_replica).await?;
    Ok(checked.ok && checked.user.is_some_and(|u| u.id == user.id))
}

/// "Try again in …", in plain words.
pub fn too_many(wait: i64) -> String {
    format!(
        "Too many failed sign-in attempts. Try again in {}.",
        crate::protocol::throttle::in_words(wait)
    )
}
