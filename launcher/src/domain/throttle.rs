//! Backoff for failed sign-ins: per client address and per user name, so that neither one
//! client guessing many users' passwords nor many clients guessing one user's gets far.
//!
//! Domain layer: no I/O; std and the sync helpers only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sync::lock;

/// Failures allowed before the first wait; then each failure doubles the wait, up to the cap.
const FREE_FAILURES: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(300);
/// A key's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Keys remembered at most; the stalest are forgotten first.
const MAX_KEYS: usize = 4096;

#[derive(Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    fn blocked_until(&self) -> Option<Instant> {
        let over = self.count.checked_sub(FREE_FAILURES).filter(|o| *o > 0)?;
        let wait = Duration::from_secs(1u64 << over.min(16)).min(MAX_WAIT);
        Some(self.last + wait)
    }
}

impl Throttle {
    /// `Err(seconds)` while any of `keys` must wait before its next attempt.
    pub fn check(&self, keys: &[String]) -> Result<(), u64> {
        self.check_at(keys, Instant::now())
    }

    fn check_at(&self, keys: &[String], now: Instant) -> Result<(), u64> {
        let map = lock(&self.keys);
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k)?.blocked_until())
            .filter(|until| *until > now)
            .map(|until| until.duration_since(now))
            .max();
        match wait {
            Some(wait) => Err(wait.as_secs_f64().ceil().max(1.0) as u64),
            None => Ok(()),
        }
    }

    /// Records a failed attempt against each of `keys`.
    pub fn failed(&self, keys: &[String]) {
        self.failed_at(keys, Instant::now())
    }

    fn failed_at(&self, keys: &[String], now: Instant) {
        let mut map = lock(&self.keys);
        map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        for key in keys {
            let entry = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
            });
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
        while map.len() > MAX_KEYS {
            let Some(stalest) = map
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&stalest);
        }
    }

    /// A success clears the failures of `keys`.
    pub fn succeeded(&self, keys: &[String]) {
        let mut map = lock(&self.keys);
        for key in keys {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_wait_doubles_up_to_the_cap() {
        let throttle = Throttle::default();
        let keys = ["user:admin".to_string()];
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.check_at(&keys, t0), Ok(()));
            throttle.failed_at(&keys, t0);
        }
        assert_eq!(throttle.check_at(&keys, t0), Ok(()));
        throttle.failed_at(&keys, t0);
        assert_eq!(throttle.check_at(&keys, t0), Err(2));
        throttle.failed_at(&keys, t0);
        assert_eq!(throttle.check_at(&keys, t0), Err(4));
        for _ in 0..20 {
            throttle.failed_at(&keys, t0);
        }
        assert_eq!(throttle.check_at(&keys, t0), Err(MAX_WAIT.as_secs()));
        assert_eq!(throttle.check_at(&keys, t0 + MAX_WAIT), Ok(()));
        // Another key is not held back by this one; a success clears it.
        assert_eq!(throttle.check_at(&["ip:10.0.0.1".into()], t0), Ok(()));
        throttle.succeeded(&keys);
        assert_eq!(throttle.check_at(&keys, t0), Ok(()));
    }
}
