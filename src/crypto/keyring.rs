//! The master secrets that seal values at rest and in flight: `KEY_ENCRYPTION_SECRET` (the
//! current one, which seals everything new) and `KEY_ENCRYPTION_SECRET_PREVIOUS` (a comma-separated
//! list of older ones, accepted only for opening while everything is re-sealed; README, "Rotating
//! KEY_ENCRYPTION_SECRET"). Pure.
//!
//! A sealed value names the secret that sealed it: `{key id}.{box}`, where the key id is 8
//! base64url characters (48 bits of HKDF output under its own purpose, so it tells nothing about
//! the keys derived for sealing) and `box` is `crypto::seal`'s base64url. Base64url has no `.`, so a
//! value without one is the format from before key ids ("legacy"): it is tried under every
//! configured secret, the current first.

use std::fmt;

use crate::crypto::{b64url, derive_key, open, seal};

/// Characters of a key id (6 bytes of base64url).
pub const KEY_ID_CHARS: usize = 8;
const SEPARATOR: char = '.';
/// Shorter secrets are refused: a guessable master secret would open everything.
pub const MIN_SECRET_CHARS: usize = 16;

/// The id a secret's sealed values carry.
pub fn key_id(secret: &str) -> String {
    b64url(&derive_key(secret, "key-id")[..KEY_ID_CHARS * 6 / 8])
}

#[derive(Clone)]
struct Master {
    id: String,
    secret: String,
}

/// The current secret first, then the previous ones.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Master>,
}

/// Never the secrets themselves.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_id())
            .field("previous", &self.previous_ids())
            .finish()
    }
}

/// A value opened from storage, and its re-sealed form when it was not sealed under the current
/// secret (sealed under a previous one, or in the legacy format): the caller writes that back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub plaintext: Vec<u8>,
    pub resealed: Option<String>,
}

/// Why a stored sealed value cannot be opened. Never answered as "wrong code" or "no such key":
/// the data is there, the configuration cannot read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Sealed under a secret that is not configured (its id is known, so the operator can tell
    /// which old secret to put back in KEY_ENCRYPTION_SECRET_PREVIOUS).
    UnknownKey(String),
    /// Sealed under a configured secret but does not open: altered, or moved to another row.
    Damaged(String),
    /// Sealed before key ids, and no configured secret opens it.
    Legacy,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::UnknownKey(id) => write!(
                f,
                "sealed under key id {id}, which is neither KEY_ENCRYPTION_SECRET nor in KEY_ENCRYPTION_SECRET_PREVIOUS"
            ),
            Unreadable::Damaged(id) => write!(
                f,
                "sealed under key id {id} (configured) but does not open: altered or moved"
            ),
            Unreadable::Legacy => write!(
                f,
                "sealed before key ids, and none of the configured secrets opens it (the secret that sealed it must be in KEY_ENCRYPTION_SECRET_PREVIOUS)"
            ),
        }
    }
}

impl Unreadable {
    /// The key id that is missing from the configuration, when that is the reason.
    pub fn missing_key_id(&self) -> Option<&str> {
        match self {
            Unreadable::UnknownKey(id) => Some(id),
            _ => None,
        }
    }
}

impl Keyring {
    /// From the configured values: `previous` is a comma-separated list (blank: none). A clear
    /// error names what is wrong — never a value.
    pub fn from_config(current: &str, previous: &str) -> Result<Keyring, String> {
        let previous: Vec<&str> = if previous.trim().is_empty() {
            Vec::new()
        } else {
            previous.split(',').map(str::trim).collect()
        };
        Keyring::new(current, &previous)
    }

    pub fn new(current: &str, previous: &[&str]) -> Result<Keyring, String> {
        if current.len() < MIN_SECRET_CHARS {
            return Err(format!(
                "KEY_ENCRYPTION_SECRET is shorter than {MIN_SECRET_CHARS} characters"
            ));
        }
        let mut keys = vec![Master {
            id: key_id(current),
            secret: current.to_string(),
        }];
        for (i, secret) in previous.iter().enumerate() {
            let which = format!("KEY_ENCRYPTION_SECRET_PREVIOUS entry {}", i + 1);
            if secret.len() < MIN_SECRET_CHARS {
                return Err(format!(
                    "{which} is shorter than {MIN_SECRET_CHARS} characters (entries are separated by commas)"
                ));
            }
            if *secret == current {
                return Err(format!(
                    "{which} is the same as KEY_ENCRYPTION_SECRET: set the new secret as KEY_ENCRYPTION_SECRET and the old one as previous"
                ));
            }
            let id = key_id(secret);
            if keys.iter().any(|k| k.secret == *secret) {
                return Err(format!("{which} is listed twice"));
            }
            if keys.iter().any(|k| k.id == id) {
                // 2^-48 for two random secrets; refused so an id always names one secret.
                return Err(format!("{which} has the same key id as another secret"));
            }
            keys.push(Master {
                id,
                secret: secret.to_string(),
            });
        }
        Ok(Keyring { keys })
    }

    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    pub fn previous_ids(&self) -> Vec<&str> {
        self.keys[1..].iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether previous secrets are configured (a rotation is under way).
    pub fn rotating(&self) -> bool {
        self.keys.len() > 1
    }

    /// What every value sealed under the current secret starts with.
    pub fn current_prefix(&self) -> String {
        format!("{}{SEPARATOR}", self.current_id())
    }

    /// Whether `sealed` names the current secret (it may still fail to open).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .split_once(SEPARATOR)
            .is_some_and(|(id, _)| id == self.current_id())
    }

