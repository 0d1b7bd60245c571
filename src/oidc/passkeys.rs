//! Passkeys (issue 16 item 1): sign-in from the login page (POST /{org}/passkeys/sign-in) and the
//! account page's add, rename and remove forms (POST /{org}/account/passkeys[/rename|/remove]).
//!
//! A ceremony's challenge is 32 random bytes sealed into the state of the form that shows it
//! (oidc/form_state.rs): bound to the browser's CSRF cookie, to the organization (the sealing's
//! associated data), on the account page to the SSO session and its user, and expiring with the
//! page. The POST opens that state, verifies the browser's answer against it
//! (protocol/webauthn.rs), then claims the challenge at the D1 primary in the same transaction as
//! the ceremony's write (edge/store/passkeys.rs): a replayed or concurrent finish loses the claim
//! and changes nothing.
//!
//! The RP ID is the host of the public base URL (the issuer's host), and the origin the browser
//! reports must be the issuer's origin exactly.
//!
//! A sign-in describes what it knows — this user, with a passkey, user-verified or not, synced
//! or not (protocol/mfa.rs bits) — and asks the gate (oidc/interaction.rs), like every other path.
//!
//! Sign counter: a non-zero counter that does not increase is recorded as
//! `passkey.counter_regressed` and the sign-in is NOT refused. Synced passkeys report 0 forever;
//! a hardware key whose counter goes back may be a clone, which is for an administrator to judge
//! from the audit trail (and to delete the passkey); refusing would lock out the user on a false
//! alarm with no way to recover by themselves. The stored counter never goes down.

use serde::Deserialize;
use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::{b64url, b64url_decode, random_bytes, random_token, token_hash};
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::store::orgs::Organization;
use crate::edge::store::passkeys::{
    self as store, Claim, NewPasskey, Passkey, Registered, Removal, Used,
};
use crate::oidc::account::{self, Said, Viewer};
use crate::oidc::attempts::Verdict;
use crate::oidc::form_state::{FormState, Interaction, Step, StepKind, seal_state};
use crate::oidc::forms::{Submission, registered_client, submitted};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::{mfa, pages, screens};
use crate::protocol::account::{PasskeyKeep, passkey_keep};
use crate::protocol::audit::Kind;
use crate::protocol::dates;
use crate::protocol::lifetimes::LOGIN_FORM_SECONDS;
use crate::protocol::mfa::passkey_factors;
use crate::protocol::origin::origin_of;
use crate::protocol::webauthn::{self, Asserted, Refusal};
use crate::ui::{AccountPasskeys, PasskeyRow, PasskeySignIn};

const TITLE: &str = "Sign-in could not continue";
/// How recent the session's sign-in must be to add a passkey without typing the password again.
pub const FRESH_SECONDS: i64 = 15 * 60;

/// The RP ID and the exact origin of this organization's pages.
pub(crate) fn relying_party(ctx: &Ctx, org: &str) -> (String, String) {
    let issuer = ctx.config.issuer(org);
    (
        webauthn::rp_id_of(&issuer).unwrap_or_default(),
        origin_of(&issuer).unwrap_or_default(),
    )
}

pub(crate) fn new_challenge() -> String {
    b64url(&random_bytes::<32>())
}

/// The login page's passkey form, sealed under the page's CSRF token `csrf`.
pub fn sign_in_offer(
    ctx: &Ctx,
    org: &Organization,
    interaction: &Interaction,
    csrf: &str,
) -> PasskeySignIn {
    let challenge = new_challenge();
    let state = FormState {
        step: Step::PasskeySignIn {
            challenge: challenge.clone(),
        },
        interaction: Some(interaction.clone()),
        authenticated: None,
        session: None,
        csrf: csrf.to_string(),
        expires_at: ctx.now + LOGIN_FORM_SECONDS,
    };
    PasskeySignIn {
        action: format!("/{}/passkeys/sign-in", org.slug),
        state: seal_state(&ctx.config.key_encryption_secret, &org.slug, &state),
        challenge,
        rp_id: relying_party(ctx, &org.slug).0,
    }
}

/// The claim of a state's challenge: its hash, a random value for this finish, kept until the
/// state expires.
fn claim_of<'a>(org: &'a str, hash: &'a str, value: &'a str, expires_at: i64) -> Claim<'a> {
    Claim {
        challenge_hash: hash,
        org,
        value,
        expires_at,
    }
}

