//! Random prime generation: trial division by small primes, then Miller–Rabin.

use crate::arith::{Nat, NatOps};
use rand::{CryptoRng, RngCore};

/// Miller–Rabin rounds: 64 random bases bound the error by 4^-64 = 2^-128 for any candidate.
pub(crate) const MR_ROUNDS: usize = 64;

fn small_primes() -> &'static [u32] {
    static PRIMES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    PRIMES.get_or_init(|| {
        let limit = 20_000usize;
        let mut sieve = vec![true; limit];
        let mut out = Vec::new();
        for i in 2..limit {
            if sieve[i] {
                out.push(i as u32);
                let mut j = i * i;
                while j < limit {
                    sieve[j] = false;
                    j += i;
                }
            }
        }
        out
    })
}

fn small_residue(n: &Nat, p: u32) -> u32 {
    let r = n.rem(&Nat::from_u64(u64::from(p)));
    let b = r.to_bytes_be();
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)) as u32
}

/// Whether `n` has no prime factor below 20 000 (other than itself): the cheap first filter of
/// a primality search.
pub(crate) fn no_small_factor(n: &Nat) -> bool {
    small_primes()
        .iter()
        .all(|&p| small_residue(n, p) != 0 || *n == Nat::from_u64(u64::from(p)))
}

/// Miller–Rabin with `rounds` uniformly random bases; `n` must be odd and > 3.
pub(crate) fn miller_rabin<R: RngCore + CryptoRng + ?Sized>(
    n: &Nat,
    rounds: usize,
    rng: &mut R,
) -> bool {
    let one = Nat::one();
    let n_minus_1 = n.sub(&one);
    let mut s = 0u32;
    while !n_minus_1.bit(u64::from(s)) {
        s += 1;
    }
    let d = n_minus_1.shr(s);
    let three = Nat::from_u64(3);
    let range = n.sub(&three); // bases in [2, n-2]
    'outer: for _ in 0..rounds {
        let a = Nat::random_below(&range, rng).add(&Nat::from_u64(2));
        let mut x = a.pow_mod(&d, n);
        if x == one || x == n_minus_1 {
            continue;
        }
        for _ in 1..s {
            x = x.mul_mod(&x, n);
            if x == n_minus_1 {
                continue 'outer;
            }
            if x == one {
                return false;
            }
        }
        return false;
    }
    true
}

/// A uniformly random prime of exactly `bits` bits whose two top bits are set (so that the
/// product of two such primes has exactly `2 * bits` bits).
pub(crate) fn random_prime<R: RngCore + CryptoRng + ?Sized>(bits: u64, rng: &mut R) -> Nat {
    assert!(bits >= 16);
    let primes = small_primes();
    loop {
        let mut base = Nat::random_exact_bits(bits, rng);
        if !base.bit(bits - 2) {
            base = base.add(&Nat::one().shl((bits - 2) as u32));
        }
        if !base.is_odd() {
            base = base.add(&Nat::one());
        }
        // Incremental sieve over base + 2k for a window of candidates.
        let residues: Vec<u32> = primes.iter().map(|&p| small_residue(&base, p)).collect();
        let mut delta = 0u32;
        while delta < 4096 {
            let ok = primes
                .iter()
                .zip(&residues)
                .all(|(&p, &r)| (u64::from(r) + u64::from(delta)) % u64::from(p) != 0);
            if ok {
                let cand = base.add(&Nat::from_u64(u64::from(delta)));
                if cand.bits() != bits {
                    break;
                }
                if miller_rabin(&cand, 1, rng) && miller_rabin(&cand, MR_ROUNDS - 1, rng) {
                    return cand;
                }
            }
            delta += 2;
        }
    }
}
