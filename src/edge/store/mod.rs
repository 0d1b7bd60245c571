//! Storage adapters. D1 (strongly consistent, one primary, read replicas through the Sessions
//! API): organizations, clients, users, signing keys, grants and tokens. KV (eventually
//! consistent, no compare-and-swap): SSO sessions, never relied on for single use. Every call goes
//! through `database::Db` or `kv::Kv`, which meter it (`meter`).

pub mod account;
pub mod assign;
pub mod attributes;
pub mod clients;
pub mod connections;
pub mod d1;
pub mod database;
pub mod events;
pub mod fault;
pub mod grants;
pub mod groups;
pub mod keys;
pub mod kv;
pub mod links;
pub mod meter;
pub mod mfa;
pub mod once;
pub mod orgs;
pub mod passkeys;
#[cfg(test)]
mod sql_tests;
pub mod throttles;
pub mod users;
