//! Every storage call of a request, counted by kind — and, in development, delayed by kind to
//! simulate geography. Issue #8's budgets are round trips to the one D1 primary per request; the
//! counts make them visible (`Server-Timing`, when `STORAGE_TIMING` is on) so tests assert counts,
//! not timings. The delays (`SIMULATED_STORAGE_LATENCY`) are timers: wall time, not CPU, as on
//! the platform, where waiting on storage is not billed.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use crate::edge::store::fault::{self, FaultPlan, Faults, StorageFault};

/// Where a storage call goes. D1 writes always go to the primary; reads go to the primary unless
/// made through a Sessions API session (`first-unconstrained`), which may serve them at the
/// nearest replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    D1Primary,
    D1Replica,
    KvRead,
    KvWrite,
}

impl StorageKind {
    pub const ALL: [StorageKind; 4] = [
        StorageKind::D1Primary,
        StorageKind::D1Replica,
        StorageKind::KvRead,
        StorageKind::KvWrite,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The metric name in `Server-Timing`.
    pub fn metric(self) -> &'static str {
        match self {
            StorageKind::D1Primary => "d1-primary",
            StorageKind::D1Replica => "d1-replica",
            StorageKind::KvRead => "kv-read",
            StorageKind::KvWrite => "kv-write",
        }
    }
}

/// Milliseconds added before each call of a kind (development only).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub ms: [u32; 4],
}

impl Latency {
    /// `d1_primary=150,d1_replica=10,kv=5` (`kv` sets both KV kinds; `kv_read` / `kv_write`
    /// override it). Empty means no delay.
    pub fn parse(text: &str) -> Result<Latency, String> {
        let mut latency = Latency::default();
        let mut kv_read = None;
        let mut kv_write = None;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not name=milliseconds"))?;
            let ms: u32 = value
                .trim()
                .parse()
                .ok()
                .filter(|ms| *ms <= 10_000)
                .ok_or_else(|| format!("`{part}`: milliseconds must be 0–10000"))?;
            match name.trim() {
                "d1_primary" => latency.ms[StorageKind::D1Primary.index()] = ms,
                "d1_replica" => latency.ms[StorageKind::D1Replica.index()] = ms,
                "kv" => {
                    kv_read.get_or_insert(ms);
                    kv_write.get_or_insert(ms);
                }
                "kv_read" => kv_read = Some(ms),
                "kv_write" => kv_write = Some(ms),
                other => return Err(format!("unknown storage kind `{other}`")),
            }
        }
        latency.ms[StorageKind::KvRead.index()] = kv_read.unwrap_or(0);
        latency.ms[StorageKind::KvWrite.index()] = kv_write.unwrap_or(0);
        Ok(latency)
    }

    pub fn of(&self, kind: StorageKind) -> u32 {
        self.ms[kind.index()]
    }
}

/// What one request has done so far: calls and milliseconds per kind.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub count: [u32; 4],
    pub ms: [f64; 4],
}

impl Tally {
    pub fn record(&mut self, kind: StorageKind, ms: f64) {
        self.count[kind.index()] += 1;
        self.ms[kind.index()] += ms;
    }

    pub fn count(&self, kind: StorageKind) -> u32 {
        self.count[kind.index()]
    }

