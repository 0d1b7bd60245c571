//! A user's second-factor secrets at rest, under KEY_ENCRYPTION_SECRET (crypto/keyring.rs):
//!
//! - the TOTP secret, sealed with the user id as associated data;
//! - the recovery-code key: 32 random bytes made at enrolment, sealed the same way. Recovery
//!   codes are stored as HMAC-SHA256 under it, the user id in the input, so a copy of the
//!   database alone cannot test guesses (a code is 50 bits: an unkeyed hash of every user's codes
//!   falls to one enumeration), and a guess is per user.
//!
//! Why a sealed random key rather than one derived from the master secret: a rotation re-seals
//! the key and the hashes stay valid. Hashes under a key derived from the secret would need the
//! codes to be re-hashed, and single-use codes are only ever seen once more — when they are used
//! up — so unused codes would be lost with the old secret.
//!
//! Both are opened together; when they were sealed under a previous secret (or before key ids),
//! they are re-sealed under the current one and written back, guarded on what was read.

use worker::Result;

use crate::crypto::keyring::Opened;
use crate::crypto::{hex, hmac_sha256, random_bytes};
use crate::edge::context::Ctx;
use crate::edge::store::mfa::{
    self as store, NewFactor, RECOVERY_KEY_PURPOSE as RECOVERY_KEYS_PURPOSE,
    TOTP_PURPOSE as SECRETS_PURPOSE,
};
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::User;
use crate::protocol::mfa;

/// Keyed hashes are told from the unsalted SHA-256 of older enrolments (64 hex digits) by this.
const KEYED_PREFIX: &str = "h1:";

/// TOTP secrets are stored only sealed, bound to their user (associated data).
pub fn seal_secret(ctx: &Ctx, user_id: &str, secret: &[u8]) -> String {
    ctx.config
        .key_encryption_secret
        .seal(SECRETS_PURPOSE, secret, user_id.as_bytes())
}

/// What a confirmed enrolment stores: the sealed secret, a new enrolment id, a new sealed
/// recovery-code key and the codes' hashes under it.
pub fn enrolment(ctx: &Ctx, user_id: &str, secret: &[u8], codes: &[String]) -> NewFactor {
    let (recovery_key_sealed, recovery_hashes) = recovery_set(ctx, user_id, codes);
    NewFactor {
        sealed_secret: seal_secret(ctx, user_id, secret),
        secret_id: hex(&random_bytes::<12>()),
        recovery_key_sealed,
        recovery_hashes,
    }
}

/// A new recovery-code key, sealed, and the hashes of `codes` under it: for an enrolment, or
/// for new codes replacing the old ones (the account page).
pub fn recovery_set(ctx: &Ctx, user_id: &str, codes: &[String]) -> (String, Vec<String>) {
    let recovery_key = random_bytes::<32>();
    let sealed = ctx.config.key_encryption_secret.seal(
        RECOVERY_KEYS_PURPOSE,
        &recovery_key,
        user_id.as_bytes(),
    );
    let hashes = codes
        .iter()
        .map(|c| keyed_hash(&recovery_key, user_id, c))
        .collect();
    (sealed, hashes)
}

/// The user's TOTP secret, or None when not enrolled. Err (loud, edge/sealed.rs) when no
/// configured secret opens it.
pub async fn open_secret(ctx: &Ctx, org: &Organization, user: &User) -> Result<Option<Vec<u8>>> {
    Ok(open_factors(ctx, org, user).await?.totp_secret)
}

/// The stored forms `code` may have for `user`: the keyed hash, or for an enrolment made before
/// keyed hashes (no recovery-code key) the unsalted SHA-256 it was stored as.
pub async fn recovery_hashes(
    ctx: &Ctx,
    org: &Organization,
    user: &User,
    code: &str,
) -> Result<Vec<String>> {
    let key = open_factors(ctx, org, user).await?.recovery_key;
    Ok(candidates(key.as_ref(), &user.id, code))
}

struct Factors {
    totp_secret: Option<Vec<u8>>,
    recovery_key: Option<[u8; 32]>,
}

