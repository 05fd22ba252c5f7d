//! How long to wait before trying a request again: what a `Retry-After` header asks for, and the
//! exponential backoff with jitter that transient failures wait out.
//!
//! In: response headers, or the backoff bounds and the number of the retry. Out: a [`Duration`].
//! It neither sleeps nor counts retries against their limits (the gate in `http` does both).

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Seconds or an HTTP date, as `Retry-After` may say; a date is read against `now`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait before retry number `retry` (from 0): `base` doubled each retry up to `max`, then cut
/// to a random 50–100 % of that so that clients that failed together do not retry together.
pub(super) fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.min(16)).min(max);
    let permille = rand::rng().random_range(500..=1000u32);
    exp * permille / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(now + Duration::from_secs(5)).parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(5)));
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(now - Duration::from_secs(5)).parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO), "a date gone by: no wait");
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }
}
