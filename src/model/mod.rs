//! Types of the Partner Center API as the wire spells them, and the exact money primitives
//! every other stage shares.
//!
//! In: nothing (pure types). Out: [`money::Currency`] and rounding rules. What this module does
//! not do: talk HTTP, convert between currencies with a rate table, or decide output columns.

pub mod document;
pub mod money;
pub mod page;
pub mod v2;

/// Every file of `schemas/` (`pcrecon schemas --out schemas`): the datasets and the v1 ↔ v2
/// attribute mapping.
pub fn schema_files() -> Vec<(String, String)> {
    let mut files = crate::tabular::dataset_files();
    files.push(("v2-mapping.md".into(), v2::mapping_doc()));
    files
}

/// Lower-case hexadecimal of some bytes (digests, ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}
