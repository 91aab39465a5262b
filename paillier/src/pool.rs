//! Encryption randomness computed ahead of time on other cores.
//!
//! The expensive part of an encryption is ρ = r^n mod n^2. A [`RandomizerPool`] runs worker
//! threads that keep a bounded queue of fresh ρ values; online encryption or re-randomisation then
//! costs one multiplication mod n^2 ([`PublicKey::encrypt_with_randomizer`]).

use crate::keys::{Encrypt, Randomizer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A bounded queue of precomputed randomizers filled by background threads with the key `K`:
/// `RandomizerPool<PublicKey>` (what S1 and the owner can have) and `RandomizerPool<SecretKey>`
/// (the key holder, S2) are different types.
pub struct RandomizerPool<K: Encrypt> {
    rx: Mutex<Receiver<Randomizer>>,
    key: Arc<K>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    misses: AtomicU64,
    capacity: usize,
    /// Randomizers queued by the workers, and taken from the queue.
    produced: Arc<AtomicU64>,
    taken: AtomicU64,
}

impl<K: Encrypt> std::fmt::Debug for RandomizerPool<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RandomizerPool({} workers)", self.workers.len())
    }
}

impl<K: Encrypt> RandomizerPool<K> {
    /// A pool of `workers` threads keeping up to `capacity` randomizers of `key` ready.
    pub fn new(key: &K, capacity: usize, workers: usize) -> Self {
        Self::spawn(Arc::new(key.clone()), capacity, workers)
    }

    fn spawn(key: Arc<K>, capacity: usize, workers: usize) -> Self {
        let (tx, rx) = sync_channel(capacity.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicU64::new(0));
        let handles = (0..workers)
            .map(|_| {
                let (tx, stop, key) = (tx.clone(), stop.clone(), Arc::clone(&key));
                let produced = Arc::clone(&produced);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut rho = key.fresh_randomizer(&mut rand::thread_rng());
                        loop {
                            match tx.try_send(rho) {
                                Ok(()) => {
                                    produced.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Err(TrySendError::Disconnected(_)) => return,
                                Err(TrySendError::Full(back)) => {
                                    if stop.load(Ordering::Relaxed) {
                                        return;
                                    }
                                    rho = back;
                                    std::thread::sleep(std::time::Duration::from_millis(2));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        RandomizerPool {
            rx: Mutex::new(rx),
            key,
            stop,
            workers: handles,
            misses: AtomicU64::new(0),
            capacity: capacity.max(1),
            produced,
            taken: AtomicU64::new(0),
        }
    }

    /// A fresh randomizer: from the queue when one is ready, computed on the spot otherwise.
    pub fn take(&self) -> Randomizer {
        let ready = self.rx.lock().ok().and_then(|rx| rx.try_recv().ok());
        if ready.is_some() {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        ready.unwrap_or_else(|| {
            self.misses.fetch_add(1, Ordering::Relaxed);
            self.key.fresh_randomizer(&mut rand::thread_rng())
        })
    }

    /// Randomizers queued now (approximate while workers run), at most [`capacity`](Self::capacity).
    pub fn ready(&self) -> usize {
        let produced = self.produced.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        produced.saturating_sub(taken).min(self.capacity as u64) as usize
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many times [`take`](Self::take) found the queue empty and computed inline.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

impl<K: Encrypt> Drop for RandomizerPool<K> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}
