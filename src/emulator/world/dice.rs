//! Seeded randomness for the world generator. Every draw goes through [`Dice`] so that the same
//! seed gives the same world, byte for byte, on every machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

/// A probability as parts per million, parsed from a decimal string (`"0.005"` → 5000), so that
/// no binary float is ever involved in deciding what the world contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ppm(pub u32);

impl Ppm {
    /// Certainty.
    pub const ONE: Ppm = Ppm(1_000_000);

    /// Parses a probability written as a decimal between 0 and 1.
    pub fn parse(text: &str) -> Result<Ppm, String> {
        let value: Decimal = text.trim().parse().map_err(|_| format!("{text:?} is not a decimal probability"))?;
        if value < Decimal::ZERO || value > Decimal::ONE {
            return Err(format!("probability {text} is not between 0 and 1"));
        }
        let ppm = (value * Decimal::from(1_000_000)).trunc();
        u32::try_from(ppm.mantissa() / 10i128.pow(ppm.scale()))
            .map(Ppm)
            .map_err(|_| format!("probability {text} is out of range"))
    }
}

/// A seeded random source with the few draws the generator needs.
pub struct Dice(ChaCha8Rng);

impl Dice {
    /// A generator for one named stream of the world: the same (seed, stream) always draws the
    /// same sequence, whatever other streams do.
    pub fn new(seed: u64, stream: &str) -> Dice {
        let mut key = seed ^ 0x9E37_79B9_7F4A_7C15;
        for b in stream.bytes() {
            key = (key ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
        Dice(ChaCha8Rng::seed_from_u64(key))
    }

    /// A whole number in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..=hi)
    }

    /// An index into a collection of `len` items (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.0.random_range(0..len)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// True with the given probability.
    pub fn chance(&mut self, p: Ppm) -> bool {
        p.0 > 0 && self.0.random_range(0..1_000_000u32) < p.0
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.chance(Ppm(percent * 10_000))
    }

    /// A decimal in `[lo, hi]` with exactly `scale` fractional digits.
    pub fn decimal(&mut self, lo: Decimal, hi: Decimal, scale: u32) -> Decimal {
        let unit = Decimal::new(1, scale);
        let steps = ((hi - lo) / unit).trunc();
        let steps = i64::try_from(steps.mantissa() / 10i128.pow(steps.scale())).unwrap_or(0);
        let mut value = lo + Decimal::from(self.int(0, steps)) * unit;
        value.rescale(scale);
        value
    }

    /// 16 random bytes.
    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.0.fill(&mut b);
        b
    }

    /// A random (version 4 shaped) GUID in lower case.
    pub fn guid(&mut self) -> String {
        let mut b = self.bytes16();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex(&b);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    /// `len` characters from `alphabet`.
    pub fn token(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| char::from(*self.pick(alphabet))).collect()
    }
}

pub use crate::model::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_parse_exactly_without_floats() {
        assert_eq!(Ppm::parse("0.005").unwrap(), Ppm(5000));
        assert_eq!(Ppm::parse("1").unwrap(), Ppm::ONE);
        assert_eq!(Ppm::parse("0").unwrap(), Ppm(0));
        assert!(Ppm::parse("1.5").is_err());
        assert!(Ppm::parse("-0.1").is_err());
        assert!(Ppm::parse("abc").is_err());
    }

    #[test]
    fn same_seed_and_stream_draw_the_same_sequence() {
        let draw = |seed, stream| {
            let mut d = Dice::new(seed, stream);
            (d.guid(), d.int(0, 1000), d.decimal(Decimal::ZERO, Decimal::TEN, 4))
        };
        assert_eq!(draw(7, "a"), draw(7, "a"));
        assert_ne!(draw(7, "a"), draw(7, "b"));
        assert_ne!(draw(7, "a"), draw(8, "a"));
    }

    #[test]
    fn decimals_stay_in_range_at_their_scale() {
        let mut d = Dice::new(1, "x");
        for _ in 0..1000 {
            let v = d.decimal(Decimal::new(5, 1), Decimal::new(25, 1), 3);
            assert!(v >= Decimal::new(5, 1) && v <= Decimal::new(25, 1));
            assert_eq!(v.scale(), 3);
        }
    }

    #[test]
    fn guids_have_the_canonical_shape() {
        let g = Dice::new(3, "g").guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
        assert_eq!(g, g.to_lowercase());
    }
}
