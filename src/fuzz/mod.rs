//! Property tests over every parser of untrusted input (issue: fuzzing). Each property runs a
//! bounded number of cases from a fixed seed, so `cargo test` is reproducible, needs no files and
//! stays fast. Inputs are arbitrary bytes and strings plus structured near-valid ones (valid
//! bodies with random escapes, real sealed values with random flips). The properties: no parser
//! panics (the runner catches a panic and reports it as a failure, shrunk to a small input),
//! every rejection is the parser's typed error with a status and code from its documented set,
//! valid inputs round-trip, and a tampered sealed value is always refused.
//!
//! To reproduce a failure, run the one test: the seed is fixed, so it fails the same way.

mod admin;
mod forms;
mod sealed;
mod strict;

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::admin::error::ApiError;

/// The seed every property starts from (any 32 bytes; fixed so that runs are reproducible).
const SEED: [u8; 32] = *b"clavex property tests, seed no.1";

/// Cases per property unless a test says otherwise: enough to reach the odd corners of each
/// parser, few enough that the whole module runs in seconds.
pub const CASES: u32 = 512;

/// Run `test` over `cases` values of `strategy` from the fixed seed; panics (failing the
/// `#[test]`) with the shrunk counterexample when a case fails or panics.
pub fn check<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        // Shrinking stays bounded too, so even a failing run ends quickly.
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// Any string, including control characters, non-ASCII and the empty string.
pub fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(|cs| cs.into_iter().collect())
}

/// Strings built from the pieces parsers split on and decode: separators, escapes (valid,
/// truncated, non-hex, non-UTF-8), `+`, quotes, multi-byte characters and plain words.
pub fn tricky_text(max_pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("&".to_string()),
        Just("=".to_string()),
        Just(";".to_string()),
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("+".to_string()),
        Just("%".to_string()),
        Just("%2".to_string()),
        Just("%zz".to_string()),
        Just("%e9".to_string()),
        Just("%C3%A9".to_string()),
        Just("%00".to_string()),
        Just("%FF%FE".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("é".to_string()),
        Just("\u{1F600}".to_string()),
        Just("\u{0}".to_string()),
        Just("\r\n".to_string()),
        "[a-zA-Z0-9_.~-]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..=max_pieces).prop_map(|p| p.concat())
}

/// One of `items`, as an owned String.
pub fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(items).prop_map(str::to_string)
}

/// The admin API's rejections are 4xx with a code from its set; `invalid_field` and `conflict`
/// name a field.
pub fn typed_api_error(err: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(
        (400..=415).contains(&err.status),
        "status {} outside 400..=415: {err:?}",
        err.status
    );
    prop_assert!(
        matches!(
            err.error,
            "invalid_request" | "invalid_field" | "payload_too_large" | "unsupported_media_type"
        ),
        "unexpected code {err:?}"
    );
    if err.error == "invalid_field" {
        prop_assert!(
            err.field.is_some(),
            "invalid_field without a field: {err:?}"
        );
    }
    prop_assert!(!err.description.is_empty(), "no description: {err:?}");
    Ok(())
}