    /// Seal under the current secret's key for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8], aad: &[u8]) -> String {
        let current = &self.keys[0];
        let boxed = seal(&derive_key(&current.secret, purpose), plaintext, aad);
        format!("{}{SEPARATOR}{boxed}", current.id)
    }

    /// Open a short-lived value (a form state, a code): under whichever configured secret sealed
    /// it. None for anything that does not open.
    pub fn open(&self, purpose: &str, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        self.open_with(purpose, sealed, aad)
            .ok()
            .map(|(plaintext, _)| plaintext)
    }

    /// `open` for a value whose text is its identity (an authorization code is single-use by the
    /// hash of its text): only the format with a key id, so the same box without its id (which the
    /// legacy rule would open) is not a second spelling of one value.
    pub fn open_named(&self, purpose: &str, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        sealed.contains(SEPARATOR).then_some(())?;
        self.open(purpose, sealed, aad)
    }

    /// Open a value kept in storage (a signing key, a TOTP secret), with its re-sealed form when
    /// it was not sealed under the current secret, or why it cannot be opened.
    pub fn open_stored(
        &self,
        purpose: &str,
        sealed: &str,
        aad: &[u8],
    ) -> Result<Opened, Unreadable> {
        let (plaintext, by_current) = self.open_with(purpose, sealed, aad)?;
        let resealed = (!by_current).then(|| self.seal(purpose, &plaintext, aad));
        Ok(Opened {
            plaintext,
            resealed,
        })
    }

    /// The plaintext and whether it was sealed under the current secret in the current format.
    fn open_with(
        &self,
        purpose: &str,
        sealed: &str,
        aad: &[u8],
    ) -> Result<(Vec<u8>, bool), Unreadable> {
        match sealed.split_once(SEPARATOR) {
            Some((id, boxed)) => {
                let (index, key) = self
                    .keys
                    .iter()
                    .enumerate()
                    .find(|(_, k)| k.id == id)
                    .ok_or_else(|| Unreadable::UnknownKey(short(id)))?;
                open(&derive_key(&key.secret, purpose), boxed, aad)
                    .map(|p| (p, index == 0))
                    .ok_or_else(|| Unreadable::Damaged(key.id.clone()))
            }
            None => self
                .keys
                .iter()
                .find_map(|k| open(&derive_key(&k.secret, purpose), sealed, aad))
                .map(|p| (p, false))
                .ok_or(Unreadable::Legacy),
        }
    }
}

