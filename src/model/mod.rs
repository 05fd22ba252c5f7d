//! Types of the Partner Center API as the wire spells them, and the exact money primitives
//! every other stage shares.
//!
//! In: nothing (pure types). Out: [`money::Currency`] and rounding rules. What this module does
//! not do: talk HTTP, convert between currencies with a rate table, or decide output columns.

pub mod money;
pub mod schema;
