//! Server-side web sessions for Rust services.
//!
//! Per-visitor state lives behind a signed cookie, in two tiers: a cache
//! (Redis or in-process) in front of a database (SQLite embedded by default,
//! PostgreSQL at scale). The semantics follow the Python library
//! gae-sessions — lazy loading, one write per request and only on change,
//! cache-only "quick" writes, id rotation, cookie-only small sessions — and
//! fix what it and today's Rust crates get wrong: constant-time signatures,
//! key rotation, no lost updates, no resurrected sessions, a purge that
//! scales, revocation by user.
//!
//! ```
//! use std::sync::Arc;
//! use sessionctl::{Keys, Session, SessionConfig, Store, CookieUpdate};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sessionctl::Result<()> {
//! let store = Store::connect("sqlite::memory:").await?;
//! let keys = Keys::new([b"an example key of at least 32 bytes!!".as_slice()])?;
//! let config = Arc::new(SessionConfig::new(keys).with_cookie_only_threshold(0));
//!
//! // First request: no cookie. The first write starts the session.
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("visits", 1).await?;
//! let CookieUpdate::Set { value: cookie, .. } = session.save().await?.cookie else { unreachable!() };
//!
//! // Next request: the cookie brings the session back.
//! let session = Session::new(store, config, Some(&cookie));
//! assert_eq!(session.get::<i64>("visits").await?, Some(1));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]

pub mod admin;
pub mod codec;
pub mod config;
pub mod error;
pub mod id;
pub mod purge;
pub mod record;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "axum")]
pub mod web;

/// Re-exported for tiers of your own: the tier traits are `async_trait`s,
/// and their signatures use chrono's `DateTime<Utc>`.
#[doc(no_inline)]
pub use async_trait::async_trait;
#[doc(no_inline)]
pub use chrono;
pub use codec::{CookieCodec, CookiePayload, Keys};
pub use config::{CookieConfig, DeviceTracking, ExpiryPolicy, SameSite, SessionConfig};
pub use error::{CookieError, Error, Result};
pub use id::{SessionId, SessionKey};
pub use record::{Data, Record};
pub use session::{CookieUpdate, SaveOutcome, SaveStatus, Session};
pub use store::{
    AppCache, CacheTier, DatabaseAccounts, DatabaseCore, DatabaseMaintenance, DatabasePurge, DatabaseTier, Device,
    Filter, Lookup, MemoryCacheConfig, OpenAs, Patch, PatchOutcome, PurgeBatch, SchemaStatus, SessionSummary,
    StateFilter, Store, StoreConfig, StoreOptions, Tombstone,
};
