//! Verdict: iDenfy KYC webhooks in, a live, queryable and streamable record of every case out.
//!
//! This crate is the binary's library: configuration, the wiring of the adapters into an
//! [`App`], and the command-line interface. The logic lives in the `verdict-*` crates.

pub mod app;
pub mod cli;
pub mod config;

pub use app::App;
pub use config::Config;
