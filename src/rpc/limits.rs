//! Per-client request rate limiting: a token bucket per source address, with a bounded
//! number of tracked addresses so that many clients cannot make it grow without limit.
//!
//! The bucket is kept as one instant per client (the "theoretical arrival time" of the
//! generic cell rate algorithm), which behaves exactly like a token bucket of `burst`
//! tokens refilled at `per_second`, without floating point. The limiter owns no clock: the
//! caller passes `now`, which keeps it testable in virtual time.
//!
//! What does not live here: deciding what a request costs or which requests are limited
//! (the request handlers), and telling the client (the protocol's error reply).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Default number of client addresses tracked at once (about 100 KiB of state).
pub const DEFAULT_MAX_KEYS: usize = 4096;

/// A request was refused; the client may try again after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many requests from this address; retry in {} ms", .0.as_millis())]
pub struct RetryAfter(pub Duration);

/// Token buckets keyed by client address.
///
/// Each address may make `burst` requests at once and `per_second` requests per second
/// sustained. IPv6 addresses are grouped by /64 (one host usually owns a whole /64, so
/// counting single addresses would let it have as many buckets as it likes), and
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
///
/// At most `max_keys` addresses are tracked. When a new one arrives and the table is full,
/// buckets that have refilled completely are forgotten first (forgetting them changes
/// nothing); if none has, the least recently seen address is forgotten, and its next
/// request starts with a full bucket.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time one token takes to refill: 1 s / `per_second`.
    interval: Duration,
    /// How far ahead of `now` a bucket's arrival time may run: `interval × burst`.
    tolerance: Duration,
    max_keys: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// When the bucket will be full again; at or before `now` means full.
    full_at: Instant,
    /// The last request seen, for least-recently-seen eviction.
    last_seen: Instant,
}

impl RateLimiter {
    /// A limiter allowing `burst` requests at once and `per_second` per second sustained
    /// for each client, tracking at most [`DEFAULT_MAX_KEYS`] clients.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> RateLimiter {
        RateLimiter::with_max_keys(per_second, burst, DEFAULT_MAX_KEYS)
    }

    /// Like [`RateLimiter::new`], tracking at most `max_keys` clients (at least 1).
    pub fn with_max_keys(
        per_second: NonZeroU32,
        burst: NonZeroU32,
        max_keys: usize,
    ) -> RateLimiter {
        let interval = Duration::from_secs(1) / per_second.get();
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(burst.get()),
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is available.
    ///
    /// `now` should not go backwards; if it does, nothing panics, the request is just
    /// judged against the later time already recorded.
    pub fn check(&mut self, key: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        self.reserve(key, now, Duration::ZERO).map(|_| ())
    }

    /// Takes one token from `key`'s bucket now, or reserves the next free one if it comes
    /// within `max_wait`: returns how long the caller must wait before going ahead (zero
    /// when a token was free). This paces a client that asks one request after another to
    /// the sustained rate instead of refusing it, while the reservations a client may hold
    /// stay bounded (`max_wait × per_second` of them): a client that sends many requests
    /// at once is refused past its burst and that queue. When refused, nothing is
    /// reserved, and [`RetryAfter`] says when a request would be taken again.
    pub fn reserve(
        &mut self,
        key: IpAddr,
        now: Instant,
        max_wait: Duration,
    ) -> Result<Duration, RetryAfter> {
        let key = normalize(key);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_keys {
            self.make_room(now);
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            full_at: now,
            last_seen: now,
        });
        bucket.last_seen = bucket.last_seen.max(now);
        // Taking a token pushes the "full again" time one interval further.
        let start = bucket.full_at.max(now);
        let Some(full_at) = start.checked_add(self.interval) else {
            return Err(RetryAfter(self.tolerance));
        };
        let wait = full_at
            .saturating_duration_since(now)
            .saturating_sub(self.tolerance);
        if wait > max_wait {
            return Err(RetryAfter(wait - max_wait));
        }
        bucket.full_at = full_at;
        Ok(wait)
    }

    /// How many client addresses are tracked right now.
    pub fn tracked_keys(&self) -> usize {
        self.buckets.len()
    }

    /// Frees at least one slot: drops every full bucket, or else the least recently seen.
    fn make_room(&mut self, now: Instant) {
        let before = self.buckets.len();
        self.buckets.retain(|_, bucket| bucket.full_at > now);
        if self.buckets.len() < before {
            return;
        }
        let stalest = self
            .buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.last_seen)
            .map(|(key, _)| *key);
        if let Some(key) = stalest {
            self.buckets.remove(&key);
        }
    }
}

