//! Worker adapters: everything that touches the Workers runtime (Request/Response, D1, KV,
//! WebCrypto, environment) lives here, kept thin so that the rules stay in `protocol/`.

pub mod audit;
pub mod cleanup;
pub mod config;
pub mod context;
pub mod dev_replica;
pub mod dispatch;
pub mod email;
pub mod failure;
pub mod http;
pub mod password;
pub mod reseal;
pub mod sealed;
pub mod store;
pub mod upstream;
pub mod webcrypto;
