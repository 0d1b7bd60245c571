//! Password hashing: PBKDF2-HMAC-SHA256 through WebCrypto (native code in workerd, 20–40 ms for
//! 100,000 iterations; pure-Rust PBKDF2 in wasm would cost several times that). workerd refuses
//! more than 100,000 iterations in one deriveBits call, so that is the cost used today; the stored
//! string records algorithm and parameters (`phc`) so a later version can raise it and rehash on
//! login.

use subtle::ConstantTimeEq;
use worker::Result;

use crate::edge::webcrypto::pbkdf2_sha256;

pub const ITERATIONS: u32 = 100_000;
const SALT_BYTES: usize = 16;

/// A PHC-style string `$pbkdf2-sha256$i=100000$<salt>$<hash>` for `password`, with a fresh
/// 16-byte random salt.
pub async fn hash_password(password: &str) -> Result<String> {
    let salt = crate::crypto::random_bytes::<SALT_BYTES>().to_vec();
    hash_with(password, salt, ITERATIONS, |p, s, i| async move {
        pbkdf2_sha256(p, &s, i).await
    })
    .await
}

/// Whether `password` matches `stored`. A stored string this code cannot read (corrupt, or an
/// algorithm it does not know) is a non-match, not an error: login must fail closed.
pub async fn verify_password(password: &str, stored: &str) -> Result<bool> {
    verify_with(password, stored, |p, s, i| async move {
        pbkdf2_sha256(p, &s, i).await
    })
    .await
}

// The two functions above with the key derivation passed in, so that native tests can run them
// with a pure-Rust PBKDF2 (WebCrypto exists only inside workerd).