/// The browser's answer to `navigator.credentials.get` (the script's JSON, base64url members).
#[derive(Deserialize)]
struct AssertionForm {
    #[serde(rename = "rawId")]
    raw_id: String,
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "authenticatorData")]
    authenticator_data: String,
    signature: String,
    #[serde(rename = "userHandle")]
    user_handle: Option<String>,
}

/// Decoded assertion members: credential id (base64url, as stored), user id, and the bytes.
struct Decoded {
    credential_id: String,
    user_id: String,
    client_data_json: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
}

fn decode_assertion(text: &str) -> Option<Decoded> {
    let form: AssertionForm = serde_json::from_str(text).ok()?;
    let raw = b64url_decode(&form.raw_id)?;
    let user = b64url_decode(form.user_handle.as_deref()?)?;
    Some(Decoded {
        credential_id: b64url(&raw),
        user_id: String::from_utf8(user).ok()?,
        client_data_json: b64url_decode(&form.client_data_json)?,
        authenticator_data: b64url_decode(&form.authenticator_data)?,
        signature: b64url_decode(&form.signature)?,
    })
}

/// The browser's assertion checked against the form's `challenge` and the stored `passkey`
/// (WebAuthn §7.2: type, challenge, exact origin, RP ID, flags, signature, counter); `Err`: the
/// refusal's reason. Shared by the sign-in and the second-factor step.
fn verify(
    ctx: &Ctx,
    slug: &str,
    answer: &Decoded,
    challenge: &str,
    passkey: &Passkey,
) -> std::result::Result<Asserted, &'static str> {
    let (rp_id, origin) = relying_party(ctx, slug);
    webauthn::verify_assertion(&webauthn::Assertion {
        client_data_json: &answer.client_data_json,
        authenticator_data: &answer.authenticator_data,
        signature: &answer.signature,
        challenge: &b64url_decode(challenge).unwrap_or_default(),
        origin: &origin,
        rp_id: &rp_id,
        public_key: &b64url_decode(&passkey.public_key).unwrap_or_default(),
        stored_sign_count: u32::try_from(passkey.sign_count).unwrap_or(u32::MAX),
    })
    .map_err(|r| r.reason())
}

/// A verified assertion about to be recorded.
struct UseOf<'a> {
    passkey: &'a Passkey,
    asserted: &'a Asserted,
    challenge: &'a str,
    /// When the form's state expires: the challenge's claim is kept until then.
    expires_at: i64,
    user_id: &'a str,
    client_id: Option<&'a str>,
}

/// Claim the challenge and record the passkey's use in one transaction at the primary (a
/// replayed or concurrent finish loses the claim and changes nothing); a counter that went back
/// is reported in the audit trail, not refused (see the module's comment). `Err`: the reason the
/// use was refused.
async fn record(
    ctx: &Ctx,
    db: &crate::edge::store::database::Db,
    slug: &str,
    u: UseOf<'_>,
) -> Result<std::result::Result<(), &'static str>> {
    let hash = token_hash(u.challenge);
    let value = random_token("");
    let claim = claim_of(slug, &hash, &value, u.expires_at);
    let used = store::record_use(
        db,
        &claim,
        &u.passkey.id,
        i64::from(u.asserted.sign_count),
        u.asserted.backed_up,
        ctx.now,
    )
    .await?;
    match used {
        Used::Recorded => {}
        Used::ChallengeUsed => return Ok(Err("challenge_used")),
        Used::PasskeyGone => return Ok(Err("unknown_credential")),
    }
    if u.asserted.counter_regressed {
        audit::note(
            ctx,
            Kind::PasskeyCounterRegressed,
            slug,
            Some(u.user_id),
            u.client_id,
            detail([
                ("passkey", json!(u.passkey.id)),
                ("stored", json!(u.passkey.sign_count)),
                ("received", json!(u.asserted.sign_count)),
            ]),
        );
    }
    Ok(Ok(()))
}