/// The address a client is counted under: IPv4 as is, IPv4-mapped IPv6 as IPv4, other
/// IPv6 cut to its /64.
fn normalize(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_a_token_refills() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(nz(10), nz(3));
        for _ in 0..3 {
            assert_eq!(limiter.check(v4(1), t0), Ok(()));
        }
        // 10 per second: the next token arrives after 100 ms.
        assert_eq!(
            limiter.check(v4(1), t0),
            Err(RetryAfter(Duration::from_millis(100)))
        );
        assert_eq!(
            limiter.check(v4(1), t0 + Duration::from_millis(60)),
            Err(RetryAfter(Duration::from_millis(40)))
        );
        assert_eq!(
            limiter.check(v4(1), t0 + Duration::from_millis(100)),
            Ok(())
        );
        assert!(
            limiter
                .check(v4(1), t0 + Duration::from_millis(100))
                .is_err()
        );
    }

    #[test]
    fn the_sustained_rate_is_per_second() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(nz(5), nz(1));
        // Over 10 virtual seconds, asking every 10 ms, exactly 5 per second get through
        // (plus the first, at t=0).
        let allowed = (0..=1000u64)
            .filter(|i| {
                limiter
                    .check(v4(1), t0 + Duration::from_millis(i * 10))
                    .is_ok()
            })
            .count();
        assert_eq!(allowed, 51);
    }

    #[test]
    fn clients_have_separate_buckets() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(nz(1), nz(1));
        assert!(limiter.check(v4(1), t0).is_ok());
        assert!(limiter.check(v4(1), t0).is_err());
        assert!(limiter.check(v4(2), t0).is_ok());
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(nz(1), nz(1));
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("addr");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("addr");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("addr");
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(same_64, t0).is_err());
        assert!(limiter.check(other_64, t0).is_ok());

        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("addr");
        assert!(limiter.check(v4(1), t0).is_ok());
        assert!(limiter.check(mapped, t0).is_err());
    }

    #[test]
    fn tracked_keys_stay_bounded_and_full_buckets_go_first() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_max_keys(nz(1), nz(2), 3);
        // Client 1 drains its bucket; clients 2 and 3 take one token each at t0.
        assert!(limiter.check(v4(1), t0).is_ok());
        assert!(limiter.check(v4(1), t0).is_ok());
        let t1 = t0 + Duration::from_millis(1500);
        assert!(limiter.check(v4(2), t1).is_ok());
        assert!(limiter.check(v4(3), t1).is_ok());
        // At t1 client 1 (full again at t0+2s) is still draining; 2 and 3 are not full.
        // A fourth client forces out the least recently seen: client 1.
        assert!(limiter.check(v4(4), t1).is_ok());
        assert_eq!(limiter.tracked_keys(), 3);

        // At t2 = t1+1s clients 2, 3 (full at t1+1s) are full, 4 too: all forgettable.
        let t2 = t1 + Duration::from_secs(1);
        for last in 5..50 {
            assert!(limiter.check(v4(last), t2).is_ok());
            assert!(limiter.tracked_keys() <= 3);
        }
    }

    #[test]
    fn a_draining_client_is_kept_over_a_full_one_even_if_seen_less_recently() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_max_keys(nz(1), nz(3), 2);
        // Client 2 empties its bucket at t0 (full again at t0+3s); client 1, seen later at
        // t0+0.5s, takes one token (full again at t0+1.5s).
        for _ in 0..3 {
            assert!(limiter.check(v4(2), t0).is_ok());
        }
        assert!(
            limiter
                .check(v4(1), t0 + Duration::from_millis(500))
                .is_ok()
        );
        // At t1 client 1 is full again, client 2 is not, but client 2 is least recently seen.
        let t1 = t0 + Duration::from_secs(2);
        assert!(limiter.check(v4(3), t1).is_ok());
        assert_eq!(limiter.tracked_keys(), 2);
        // Client 2 still has its partly drained bucket (2 tokens at t1), not a fresh one (3).
        assert!(limiter.check(v4(2), t1).is_ok());
        assert!(limiter.check(v4(2), t1).is_ok());
        assert!(limiter.check(v4(2), t1).is_err());
    }

    #[test]
    fn reservations_pace_a_client_to_the_rate_and_stay_bounded() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(nz(10), nz(2));
        let max_wait = Duration::from_millis(300);
        // The burst goes at once; then each reservation waits one interval more, up to
        // `max_wait`: three more fit (100, 200, 300 ms).
        let waits: Vec<_> = (0..5)
            .map(|_| limiter.reserve(v4(1), t0, max_wait).expect("reserved"))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(waits, [ms(0), ms(0), ms(100), ms(200), ms(300)]);
        // The next would wait 400 ms: refused, and told when it would fit again.
        assert_eq!(
            limiter.reserve(v4(1), t0, max_wait),
            Err(RetryAfter(ms(100)))
        );
        // Refusals reserve nothing: at that time it fits.
        assert_eq!(limiter.reserve(v4(1), t0 + ms(100), max_wait), Ok(ms(300)));
        // A client asking one request at a time, each once the previous wait is over, is
        // paced to the rate and never refused.
        let mut limiter = RateLimiter::new(nz(10), nz(2));
        let mut now = t0;
        for _ in 0..1000 {
            let wait = limiter
                .reserve(v4(2), now, max_wait)
                .expect("never refused");
            assert!(wait <= ms(100), "{wait:?}");
            now += wait + ms(1);
        }
        assert!(now >= t0 + Duration::from_secs(99), "{:?}", now - t0);
        // `check` takes free tokens only.
        assert!(limiter.check(v4(3), t0).is_ok());
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(nz(1), nz(1));
        let later = t0 + Duration::from_secs(5);
        assert!(limiter.check(v4(1), later).is_ok());
        let refused = limiter.check(v4(1), t0).expect_err("earlier time");
        assert!(refused.0 >= Duration::from_secs(5), "{refused:?}");
    }
}
