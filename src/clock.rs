//! The time pcrecon reads: run ids, the time stamps of pages, locks and reports, the age of
//! snapshots for retention and of an interrupted run for resuming, and the emulator's token,
//! continuation and signature lifetimes. Code asks a [`Clock`] instead of the system, so that a
//! test can fix the time and move it on instead of sleeping.
//!
//! In: nothing (the system clock) or a fixed instant. Out: instants in UTC. It measures no
//! durations of work (those use `Instant`) and schedules nothing (waiting stays with tokio).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Where the time comes from.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that stands at `at` until moved with [`Clock::advance`]; clones share the time.
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock { fixed: Some(Arc::new(Mutex::new(at))) }
    }

    /// Whether the clock stands still until moved.
    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.fixed {
            None => Utc::now(),
            Some(at) => *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Milliseconds since 1970-01-01T00:00:00Z (0 before it).
    pub fn unix_millis(&self) -> u64 {
        u64::try_from(self.now().timestamp_millis()).unwrap_or(0)
    }

    /// Moves a fixed clock on by `by` (a system clock moves by itself: nothing happens).
    pub fn advance(&self, by: std::time::Duration) {
        if let Some(at) = &self.fixed {
            let mut at = at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *at += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_until_moved_and_its_clones_move_with_it() {
        let start = DateTime::parse_from_rfc3339("2026-01-31T23:59:59Z").unwrap().with_timezone(&Utc);
        let clock = Clock::fixed(start);
        let copy = clock.clone();
        assert_eq!(clock.now(), start);
        copy.advance(std::time::Duration::from_secs(2));
        assert_eq!(clock.now().to_rfc3339(), "2026-02-01T00:00:01+00:00");
        assert_eq!(clock.unix_millis(), 1_769_904_001_000);
    }

    #[test]
    fn the_system_clock_moves_by_itself() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(std::time::Duration::from_secs(3600));
        assert!(clock.now() - before < chrono::Duration::seconds(60));
    }
}
