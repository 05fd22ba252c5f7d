//! Types of the Partner Center API as the wire spells them, and the exact money primitives
//! every other stage shares.
//!
//! In: nothing (pure types). Out: [`money::Currency`] and rounding rules. What this module does
//! not do: talk HTTP, convert between currencies with a rate table, or decide output columns.

pub mod money;
pub mod schema;
pub mod v2;

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
