//! pcrecon reconciles Microsoft Partner Center (CSP) billing: it extracts invoices, line items and
//! master data, normalises money exactly, and writes typed Parquet and CSV.
//!
//! This crate also carries a faithful local emulator of the Partner Center API
//! ([`emulator`]), which is how the demo, the tests and the benchmarks run.

pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod emulator;
pub mod error;
pub mod extract;
pub mod failpoint;
pub mod focus;
pub mod matching;
pub mod model;
pub mod normalize;
pub mod onboard;
pub mod pipeline;
pub mod progress;
pub mod rebill;
pub mod reconcile;
pub mod redact;
pub mod report;
pub mod sink;
pub mod tabular;