async fn open_factors(ctx: &Ctx, org: &Organization, user: &User) -> Result<Factors> {
    let keys = &ctx.config.key_encryption_secret;
    let open = |purpose: &str, kind: &str, sealed: Option<&str>| match sealed {
        None => Ok(None),
        Some(sealed) => keys
            .open_stored(purpose, sealed, user.id.as_bytes())
            .map(Some)
            .map_err(|why| crate::edge::sealed::unreadable(kind, &org.slug, &user.id, &why, keys)),
    };
    let secret = open(
        SECRETS_PURPOSE,
        "totp_secret",
        user.totp_secret_sealed.as_deref(),
    )?;
    let recovery = open(
        RECOVERY_KEYS_PURPOSE,
        "recovery_key",
        user.recovery_key_sealed.as_deref(),
    )?;
    let stale = |o: &Option<Opened>| o.as_ref().is_some_and(|o| o.resealed.is_some());
    if stale(&secret) || stale(&recovery) {
        reseal_lazily(ctx, org, user, &secret, &recovery).await;
    }
    // Authenticated, so always the 32 bytes sealed at enrolment; anything else is not guessed at.
    let recovery_key = match recovery {
        None => None,
        Some(o) => Some(<[u8; 32]>::try_from(o.plaintext).map_err(|_| {
            worker::Error::RustError(format!("recovery-code key of {} is not 32 bytes", user.id))
        })?),
    };
    Ok(Factors {
        totp_secret: secret.map(|o| o.plaintext),
        recovery_key,
    })
}

/// Write the factors back under the current secret, guarded on the row read (a concurrent
/// re-seal, admin reset or re-enrolment wins). Not needed for this sign-in: a failure is logged
/// and left to the next use or the scheduled re-seal.
async fn reseal_lazily(
    ctx: &Ctx,
    org: &Organization,
    user: &User,
    secret: &Option<Opened>,
    recovery: &Option<Opened>,
) {
    let after = |was: Option<&String>, o: &Option<Opened>| {
        o.as_ref()
            .and_then(|o| o.resealed.clone())
            .or_else(|| was.cloned())
    };
    let new_secret = after(user.totp_secret_sealed.as_ref(), secret);
    let new_recovery = after(user.recovery_key_sealed.as_ref(), recovery);
    let written = match ctx.primary() {
        Ok(db) => {
            store::reseal_factors(
                &db,
                &org.slug,
                &user.id,
                (
                    user.totp_secret_sealed.as_deref(),
                    user.recovery_key_sealed.as_deref(),
                ),
                (new_secret.as_deref(), new_recovery.as_deref()),
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        worker::console_error!("second factor of user {} not re-sealed: {e}", user.id);
    }
}

/// HMAC-SHA256 of the normalised code under the user's recovery-code key, the user id in the
/// input (so one key, were it shared, would still not hash two users' codes alike). Pure.
pub fn keyed_hash(key: &[u8; 32], user_id: &str, code: &str) -> String {
    let mut input = Vec::with_capacity(user_id.len() + 16);
    input.extend_from_slice(b"recovery-code\0");
    input.extend_from_slice(user_id.as_bytes());
    input.push(0);
    input.extend_from_slice(mfa::normalize_recovery(code).as_bytes());
    format!("{KEYED_PREFIX}{}", hex(&hmac_sha256(key, &input)))
}

/// The stored forms to look for. Pure.
pub fn candidates(key: Option<&[u8; 32]>, user_id: &str, code: &str) -> Vec<String> {
    match key {
        Some(key) => vec![keyed_hash(key, user_id, code)],
        // Enrolled before keyed hashes: the unsalted SHA-256 it was stored as (protocol/mfa.rs).
        None => vec![mfa::recovery_hash(code)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hashes_depend_on_key_user_and_code_but_not_on_spelling() {
        let key = [7u8; 32];
        let code = mfa::recovery_code([1, 2, 3, 4, 5, 6, 7, 8]);
        let h = keyed_hash(&key, "usr_1", &code);
        assert!(h.starts_with(KEYED_PREFIX) && h.len() == KEYED_PREFIX.len() + 64);
        assert_eq!(
            h,
            keyed_hash(&key, "usr_1", &code.to_uppercase().replace('-', " "))
        );
        assert_ne!(h, keyed_hash(&[8u8; 32], "usr_1", &code), "another key");
        assert_ne!(h, keyed_hash(&key, "usr_2", &code), "another user");
        let other = mfa::recovery_code([2, 2, 3, 4, 5, 6, 7, 8]);
        assert_ne!(code, other);
        assert_ne!(h, keyed_hash(&key, "usr_1", &other), "another code");
        // Not the unsalted hash, with or without the prefix.
        assert!(!h.contains(&mfa::recovery_hash(&code)));
    }

    #[test]
    fn the_user_id_and_code_cannot_be_shifted_into_each_other() {
        let key = [1u8; 32];
        assert_ne!(
            keyed_hash(&key, "usr_a", "bcdef"),
            keyed_hash(&key, "usr_ab", "cdef")
        );
    }

    #[test]
    fn older_enrolments_are_looked_up_by_their_unsalted_hash_only() {
        let code = mfa::recovery_code([9; 8]);
        assert_eq!(
            candidates(None, "usr_1", &code),
            vec![mfa::recovery_hash(&code)]
        );
        let key = [3u8; 32];
        assert_eq!(
            candidates(Some(&key), "usr_1", &code),
            vec![keyed_hash(&key, "usr_1", &code)]
        );
    }
}
