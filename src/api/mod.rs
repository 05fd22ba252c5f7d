//! The Partner Center client: tokens ([`auth`]) and the device-code sign-in that gives the
//! App+User refresh token ([`device`]), the request gate with retries and throttling
//! ([`http`]) and the waits it honours (`retry`), errors that say where ([`error`]), and one pager
//! for every paging style ([`paging`]).
//!
//! In: validated API settings. Out: pages of raw JSON with their request metadata. It does not
//! decode items into typed records (that is `normalize`'s job) and decides nothing about scope
//! (that is `extract`'s).

pub mod auth;
pub mod device;
pub mod error;
pub mod http;
pub mod paging;
pub(crate) mod retry;
pub mod transport;