/// A key id read from a value, bounded for logs (a damaged value could carry anything).
fn short(id: &str) -> String {
    id.chars()
        .take(KEY_ID_CHARS)
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "the old master secret of 32 chars";
    const NEW: &str = "the new master secret of 32 chars";
    const OLDER: &str = "an even older master secret.....";

    fn ring(current: &str, previous: &[&str]) -> Keyring {
        Keyring::new(current, previous).unwrap()
    }

    #[test]
    fn sealed_values_name_their_key() {
        let k = ring(NEW, &[]);
        let sealed = k.seal("p", b"x", b"aad");
        assert!(sealed.starts_with(&k.current_prefix()));
        assert_eq!(k.current_prefix().len(), KEY_ID_CHARS + 1);
        assert!(k.is_current(&sealed));
        assert_ne!(key_id(OLD), key_id(NEW));
        assert_eq!(key_id(NEW), key_id(NEW));
    }

    #[test]
    fn previous_secrets_open_and_their_values_are_resealed_under_the_current() {
        let before = ring(OLD, &[]).seal("totp", b"secret", b"user-1");
        let rotated = ring(NEW, &[OLD]);
        let opened = rotated.open_stored("totp", &before, b"user-1").unwrap();
        assert_eq!(opened.plaintext, b"secret");
        let resealed = opened.resealed.expect("sealed under a previous secret");
        assert!(rotated.is_current(&resealed));
        // The re-sealed value opens with the new secret alone, and needs no further re-seal.
        let after = ring(NEW, &[]);
        assert_eq!(
            after.open_stored("totp", &resealed, b"user-1").unwrap(),
            Opened {
                plaintext: b"secret".to_vec(),
                resealed: None
            }
        );
        assert_eq!(rotated.open("totp", &before, b"user-1").unwrap(), b"secret");
    }

    #[test]
    fn a_removed_secret_is_named_not_silently_wrong() {
        let before = ring(OLD, &[]).seal("totp", b"secret", b"user-1");
        let after = ring(NEW, &[OLDER]);
        assert_eq!(
            after.open_stored("totp", &before, b"user-1"),
            Err(Unreadable::UnknownKey(key_id(OLD)))
        );
        assert_eq!(after.open("totp", &before, b"user-1"), None);
        assert!(
            Unreadable::UnknownKey(key_id(OLD))
                .to_string()
                .contains(&key_id(OLD))
        );
    }

    #[test]
    fn a_known_key_that_does_not_open_is_damage() {
        let k = ring(NEW, &[]);
        let sealed = k.seal("totp", b"secret", b"user-1");
        assert_eq!(
            k.open_stored("totp", &sealed, b"user-2"),
            Err(Unreadable::Damaged(k.current_id().to_string()))
        );
        assert_eq!(
            k.open_stored("other purpose", &sealed, b"user-1"),
            Err(Unreadable::Damaged(k.current_id().to_string()))
        );
    }

    #[test]
    fn legacy_values_open_under_any_configured_secret_and_are_resealed() {
        // The format before key ids: crypto::seal's box alone.
        let legacy_current = seal(&derive_key(NEW, "signing-keys"), b"pkcs8", b"kid");
        let legacy_old = seal(&derive_key(OLD, "signing-keys"), b"pkcs8", b"kid");
        let k = ring(NEW, &[OLD]);
        for legacy in [&legacy_current, &legacy_old] {
            let opened = k.open_stored("signing-keys", legacy, b"kid").unwrap();
            assert_eq!(opened.plaintext, b"pkcs8");
            assert!(k.is_current(&opened.resealed.unwrap()));
            assert!(!k.is_current(legacy));
        }
        assert_eq!(
            ring(NEW, &[]).open_stored("signing-keys", &legacy_old, b"kid"),
            Err(Unreadable::Legacy)
        );
        assert_eq!(
            ring(NEW, &[])
                .open("signing-keys", &legacy_current, b"kid")
                .unwrap(),
            b"pkcs8"
        );
    }

    #[test]
    fn a_value_whose_text_is_its_identity_has_one_spelling() {
        let k = ring(NEW, &[OLD]);
        let sealed = k.seal("codes", b"x", b"a");
        assert_eq!(k.open_named("codes", &sealed, b"a").unwrap(), b"x");
        let (_, without_id) = sealed.split_once('.').unwrap();
        assert_eq!(
            k.open("codes", without_id, b"a").unwrap(),
            b"x",
            "legacy rule"
        );
        assert_eq!(k.open_named("codes", without_id, b"a"), None);
        let under_old = ring(OLD, &[]).seal("codes", b"x", b"a");
        assert_eq!(k.open_named("codes", &under_old, b"a").unwrap(), b"x");
    }

    #[test]
    fn garbage_and_altered_ids_do_not_open() {
        let k = ring(NEW, &[OLD]);
        let sealed = k.seal("p", b"x", b"a");
        for bad in [
            "",
            ".",
            "abc",
            "........",
            &sealed[1..],
            &format!("x{sealed}"),
            &sealed.replacen('.', "", 1),
        ] {
            assert_eq!(k.open("p", bad, b"a"), None, "{bad}");
            assert!(k.open_stored("p", bad, b"a").is_err(), "{bad}");
        }
        // An unknown id read from a value is bounded before it reaches a log.
        let long = format!("{}.{}", "<script>".repeat(100), "AAAA");
        match k.open_stored("p", &long, b"a") {
            Err(Unreadable::UnknownKey(id)) => {
                assert!(id.len() <= KEY_ID_CHARS && !id.contains('<'))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn misconfiguration_is_a_clear_error() {
        let err =
            |current: &str, previous: &str| Keyring::from_config(current, previous).unwrap_err();
        assert!(err("short", "").contains("KEY_ENCRYPTION_SECRET is shorter"));
        assert!(err(NEW, NEW).contains("same as KEY_ENCRYPTION_SECRET"));
        assert!(err(NEW, "too short").contains("entry 1 is shorter"));
        assert!(err(NEW, &format!("{OLD},{OLD}")).contains("entry 2 is listed twice"));
        assert!(err(NEW, &format!("{OLD},")).contains("entry 2 is shorter"));
        // A comma inside a secret splits it: the pieces are refused, not silently used.
        assert!(err(NEW, "an old secret, with a comma in it").contains("entry 1 is shorter"));
        for message in [err(NEW, NEW), err(NEW, "too short")] {
            assert!(
                !message.contains(NEW) && !message.contains("too short"),
                "no value in {message}"
            );
        }
        let k = Keyring::from_config(NEW, &format!(" {OLD} , {OLDER} ")).unwrap();
        assert_eq!(k.previous_ids(), vec![key_id(OLD), key_id(OLDER)]);
        assert!(k.rotating());
        assert!(!Keyring::from_config(NEW, "  ").unwrap().rotating());
        assert!(!format!("{k:?}").contains(NEW));
    }
}
