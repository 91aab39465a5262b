//! GMP's routines for x86-64 processors its fat binary does not recognise.
//!
//! `gmp-mpfr-sys` builds GMP 6.3 as a "fat" library: at first use, `__gmpn_cpuvec_init` reads
//! CPUID's family and model and installs the assembly routines tuned for that core in a table of
//! function pointers (`__gmpn_cpuvec`). Models released after GMP 6.3 — Intel Ice Lake server
//! (6/0x6A), Sapphire Rapids (6/0x8F), Emerald Rapids (6/0xCF), AMD Zen 5 (0x1A) and others — are
//! not in its list, and get the generic x86-64 code from the K8 era: on a cloud machine with an
//! Emerald Rapids core, `mpn_addmul_1_x86_64` and `mpn_submul_1_x86_64` took 72 % of an encrypted
//! training run. Every such processor has BMI2 and ADX, so [`install`] puts the routines GMP itself
//! selects for Skylake (the newest Intel core it knows: Haswell's and Broadwell's mulx/adcx/adox
//! code; GMP's thresholds are kept, see `install_once`) into the table when, and only when,
//!
//! - the processor reports BMI2 and ADX (`is_x86_feature_detected!`), and
//! - GMP chose its generic fallback: every entry checked below holds exactly the generic routine
//!   GMP installs for an unknown model (which also confirms that the table has the layout of
//!   `struct cpuvec_t` in GMP 6.3's `gmp-impl.h`, mirrored here).
//!
//! On any known processor, or a layout other than expected, nothing is changed. Every routine is a
//! complete implementation of the same `mpn` function, so results do not depend on the choice
//! (the backend-equivalence and known-answer tests run with it installed).

use std::ffi::c_void;
use std::sync::OnceLock;

type Fn = *const c_void;

/// `struct cpuvec_t` of GMP 6.3 (`gmp-impl.h`, x86 fat binaries): 37 routines, 5 thresholds.
#[repr(C)]
struct CpuVec {
    add_n: Fn,
    addlsh1_n: Fn,
    addlsh2_n: Fn,
    addmul_1: Fn,
    addmul_2: Fn,
    bdiv_dbm1c: Fn,
    cnd_add_n: Fn,
    cnd_sub_n: Fn,
    com: Fn,
    copyd: Fn,
    copyi: Fn,
    divexact_1: Fn,
    divrem_1: Fn,
    gcd_11: Fn,
    lshift: Fn,
    lshiftc: Fn,
    mod_1: Fn,
    mod_1_1p: Fn,
    mod_1_1p_cps: Fn,
    mod_1s_2p: Fn,
    mod_1s_2p_cps: Fn,
    mod_1s_4p: Fn,
    mod_1s_4p_cps: Fn,
    mod_34lsub1: Fn,
    modexact_1c_odd: Fn,
    mul_1: Fn,
    mul_basecase: Fn,
    mullo_basecase: Fn,
    preinv_divrem_1: Fn,
    preinv_mod_1: Fn,
    redc_1: Fn,
    redc_2: Fn,
    rshift: Fn,
    sqr_basecase: Fn,
    sub_n: Fn,
    sublsh1_n: Fn,
    submul_1: Fn,
    mul_toom22_threshold: isize,
    mul_toom33_threshold: isize,
    sqr_toom2_threshold: isize,
    sqr_toom3_threshold: isize,
    bmod_1_to_mod_1_threshold: isize,
}

// Only the addresses of these routines are taken; they are never called from Rust.
extern "C" {
    static mut __gmpn_cpuvec: CpuVec;
    fn __gmpn_cpuvec_init();

    // What GMP installs for an unknown model (CPUVEC_SETUP_x86_64 and CPUVEC_SETUP_fat).
    fn __gmpn_add_n_x86_64();
    fn __gmpn_addmul_1_x86_64();
    fn __gmpn_submul_1_x86_64();
    fn __gmpn_mul_1_x86_64();
    fn __gmpn_sub_n_x86_64();
    fn __gmpn_addmul_2_fat();
    fn __gmpn_mul_basecase_fat();
    fn __gmpn_sqr_basecase_fat();
    fn __gmpn_redc_1_fat();

    // What CPUVEC_SETUP_core2 … CPUVEC_SETUP_skylake leave for a Skylake with BMI2.
    fn __gmpn_add_n_coreihwl();
    fn __gmpn_sub_n_coreihwl();
    fn __gmpn_addmul_1_coreibwl();
    fn __gmpn_mul_1_coreibwl();
    fn __gmpn_mul_basecase_coreibwl();
    fn __gmpn_mullo_basecase_coreibwl();
    fn __gmpn_sqr_basecase_coreibwl();
    fn __gmpn_addmul_2_coreihwl();
    fn __gmpn_submul_1_coreihwl();
    fn __gmpn_redc_1_coreihwl();
    fn __gmpn_addlsh1_n_coreisbr();
    fn __gmpn_addlsh2_n_coreisbr();
    fn __gmpn_cnd_add_n_coreisbr();
    fn __gmpn_cnd_sub_n_coreisbr();
    fn __gmpn_lshift_coreisbr();
    fn __gmpn_lshiftc_coreisbr();
    fn __gmpn_rshift_coreisbr();
    fn __gmpn_copyi_core2();
    fn __gmpn_copyd_core2();
}

