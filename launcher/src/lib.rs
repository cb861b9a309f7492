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

pub mod accounts;
pub mod audit;
pub mod camera;
pub mod config;
pub mod domain;
pub mod feed;
pub mod http;
pub mod library;
pub mod metrics;
pub mod mqtt;
pub mod recorder;
pub mod sink;
pub mod store;
pub mod strangers;