/// POST /{org}/passkeys/sign-in.
pub async fn handle_sign_in(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Submission {
        org, form, state, ..
    } = match submitted(&mut req, ctx, slug, TITLE, StepKind::PasskeySignIn).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    if !org.passkeys {
        return pages::error(
            &org,
            403,
            "Passkeys are turned off",
            "This organization does not accept passkeys. Go back and sign in another way.",
            "access_denied",
            None,
        );
    }
    let (Step::PasskeySignIn { challenge }, Some(interaction)) = (&state.step, &state.interaction)
    else {
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
    // Every refusal looks the same to the browser (the login page again, a new challenge); the
    // audit trail says which check failed.
    let refuse = |reason: &str, user_id: Option<&str>| -> Result<Response> {
        audit::note(
            ctx,
            Kind::PasskeyRefused,
            slug,
            user_id,
            Some(&client.client_id),
            detail([("reason", json!(reason))]),
        );
        screens::login(
            ctx,
            &req,
            &org,
            &client.client_name,
            interaction,
            Some("That passkey could not sign you in. Try again, or sign in another way."),
            401,
        )
    };
    let Some(answer) = decode_assertion(form.first("credential").unwrap_or("")) else {
        return refuse(Refusal::Malformed.reason(), None);
    };
    let db = ctx.primary()?;
    // Read at the primary: a passkey deleted or a user disabled a moment ago must not sign in.
    let (passkey, user) =
        store::for_sign_in(&db, slug, &answer.credential_id, &answer.user_id).await?;
    // §7.2 step 6: the credential must belong to the user the userHandle names.
    let Some(passkey) = passkey.filter(|p| p.user_id == answer.user_id) else {
        return refuse("unknown_credential", None);
    };
    let Some(user) = user.filter(|u| !u.disabled) else {
        return refuse("user_disabled", Some(&passkey.user_id));
    };
    let asserted = match verify(ctx, slug, &answer, challenge, &passkey) {
        Ok(a) => a,
        Err(reason) => return refuse(reason, Some(&user.id)),
    };
    let used = UseOf {
        passkey: &passkey,
        asserted: &asserted,
        challenge,
        expires_at: state.expires_at,
        user_id: &user.id,
        client_id: Some(&client.client_id),
    };
    if let Err(reason) = record(ctx, &db, slug, used).await? {
        return refuse(reason, Some(&user.id));
    }
    let authenticated = crate::oidc::form_state::Authenticated {
        user_id: user.id.clone(),
        auth_time: ctx.now,
        factors: passkey_factors(
            asserted.user_verified,
            asserted.backup_eligible || passkey.backup_eligible,
        ),
        in_this_interaction: true,
    };
    interaction::proceed(
        ctx,
        &req,
        Continue {
            org: &org,
            client: &client,
            interaction,
            authenticated: Some(authenticated),
            user: Some(&user),
            origin: Origin::Fresh,
            consented: false,
            status: 303,
        },
    )
    .await
}

/// POST /{org}/mfa/passkey: a passkey as the second factor, after a password (or an upstream
/// sign-in) where the sign-in requires one. The form's state carries the authentication so far
/// (oidc/mfa.rs `posted`: shown under the same session, the user still enabled); the passkey
/// must be that user's (§7.2 step 6), the assertion is verified like a sign-in's, and its
/// challenge is claimed at the primary with the passkey's use, so a replayed or concurrent
/// finish changes nothing. Then the gate decides with the passkey's factors added.
pub async fn handle_second_factor(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let mut posted = match mfa::posted(&mut req, ctx, slug, StepKind::ChallengePasskey).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    if !posted.org.passkeys {
        return passkeys_off(&posted.org);
    }
    let Step::ChallengePasskey { challenge } = posted.state.step.clone() else {
        return passkeys_off(&posted.org);
    };
    let user_id = posted.user.id.clone();
    let client_id = posted
        .state
        .interaction
        .as_ref()
        .map(|i| i.request.client_id.clone());
    let note_refused = |reason: &str| {
        audit::note(
            ctx,
            Kind::PasskeyRefused,
            slug,
            Some(&user_id),
            client_id.as_deref(),
            detail([
                ("reason", json!(reason)),
                ("ceremony", json!("second_factor")),
            ]),
        );
    };
    const AGAIN: &str = "That passkey could not confirm it is you. Try again.";
    let Some(answer) = decode_assertion(posted.form.first("credential").unwrap_or("")) else {
        note_refused(Refusal::Malformed.reason());
        return mfa::ask_again(ctx, &req, &posted, AGAIN, 401).await;
    };
    // The passkey must be the signed-in user's: another account's passkey proves nothing here.
    if answer.user_id != user_id {
        note_refused("another_user");
        return mfa::ask_again(ctx, &req, &posted, AGAIN, 401).await;
    }
    let db = ctx.primary()?;
    let (passkey, _) = store::for_sign_in(&db, slug, &answer.credential_id, &user_id).await?;
    let Some(passkey) = passkey.filter(|p| p.user_id == user_id) else {
        note_refused("unknown_credential");
        return mfa::ask_again(ctx, &req, &posted, AGAIN, 401).await;
    };
    let asserted = match verify(ctx, slug, &answer, &challenge, &passkey) {
        Ok(a) => a,
        Err(reason) => {
            note_refused(reason);
            return mfa::ask_again(ctx, &req, &posted, AGAIN, 401).await;
        }
    };
    let used = UseOf {
        passkey: &passkey,
        asserted: &asserted,
        challenge: &challenge,
        expires_at: posted.state.expires_at,
        user_id: &user_id,
        client_id: client_id.as_deref(),
    };
    if let Err(reason) = record(ctx, &db, slug, used).await? {
        note_refused(reason);
        return mfa::ask_again(ctx, &req, &posted, AGAIN, 401).await;
    }
    audit::note(
        ctx,
        Kind::SecondFactorPassed,
        slug,
        Some(&user_id),
        client_id.as_deref(),
        detail([("factor", json!("passkey"))]),
    );
    posted.authenticated.factors |= passkey_factors(
        asserted.user_verified,
        asserted.backup_eligible || passkey.backup_eligible,
    );
    mfa::go_on(ctx, &req, posted).await
}

// ---- The account page's section ----

/// The account page's passkey section for `viewer`, with a fresh challenge sealed into the add
/// form's state; `seal` seals a step the way the page seals its other forms.
pub(crate) async fn section(
    ctx: &Ctx,
    org: &Organization,
    viewer: &Viewer<'_>,
    seal: &dyn Fn(Step) -> String,
) -> Result<Option<AccountPasskeys>> {
    if !org.passkeys {
        return Ok(None);
    }
    // At the primary: the page is shown right after an add, rename or remove.
    let list = store::list(&ctx.primary()?, &org.slug, &viewer.user.id).await?;
    let challenge = new_challenge();
    let (rp_id, _) = relying_party(ctx, &org.slug);
    let slug = &org.slug;
    let fresh = ctx.now - viewer.auth_time <= FRESH_SECONDS;
    let has_password = viewer.user.password_hash.is_some();
    let exclude: Vec<&str> = list.iter().map(|p| p.credential_id.as_str()).collect();
    Ok(Some(AccountPasskeys {
        rows: list
            .iter()
            .map(|p| PasskeyRow {
                id: p.id.clone(),
                name: p.name.clone(),
                created: dates::day(p.created_at),
                last_used: p
                    .last_used_at
                    .map(dates::day)
                    .unwrap_or_else(|| "never".into()),
                synced: p.backup_eligible,
            })
            .collect(),
        add_action: format!("/{slug}/account/passkeys"),
        add_state: seal(Step::PasskeyAdd {
            challenge: challenge.clone(),
        }),
        challenge,
        rp_id,
        rp_name: org.name.clone(),
        user_handle: b64url(viewer.user.id.as_bytes()),
        user_name: viewer.user.username.clone(),
        display_name: viewer
            .user
            .name
            .clone()
            .unwrap_or_else(|| viewer.user.username.clone()),
        exclude: serde_json::to_string(&exclude).unwrap_or_else(|_| "[]".into()),
        need_password: !fresh && has_password,
        sign_in_again: !fresh && !has_password,
        rename_action: format!("/{slug}/account/passkeys/rename"),
        rename_state: seal(Step::PasskeyRename),
        remove_action: format!("/{slug}/account/passkeys/remove"),
        remove_state: seal(Step::PasskeyRemove),
    }))
}

/// The browser's answer to `navigator.credentials.create`.
#[derive(Deserialize)]
struct AttestationForm {
    #[serde(rename = "rawId")]
    raw_id: String,
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "attestationObject")]
    attestation_object: String,
    #[serde(default)]
    transports: Vec<String>,
}

