//! OT extension: Ishai, Kilian, Nissim and Petrank (CRYPTO 2003), semi-honest, with [`K`] = 128
//! base transfers run the other way round.
//!
//! The receiver (S2) holds both seeds (kᵢ⁰, kᵢ¹) of every base transfer, the sender (S1) one
//! seed kᵢ^{sᵢ} for its secret s ∈ {0,1}^128. For a batch of N choices r the receiver sends the
//! columns uᵢ = G(kᵢ⁰) ⊕ G(kᵢ¹) ⊕ r and keeps tᵢ = G(kᵢ⁰); the sender forms qᵢ = G(kᵢ^{sᵢ}) ⊕
//! sᵢ·uᵢ, so that the rows satisfy qⱼ = tⱼ ⊕ rⱼ·s. It sends yⱼ⁰ = xⱼ⁰ ⊕ H(j, qⱼ) and yⱼ¹ = xⱼ¹ ⊕
//! H(j, qⱼ ⊕ s); the receiver opens xⱼ^{rⱼ} = yⱼ^{rⱼ} ⊕ H(j, tⱼ). The sender sees the uᵢ masked
//! by G(kᵢ^{1−sᵢ}), which it cannot compute; the receiver cannot remove H(j, tⱼ ⊕ s).
//!
//! G is ChaCha20 keyed by the seed, read from the bit position of the batch's first index j, so
//! a batch depends only on its indices: the receiver numbers its batches (each starts on a
//! multiple of 128 past the previous one) and the sender refuses an index that goes backwards,
//! so no index, and no pad, is ever used twice.

use crate::base::Seed;
use crate::{hash, Block, Error};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroize;

/// Base transfers, and bits per row of the extension.
pub const K: usize = 128;

const DOMAIN: &[u8] = b"smlp-yao IKNP";

/// `bytes` bytes of G(seed) from bit `first` on (`first` a multiple of 128).
fn prg(seed: &Seed, first: u64, bytes: usize) -> Vec<u8> {
    let mut g = ChaCha20Rng::from_seed(*seed);
    g.set_word_pos(u128::from(first / 32));
    let mut out = vec![0u8; bytes];
    g.fill_bytes(&mut out);
    out
}

/// Rows j < n of the K columns (each `bytes` long, bit j at byte j/8, bit j%8): row j has bit i
/// = column i's bit j.
fn transpose(columns: &[Vec<u8>], n: usize) -> Vec<Block> {
    let mut rows = vec![0u128; n];
    for (i, col) in columns.iter().enumerate() {
        for (j, row) in rows.iter_mut().enumerate() {
            let bit = (col[j / 8] >> (j % 8)) & 1;
            *row |= u128::from(bit) << i;
        }
    }
    rows
}

/// The choices as column bytes (bit j at byte j/8, bit j%8), `bytes` long.
fn pack(choices: &[bool], bytes: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes];
    for (j, &c) in choices.iter().enumerate() {
        out[j / 8] |= u8::from(c) << (j % 8);
    }
    out
}

/// Bits of a batch of `n` transfers, rounded up to whole 128-bit blocks.
fn padded(n: usize) -> Option<u64> {
    u64::try_from(n).ok()?.checked_next_multiple_of(K as u64)
}

/// The receiver's seeds (both of each base transfer) and its next batch index.
pub struct Receiver {
    seeds: Vec<(Seed, Seed)>,
    next: u64,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for (a, b) in &mut self.seeds {
            a.zeroize();
            b.zeroize();
        }
    }
}

/// One batch on the receiver's side, between its columns and the sender's answer.
pub struct ReceiverBatch {
    first: u64,
    rows: Vec<Block>,
    choices: Vec<bool>,
}

impl Receiver {
    /// From the base sender's keys ([`crate::base::Sender::keys`]), [`K`] of them.
    pub fn new(seeds: Vec<(Seed, Seed)>) -> Result<Self, Error> {
        if seeds.len() != K {
            return Err(Error::Size {
                what: "base OT keys",
                expected: K,
                got: seeds.len(),
            });
        }
        Ok(Receiver { seeds, next: 0 })
    }

