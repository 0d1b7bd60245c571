//! Build step: the list of common passwords the password policy refuses (src/protocol/password_policy.rs).
//!
//! The list comes from the maintained `@zxcvbn-ts/language-common` npm package (MIT; installed
//! by `npm ci` in scripts/setup.sh), whose `passwords.json` ranks about 49,000 leaked passwords
//! by frequency. Only passwords of at least 8 characters can pass the length rule, so the
//! 10,000 most common of those are kept, lowercased, sorted and de-duplicated, one per line, for a
//! binary search at run time (about 100 KB in the Worker).
use std::{env, fs, path::Path};

const SOURCE: &str = "node_modules/@zxcvbn-ts/language-common/src/passwords.json";
const KEEP: usize = 10_000;
const MIN_LEN: usize = 8;

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = fs::read_to_string(SOURCE).unwrap_or_else(|e| {
        panic!("{SOURCE}: {e}. Run `npm ci` (scripts/setup.sh installs it) before building.")
    });
    let ranked: Vec<String> =
        serde_json::from_str(&text).expect("passwords.json is a JSON array of strings");
    let mut kept: Vec<String> = ranked
        .into_iter()
        .filter(|p| p.chars().count() >= MIN_LEN)
        .map(|p| p.to_lowercase())
        .take(KEEP)
        .collect();
    assert!(
        kept.len() == KEEP,
        "the source list has fewer than {KEEP} passwords of {MIN_LEN}+ characters"
    );
    kept.sort();
    kept.dedup();
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("common_passwords.txt");
    fs::write(out, kept.join("\n")).unwrap();
}
