//! The one harness behind `repro` and `speed`: key generation, the wdbc split, both servers on
//! loopback (S2 on a thread behind a real `transport` server, S1 over mutually authenticated TLS
//! with certificates of a PKI made for the run, or over plain TCP to measure what TLS costs) and
//! progress reporting.

use crate::Result;
use paillier::{FixedPoint, SecretKey};
use secure_ops::{Comparison, Profile, S2Options, S2Service, SessionParams, S1};
use smlp::data::{stratified_split, stratified_subset, Dataset, EncodedDataset, Standardizer};
use smlp::FixedParams;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::loopback::LoopbackS2;
use transport::pki::{self, PkiSpec};
use transport::{
    tls, Channel, Role, ServerOptions, ServerSummary, TcpChannel, TcpOptions, TlsAcceptor,
    TlsCredentials, TlsFiles,
};

/// κ, the statistical security parameter of the blinding.
pub const KAPPA: u32 = 80;
/// Integer bits of the fixed-point encoding of the (standardised) features.
pub const INT_BITS: u32 = 20;

/// A Paillier key pair and how it was made.
pub struct Key {
    pub sk: SecretKey,
    /// Below 2048 bits: made with `generate_insecure_for_tests`.
    pub insecure: bool,
    pub seconds: f64,
}