/// A new passkey whose registration was verified, ready to store.
pub(crate) struct Verified {
    pub id: String,
    pub name: &'static str,
    credential_id: String,
    public_key: String,
    alg: i64,
    sign_count: i64,
    user_verified: bool,
    backup_eligible: bool,
    backed_up: bool,
    transports: String,
    aaguid: String,
}

impl Verified {
    /// Whether the registration was user-verified (a PIN or biometric at the authenticator).
    pub fn user_verified(&self) -> bool {
        self.user_verified
    }
    /// Whether the passkey is synced (backup eligible).
    pub fn synced(&self) -> bool {
        self.backup_eligible
    }
    pub fn row<'a>(&'a self, org: &'a str, user_id: &'a str, now: i64) -> NewPasskey<'a> {
        NewPasskey {
            id: &self.id,
            org,
            user_id,
            credential_id: &self.credential_id,
            public_key: &self.public_key,
            alg: self.alg,
            sign_count: self.sign_count,
            user_verified: self.user_verified,
            backup_eligible: self.backup_eligible,
            backed_up: self.backed_up,
            transports: &self.transports,
            aaguid: &self.aaguid,
            name: self.name,
            now,
        }
    }
}

/// The browser's answer to `navigator.credentials.create` (the `credential` field) verified
/// against the form's `challenge`, this organization's RP ID and exact origin (WebAuthn §7.1),
/// or the refusal's reason for the audit trail. Shared by the account page and a one-time link.
pub(crate) fn verify_new(
    ctx: &Ctx,
    slug: &str,
    challenge: &str,
    credential: &str,
) -> std::result::Result<Verified, &'static str> {
    let parsed: Option<AttestationForm> = serde_json::from_str(credential).ok();
    let decoded = parsed.and_then(|f| {
        Some((
            b64url_decode(&f.raw_id)?,
            b64url_decode(&f.client_data_json)?,
            b64url_decode(&f.attestation_object)?,
            f.transports,
        ))
    });
    let Some((raw_id, client_data_json, attestation_object, transports)) = decoded else {
        return Err(Refusal::Malformed.reason());
    };
    let (rp_id, origin) = relying_party(ctx, slug);
    let challenge_bytes = b64url_decode(challenge).unwrap_or_default();
    let credential = webauthn::verify_registration(&webauthn::Registration {
        client_data_json: &client_data_json,
        attestation_object: &attestation_object,
        raw_id: &raw_id,
        challenge: &challenge_bytes,
        origin: &origin,
        rp_id: &rp_id,
        require_uv: false,
    })
    .map_err(|r| r.reason())?;
    // Hints only, kept short: the WebAuthn transports are a handful of short words.
    let transports: Vec<String> = transports
        .into_iter()
        .filter(|t| t.len() <= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .take(8)
        .collect();
    Ok(Verified {
        id: random_token("pk_"),
        name: webauthn::name_for(&credential.aaguid),
        credential_id: b64url(&credential.credential_id),
        public_key: b64url(&credential.public_key),
        alg: credential.alg,
        sign_count: i64::from(credential.sign_count),
        user_verified: credential.user_verified,
        backup_eligible: credential.backup_eligible,
        backed_up: credential.backed_up,
        transports: serde_json::to_string(&transports).unwrap_or_else(|_| "[]".into()),
        aaguid: webauthn::aaguid_text(&credential.aaguid),
    })
}

