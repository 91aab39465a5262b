//! Encryption randomness computed ahead of time on other cores.
//!
//! The expensive part of an encryption is ρ = r^n mod n^2. A [`RandomizerPool`] runs worker
//! threads that keep a bounded queue of fresh ρ values; online encryption or re-randomisation then
//! costs one multiplication mod n^2 ([`PublicKey::encrypt_with_randomizer`]).

use crate::keys::{PublicKey, Randomizer, SecretKey};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Source = Arc<dyn Fn() -> Randomizer + Send + Sync>;

/// A bounded queue of precomputed randomizers filled by background threads.
pub struct RandomizerPool {
    rx: Mutex<Receiver<Randomizer>>,
    source: Source,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    misses: AtomicU64,
}

impl std::fmt::Debug for RandomizerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RandomizerPool({} workers)", self.workers.len())
    }
}

impl RandomizerPool {
    /// A pool computing r^n mod n^2 with the public key (what S1 and the owner can do).
    pub fn for_public_key(pk: &PublicKey, capacity: usize, workers: usize) -> Self {
        let pk = pk.clone();
        Self::spawn(
            Arc::new(move || pk.randomizer(&mut rand::thread_rng())),
            capacity,
            workers,
        )
    }

    /// A pool computing randomizers with CRT (the key holder, S2).
    pub fn for_secret_key(sk: &SecretKey, capacity: usize, workers: usize) -> Self {
        let sk = sk.clone();
        Self::spawn(
            Arc::new(move || sk.randomizer(&mut rand::thread_rng())),
            capacity,
            workers,
        )
    }

    fn spawn(source: Source, capacity: usize, workers: usize) -> Self {
        let (tx, rx) = sync_channel(capacity.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..workers)
            .map(|_| {
                let (tx, stop, source) = (tx.clone(), stop.clone(), source.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut rho = source();
                        loop {
                            match tx.try_send(rho) {
                                Ok(()) => break,
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
            source,
            stop,
            workers: handles,
            misses: AtomicU64::new(0),
        }
    }

    /// A fresh randomizer: from the queue when one is ready, computed on the spot otherwise.
    pub fn take(&self) -> Randomizer {
        let ready = self.rx.lock().ok().and_then(|rx| rx.try_recv().ok());
        ready.unwrap_or_else(|| {
            self.misses.fetch_add(1, Ordering::Relaxed);
            (self.source)()
        })
    }

    /// How many times [`take`](Self::take) found the queue empty and computed inline.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

impl Drop for RandomizerPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}