async fn hash_with<'a, F, Fut>(
    password: &'a str,
    salt: Vec<u8>,
    iterations: u32,
    kdf: F,
) -> Result<String>
where
    F: FnOnce(&'a str, Vec<u8>, u32) -> Fut,
    Fut: Future<Output = Result<Vec<u8>>>,
{
    let hash = kdf(password, salt.clone(), iterations).await?;
    Ok(phc::format(&phc::Pbkdf2 {
        iterations,
        salt,
        hash,
    }))
}

async fn verify_with<'a, F, Fut>(password: &'a str, stored: &str, kdf: F) -> Result<bool>
where
    F: FnOnce(&'a str, Vec<u8>, u32) -> Fut,
    Fut: Future<Output = Result<Vec<u8>>>,
{
    let Some(params) = phc::parse(stored) else {
        return Ok(false);
    };
    let candidate = kdf(password, params.salt, params.iterations).await?;
    // Lengths are public (fixed by the algorithm); the bytes are compared in constant time.
    Ok(candidate.len() == params.hash.len() && bool::from(candidate.ct_eq(&params.hash)))
}

/// Whether a stored hash uses weaker parameters than new hashes do (rehash it after a login).
pub fn needs_rehash(stored: &str) -> bool {
    phc::parse(stored).is_none_or(|p| p.iterations < ITERATIONS)
}

/// The PHC string format (https://github.com/P-H-C/phc-string-format): `$id$param=value$salt$hash`
/// with salt and hash in base64 without padding. Pure: tested natively.
pub mod phc {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

    pub const ID: &str = "pbkdf2-sha256";
    /// The most one WebCrypto call can do in workerd; a string asking for more cannot be checked.
    pub const MAX_ITERATIONS: u32 = 100_000;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Pbkdf2 {
        pub iterations: u32,
        pub salt: Vec<u8>,
        pub hash: Vec<u8>,
    }

    pub fn format(p: &Pbkdf2) -> String {
        format!(
            "${ID}$i={}${}${}",
            p.iterations,
            STANDARD_NO_PAD.encode(&p.salt),
            STANDARD_NO_PAD.encode(&p.hash)
        )
    }

    pub fn parse(stored: &str) -> Option<Pbkdf2> {
        let mut parts = stored.strip_prefix('$')?.split('$');
        if parts.next()? != ID {
            return None;
        }
        let iterations: u32 = parts.next()?.strip_prefix("i=")?.parse().ok()?;
        let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        let hash = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        if parts.next().is_some()
            || !(1..=MAX_ITERATIONS).contains(&iterations)
            || salt.len() < 8
            || hash.len() != 32
        {
            return None;
        }
        Some(Pbkdf2 {
            iterations,
            salt,
            hash,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn sample() -> Pbkdf2 {
            Pbkdf2 {
                iterations: 100_000,
                salt: (0u8..16).collect(),
                hash: (100u8..132).collect(),
            }
        }

        #[test]
        fn format_and_parse_round_trip() {
            let text = format(&sample());
            assert!(text.starts_with("$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw$"));
            assert!(!text.ends_with('='), "PHC base64 has no padding");
            assert_eq!(parse(&text), Some(sample()));
        }

        #[test]
        fn malformed_strings_are_refused() {
            let good = format(&sample());
            let salt_and_hash = good.splitn(4, '$').nth(3).unwrap().to_string();
            for bad in [
                String::new(),
                "plaintext".into(),
                good.replacen("pbkdf2-sha256", "argon2id", 1),
                good.replacen("i=100000", "i=0", 1),
                good.replacen("i=100000", "i=100001", 1),
                good.replacen("i=100000", "i=lots", 1),
                good.replacen("i=100000", "rounds=100000", 1),
                format!("$pbkdf2-sha256$i=100000${salt_and_hash}$extra"),
                format!("$pbkdf2-sha256$i=100000$!!!${}", "A".repeat(43)),
                good[..good.len() - 4].to_string(),
            ] {
                assert_eq!(parse(&bad), None, "{bad:?} accepted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PBKDF2-HMAC-SHA256 with one 32-byte block (RFC 8018 §5.2), the reference the WebCrypto
    /// call is replaced with natively.
    fn pbkdf2_reference(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = crate::crypto::hmac_sha256(password.as_bytes(), &block);
        let mut t = u;
        for _ in 1..iterations {
            u = crate::crypto::hmac_sha256(password.as_bytes(), &u);
            t.iter_mut().zip(u).for_each(|(t, u)| *t ^= u);
        }
        t.to_vec()
    }

    async fn reference(p: &str, s: Vec<u8>, i: u32) -> Result<Vec<u8>> {
        Ok(pbkdf2_reference(p, &s, i))
    }

    /// Runs a future that never waits (the reference KDF is synchronous).
    fn run<T>(fut: impl Future<Output = T>) -> T {
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the reference KDF does not wait"),
        }
    }

    #[test]
    fn reference_matches_rfc_7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1), first 32 bytes.
        assert_eq!(
            crate::crypto::hex(&pbkdf2_reference("passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn hash_then_verify() {
        // Fewer iterations than production only to keep the unoptimized test build fast; the
        // count travels in the string, which is what this checks.
        let stored = run(hash_with("correct horse", vec![7; 16], 1_000, reference)).unwrap();
        assert!(stored.starts_with("$pbkdf2-sha256$i=1000$BwcHBwcHBwcHBwcHBwcHBw$"));
        let parsed = phc::parse(&stored).unwrap();
        assert_eq!(
            parsed.hash,
            pbkdf2_reference("correct horse", &[7; 16], 1_000)
        );
        assert!(run(verify_with("correct horse", &stored, reference)).unwrap());
        assert!(!run(verify_with("correct horsE", &stored, reference)).unwrap());
        assert!(!run(verify_with("", &stored, reference)).unwrap());
    }

    #[test]
    fn malformed_stored_strings_verify_false_without_error() {
        for stored in [
            "",
            "plain",
            "$pbkdf2-sha256$i=100000$x",
            "$argon2id$v=19$m=1$a$b",
        ] {
            let called = std::cell::Cell::new(false);
            let kdf = |p: &str, s: Vec<u8>, i: u32| {
                called.set(true);
                let out = pbkdf2_reference(p, &s, i);
                async move { Ok(out) }
            };
            assert!(!run(verify_with("pw", stored, kdf)).unwrap(), "{stored}");
            assert!(!called.get(), "no hashing for an unreadable string");
        }
    }

    #[test]
    fn rehash_when_weaker_or_unreadable() {
        let weak = phc::format(&phc::Pbkdf2 {
            iterations: 10_000,
            salt: vec![1; 16],
            hash: vec![2; 32],
        });
        let current = phc::format(&phc::Pbkdf2 {
            iterations: ITERATIONS,
            salt: vec![1; 16],
            hash: vec![2; 32],
        });
        assert!(needs_rehash(&weak));
        assert!(!needs_rehash(&current));
        assert!(needs_rehash("garbage"));
    }
}
