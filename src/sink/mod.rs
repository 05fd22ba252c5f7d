//! Output: Parquet and CSV writers following the dataset schemas, the manifest, and atomic
//! publishing.
//!
//! In: typed rows per dataset and scope. Out: a published snapshot folder. It does not fetch or
//! decode API responses.
pub mod lock;
pub mod manifest;
pub mod part;
pub mod read;
pub mod retention;
pub mod snapshot;
pub mod staging;
pub mod writer;
