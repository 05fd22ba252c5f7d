//! Opaque tokens the server issues and checks: access tokens from the token endpoint, and
//! continuation tokens bound to the query that produced them. Both carry a MAC under a secret
//! of the server process, so a token from another query, another server or a forger is refused.
//!
//! An App+User token remembers whether the sign-in behind it passed multi-factor authentication
//! (the `amr` claim `mfa` of a real token): a refresh token carries that of the sign-in that
//! issued it, and every token redeemed from it inherits it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::Clock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// Signs and checks tokens, and judges their lifetimes by the server's clock.
pub struct Signer {
    secret: [u8; 32],
    clock: Clock,
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

/// Whom an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// The application alone (client credentials), for Partner Center.
    App,
    /// The application alone, for Microsoft Graph (the v2 export).
    Graph,
    /// The application on behalf of a user, for the Partner Center pricing API
    /// (`api.partner.microsoft.com`: the foreign exchange rates), with or without an MFA claim.
    Pricing {
        /// Whether the user's sign-in passed multi-factor authentication.
        mfa: bool,
    },
    /// The application on behalf of a user (App+User), with or without an MFA claim.
    User {
        /// Whether the user's sign-in passed multi-factor authentication.
        mfa: bool,
    },
}

impl Bearer {
    fn code(self) -> &'static str {
        match self {
            Bearer::App => "app",
            Bearer::Graph => "graph",
            Bearer::User { mfa: false } => "user",
            Bearer::User { mfa: true } => "user+mfa",
            Bearer::Pricing { mfa: false } => "pricing",
            Bearer::Pricing { mfa: true } => "pricing+mfa",
        }
    }

    fn from_code(code: &str) -> Option<Bearer> {
        match code {
            "app" => Some(Bearer::App),
            "graph" => Some(Bearer::Graph),
            "user" => Some(Bearer::User { mfa: false }),
            "user+mfa" => Some(Bearer::User { mfa: true }),
            "pricing" => Some(Bearer::Pricing { mfa: false }),
            "pricing+mfa" => Some(Bearer::Pricing { mfa: true }),
            _ => None,
        }
    }
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
    /// A signer with a secret unique to this process and start time (the system's time: it is
    /// entropy, not a lifetime), whose tokens live by `clock`.
    pub fn new(seed: &[u8], clock: Clock) -> Signer {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(std::process::id().to_le_bytes());
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        h.update(started.to_le_bytes());
        Signer { secret: h.finalize().into(), clock }
    }

    /// Milliseconds since the Unix epoch, by the server's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.unix_millis()
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

    /// An access token valid for `lifetime_secs`, for a bearer.
    pub fn access_token(&self, bearer: Bearer, lifetime_secs: u64) -> String {
        let payload = format!("{}.{}.{}", self.now_ms() + lifetime_secs * 1000, bearer.code(), self.now_ms());
        let body = URL_SAFE_NO_PAD.encode(format!("{payload}.{}", self.mac(&payload)));
        format!("pcemu.{body}")
    }

    /// Checks an access token and returns its bearer.
    pub fn check_access(&self, token: &str) -> Result<Bearer, Refused> {
        let body = token.strip_prefix("pcemu.").ok_or(Refused::Invalid)?;
        let text = URL_SAFE_NO_PAD.decode(body).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(Refused::Invalid)?;
        let (payload, mac) = text.rsplit_once('.').ok_or(Refused::Invalid)?;
        if self.mac(payload) != mac {
            return Err(Refused::Invalid);
        }
        let mut parts = payload.split('.');
        let expires: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or(Refused::Invalid)?;
        let bearer = parts.next().and_then(Bearer::from_code).ok_or(Refused::Invalid)?;
        if self.now_ms() >= expires {
            return Err(Refused::Expired);
        }
        Ok(bearer)
    }

    /// The signature of a shared-access token for a blob folder (`root`) expiring at `expiry`.
    pub fn sas(&self, root: &str, expiry: &str) -> String {
        self.mac(&format!("sas|{root}|{expiry}"))
    }

    /// A refresh token (App+User flow) of a sign-in that did or did not pass MFA.
    pub fn refresh_token(&self, mfa: bool) -> String {
        let payload = format!("refresh.{}.{}", if mfa { "mfa" } else { "pwd" }, self.now_ms());
        URL_SAFE_NO_PAD.encode(format!("{payload}.{}", self.mac(&payload)))
    }

    /// A refresh token issued to a public client (the device-code flow): Entra refuses to redeem
    /// it with a client secret.
    pub fn public_refresh_token(&self, mfa: bool) -> String {
        let payload = format!("refresh.{}.public.{}", if mfa { "mfa" } else { "pwd" }, self.now_ms());
        URL_SAFE_NO_PAD.encode(format!("{payload}.{}", self.mac(&payload)))
    }

    /// Whether a refresh token is one of this server's: whether its sign-in passed MFA, and
    /// whether it was issued to a public client.
    pub fn check_any_refresh(&self, token: &str) -> Option<(bool, bool)> {
        let text = URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok())?;
        let (payload, mac) = text.rsplit_once('.')?;
        if self.mac(payload) != mac {
            return None;
        }
        let public = payload.split('.').nth(2) == Some("public");
        match payload.split('.').nth(1) {
            Some("mfa") => Some((true, public)),
            Some("pwd") => Some((false, public)),
            _ => None,
        }
    }

    /// A continuation token for the next page of `scope`. It is standard base64 (with `+`, `/`
    /// and `=`), as real tokens are, so that a client which URL-encodes it breaks visibly.
    pub fn continuation(&self, scope: &str, position: Position) -> String {
        let payload = format!("{},{},{},{}", Self::scope_hash(scope), position.offset, position.size, self.now_ms());
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
        if self.now_ms() >= issued + ttl_secs * 1000 {
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
        let s = Signer::new(b"t", Clock::system());
        assert_eq!(s.check_access(&s.access_token(Bearer::App, 60)), Ok(Bearer::App));
        assert_eq!(s.check_access(&s.access_token(Bearer::App, 0)), Err(Refused::Expired));
        assert_eq!(s.check_access("pcemu.garbage"), Err(Refused::Invalid));
        assert_eq!(
            Signer::new(b"other", Clock::system()).check_access(&s.access_token(Bearer::App, 60)),
            Err(Refused::Invalid)
        );
        let mfa = Bearer::User { mfa: true };
        assert_eq!(s.check_access(&s.access_token(mfa, 60)), Ok(mfa));
    }

    #[test]
    fn refresh_tokens_remember_whether_their_sign_in_passed_mfa() {
        let s = Signer::new(b"t", Clock::system());
        assert_eq!(s.check_any_refresh(&s.refresh_token(true)), Some((true, false)));
        assert_eq!(s.check_any_refresh(&s.refresh_token(false)), Some((false, false)));
        assert_eq!(Signer::new(b"other", Clock::system()).check_any_refresh(&s.refresh_token(true)), None);
        assert_eq!(s.check_any_refresh("bm90IGEgdG9rZW4"), None);
        assert_eq!(s.check_any_refresh(&s.public_refresh_token(true)), Some((true, true)));
        assert_eq!(s.check_any_refresh(&s.refresh_token(false)), Some((false, false)));
    }

    #[test]
    fn continuation_tokens_are_bound_to_their_query() {
        let s = Signer::new(b"t", Clock::system());
        let pos = Position { offset: 4000, size: 2000 };
        let token = s.continuation("invoice G1 usage", pos);
        assert_eq!(s.check_continuation(&token, "invoice G1 usage", 60), Ok(pos));
        assert_eq!(s.check_continuation(&token, "invoice G2 usage", 60), Err(Refused::WrongQuery));
        assert_eq!(s.check_continuation(&token, "invoice G1 usage", 0), Err(Refused::Expired));
        assert_eq!(s.check_continuation("AQAAAA==", "invoice G1 usage", 60), Err(Refused::Invalid));
    }

    #[test]
    fn tokens_live_by_the_servers_clock() {
        let clock = Clock::fixed(chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000));
        let s = Signer::new(b"t", clock.clone());
        let access = s.access_token(Bearer::App, 60);
        let pos = Position { offset: 10, size: 10 };
        let continuation = s.continuation("q", pos);
        clock.advance(std::time::Duration::from_secs(59));
        assert_eq!(s.check_access(&access), Ok(Bearer::App), "a second before its end");
        assert_eq!(s.check_continuation(&continuation, "q", 60), Ok(pos));
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(s.check_access(&access), Err(Refused::Expired), "at its end");
        assert_eq!(s.check_continuation(&continuation, "q", 60), Err(Refused::Expired));
    }
}