pub(crate) fn passkeys_off(org: &Organization) -> Result<Response> {
    pages::error(
        org,
        403,
        "Passkeys are turned off",
        "This organization does not use passkeys.",
        "access_denied",
        None,
    )
}

/// POST /{org}/account/passkeys: a recent sign-in (or the password, counted like a login),
/// then the new credential verified and stored under the claim of the page's challenge.
pub async fn handle_add(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (
        Submission {
            org, form, state, ..
        },
        current,
    ) = match account::posted(&mut req, ctx, slug, StepKind::PasskeyAdd).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    if !org.passkeys {
        return passkeys_off(&org);
    }
    let viewer = Viewer::of(&current);
    let user = &current.user;
    let Step::PasskeyAdd { challenge } = &state.step else {
        return passkeys_off(&org);
    };
    let said_error = |message: &'static str, status: u16| {
        let said = Said {
            error: Some(message),
            ..Said::default()
        };
        account::page(ctx, &req, &org, &viewer, said, status)
    };
    if ctx.now - viewer.auth_time > FRESH_SECONDS {
        let password = form.first("password").unwrap_or("");
        if user.password_hash.is_none() || password.is_empty() {
            return said_error(
                "Adding a passkey needs a recent sign-in: enter your password, or sign in again.",
                401,
            )
            .await;
        }
        let verdict = account::check_password(ctx, &req, &org, user, password).await?;
        if verdict != Verdict::Accepted {
            return account::refused_guess(
                ctx,
                &req,
                &org,
                &viewer,
                verdict,
                "The password is incorrect.",
            )
            .await;
        }
    }
    let refused = |reason: &str| {
        audit::note(
            ctx,
            Kind::PasskeyRefused,
            slug,
            Some(&user.id),
            None,
            detail([
                ("reason", json!(reason)),
                ("ceremony", json!("registration")),
            ]),
        );
    };
    let verified = match verify_new(ctx, slug, challenge, form.first("credential").unwrap_or("")) {
        Ok(v) => v,
        Err(reason) => {
            refused(reason);
            return said_error("The passkey could not be added. Try again.", 400).await;
        }
    };
    let (id, name) = (verified.id.as_str(), verified.name);
    let hash = token_hash(challenge);
    let value = random_token("");
    let stored = store::register(
        &ctx.primary()?,
        &claim_of(slug, &hash, &value, state.expires_at),
        &verified.row(slug, &user.id, ctx.now),
    )
    .await?;
    match stored {
        Registered::Stored => {}
        Registered::ChallengeUsed => {
            refused("challenge_used");
            return said_error(
                "This form was already used. Try adding the passkey again.",
                409,
            )
            .await;
        }
        Registered::NotStored => {
            refused("already_registered");
            return said_error("That passkey is already registered.", 409).await;
        }
    }
    audit::note(
        ctx,
        Kind::PasskeyAdded,
        slug,
        Some(&user.id),
        None,
        detail([("passkey", json!(id)), ("name", json!(name))]),
    );
    let notice = format!("Passkey added: {name}. You can rename it below.");
    let said = Said {
        notice: Some(&notice),
        ..Said::default()
    };
    account::page(ctx, &req, &org, &viewer, said, 200).await
}

