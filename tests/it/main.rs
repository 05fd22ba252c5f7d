//! End-to-end tests: the real `pcrecon` binary over loopback.

// A failing unwrap in a test or its helpers is a failing test, with the panic as its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial;
mod analyst;
mod audit;
mod crash;
mod delta;
mod documents;
mod duckdb;
mod errors;
mod extract;
mod faults;
mod focus;
mod fxrates;
mod generate;
mod helpers;
mod matching;
mod mfa;
mod microsoft;
mod onboard;
mod operate;
mod proxy;
mod quirks;
mod rebill;
mod replay;
mod report;
mod run;
mod store;
mod v2;
mod walk;
