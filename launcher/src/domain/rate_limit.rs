//! Token-bucket rate limiting (for `/register`).
//!
//! Domain layer: no I/O; std and the sync helpers only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sync::lock;

/// Token buckets for `/register`, the only unauthenticated way to start a pipeline when no API
/// token is set: one per client address, so that one noisy host cannot starve the cameras, and
/// one overall, so that many hosts together cannot either.
pub struct RateLimiter {
    per_client: Limit,
    overall: Limit,
    state: Mutex<Buckets>,
}

/// A bucket of `burst` tokens, refilled by one every `refill`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub burst: u32,
    pub refill: Duration,
}

struct Buckets {
    overall: (f64, Instant),
    clients: HashMap<IpAddr, (f64, Instant)>,
}

impl Limit {
    fn tokens(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() / self.refill.as_secs_f64())
            .min(self.burst as f64)
    }

    /// Whole seconds until `tokens` reaches one.
    fn wait(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) * self.refill.as_secs_f64()).ceil().max(1.0) as u64
    }
}

impl RateLimiter {
    /// A rack of ESP32s booting together fits in the overall burst; one camera retrying at boot
    /// in its own.
    pub const REGISTER_PER_CLIENT: Limit = Limit {
        burst: 10,
        refill: Duration::from_secs(5),
    };
    pub const REGISTER_OVERALL: Limit = Limit {
        burst: 20,
        refill: Duration::from_secs(1),
    };
    /// Client addresses remembered before the idle (full) ones are forgotten.
    const MAX_CLIENTS: usize = 1024;

    pub fn new(per_client: Limit, overall: Limit) -> RateLimiter {
        let now = Instant::now();
        RateLimiter {
            per_client,
            overall,
            state: Mutex::new(Buckets {
                overall: (overall.burst as f64, now),
                clients: HashMap::new(),
            }),
        }
    }

    pub fn register() -> RateLimiter {
        RateLimiter::new(Self::REGISTER_PER_CLIENT, Self::REGISTER_OVERALL)
    }

    /// Takes a token from the client's bucket and the overall one, or says how many whole
    /// seconds to wait. A refused request takes nothing, so it does not drain the overall
    /// bucket on behalf of a client that is already limited.
    pub fn take(&self, client: Option<IpAddr>) -> Result<(), u64> {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let full = (self.per_client.burst as f64, now);
        let mine = client.map(|ip| {
            let bucket = state.clients.get(&ip).copied().unwrap_or(full);
            (ip, self.per_client.tokens(bucket, now))
        });
        if let Some((_, tokens)) = mine
            && tokens < 1.0
        {
            return Err(self.per_client.wait(tokens));
        }
        let overall = self.overall.tokens(state.overall, now);
        if overall < 1.0 {
            return Err(self.overall.wait(overall));
        }
        state.overall = (overall - 1.0, now);
        if let Some((ip, tokens)) = mine {
            if state.clients.len() >= Self::MAX_CLIENTS {
                let limit = self.per_client;
                state
                    .clients
                    .retain(|_, b| limit.tokens(*b, now) < limit.burst as f64);
            }
            state.clients.insert(ip, (tokens - 1.0, now));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_limits_each_client_and_everyone_together() {
        let limiter = RateLimiter::register();
        let ip = |n: u8| Some(IpAddr::from([10, 0, 0, n]));
        // One client: its burst of 10, then a wait of one refill (5 s).
        for _ in 0..10 {
            assert_eq!(limiter.take(ip(1)), Ok(()));
        }
        assert_eq!(limiter.take(ip(1)), Err(5));
        assert_eq!(
            limiter.take(ip(1)),
            Err(5),
            "a refused request takes nothing"
        );
        // Others are not held back by it, until the overall burst of 20 is spent.
        for n in 2..12 {
            assert_eq!(limiter.take(ip(n)), Ok(()), "client {n}");
        }
        assert_eq!(limiter.take(ip(12)), Err(1));
        assert_eq!(limiter.take(None), Err(1));
    }

    #[test]
    fn idle_clients_are_forgotten_when_the_table_is_full() {
        let limiter = RateLimiter::new(
            Limit {
                burst: 1,
                refill: Duration::from_millis(1),
            },
            Limit {
                burst: 10_000,
                refill: Duration::from_millis(1),
            },
        );
        for n in 0..RateLimiter::MAX_CLIENTS as u32 + 10 {
            assert_eq!(limiter.take(Some(IpAddr::from(n.to_be_bytes()))), Ok(()));
            if n as usize == RateLimiter::MAX_CLIENTS - 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert!(lock(&limiter.state).clients.len() <= 11);
    }
}