/// Whether [`install`] replaced GMP's generic routines (decided once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the Skylake routines if GMP fell back to its generic code on a processor with BMI2
/// and ADX (see the module documentation), and says whether it did. Runs once; cheap afterwards.
/// Key constructors call it, before the heavy arithmetic starts.
pub(crate) fn install() -> bool {
    let installed = *INSTALLED.get_or_init(install_once);
    if installed {
        // SAFETY: as in `install_once`; the table's layout was proven there.
        unsafe {
            let v = std::ptr::addr_of_mut!(__gmpn_cpuvec);
            // GMP's initialiser, entered by another thread's first GMP call before ours finished,
            // can complete after our writes and put the generic routines back (seen once in a
            // parallel test run): put ours back. Pointer-sized stores, safe at any time.
            if (*v).addmul_1 == __gmpn_addmul_1_x86_64 as Fn {
                patch(v);
            }
        }
    }
    installed
}

fn install_once() -> bool {
    if !(std::arch::is_x86_feature_detected!("bmi2") && std::arch::is_x86_feature_detected!("adx"))
    {
        return false;
    }
    // SAFETY: `__gmpn_cpuvec_init` is GMP's own idempotent initialiser, which every fat entry
    // point calls on first use. The table is then read through a raw pointer; it is written only
    // if all the entries checked hold the generic routines, which both proves the layout and
    // that GMP chose the fallback. Each routine written is GMP's implementation of the same
    // function for the same calling convention; the processor supports the instructions they use.
    unsafe {
        __gmpn_cpuvec_init();
        let v = std::ptr::addr_of_mut!(__gmpn_cpuvec);
        let generic = (*v).add_n == __gmpn_add_n_x86_64 as Fn
            && (*v).addmul_1 == __gmpn_addmul_1_x86_64 as Fn
            && (*v).submul_1 == __gmpn_submul_1_x86_64 as Fn
            && (*v).mul_1 == __gmpn_mul_1_x86_64 as Fn
            && (*v).sub_n == __gmpn_sub_n_x86_64 as Fn
            && (*v).addmul_2 == __gmpn_addmul_2_fat as Fn
            && (*v).mul_basecase == __gmpn_mul_basecase_fat as Fn
            && (*v).sqr_basecase == __gmpn_sqr_basecase_fat as Fn
            && (*v).redc_1 == __gmpn_redc_1_fat as Fn
            && (1..1000).contains(&(*v).mul_toom22_threshold)
            && (1..1000).contains(&(*v).bmod_1_to_mod_1_threshold);
        if !generic {
            return false;
        }
        patch(v);
    }
    true
}