/// Generates a key of `bits` bits from the OS CSPRNG (`generate` from 2048 bits on,
/// `generate_insecure_for_tests` below).
pub fn generate_key(bits: u32) -> Result<Key> {
    let t = Instant::now();
    let mut rng = rand::rngs::OsRng;
    let insecure = bits < 2048;
    let sk = if insecure {
        SecretKey::generate_insecure_for_tests(bits, &mut rng)?
    } else {
        SecretKey::generate(bits, &mut rng)?
    };
    Ok(Key {
        sk,
        insecure,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// The wdbc split: stratified 80/20 (seeded), standardiser fitted on the whole training part, then
/// stratified subsets of the requested sizes, in real and in fixed-point form.
pub struct Data {
    /// Training subset, standardised.
    pub train: Dataset,
    /// Test subset, standardised.
    pub test: Dataset,
    /// The same, encoded at scale 2^f.
    pub train_enc: EncodedDataset,
    pub test_enc: EncodedDataset,
    /// Sizes of the full training and test parts of the split.
    pub full_train: usize,
    pub full_test: usize,
}

/// Loads wdbc and prepares the split (see [`Data`]). `None` sizes take the whole part.
pub fn wdbc(
    train_n: Option<usize>,
    test_n: Option<usize>,
    seed: u64,
    fixed: &FixedParams,
) -> Result<Data> {
    let (train, test) = stratified_split(&Dataset::wdbc(), 0.2, seed)?;
    let scaler = Standardizer::fit(&train);
    let (full_train, full_test) = (train.len(), test.len());
    let train = scaler.apply(&train.subset(&stratified_subset(
        &train,
        train_n.unwrap_or(full_train),
        seed,
    )))?;
    let test = scaler.apply(&test.subset(&stratified_subset(
        &test,
        test_n.unwrap_or(full_test),
        seed.wrapping_add(1),
    )))?;
    let fp = FixedPoint::new(fixed.frac_bits, INT_BITS)?;
    Ok(Data {
        train_enc: EncodedDataset::encode(&train, &fp)?,
        test_enc: EncodedDataset::encode(&test, &fp)?,
        train,
        test,
        full_train,
        full_test,
    })
}

/// The link between S1 and S2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Link {
    /// Mutually authenticated TLS 1.3, as deployed.
    Tls,
    /// Plain TCP (to measure what TLS costs).
    Tcp,
}

/// S1's channel to S2 (TLS or TCP).
pub type S1Link = Box<dyn Channel + Send>;

/// S2 behind a `transport` server on a loopback port (a thread), and S1 connected to it over
/// `link` with a randomizer pool (capacity 1024, one worker).
pub struct Servers {
    pub s1: S1<S1Link>,
    pub addr: SocketAddr,
    s2: LoopbackS2,
    svc: Arc<S2Service>,
}

impl Servers {
    /// Starts S2 with `sk` and connects S1 with `profile` and the value bound of `fixed`, over
    /// `link` (TLS: with a PKI made for the run in a temporary directory).
    pub fn start(
        sk: &SecretKey,
        profile: Profile,
        comparison: Comparison,
        fixed: &FixedParams,
        link: Link,
    ) -> Result<Servers> {
        let svc = Arc::new(S2Service::new(sk.clone(), S2Options::default()));
        let opts = TcpOptions::default().with_connect_retry(Duration::from_secs(5));
        let (s2, ch): (LoopbackS2, S1Link) = match link {
            Link::Tcp => {
                let s2 = LoopbackS2::tcp(svc.clone(), ServerOptions::default())?;
                let ch = TcpChannel::connect(s2.addr(), opts)?;
                (s2, Box::new(ch))
            }
            Link::Tls => {
                let dir = tempfile::tempdir()?;
                pki::create(dir.path(), &PkiSpec::loopback(&[]))?;
                let s2 = TlsCredentials::load(&TlsFiles::in_pki(dir.path(), "s2"), Role::S2)?;
                let s1 = TlsCredentials::load(&TlsFiles::in_pki(dir.path(), "s1"), Role::S1)?;
                let acceptor = TlsAcceptor(s2.server_config(&[Role::S1])?);
                let s2 = LoopbackS2::serve(svc.clone(), acceptor, ServerOptions::default())?;
                let ch = tls::connect(s2.addr(), None, s1.client_config(Role::S2)?, &opts)?;
                (s2, Box::new(ch))
            }
        };
        let params = SessionParams {
            value_bits: fixed.value_bits,
            frac_bits: fixed.frac_bits,
            kappa: KAPPA,
            profile,
            comparison,
        };
        let s1 = S1::connect(sk.public_key().clone(), ch, params)?.with_randomizer_pool(1024, 1);
        Ok(Servers {
            s1,
            addr: s2.addr(),
            s2,
            svc,
        })
    }

    /// Waits (at most `limit`) until the randomizer pools of S1 and S2 are full, as they are in a
    /// server that has been up for a few seconds: a timing taken while the pools' background
    /// threads still fill them from empty counts their start-up work against the samples.
    /// Returns the seconds waited.
    pub fn warm_up(&self, limit: Duration) -> f64 {
        let t = Instant::now();
        let full = |f: Option<(usize, usize)>| f.is_none_or(|(r, c)| r >= c);
        while t.elapsed() < limit && !(full(self.s1.pool_fill()) && full(self.svc.pool_fill())) {
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed().as_secs_f64()
    }

    /// Ends the session and stops S2. Returns S2's server summary.
    pub fn close(self) -> Result<ServerSummary> {
        self.s1.close()?;
        let summary = self.s2.stop().ok_or("the S2 server thread panicked")?;
        if summary.failed > 0 || summary.panicked > 0 {
            return Err(format!("S2 reported failed sessions: {summary:?}").into());
        }
        Ok(summary)
    }
}

/// CPU seconds this process has used so far (user + system, all threads), from
/// `/proc/self/stat`; `None` where that file is missing or unreadable (not Linux).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) follow its closing parenthesis;
    // utime and stime are the 14th and 15th fields, the 12th and 13th after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Cores kept busy over a timed section: CPU seconds over wall seconds, formatted, or "?".
pub fn cores_busy(cpu_before: Option<f64>, wall_s: f64) -> String {
    match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) if wall_s > 0.0 => format!("{:.2}", (b - a) / wall_s),
        _ => "?".to_string(),
    }
}

/// Progress of a long loop: an indicatif bar on a terminal, plain lines (about every 10 %)
/// otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: u64,
    step: u64,
    next: u64,
    start: Instant,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        let label = label.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} samples, {elapsed_precise} elapsed, ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(label.clone());
            b
        });
        let step = (total / 10).max(1);
        Progress {
            bar,
            label,
            total,
            step,
            next: step,
            start: Instant::now(),
        }
    }

    pub fn set(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        } else if done >= self.next || done == self.total {
            let t = self.start.elapsed().as_secs_f64();
            let eta = if done > 0 {
                t / done as f64 * (self.total - done) as f64
            } else {
                0.0
            };
            println!(
                "    {}: {done}/{} samples, {t:.0} s elapsed, ETA {eta:.0} s",
                self.label, self.total
            );
            while self.next <= done {
                self.next += self.step;
            }
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Median of a non-empty slice (the mean of the middle two for an even length).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len();
    if m == 0 {
        return f64::NAN;
    }
    if m % 2 == 1 {
        s[m / 2]
    } else {
        (s[m / 2 - 1] + s[m / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
