//! Per-identity limits on concurrent sessions.
//!
//! A server that serves several authenticated peers keeps one [`SessionLimiter`] and asks it for
//! a [`SessionGuard`] at the start of every session; the guard gives the slot back when dropped
//! (also when the session panics and unwinds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts running sessions per key (a peer's identity) against a maximum.
#[derive(Clone, Debug)]
pub struct SessionLimiter {
    max: usize,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl SessionLimiter {
    /// At most `max` (at least 1) concurrent sessions per key.
    pub fn new(max: usize) -> Self {
        SessionLimiter {
            max: max.max(1),
            counts: Arc::default(),
        }
    }

    /// The maximum per key.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `key`, or `None` if it already runs the maximum.
    pub fn try_acquire(&self, key: &str) -> Option<SessionGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(key.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SessionGuard {
            key: key.to_string(),
            counts: Arc::clone(&self.counts),
        })
    }

    /// Sessions of `key` running now.
    pub fn active(&self, key: &str) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(key).copied().unwrap_or(0)
    }
}

/// One running session's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct SessionGuard {
    key: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_key_are_counted_and_given_back() {
        let l = SessionLimiter::new(2);
        let a1 = l.try_acquire("alice").unwrap();
        let _a2 = l.try_acquire("alice").unwrap();
        assert!(l.try_acquire("alice").is_none());
        let _b = l.try_acquire("bob").unwrap();
        assert_eq!(l.active("alice"), 2);
        drop(a1);
        assert_eq!(l.active("alice"), 1);
        assert!(l.try_acquire("alice").is_some());
    }

    #[test]
    fn a_panicking_session_gives_its_slot_back() {
        let l = SessionLimiter::new(1);
        let l2 = l.clone();
        let r = std::panic::catch_unwind(move || {
            let _g = l2.try_acquire("x").unwrap();
            panic!("session failed");
        });
        assert!(r.is_err());
        assert_eq!(l.active("x"), 0);
    }
}
