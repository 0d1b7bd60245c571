//! What a password must be (OWASP ASVS 5.0 §6.2; NIST SP 800-63B §3.1.1.2): 8–256 characters
//! after Unicode NFKC normalisation, and not one of the 10,000 most common leaked passwords of
//! that length (build.rs). Pure.
//!
//! Passwords are normalised before hashing, so the same passphrase typed on keyboards that
//! produce different but compatible code points (a full-width digit, a precomposed or combining
//! accent) is the same password — NIST 800-63B §5.1.1.2 asks for NFKC or NFKD.

use unicode_normalization::UnicodeNormalization;

pub const MIN_CHARS: usize = 8;
/// Long enough for any passphrase, short enough that nobody hashes megabytes on our CPU budget.
pub const MAX_CHARS: usize = 256;

static COMMON: &str = include_str!(concat!(env!("OUT_DIR"), "/common_passwords.txt"));

/// The form a password is hashed and verified in.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// Whether `password` (normalised) is on the common list, ignoring case: "Password1" is as weak
/// as "password1".
pub fn is_common(normalized: &str) -> bool {
    let lower = normalized.to_lowercase();
    let mut lo = 0usize;
    let mut hi = COMMON.len();
    // A binary search over the sorted, newline-separated list without splitting it up front:
    // probe the line around the midpoint of the remaining byte range.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = COMMON[..mid].rfind('\n').map_or(0, |i| i + 1).max(lo);
        let end = COMMON[start..]
            .find('\n')
            .map_or(COMMON.len(), |i| start + i);
        let line = &COMMON[start..end];
        match line.cmp(lower.as_str()) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    false
}

/// Why a password is refused, in words a person can act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Weak {
    TooShort,
    TooLong,
    Common,
}

impl Weak {
    pub fn message(&self) -> String {
        match self {
            Weak::TooShort => format!("password must be at least {MIN_CHARS} characters"),
            Weak::TooLong => format!("password must be at most {MAX_CHARS} characters"),
            Weak::Common => "this password is one of the most common leaked passwords; choose another (a few unrelated words make a strong one)".to_string(),
        }
    }
}

/// The normalised password to hash, or why it is refused.
pub fn check(password: &str) -> Result<String, Weak> {
    let normalized = normalize(password);
    let chars = normalized.chars().count();
    if chars < MIN_CHARS {
        return Err(Weak::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(Weak::TooLong);
    }
    if is_common(&normalized) {
        return Err(Weak::Common);
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_ten_thousand_sorted_passwords() {
        let lines: Vec<&str> = COMMON.lines().collect();
        assert!(lines.len() >= 9_900, "{}", lines.len());
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert!(lines.iter().all(|l| l.chars().count() >= MIN_CHARS));
        for (i, line) in lines.iter().enumerate().step_by(97) {
            assert!(is_common(line), "line {i}: {line}");
        }
        assert!(is_common(lines[0]) && is_common(lines[lines.len() - 1]));
    }

    #[test]
    fn common_passwords_are_refused_ignoring_case() {
        for weak in [
            "password",
            "Password",
            "PASSWORD1",
            "iloveyou",
            "12345678",
            "qwertyuiop",
        ] {
            assert_eq!(check(weak), Err(Weak::Common), "{weak}");
        }
        for fine in [
            "correct horse battery",
            "Pw-8f3kZq1!x",
            "zzzzzzzzzzzzzzzzzzzzzz1",
        ] {
            assert!(check(fine).is_ok(), "{fine}");
        }
        assert!(!is_common("") && !is_common("\n"));
    }

    #[test]
    fn length_counts_normalised_characters() {
        assert_eq!(check("short"), Err(Weak::TooShort));
        assert_eq!(check(&"x".repeat(257)), Err(Weak::TooLong));
        assert!(check(&"xy".repeat(128)).is_ok());
        // Eight full-width digits are NFKC "12345678": common.
        assert_eq!(check("１２３４５６７８"), Err(Weak::Common));
        // A decomposed "é" (e + U+0301) normalises to the precomposed one.
        assert_eq!(
            normalize("caf\u{65}\u{301} au lait!"),
            normalize("caf\u{e9} au lait!")
        );
        assert_eq!(
            check("\u{1f510}\u{1f510}\u{1f510}\u{1f510}\u{1f510}\u{1f510}\u{1f510}"),
            Err(Weak::TooShort)
        );
    }
}