/// Writes the Skylake routines into GMP's table `v`.
///
/// # Safety
/// `v` is GMP's `__gmpn_cpuvec`, whose layout `install_once` checked, on a processor with BMI2
/// and ADX.
unsafe fn patch(v: *mut CpuVec) {
    unsafe {
        (*v).add_n = __gmpn_add_n_coreihwl as Fn;
        (*v).sub_n = __gmpn_sub_n_coreihwl as Fn;
        (*v).addmul_1 = __gmpn_addmul_1_coreibwl as Fn;
        (*v).mul_1 = __gmpn_mul_1_coreibwl as Fn;
        (*v).mul_basecase = __gmpn_mul_basecase_coreibwl as Fn;
        (*v).mullo_basecase = __gmpn_mullo_basecase_coreibwl as Fn;
        (*v).sqr_basecase = __gmpn_sqr_basecase_coreibwl as Fn;
        (*v).addmul_2 = __gmpn_addmul_2_coreihwl as Fn;
        (*v).submul_1 = __gmpn_submul_1_coreihwl as Fn;
        (*v).redc_1 = __gmpn_redc_1_coreihwl as Fn;
        (*v).addlsh1_n = __gmpn_addlsh1_n_coreisbr as Fn;
        (*v).addlsh2_n = __gmpn_addlsh2_n_coreisbr as Fn;
        (*v).cnd_add_n = __gmpn_cnd_add_n_coreisbr as Fn;
        (*v).cnd_sub_n = __gmpn_cnd_sub_n_coreisbr as Fn;
        (*v).lshift = __gmpn_lshift_coreisbr as Fn;
        (*v).lshiftc = __gmpn_lshiftc_coreisbr as Fn;
        (*v).rshift = __gmpn_rshift_coreisbr as Fn;
        (*v).copyi = __gmpn_copyi_core2 as Fn;
        (*v).copyd = __gmpn_copyd_core2 as Fn;
        // The Karatsuba/Toom thresholds stay GMP's: another thread may be inside a product whose
        // scratch space was sized for them, and every routine above is a complete implementation
        // of its function (swapping one pointer is safe at any time; changing a threshold in the
        // middle of a recursion is not). At Paillier's sizes (32 and 64 limbs at 2048 bits) they
        // choose the same algorithms as Skylake's.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::big::BigNat;
    use crate::arith::gmp::GmpNat;
    use crate::arith::NatOps;
    use rand::{RngCore, SeedableRng};

    /// On a processor with BMI2 and ADX, GMP never runs its generic K8-era multiplication after
    /// `install`: either it recognised the core, or `install` replaced the routine. (Before this
    /// module, an Emerald Rapids core ran `__gmpn_addmul_1_x86_64`.)
    #[test]
    fn no_generic_multiplication_on_a_bmi2_adx_core() {
        install();
        // Another test thread's first GMP call may be inside GMP's initialiser right now, which
        // would finish by writing the generic routines back; `install` (which every key
        // constructor calls) puts ours back once that initialiser has run.
        std::thread::sleep(std::time::Duration::from_millis(20));
        install();
        if !(std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("adx"))
        {
            return;
        }
        // SAFETY: read-only access to GMP's initialised table.
        let addmul_1 = unsafe { (*std::ptr::addr_of!(__gmpn_cpuvec)).addmul_1 };
        assert_ne!(addmul_1, __gmpn_addmul_1_x86_64 as Fn);
    }

    /// With the routines installed, GMP agrees with num-bigint at Paillier sizes (products of 32
    /// and 64 limbs use Karatsuba/Toom above the thresholds; the secret-exponent path
    /// uses `mpn_sec_powm`).
    #[test]
    fn installed_routines_agree_with_num_bigint_at_key_sizes() {
        install();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut random = |bytes: usize| {
            let mut b = vec![0u8; bytes];
            rng.fill_bytes(&mut b);
            b[0] |= 0x80;
            *b.last_mut().expect("bytes") |= 1;
            (BigNat::from_bytes_be(&b), GmpNat::from_bytes_be(&b))
        };
        for bytes in [64usize, 128, 256, 512, 1024] {
            let (m1, m2) = random(bytes);
            let (a1, a2) = random(bytes);
            let (b1, b2) = random(bytes);
            let (e1, e2) = random(bytes / 2);
            let same = |x: BigNat, y: GmpNat| assert_eq!(x.to_biguint(), y.to_biguint(), "{bytes}");
            same(a1.mul(&b1), a2.mul(&b2));
            same(a1.mul(&a1), a2.square());
            same(a1.mul(&b1).rem(&m1), a2.mul_mod(&b2, &m2));
            same(a1.pow_mod(&e1, &m1), a2.pow_mod(&e2, &m2));
            same(a1.pow_mod(&e1, &m1), a2.pow_mod_secret(&e2, &m2));
            let (q1, r1) = a1.mul(&b1).div_rem(&m1);
            let (q2, r2) = a2.mul(&b2).div_rem(&m2);
            same(q1, q2);
            same(r1, r2);
            assert_eq!(
                a1.inv_mod(&m1).map(|x| x.to_biguint()),
                a2.inv_mod(&m2).map(|x| x.to_biguint())
            );
            same(a1.gcd(&m1), a2.gcd(&m2));
        }
    }
}
