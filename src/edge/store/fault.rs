//! Storage faults: telling a storage outage from a programming error, and — in development only —
//! making storage fail on purpose.
//!
//! Every storage call goes through the request's `Meter` (store/meter.rs). When one fails, the
//! error is judged here: a constraint violation is an answer the caller handles (a duplicate is a
//! 409), a malformed statement or an undecodable row is a bug (500), and anything else — a locked
//! or overloaded database, a lost connection, a reset Durable Object, a KV outage — means storage
//! is unavailable, which the dispatcher answers with 503 and `Retry-After` in the caller's form
//! (edge/failure.rs). The meter keeps the first such fault of the request, so the answer does not
//! depend on how an endpoint propagates the error.
//!
//! `SIMULATED_STORAGE_FAULTS=on` (honoured only for requests to a loopback address, like
//! `SIMULATED_STORAGE_LATENCY`) lets a request ask for faults with the header
//! `X-Clavex-Fail-Storage`: a comma-separated list of `TARGET@N`, `TARGET@N+` or either with a
//! `:STYLE`, e.g. `d1_primary@2` (the request's second call to the D1 primary fails), `kv@1+`
//! (every KV call fails), `any@1:lost`. Targets: `d1_primary`, `d1_replica`, `d1`, `kv_read`,
//! `kv_write`, `kv`, `any`; N counts the calls of that target within the request, from 1. Styles
//! are the messages D1 gives in production and locally: `locked` (the default; what `wrangler
//! dev` says while another process holds the database), `lost` and `overloaded`. A failed call
//! is never made, so nothing it would have written is written.

use crate::edge::store::meter::StorageKind;

/// Which store failed and how, for the log line, the audit event and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFault {
    /// The store's name as in `Server-Timing`: `d1-primary`, `d1-replica`, `kv-read`,
    /// `kv-write` (a Durable Object call would be `durable-object`).
    pub store: &'static str,
    /// The error's message, one line, cut short (never holds a bound value: statements carry
    /// their values as bindings, and KV keys are hashes).
    pub message: String,
    /// Made on purpose by `X-Clavex-Fail-Storage`.
    pub simulated: bool,
}

/// What a failed storage call means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A constraint the schema enforces (UNIQUE, FOREIGN KEY, NOT NULL, CHECK, a trigger's
    /// RAISE): the caller turns it into an answer (409, 404, 400).
    Answer,
    /// The statement or the code reading its rows is wrong: a 500, and a bug to fix.
    Bug,
    /// Storage did not answer: 503 with `Retry-After`; trying again later may well succeed.
    Unavailable,
}

/// Judges an error message from D1 or KV. Unknown messages count as unavailability: a storage
/// call that failed for a reason Clavex does not know is far likelier an outage than a bug the
/// tests missed, and `503 Retry-After` is the honest answer to a caller either way.
pub fn judge(message: &str) -> Verdict {
    const ANSWERS: &[&str] = &[
        "constraint failed",
        // A trigger's RAISE(ABORT, …) (migrations/) refuses a write that breaks an invariant.
        "clavex:",
    ];
    // D1's own codes for a statement it cannot run (developers.cloudflare.com/d1/observability/
    // debug-d1: D1_TYPE_ERROR, D1_COLUMN_NOTFOUND), and SQLite's messages for the same.
    const BUGS: &[&str] = &[
        "D1_TYPE_ERROR",
        "D1_COLUMN_NOTFOUND",
        "no such table",
        "no such column",
        "no such function",
        "syntax error",
        "datatype mismatch",
        "wrong number of",
        "too many SQL variables",
        "misuse",
        "unable to serialize",
        "serialization error",
        "invalid kv store",
    ];
    if ANSWERS.iter().any(|a| message.contains(a)) {
        Verdict::Answer
    } else if BUGS.iter().any(|b| message.contains(b)) {
        Verdict::Bug
    } else {
        Verdict::Unavailable
    }
}

/// One line of at most 300 characters: safe to put in a JSON log line.
pub fn one_line(message: &str) -> String {
    let line: String = message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect();
    line
}

/// Who a rule of the plan aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Kind(StorageKind),
    D1,
    Kv,
    Any,
}

