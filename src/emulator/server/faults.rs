//! Opt-in, seeded fault injection: which fault (if any) a request meets, drawn from per-request
//! probabilities given as `429=0.05,500=0.02,reset=0.005,…`.

use std::fmt;

use crate::emulator::world::dice::{Dice, Ppm};

/// A fault the server can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 429 with `Retry-After` (seconds, or sometimes an HTTP date) and the gateway body.
    TooManyRequests,
    /// 500 with a canonical error body.
    InternalError,
    /// 503 with `Retry-After`.
    Unavailable,
    /// The connection is dropped without a response.
    Reset,
    /// The response's body stops halfway and the connection is dropped.
    Truncate,
    /// The response is delayed by `--slow-ms`.
    Slow,
    /// A valid continuation token is refused as expired (400).
    ExpiredContinuation,
    /// A valid access token is refused as expired (401).
    ExpiredToken,
    /// The page's `links.next.uri` is malformed as in the documentation's example.
    MalformedNext,
    /// A v2 export operation takes four more polls to finish.
    SlowOperation,
    /// A v2 operation or manifest has expired (410): a new export is needed.
    ExpiredOperation,
    /// A file download is refused (403 AuthenticationFailed) as if the signature had expired.
    SasExpiry,
    /// A file download fails with 500.
    BlobError,
    /// A file arrives whole by HTTP but its gzip stream stops three fifths of the way.
    TruncatedBlob,
}

impl Fault {
    /// Every fault, in the order draws consider them.
    pub const ALL: [Fault; 14] = [
        Fault::TooManyRequests,
        Fault::InternalError,
        Fault::Unavailable,
        Fault::Reset,
        Fault::Truncate,
        Fault::Slow,
        Fault::ExpiredContinuation,
        Fault::ExpiredToken,
        Fault::MalformedNext,
        Fault::SlowOperation,
        Fault::ExpiredOperation,
        Fault::SasExpiry,
        Fault::BlobError,
        Fault::TruncatedBlob,
    ];

    /// The name used in `--faults` and in the request log.
    pub fn name(self) -> &'static str {
        match self {
            Fault::TooManyRequests => "429",
            Fault::InternalError => "500",
            Fault::Unavailable => "503",
            Fault::Reset => "reset",
            Fault::Truncate => "truncate",
            Fault::Slow => "slow",
            Fault::ExpiredContinuation => "expired_continuation",
            Fault::ExpiredToken => "expired_token",
            Fault::MalformedNext => "malformed_next",
            Fault::SlowOperation => "slow_operation",
            Fault::ExpiredOperation => "expired_operation",
            Fault::SasExpiry => "sas_expiry",
            Fault::BlobError => "blob_error",
            Fault::TruncatedBlob => "truncated_blob",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Probability per eligible request of each fault.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSpec(Vec<(Fault, Ppm)>);

impl FaultSpec {
    /// Parses `name=probability,…`; the probabilities must add up to at most 1.
    pub fn parse(text: &str) -> Result<FaultSpec, String> {
        let mut faults: Vec<(Fault, Ppm)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) =
                part.split_once('=').ok_or_else(|| format!("fault {part:?} is not name=probability"))?;
            let fault = Fault::ALL.into_iter().find(|f| f.name() == name.trim()).ok_or_else(|| {
                let known: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {name:?} (known: {})", known.join(", "))
            })?;
            let p = Ppm::parse(value)?;
            faults.retain(|(f, _)| *f != fault);
            faults.push((fault, p));
        }
        faults.sort_by_key(|(f, _)| *f);
        let total: u64 = faults.iter().map(|(_, p)| u64::from(p.0)).sum();
        if total > u64::from(Ppm::ONE.0) {
            return Err("fault probabilities add up to more than 1".into());
        }
        Ok(FaultSpec(faults))
    }

    /// Whether no fault can happen.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, p)| p.0 == 0)
    }

    /// Draws at most one fault among those `eligible` for this request.
    pub fn draw(&self, dice: &mut Dice, eligible: impl Fn(Fault) -> bool) -> Option<Fault> {
        if self.is_empty() {
            return None;
        }
        let roll = dice.int(0, i64::from(Ppm::ONE.0) - 1);
        let mut upper = 0i64;
        for (fault, p) in self.0.iter().filter(|(f, _)| eligible(*f)) {
            upper += i64::from(p.0);
            if roll < upper {
                return Some(*fault);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_syntax_parses() {
        let spec = FaultSpec::parse("429=0.05,500=0.02,503=0.01,reset=0.005,truncate=0.005,slow=0.01").unwrap();
        assert_eq!(spec.0.len(), 6);
        assert!(FaultSpec::parse("").unwrap().is_empty());
        assert!(FaultSpec::parse("teapot=0.1").is_err());
        assert!(FaultSpec::parse("429=0.7,500=0.7").is_err());
        assert!(FaultSpec::parse("429").is_err());
    }

    #[test]
    fn draws_follow_the_rates_and_respect_eligibility() {
        let spec = FaultSpec::parse("429=0.25,reset=0.25").unwrap();
        let mut dice = Dice::new(1, "faults");
        let draws: Vec<_> = (0..10_000).map(|_| spec.draw(&mut dice, |_| true)).collect();
        let throttled = draws.iter().filter(|d| **d == Some(Fault::TooManyRequests)).count();
        assert!((2200..2800).contains(&throttled), "{throttled}");
        let mut dice = Dice::new(1, "faults");
        assert!((0..1000).all(|_| spec.draw(&mut dice, |f| f != Fault::Reset) != Some(Fault::Reset)));
        let all = FaultSpec::parse("500=1").unwrap();
        assert_eq!(all.draw(&mut dice, |_| true), Some(Fault::InternalError));
    }
}
