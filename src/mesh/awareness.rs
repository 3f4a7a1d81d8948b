//! Lifeguard local health ("awareness"): a saturating score that rises when this node
//! misses acks or has to refute suspicion and falls with each successful probe. The score
//! stretches this node's own probe interval and timeout, so a slow node accuses others
//! less readily. Only the score lives here; when it changes is the state machine's call.

use std::time::Duration;

/// The local health score, `0..max` (0 = healthy).
#[derive(Clone, Debug)]
pub(crate) struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    /// A healthy score with the given upper bound (the multiplier never exceeds `max`).
    pub fn new(max: u32) -> Awareness {
        Awareness {
            score: 0,
            max: max.max(1),
        }
    }

    /// Adds `delta` (may be negative), clamped to `0..max`.
    pub fn apply(&mut self, delta: i64) {
        let top = i64::from(self.max - 1);
        let next = (i64::from(self.score) + delta).clamp(0, top);
        self.score = u32::try_from(next).unwrap_or(0);
    }

    /// Current score (0 = healthy).
    pub fn score(&self) -> u32 {
        self.score
    }

    /// `d × (score + 1)`.
    pub fn scale(&self, d: Duration) -> Duration {
        d.saturating_mul(self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_saturates_and_scales_durations() {
        let mut a = Awareness::new(8);
        a.apply(-3);
        assert_eq!(a.score(), 0);
        a.apply(2);
        assert_eq!(
            a.scale(Duration::from_millis(100)),
            Duration::from_millis(300)
        );
        a.apply(100);
        assert_eq!(a.score(), 7);
        assert_eq!(
            a.scale(Duration::from_millis(100)),
            Duration::from_millis(800)
        );
        a.apply(-1);
        assert_eq!(a.score(), 6);
    }
}
