//! The launcher's modules, as a library so that its parsers can be fuzzed and tested directly;
//! `main.rs` is the binary over them.

pub mod camera;
pub mod config;
pub mod http;
pub mod library;
pub mod metrics;
pub mod mqtt;
pub mod recorder;
pub mod store;
pub mod strangers;
