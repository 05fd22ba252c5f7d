//! The Partner Center client: tokens ([`auth`]), the request gate with retries and throttling
//! ([`http`]), and one pager for every paging style ([`paging`]).
//!
//! In: validated API settings. Out: pages of raw JSON with their request metadata. It does not
//! decode items into typed records (that is `normalize`'s job) and decides nothing about scope
//! (that is `extract`'s).

pub mod auth;
pub mod http;
pub mod paging;
pub mod transport;