/// POST /{org}/account/passkeys/rename.
pub async fn handle_rename(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (Submission { org, form, .. }, current) =
        match account::posted(&mut req, ctx, slug, StepKind::PasskeyRename).await? {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
    if !org.passkeys {
        return passkeys_off(&org);
    }
    let viewer = Viewer::of(&current);
    let Some(name) = webauthn::clean_name(form.first("name").unwrap_or("")) else {
        let said = Said {
            error: Some("Give the passkey a name."),
            ..Said::default()
        };
        return account::page(ctx, &req, &org, &viewer, said, 400).await;
    };
    let id = form.first("passkey").unwrap_or("");
    let renamed = store::rename(&ctx.primary()?, slug, &current.user.id, id, &name).await?;
    let said = if renamed {
        Said {
            notice: Some("The passkey was renamed."),
            ..Said::default()
        }
    } else {
        Said {
            error: Some("That passkey is no longer there."),
            ..Said::default()
        }
    };
    account::page(
        ctx,
        &req,
        &org,
        &viewer,
        said,
        if renamed { 200 } else { 404 },
    )
    .await
}

/// POST /{org}/account/passkeys/remove. Removing needs only the session (and the form's CSRF
/// protection): it takes a way of signing in away, it adds none.
pub async fn handle_remove(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (Submission { org, form, .. }, current) =
        match account::posted(&mut req, ctx, slug, StepKind::PasskeyRemove).await? {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
    let viewer = Viewer::of(&current);
    let id = form.first("passkey").unwrap_or("");
    let keep = passkey_keep(org.passwordless(), &org.mfa);
    let outcome = store::delete_by_user(&ctx.primary()?, slug, &current.user.id, id, keep).await?;
    let removed = outcome == Removal::Removed;
    if removed {
        audit::note(
            ctx,
            Kind::PasskeyRemoved,
            slug,
            Some(&current.user.id),
            None,
            detail([("passkey", json!(id)), ("by", json!("user"))]),
        );
    }
    let (said, status) = match outcome {
        Removal::Removed => (
            Said {
                notice: Some("The passkey was removed. It can no longer sign you in."),
                ..Said::default()
            },
            200,
        ),
        Removal::NotFound => (
            Said {
                error: Some("That passkey is no longer there."),
                ..Said::default()
            },
            404,
        ),
        // Without it the user could never sign in again (a passwordless organization), or
        // could not finish a sign-in without enrolling a factor again (one is required).
        Removal::MustStay => (
            Said {
                error: Some(if keep == PasskeyKeep::LastPasskey {
                    "This is your only passkey, and your organization signs in with passkeys only. Add another passkey before you remove this one."
                } else {
                    "Your organization requires two-step verification, and this passkey is your only second factor. Add another passkey or turn on an authenticator app before you remove it."
                }),
                ..Said::default()
            },
            409,
        ),
    };
    account::page(ctx, &req, &org, &viewer, said, status).await
}
