//! Opaque tokens the server issues and checks: access tokens from the token endpoint, and
//! continuation tokens bound to the query that produced them. Both carry a MAC under a secret
//! of the server process, so a token from another query, another server or a forger is refused.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// Signs and checks tokens.
pub struct Signer {
    secret: [u8; 32],
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a token of this server, or altered.
    Invalid,
    /// Issued for another query.
    WrongQuery,
    /// Past its lifetime.
    Expired,
}

/// What a continuation token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Index of the next record.
    pub offset: usize,
    /// Page size of the sequence.
    pub size: usize,
}

impl Signer {
    /// A signer with a secret unique to this process and start time.
    pub fn new(seed: &[u8]) -> Signer {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(std::process::id().to_le_bytes());
        h.update(now_ms().to_le_bytes());
        Signer { secret: h.finalize().into() }
    }

    fn mac(&self, payload: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(payload.as_bytes());
        crate::emulator::world::dice::hex(&h.finalize()[..12])
    }

    fn scope_hash(scope: &str) -> String {
        crate::emulator::world::dice::hex(&Sha256::digest(scope.as_bytes())[..8])
    }

    /// An access token valid for `lifetime_secs`, of a kind (`app` or `user`).
    pub fn access_token(&self, kind: &str, lifetime_secs: u64) -> String {
        let payload = format!("{}.{kind}.{}", now_ms() + lifetime_secs * 1000, now_ms());
        let body = URL_SAFE_NO_PAD.encode(format!("{payload}.{}", self.mac(&payload)));
        format!("pcemu.{body}")
    }

    /// Checks an access token and returns its kind.
    pub fn check_access(&self, token: &str) -> Result<String, Refused> {
        let body = token.strip_prefix("pcemu.").ok_or(Refused::Invalid)?;
        let text = URL_SAFE_NO_PAD.decode(body).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(Refused::Invalid)?;
        let (payload, mac) = text.rsplit_once('.').ok_or(Refused::Invalid)?;
        if self.mac(payload) != mac {
            return Err(Refused::Invalid);
        }
        let mut parts = payload.split('.');
        let expires: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or(Refused::Invalid)?;
        let kind = parts.next().ok_or(Refused::Invalid)?.to_owned();
        if now_ms() >= expires {
            return Err(Refused::Expired);
        }
        Ok(kind)
    }

    /// The signature of a shared-access token for a blob folder (`root`) expiring at `expiry`.
    pub fn sas(&self, root: &str, expiry: &str) -> String {
        self.mac(&format!("sas|{root}|{expiry}"))
    }

    /// A refresh token (App+User flow).
    pub fn refresh_token(&self) -> String {
        let payload = format!("refresh.{}", now_ms());
        URL_SAFE_NO_PAD.encode(format!("{payload}.{}", self.mac(&payload)))
    }

    /// Whether a refresh token is one of this server's.
    pub fn check_refresh(&self, token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.rsplit_once('.').map(|(p, m)| self.mac(p) == m))
            .unwrap_or(false)
    }

    /// A continuation token for the next page of `scope`. It is standard base64 (with `+`, `/`
    /// and `=`), as real tokens are, so that a client which URL-encodes it breaks visibly.
    pub fn continuation(&self, scope: &str, position: Position) -> String {
        let payload = format!("{},{},{},{}", Self::scope_hash(scope), position.offset, position.size, now_ms());
        STANDARD.encode(format!("{payload},{}", self.mac(&payload)))
    }

    /// Checks a continuation token against the query it is sent with.
    pub fn check_continuation(&self, token: &str, scope: &str, ttl_secs: u64) -> Result<Position, Refused> {
        let text =
            STANDARD.decode(token.trim()).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(Refused::Invalid)?;
        let (payload, mac) = text.rsplit_once(',').ok_or(Refused::Invalid)?;
        if self.mac(payload) != mac {
            return Err(Refused::Invalid);
        }
        let fields: Vec<&str> = payload.split(',').collect();
        let [hash, offset, size, issued] = fields.as_slice() else { return Err(Refused::Invalid) };
        if *hash != Self::scope_hash(scope) {
            return Err(Refused::WrongQuery);
        }
        let issued: u64 = issued.parse().map_err(|_| Refused::Invalid)?;
        if now_ms() >= issued + ttl_secs * 1000 {
            return Err(Refused::Expired);
        }
        Ok(Position {
            offset: offset.parse().map_err(|_| Refused::Invalid)?,
            size: size.parse().map_err(|_| Refused::Invalid)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_round_trip_and_expire() {
        let s = Signer::new(b"t");
        assert_eq!(s.check_access(&s.access_token("app", 60)).unwrap(), "app");
        assert_eq!(s.check_access(&s.access_token("app", 0)), Err(Refused::Expired));
        assert_eq!(s.check_access("pcemu.garbage"), Err(Refused::Invalid));
        assert_eq!(Signer::new(b"other").check_access(&s.access_token("app", 60)), Err(Refused::Invalid));
    }

    #[test]
    fn continuation_tokens_are_bound_to_their_query() {
        let s = Signer::new(b"t");
        let pos = Position { offset: 4000, size: 2000 };
        let token = s.continuation("invoice G1 usage", pos);
        assert_eq!(s.check_continuation(&token, "invoice G1 usage", 60), Ok(pos));
        assert_eq!(s.check_continuation(&token, "invoice G2 usage", 60), Err(Refused::WrongQuery));
        assert_eq!(s.check_continuation(&token, "invoice G1 usage", 0), Err(Refused::Expired));
        assert_eq!(s.check_continuation("AQAAAA==", "invoice G1 usage", 60), Err(Refused::Invalid));
        assert!(s.check_refresh(&s.refresh_token()));
    }
}