    /// `d1-primary;count=1;dur=12.3, d1-replica;count=0;dur=0, …` — every kind, always, so a
    /// missing metric never reads as zero by accident. (W3C Server Timing: a metric name with
    /// `dur` and extension parameters.)
    pub fn server_timing(&self) -> String {
        StorageKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "{};count={};dur={:.1}",
                    k.metric(),
                    self.count[k.index()],
                    self.ms[k.index()]
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The per-request meter, shared by every storage handle the request uses.
#[derive(Clone, Default)]
pub struct Meter {
    tally: Rc<RefCell<Tally>>,
    latency: Latency,
    /// Storage faults met by this request (and, in development, those it asked for).
    faults: Rc<RefCell<Faults>>,
}

impl Meter {
    pub fn new(latency: Latency) -> Meter {
        Meter {
            tally: Rc::default(),
            latency,
            faults: Rc::default(),
        }
    }

    /// Development only: make the calls `plan` names fail (store/fault.rs).
    pub fn with_faults(self, plan: FaultPlan) -> Meter {
        *self.faults.borrow_mut() = Faults::new(plan);
        self
    }

    pub fn tally(&self) -> Tally {
        self.tally.borrow().clone()
    }

    /// The first storage outage this request met, if any (a constraint violation or a bug is
    /// not one).
    pub fn fault(&self) -> Option<StorageFault> {
        self.faults.borrow().first()
    }

    /// Forget the fault noted so far (a busy database that a later try got past, so the request
    /// met no outage after all).
    pub fn forget_fault(&self) {
        self.faults.borrow_mut().forget();
    }

    /// Run one fallible storage call through `measure`, and judge its failure: an outage is
    /// remembered for the dispatcher's answer (503). A call the fault plan names is not made.
    pub async fn call<T, E>(
        &self,
        kind: StorageKind,
        call: impl Future<Output = std::result::Result<T, E>>,
    ) -> worker::Result<T>
    where
        E: Into<worker::Error>,
    {
        let simulated = self.faults.borrow_mut().start(kind);
        if let Some(fault) = simulated {
            let err = worker::Error::RustError(fault.message.clone());
            self.tally.borrow_mut().record(kind, 0.0);
            self.faults.borrow_mut().note(fault);
            return Err(err);
        }
        let out = self.measure(kind, call).await.map_err(Into::into);
        if let Err(e) = &out {
            let message = error_message(e);
            if fault::judge(&message) == fault::Verdict::Unavailable && !is_bug(e) {
                self.faults.borrow_mut().note(StorageFault {
                    store: kind.metric(),
                    message: fault::one_line(&message),
                    simulated: false,
                });
            }
        }
        out
    }

    /// Run one storage call: wait the simulated latency (if any), then the call, and count it.
    pub async fn measure<T>(&self, kind: StorageKind, call: impl Future<Output = T>) -> T {
        let started = js_sys::Date::now();
        let delay = self.latency.of(kind);
        if delay > 0 {
            worker::Delay::from(std::time::Duration::from_millis(delay.into())).await;
        }
        let out = call.await;
        self.tally
            .borrow_mut()
            .record(kind, js_sys::Date::now() - started);
        out
    }
}

/// A storage error's own words: D1's message and cause (its `Display` is a multi-line debug
/// dump with a stack), else the error's text.
pub(crate) fn error_message(e: &worker::Error) -> String {
    match e {
        worker::Error::D1(d1) => {
            let inner: &js_sys::Error = d1.as_ref();
            let message: String = inner.message().into();
            format!("{message}: {}", d1.cause())
        }
        other => other.to_string(),
    }
}

/// Errors no storage outage can cause: rows that do not decode into the type asked for.
fn is_bug(e: &worker::Error) -> bool {
    matches!(
        e,
        worker::Error::SerdeJsonError(_)
            | worker::Error::SerdeWasmBindgenError(_)
            | worker::Error::KvError(worker::kv::KvError::Serialization(_))
            | worker::Error::KvError(worker::kv::KvError::InvalidKvStore(_))
            | worker::Error::BindingError(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_profiles_parse_by_kind() {
        let l = Latency::parse("d1_primary=150, d1_replica=10,kv=5").unwrap();
        assert_eq!(l.ms, [150, 10, 5, 5]);
        let l = Latency::parse("kv=5,kv_write=40").unwrap();
        assert_eq!(l.ms, [0, 0, 5, 40]);
        assert_eq!(Latency::parse("").unwrap(), Latency::default());
    }

    #[test]
    fn bad_latency_profiles_are_refused() {
        assert!(Latency::parse("d1_primary").is_err());
        assert!(Latency::parse("d1_primary=-1").is_err());
        assert!(Latency::parse("d1_primary=99999").is_err());
        assert!(Latency::parse("durable_object=5").is_err());
    }

    #[test]
    fn server_timing_lists_every_kind() {
        let mut t = Tally::default();
        t.record(StorageKind::D1Primary, 12.34);
        t.record(StorageKind::KvRead, 1.0);
        t.record(StorageKind::KvRead, 0.5);
        assert_eq!(
            t.server_timing(),
            "d1-primary;count=1;dur=12.3, d1-replica;count=0;dur=0.0, kv-read;count=2;dur=1.5, kv-write;count=0;dur=0.0"
        );
    }
}