impl Target {
    fn parse(name: &str) -> Option<Target> {
        Some(match name {
            "d1_primary" => Target::Kind(StorageKind::D1Primary),
            "d1_replica" => Target::Kind(StorageKind::D1Replica),
            "kv_read" => Target::Kind(StorageKind::KvRead),
            "kv_write" => Target::Kind(StorageKind::KvWrite),
            "d1" => Target::D1,
            "kv" => Target::Kv,
            "any" => Target::Any,
            _ => return None,
        })
    }

    fn covers(self, kind: StorageKind) -> bool {
        match self {
            Target::Kind(k) => k == kind,
            Target::D1 => matches!(kind, StorageKind::D1Primary | StorageKind::D1Replica),
            Target::Kv => matches!(kind, StorageKind::KvRead | StorageKind::KvWrite),
            Target::Any => true,
        }
    }
}

/// How a simulated fault reads: D1's messages for the three common outages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Locked,
    Lost,
    Overloaded,
}

impl Style {
    fn parse(name: &str) -> Option<Style> {
        Some(match name {
            "locked" => Style::Locked,
            "lost" => Style::Lost,
            "overloaded" => Style::Overloaded,
            _ => return None,
        })
    }

    /// The message the failed call gives (what D1 and KV say for such an outage).
    pub fn message(self, kind: StorageKind) -> String {
        let text = match (self, kind) {
            (Style::Locked, StorageKind::D1Primary | StorageKind::D1Replica) => {
                "D1_ERROR: database is locked: SQLITE_BUSY"
            }
            (Style::Lost, _) => "Network connection lost.",
            (Style::Overloaded, StorageKind::D1Primary | StorageKind::D1Replica) => {
                "D1 DB is overloaded. Requests queued for too long."
            }
            _ => "KV operation failed: 503 Service Unavailable",
        };
        format!("{text} (simulated: X-Clavex-Fail-Storage)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    target: Target,
    nth: u32,
    and_later: bool,
    style: Style,
}

/// The faults one request asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// `d1_primary@2`, `kv@1+`, `any@1:lost`, comma-separated (see the module comment).
    pub fn parse(text: &str) -> Result<FaultPlan, String> {
        let mut rules = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (rule, style) = match part.split_once(':') {
                Some((rule, style)) => (
                    rule,
                    Style::parse(style.trim()).ok_or_else(|| {
                        format!("`{part}`: style must be locked, lost or overloaded")
                    })?,
                ),
                None => (part, Style::Locked),
            };
            let (target, nth) = rule
                .split_once('@')
                .ok_or_else(|| format!("`{part}` is not target@n"))?;
            let target = Target::parse(target.trim())
                .ok_or_else(|| format!("`{part}`: unknown target `{}`", target.trim()))?;
            let nth = nth.trim();
            let (nth, and_later) = match nth.strip_suffix('+') {
                Some(n) => (n, true),
                None => (nth, false),
            };
            let nth: u32 = nth
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| format!("`{part}`: n must be 1–1000"))?;
            rules.push(Rule {
                target,
                nth,
                and_later,
                style,
            });
        }
        Ok(FaultPlan { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the call about to be made fails: `counts` says, per kind, how many calls of that
    /// kind this request has started so far, this one included.
    fn fails(&self, kind: StorageKind, counts: &[u32; 4]) -> Option<Style> {
        self.rules.iter().find_map(|r| {
            if !r.target.covers(kind) {
                return None;
            }
            let n: u32 = StorageKind::ALL
                .iter()
                .filter(|k| r.target.covers(**k))
                .map(|k| counts[*k as usize])
                .sum();
            (n == r.nth || (r.and_later && n > r.nth)).then_some(r.style)
        })
    }
}

/// A request's plan, the calls it has started, and the first fault it met.
#[derive(Debug, Default)]
pub struct Faults {
    plan: FaultPlan,
    started: [u32; 4],
    first: Option<StorageFault>,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Faults {
        Faults {
            plan,
            ..Faults::default()
        }
    }

    /// Count a call about to start; the simulated fault it must meet, if the plan says so.
    pub fn start(&mut self, kind: StorageKind) -> Option<StorageFault> {
        self.started[kind as usize] += 1;
        let style = self.plan.fails(kind, &self.started)?;
        Some(StorageFault {
            store: kind.metric(),
            message: style.message(kind),
            simulated: true,
        })
    }

    /// Keep the request's first fault (later ones are usually its consequences).
    pub fn note(&mut self, fault: StorageFault) {
        self.first.get_or_insert(fault);
    }

    pub fn first(&self) -> Option<StorageFault> {
        self.first.clone()
    }

    /// Forget the first fault: it was a busy database that a later try got past.
    pub fn forget(&mut self) {
        self.first = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_bugs_and_answers_are_told_apart() {
        for outage in [
            "D1_ERROR: database is locked: SQLITE_BUSY",
            // What `wrangler dev` gives while another process holds the SQLite file.
            "D1_ERROR: Failed to parse body as JSON, got: Error: internal error; reference = rl1cpk9t",
            "Network connection lost.",
            "D1 DB is overloaded. Requests queued for too long.",
            "D1 DB reset because its code was updated.",
            "Internal error while starting up D1 DB storage caused object to be reset.",
            "js error: JsValue(Error: KV GET failed: 503 Service Unavailable)",
        ] {
            assert_eq!(judge(outage), Verdict::Unavailable, "{outage}");
        }
        for bug in [
            "D1_ERROR: no such column: clients.nope: SQLITE_ERROR",
            "D1_ERROR: near \"SELEC\": syntax error at offset 0: SQLITE_ERROR",
            "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'",
            "D1_ERROR: no such table: nope: SQLITE_ERROR",
            "unable to serialize/deserialize: missing field `id`",
        ] {
            assert_eq!(judge(bug), Verdict::Bug, "{bug}");
        }
        for answer in [
            "D1_ERROR: UNIQUE constraint failed: users.org, users.username: SQLITE_CONSTRAINT",
            "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT",
            "D1_ERROR: NOT NULL constraint failed: client_roles.group_id: SQLITE_CONSTRAINT",
            "D1_ERROR: clavex: groups_claim and roles_claim must differ: SQLITE_CONSTRAINT",
        ] {
            assert_eq!(judge(answer), Verdict::Answer, "{answer}");
        }
    }

    #[test]
    fn simulated_faults_are_judged_as_outages() {
        for style in [Style::Locked, Style::Lost, Style::Overloaded] {
            for kind in StorageKind::ALL {
                assert_eq!(judge(&style.message(kind)), Verdict::Unavailable);
            }
        }
    }

    #[test]
    fn log_messages_are_one_short_line() {
        let long = format!("D1: D1Error {{\n  cause: {}\n}}", "x".repeat(500));
        let line = one_line(&long);
        assert!(!line.contains('\n'));
        assert_eq!(line.chars().count(), 300);
        assert!(line.starts_with("D1: D1Error { cause: x"));
    }

    fn run(plan: &str, calls: &[StorageKind]) -> Vec<bool> {
        let mut faults = Faults::new(FaultPlan::parse(plan).unwrap());
        calls.iter().map(|k| faults.start(*k).is_some()).collect()
    }

    #[test]
    fn the_nth_call_of_a_target_fails() {
        use StorageKind::*;
        let calls = [D1Replica, D1Primary, KvRead, D1Primary, D1Primary];
        assert_eq!(
            run("d1_primary@2", &calls),
            [false, false, false, true, false]
        );
        assert_eq!(
            run("d1_primary@2+", &calls),
            [false, false, false, true, true]
        );
        assert_eq!(run("d1@2", &calls), [false, true, false, false, false]);
        assert_eq!(run("any@1", &calls), [true, false, false, false, false]);
        assert_eq!(run("kv@1+", &calls), [false, false, true, false, false]);
        assert_eq!(
            run("d1_replica@1, kv_read@1", &calls),
            [true, false, true, false, false]
        );
        assert_eq!(run("", &calls), [false; 5]);
    }

    #[test]
    fn the_first_fault_is_kept_with_its_store_and_style() {
        let mut faults = Faults::new(FaultPlan::parse("kv_write@1:lost").unwrap());
        let fault = faults.start(StorageKind::KvWrite).unwrap();
        assert_eq!(fault.store, "kv-write");
        assert!(fault.simulated && fault.message.contains("Network connection lost."));
        faults.note(fault.clone());
        faults.note(StorageFault {
            store: "d1-primary",
            message: "later".into(),
            simulated: false,
        });
        assert_eq!(faults.first(), Some(fault));
    }

    #[test]
    fn bad_plans_are_refused() {
        for bad in [
            "d1_primary",
            "d1_primary@0",
            "d1_primary@x",
            "durable_object@1",
            "kv@1:slow",
            "d1@1001",
        ] {
            assert!(FaultPlan::parse(bad).is_err(), "{bad}");
        }
        assert!(FaultPlan::parse(" ").unwrap().is_empty());
    }
}