    /// A batch for `choices`: its first index, the columns uᵢ to send (K × ⌈N/128⌉·16 bytes,
    /// column after column) and what opens the sender's answer.
    pub fn extend(&mut self, choices: &[bool]) -> Result<(u64, Vec<u8>, ReceiverBatch), Error> {
        let overflow = Error::Index {
            expected: self.next,
            got: u64::MAX,
        };
        let bits = padded(choices.len()).ok_or(overflow.clone())?;
        let first = self.next;
        self.next = first.checked_add(bits).ok_or(overflow)?;
        let bytes = (bits / 8) as usize;
        let r = pack(choices, bytes);
        let mut columns = Vec::with_capacity(K * bytes);
        let mut ts = Vec::with_capacity(K);
        for (k0, k1) in &self.seeds {
            let t = prg(k0, first, bytes);
            let g1 = prg(k1, first, bytes);
            columns.extend(t.iter().zip(&g1).zip(&r).map(|((a, b), c)| a ^ b ^ c));
            ts.push(t);
        }
        let rows = transpose(&ts, choices.len());
        Ok((
            first,
            columns,
            ReceiverBatch {
                first,
                rows,
                choices: choices.to_vec(),
            },
        ))
    }
}

impl ReceiverBatch {
    /// Transfers in the batch.
    pub fn len(&self) -> usize {
        self.choices.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.choices.is_empty()
    }

    /// xⱼ^{rⱼ} from the sender's pairs (yⱼ⁰, yⱼ¹), one per transfer.
    pub fn open(&self, pairs: &[(Block, Block)]) -> Result<Vec<Block>, Error> {
        if pairs.len() != self.choices.len() {
            return Err(Error::Size {
                what: "OT extension answers",
                expected: self.choices.len(),
                got: pairs.len(),
            });
        }
        Ok(pairs
            .iter()
            .zip(&self.rows)
            .zip(&self.choices)
            .enumerate()
            .map(|(j, (((y0, y1), t), c))| {
                let y = if *c { y1 } else { y0 };
                y ^ hash(DOMAIN, self.first + j as u64, *t)
            })
            .collect())
    }
}

/// The sender's secret s, the seeds kᵢ^{sᵢ} and the first index its next batch may use.
pub struct Sender {
    s: Block,
    seeds: Vec<Seed>,
    next: u64,
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.s.zeroize();
        for k in &mut self.seeds {
            k.zeroize();
        }
    }
}

impl Sender {
    /// From the base receiver's choices s (bit i of `s`) and keys ([`crate::base::receive`]).
    pub fn new(s: Block, seeds: Vec<Seed>) -> Result<Self, Error> {
        if seeds.len() != K {
            return Err(Error::Size {
                what: "base OT keys",
                expected: K,
                got: seeds.len(),
            });
        }
        Ok(Sender { s, seeds, next: 0 })
    }

