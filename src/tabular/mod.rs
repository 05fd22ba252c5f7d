//! The table vocabulary: which datasets there are ([`Dataset`]), what their columns are and
//! where each value comes from ([`DatasetSchema`], [`Column`], [`Cell`]), the canonical text of
//! a value (`text`), the same tables in Arrow (`batch`), and the generated dataset files of `schemas/` (`docs`).
//!
//! In: nothing: it is the bottom of the crate (`model`'s pages name their dataset by it). Out:
//! the types every stage names a table, a column or a cell by. It fetches, decodes and writes
//! nothing.

pub mod batch;
mod catalog;
pub mod column;
pub mod dataset;
mod docs;
pub mod text;

pub use catalog::registry;
pub use column::*;
pub use dataset::{Dataset, Kind, ScopeKind};
pub use docs::dataset_files;
