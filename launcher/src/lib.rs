//! The launcher's modules, as a library so that its parsers can be fuzzed and tested directly;
//! `main.rs` is the binary over them.
//!
//! The modules form layers; each imports only from the layers below it (checked for circles by
//! `deploy/tests/module-circles.py`):
//! 1. [`domain`]: the vocabulary and rules, no I/O.
//! 2. services: [`sink`] (the event-sink interface), [`feed`], [`store`], [`recorder`],
//!    [`library`], [`strangers`], [`metrics`], [`mqtt`], [`accounts`] (users, API tokens,
//!    sessions), [`audit`].
//! 3. [`camera`]: the pipelines and their [`camera::registry`].
//! 4. [`http`]: the routes, each declared with its access, and one authorisation layer over
//!    them all.
//!
//! [`config`] (flags, environment, config file) is read by `main.rs` only, which hands the
//! other modules plain values.
//!
//! The `server` feature (on by default, and what `main.rs` needs) builds the services, the
//! cameras' pipelines and HTTP. Without it only the parsers are built ([`config`], [`domain`],
//! [`camera::element`], [`camera::settings`]): the fuzz targets (`deploy/fuzz`) depend on the
//! launcher that way, so that their sanitizer build compiles no HTTP, TLS, SQLite or MQTT stack.

#[cfg(feature = "server")]
pub mod accounts;
#[cfg(feature = "server")]
pub mod audit;
pub mod camera;
pub mod config;
pub mod domain;
#[cfg(feature = "server")]
pub mod feed;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod library;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod mqtt;
#[cfg(feature = "server")]
pub mod recorder;
#[cfg(feature = "server")]
pub mod sink;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod strangers;