    /// The answer to the receiver's batch at index `first` with `columns`: for each of the
    /// `messages` (xⱼ⁰, xⱼ¹), the pair (yⱼ⁰, yⱼ¹). The batch must start at or after the end of the
    /// previous one, and the columns must have the size of `messages.len()` transfers.
    pub fn send(
        &mut self,
        first: u64,
        columns: &[u8],
        messages: &[(Block, Block)],
    ) -> Result<Vec<(Block, Block)>, Error> {
        let n = messages.len();
        let bits = padded(n).ok_or(Error::Index {
            expected: self.next,
            got: first,
        })?;
        let end = first.checked_add(bits);
        if first < self.next || !first.is_multiple_of(K as u64) || end.is_none() {
            return Err(Error::Index {
                expected: self.next,
                got: first,
            });
        }
        let bytes = (bits / 8) as usize;
        let expected = K * bytes;
        if columns.len() != expected {
            return Err(Error::Size {
                what: "OT extension columns",
                expected,
                got: columns.len(),
            });
        }
        self.next = end.expect("checked");
        let qs: Vec<Vec<u8>> = self
            .seeds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut q = prg(k, first, bytes);
                if (self.s >> i) & 1 == 1 {
                    let u = &columns[i * bytes..(i + 1) * bytes];
                    q.iter_mut().zip(u).for_each(|(a, b)| *a ^= b);
                }
                q
            })
            .collect();
        let rows = transpose(&qs, n);
        Ok(messages
            .iter()
            .zip(&rows)
            .enumerate()
            .map(|(j, ((x0, x1), q))| {
                let idx = first + j as u64;
                (
                    x0 ^ hash(DOMAIN, idx, *q),
                    x1 ^ hash(DOMAIN, idx, q ^ self.s),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// A sender and a receiver after their base transfers.
    pub(crate) fn pair(rng: &mut ChaCha20Rng) -> (Sender, Receiver) {
        let (bs, a) = base::Sender::new(rng);
        let s: u128 = rng.gen();
        let choices: Vec<bool> = (0..K).map(|i| (s >> i) & 1 == 1).collect();
        let (points, keys) = base::receive(&a, &choices, rng).unwrap();
        let both = bs.keys(&points, K).unwrap();
        (Sender::new(s, keys).unwrap(), Receiver::new(both).unwrap())
    }

    #[test]
    fn the_receiver_opens_the_message_of_each_choice_over_several_batches() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (mut sender, mut receiver) = pair(&mut rng);
        for n in [1usize, 127, 128, 129, 1000] {
            let choices: Vec<bool> = (0..n).map(|_| rng.gen()).collect();
            let msgs: Vec<(u128, u128)> = (0..n).map(|_| (rng.gen(), rng.gen())).collect();
            let (first, cols, batch) = receiver.extend(&choices).unwrap();
            let answers = sender.send(first, &cols, &msgs).unwrap();
            let got = batch.open(&answers).unwrap();
            for ((c, (m0, m1)), g) in choices.iter().zip(&msgs).zip(&got) {
                assert_eq!(g, if *c { m1 } else { m0 });
            }
            // The other message stays hidden: opening with the other choice gives noise.
            let other = ReceiverBatch {
                first: batch.first,
                rows: batch.rows.clone(),
                choices: choices.iter().map(|c| !c).collect(),
            };
            let wrong = other.open(&answers).unwrap();
            for ((c, (m0, m1)), w) in choices.iter().zip(&msgs).zip(&wrong) {
                assert_ne!(w, if *c { m0 } else { m1 });
            }
        }
    }

    #[test]
    fn the_columns_do_not_show_the_choices() {
        // Two batches of opposite choices at the same index give columns that differ by the
        // choices only where a pad differs: here, all-zero and all-one choices under the same
        // seeds differ exactly by the choice vector (the sender cannot tell which is which
        // without the other seed), and each column is far from the choice vector itself.
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (_, mut receiver) = pair(&mut rng);
        let zeros = vec![false; 256];
        let (_, cols, _) = receiver.extend(&zeros).unwrap();
        let ones_in_first_column = cols[..32].iter().map(|b| b.count_ones()).sum::<u32>();
        assert!(
            (80..=176).contains(&ones_in_first_column),
            "{ones_in_first_column}"
        );
    }

    #[test]
    fn hostile_batches_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (mut sender, mut receiver) = pair(&mut rng);
        let msgs = vec![(1u128, 2u128); 10];
        let (first, cols, _) = receiver.extend(&[true; 10]).unwrap();
        assert!(matches!(
            sender.send(first, &cols[1..], &msgs),
            Err(Error::Size { .. })
        ));
        assert!(matches!(
            sender.send(first + 1, &cols, &msgs),
            Err(Error::Index { .. })
        ));
        assert!(matches!(
            sender.send(u64::MAX - 127, &cols, &msgs),
            Err(Error::Index { .. })
        ));
        sender.send(first, &cols, &msgs).unwrap();
        // The same index again: refused (a pad is never used twice).
        assert!(matches!(
            sender.send(first, &cols, &msgs),
            Err(Error::Index { .. })
        ));
        let (_, _, batch) = receiver.extend(&[true; 10]).unwrap();
        assert!(matches!(batch.open(&msgs[1..]), Err(Error::Size { .. })));
        assert!(Receiver::new(Vec::new()).is_err());
        assert!(Sender::new(0, Vec::new()).is_err());
    }
}
