//! The report of `cargo xtask repro`: `report.md` (one function per section), `report.json`
//! and the plots.

use super::*;
use crate::plot::{self, Chart, Marker, Series};
use plotters::style::RGBColor;

const F64_COLOR: RGBColor = RGBColor(31, 119, 180);
const FIXED_COLOR: RGBColor = RGBColor(255, 127, 14);
const ENC_COLOR: RGBColor = RGBColor(44, 160, 44);

pub(super) fn write_outputs(r: &Report, dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let curves = |f: fn(&Eval) -> f64| -> Vec<Series> {
        let pts = |v: &[Eval]| v.iter().map(|e| (e.epoch as f64, f(e))).collect::<Vec<_>>();
        vec![
            Series {
                name: "f64 reference".into(),
                points: pts(&r.float),
                color: F64_COLOR,
                marker: Marker::Circle,
                width: 2,
                dashed: false,
            },
            Series {
                name: "fixed-point reference".into(),
                points: pts(&r.fixed),
                color: FIXED_COLOR,
                marker: Marker::Triangle,
                width: 4,
                dashed: false,
            },
            Series {
                name: "encrypted (decrypted after each epoch)".into(),
                points: pts(&r.encrypted),
                color: ENC_COLOR,
                marker: Marker::Cross,
                width: 2,
                dashed: true,
            },
        ]
    };
    let loss = curves(|e| e.loss);
    let loss_max = loss
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let loss_min = loss
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|&v| v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let log_y = loss_min.is_finite() && loss_max > 0.0;
    written.extend(plot::write(
        &dir.join("loss"),
        &Chart {
            title: &format!(
                "Training loss, wdbc {} ({} profile, {} samples)",
                r.config.shape, r.config.profile, r.config.train_samples
            ),
            x_desc: "epoch",
            y_desc: if log_y {
                "mean ½Σ(o − y)² over the training subset (log scale)"
            } else {
                "mean ½Σ(o − y)² over the training subset"
            },
            y_range: if log_y {
                (loss_min / 1.5, loss_max * 1.5)
            } else {
                (0.0, 1.0)
            },
            percent: false,
            log_y,
            series: &loss,
        },
    )?);
    let acc = curves(|e| e.accuracy);
    let acc_min = acc
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::min);
    written.extend(plot::write(
        &dir.join("accuracy"),
        &Chart {
            title: &format!(
                "Test accuracy, wdbc {} ({} test samples)",
                r.config.shape, r.config.test_samples
            ),
            x_desc: "epoch",
            y_desc: "test accuracy",
            y_range: ((((acc_min - 0.05) * 20.0).floor() / 20.0).max(0.0), 1.02),
            percent: true,
            log_y: false,
            series: &acc,
        },
    )?);
    let json = dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(r)?)?;
    written.push(json);
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(r))?;
    written.insert(0, md);
    Ok(written)
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    md_header(&mut s, r);
    md_configuration(&mut s, r);
    md_convergence(&mut s, r);
    md_final_results(&mut s, r);
    md_timings(&mut s, r);
    md_costs(&mut s, r);
    md_baseline(&mut s, r);
    s
}

/// The title and what the run is (quick run, insecure key).
fn md_header(s: &mut String, r: &Report) {
    let c = &r.config;
    let _ = writeln!(
        *s,
        "# Reproduction: MLP training on Paillier-encrypted wdbc data\n"
    );
    let _ = writeln!(
        *s,
        "Bellafqira et al., IWDW 2018: two non-colluding servers, S1 holding the ciphertexts and S2 the \
         secret key. The same network is trained from the same initial weights in three ways: (a) in f64, \
         (b) in the fixed-point arithmetic of the protocol, in the clear, and (c) on ciphertexts, S1 and S2 \
         talking over mutually authenticated TLS on loopback. After every encrypted epoch the harness (playing the data owner, who \
         holds the key) decrypts the model and evaluates it in the clear; at the end the encrypted model \
         classifies the encrypted test set.\n"
    );
    let _ = writeln!(*s, "Command: `{}`\n", c.command);
    if c.quick {
        let _ = writeln!(
            *s,
            "**Quick run** (`--quick`): small key, small subsets, few epochs; the full run is \
             `cargo xtask repro` (2048-bit key, {FULL_TRAIN} training samples, {FULL_EPOCHS} epochs, the whole test part).\n"
        );
    }
    if c.insecure_key {
        let _ = writeln!(
            *s,
            "**Insecure key:** {} bits, made with `SecretKey::generate_insecure_for_tests` (keys below 2048 bits \
             are for tests only; timings scale roughly with the cube of the key size).\n",
            c.bits
        );
    }
}

/// The configuration table.
fn md_configuration(s: &mut String, r: &Report) {
    let c = &r.config;
    let _ = writeln!(*s, "## Configuration\n");
    let _ = writeln!(*s, "| parameter | value |\n|---|---|");
    let rows: Vec<(&str, String)> = vec![
        ("data set", format!(
            "wdbc (569 samples, 30 features, 2 classes; positive class 1 = malignant), stratified 80/20 split \
             ({} / {} samples, seed {}), standardiser fitted on the whole training part",
            c.full_train, c.full_test, c.seed
        )),
        ("training subset", format!(
            "{} samples (stratified subset of the {} training samples)",
            c.train_samples, c.full_train
        )),
        ("test subset", format!(
            "{} samples{}",
            c.test_samples,
            if c.test_samples == c.full_test { " (the whole test part)".to_string() } else { format!(" (stratified subset of the {} test samples)", c.full_test) }
        )),
        ("network", format!("{} (ReLU hidden layer, linear output, loss ½Σ(o − y)², class 1 iff o > ½)", c.shape)),
        ("epochs", format!("{}", c.epochs)),
        ("training", format!(
            "{} (sample order per epoch from `epoch_order(n, {}, epoch)`, the same for all three)",
            if c.batch == 1 { "per-sample SGD (batch 1)".to_string() } else { format!("mini-batches of {}", c.batch) },
            c.seed
        )),
        ("initial weights", format!(
            "Glorot-uniform `init_fixed` (ChaCha8 seed {}), biases 0; the f64 network starts from the same \
             values (`FloatMlp::from_fixed`), the encrypted one from their encryption (`encrypt_params`)",
            c.seed
        )),
        ("learning rate", format!("η = {} = {}", c.learning_rate_str, c.learning_rate)),
        ("fixed point", format!(
            "f = {} fractional bits (inputs, activations, errors), weights at 2^-{} (F_w = 2f + shift), \\|values\\| < 2^{}",
            c.frac_bits, c.weight_frac_bits, c.value_bits
        )),
        ("protocol profile", format!(
            "{} ({})",
            c.profile,
            if c.profile == "strict" {
                "DGK comparisons, exact truncation: the encrypted run must equal the floor reference bit for bit"
            } else {
                "one-round SecReLU, stochastic truncation (each truncation may be one unit higher)"
            }
        )),
        ("fixed-point reference rounding", c.reference_rounding.clone()),
        ("Paillier key", format!(
            "{} bits{}",
            c.bits,
            if c.insecure_key { " (insecure test key, `generate_insecure_for_tests`)" } else { "" }
        )),
        ("statistical security κ", format!("{}", c.kappa)),
        ("transport", "S2 on a thread behind `transport::server::Server` on 127.0.0.1, S1 over `TcpChannel`, S1 randomizer pool (1024, 1 worker), S2 default pool".into()),
        ("classification", format!("`smlp::encrypted::classify`, batches of {}", c.classify_batch)),
        ("arithmetic backend", c.backend.clone()),
        ("machine", format!("{} cores, {} rayon threads; {}", c.cores, c.rayon_threads, c.build)),
    ];
    for (k, v) in rows {
        let _ = writeln!(*s, "| {k} | {v} |");
    }
}

/// Loss, accuracy and the encrypted–fixed-point weight difference per epoch, with the plots.
fn md_convergence(s: &mut String, r: &Report) {
    let c = &r.config;
    let t = &r.timings;
    let _ = writeln!(*s, "\n## Convergence per epoch\n");
    let _ = writeln!(
        *s,
        "Loss: mean ½Σ(o − y)² over the {} training samples with the weights at the end of the epoch \
         (epoch 0: initial weights); fixed-point and encrypted networks evaluated with the plaintext \
         fixed-point forward pass (`FixedMlp`), the encrypted one after decryption. Accuracy on the {} test \
         samples. Last column: max |W_enc − W_fixed| over all weights and biases, in units of 2^-{}.\n",
        c.train_samples, c.test_samples, c.weight_frac_bits
    );
    let _ = writeln!(
        *s,
        "| epoch | loss f64 | loss fixed | loss encrypted | acc. f64 | acc. fixed | acc. encrypted | max \\|W_enc − W_fixed\\| | encrypted epoch time |"
    );
    let _ = writeln!(*s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for i in 0..r.encrypted.len() {
        let (f, x, e, d) = (&r.float[i], &r.fixed[i], &r.encrypted[i], &r.weight_diff[i]);
        let time = if i == 0 {
            "".into()
        } else {
            fmt_secs(t.epoch_s[i - 1])
        };
        let _ = writeln!(
            *s,
            "| {} | {:.5} | {:.5} | {:.5} | {} | {} | {} | {} | {} |",
            e.epoch,
            f.loss,
            x.loss,
            e.loss,
            pct(f.accuracy),
            pct(x.accuracy),
            pct(e.accuracy),
            d.enc_fixed_units,
            time
        );
    }
    let _ = writeln!(
        *s,
        "\n![training loss per epoch](loss.svg)\n\n![test accuracy per epoch](accuracy.svg)\n"
    );
    let _ = writeln!(*s, "(PNG versions: `loss.png`, `accuracy.png`.)\n");
}

/// Accuracy, agreement and scores of the final models.
fn md_final_results(s: &mut String, r: &Report) {
    let c = &r.config;
    let _ = writeln!(*s, "## Final results (after {} epochs)\n", c.epochs);
    let _ = writeln!(
        *s,
        "On the {} test samples; precision and recall of the positive class (malignant).\n",
        c.test_samples
    );
    let _ = writeln!(
        *s,
        "| model | accuracy | precision | recall |\n|---|---:|---:|---:|"
    );
    let last = |v: &[Eval]| *v.last().expect("at least epoch 0");
    for (name, e) in [
        ("f64 reference", last(&r.float)),
        ("fixed-point reference", last(&r.fixed)),
        (
            "encrypted training, decrypted weights, plaintext forward",
            last(&r.encrypted),
        ),
    ] {
        let _ = writeln!(
            *s,
            "| {name} | {} | {} | {} |",
            pct(e.accuracy),
            pct(e.precision),
            pct(e.recall)
        );
    }
    let cl = &r.classification;
    let _ = writeln!(
        *s,
        "| encrypted training, encrypted classifier (`classify` on the encrypted test set, then decrypted) | {} | {} | {} |",
        pct(cl.accuracy),
        pct(cl.precision),
        pct(cl.recall)
    );
    let _ = writeln!(s);
    let _ = writeln!(
        *s,
        "- Encrypted classifier agrees with the fixed-point reference (trained in the clear) on {} of the test \
         samples, and with the plaintext prediction of its own decrypted weights on {}; max |score_enc − \
         score_plain| = {} units of 2^-{}.",
        pct(cl.agreement_with_fixed_reference),
        pct(cl.agreement_with_decrypted_weights),
        cl.max_score_diff_units,
        c.frac_bits
    );
    let d = r.weight_diff.last().expect("epoch 0");
    let _ = writeln!(
        *s,
        "- Weights after the last epoch: max |W_enc − W_fixed| = **{} units of 2^-{}** = {:.3e} in real terms \
         (the largest weight is {:.3}); the fixed-point reference differs from the f64 reference by at most {:.3e}.",
        d.enc_fixed_units, c.weight_frac_bits, d.enc_fixed_real, d.max_abs_weight, d.fixed_float_real
    );
    if c.profile == "strict" {
        let _ = writeln!(
            *s,
            "- Strict profile: the encrypted run is expected to equal the floor reference bit for bit: {}.",
            if r.weight_diff.iter().all(|d| d.enc_fixed_units == 0) && cl.agreement_with_fixed_reference == 1.0 {
                "**it does** (difference 0 after every epoch, identical classes)"
            } else {
                "**it does NOT** — this is a bug"
            }
        );
    } else {
        let _ = writeln!(
            *s,
            "- Fast profile: every truncation (forward sums and back-propagated errors, at scale 2^-{}) is \
             rounded stochastically, in the encrypted run by S1/S2's blinding and in the reference by its own \
             random stream, so the two differ by about one unit of 2^-{} per truncation; through the weight \
             updates (η·δ·a, at scale 2^-{}) these differences accumulate to many units of 2^-{} (a tiny real \
             difference) while loss and accuracy follow the reference. Use `--profile strict` for bit-for-bit \
             equality.",
            c.frac_bits, c.frac_bits, c.weight_frac_bits, c.weight_frac_bits
        );
    }
}

/// Where the time went.
fn md_timings(s: &mut String, r: &Report) {
    let cl = &r.classification;
    let c = &r.config;
    let t = &r.timings;
    let _ = writeln!(*s, "\n## Timings\n");
    let _ = writeln!(*s, "| what | time |\n|---|---:|");
    let n_ep = t.epoch_s.len();
    for (k, v) in [
        ("key generation", fmt_secs(t.keygen_s)),
        (
            "owner: encrypting training and test samples",
            fmt_secs(t.encrypt_data_s),
        ),
        (
            "owner: encrypting the initial weights",
            fmt_secs(t.encrypt_weights_s),
        ),
        ("f64 reference, all epochs", fmt_secs(t.float_reference_s)),
        (
            "fixed-point reference, all epochs",
            fmt_secs(t.fixed_reference_s),
        ),
        (
            "encrypted training, per epoch (mean)",
            fmt_secs(t.epoch_s.iter().sum::<f64>() / n_ep as f64),
        ),
        (
            "**encrypted training, per training sample** (mean over all epochs)",
            format!("**{:.3} s**", t.train_sample_mean_s),
        ),
        (
            "encrypted training, per training sample: median (min – max)",
            format!(
                "{:.3} s ({:.3} – {:.3} s)",
                t.train_sample_median_s, t.train_sample_min_s, t.train_sample_max_s
            ),
        ),
        (
            "**encrypted classification, per sample**",
            format!(
                "**{:.3} s** ({} samples in {}, batches of {})",
                cl.seconds_per_sample,
                cl.samples,
                fmt_secs(cl.seconds),
                c.classify_batch
            ),
        ),
        (
            "owner: decrypting and evaluating after each epoch (harness only)",
            fmt_secs(t.owner_eval_s),
        ),
        ("whole run", fmt_secs(t.total_s)),
    ] {
        let _ = writeln!(*s, "| {k} | {v} |");
    }
    let _ = writeln!(
        *s,
        "\nEpoch times: {}.",
        t.epoch_s
            .iter()
            .map(|&x| fmt_secs(x))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Operations and traffic per sample.
fn md_costs(s: &mut String, r: &Report) {
    let cl = &r.classification;
    let c = &r.config;
    let _ = writeln!(*s, "\n## Operations and traffic\n");
    let _ = writeln!(
        *s,
        "Counted by S1 and S2 (`smlp::encrypted::costs`, deltas with `Costs::since`); traffic is what S1 \
         sent to and received from S2 (frame payloads). Per training sample: over {} samples processed \
         ({} epochs × {}). Per classified sample: over {}.\n",
        r.train_samples_processed, c.epochs, c.train_samples, cl.samples
    );
    let _ = writeln!(
        *s,
        "| per sample | training | classification |\n|---|---:|---:|"
    );
    let tr = &r.train_costs;
    let cc = &cl.costs;
    let per_t = |v: u64| v as f64 / r.train_samples_processed.max(1) as f64;
    let per_c = |v: u64| v as f64 / cl.samples.max(1) as f64;
    let rows: Vec<(&str, u64, u64)> = vec![
        (
            "S1 fresh randomizers (full-size exponentiations)",
            tr.s1.randomizers,
            cc.s1.randomizers,
        ),
        (
            "S1 short exponentiations",
            tr.s1.short_exps,
            cc.s1.short_exps,
        ),
        (
            "S1 other full-size exponentiations",
            tr.s1.full_exps,
            cc.s1.full_exps,
        ),
        (
            "S1 packing squarings",
            tr.s1.pack_squarings,
            cc.s1.pack_squarings,
        ),
        ("S2 decryptions", tr.s2.decryptions, cc.s2.decryptions),
        ("S2 encryptions", tr.s2.encryptions, cc.s2.encryptions),
        (
            "S1 → S2 messages",
            tr.traffic.messages_sent,
            cc.traffic.messages_sent,
        ),
        (
            "round trips",
            tr.traffic.round_trips,
            cc.traffic.round_trips,
        ),
    ];
    for (k, a, b) in rows {
        let _ = writeln!(*s, "| {k} | {:.1} | {:.1} |", per_t(a), per_c(b));
    }
    let kib = |v: f64| format!("{:.1} KiB", v / 1024.0);
    let _ = writeln!(
        *s,
        "| bytes S1 → S2 | {} | {} |",
        kib(per_t(tr.traffic.bytes_sent)),
        kib(per_c(cc.traffic.bytes_sent))
    );
    let _ = writeln!(
        *s,
        "| bytes S2 → S1 | {} | {} |",
        kib(per_t(tr.traffic.bytes_received)),
        kib(per_c(cc.traffic.bytes_received))
    );
    let _ = writeln!(
        *s,
        "\nTotals over the encrypted training: {:.1} MiB sent, {:.1} MiB received, {} round trips.",
        tr.traffic.bytes_sent as f64 / 1048576.0,
        tr.traffic.bytes_received as f64 / 1048576.0,
        tr.traffic.round_trips
    );
}

/// The python-paillier peer, when it ran.
fn md_baseline(s: &mut String, r: &Report) {
    let cl = &r.classification;
    let c = &r.config;
    let t = &r.timings;
    let _ = writeln!(*s, "\n## Baseline: python-paillier\n");
    match &r.baseline {
        None => {
            let _ = writeln!(
                *s,
                "Not run (pass `--with-baseline` to time `../shared/peers/phe_smlp.py` with the same key and hidden sizes)."
            );
        }
        Some(Outcome::Unavailable(why)) => {
            let _ = writeln!(*s, "Requested but unavailable: {why}.");
        }
        Some(Outcome::Ran(b)) => {
            let _ = writeln!(
                *s,
                "`python3 {} --bits {} --hidden {} --samples {}` (phe + gmpy2, single process, single-threaded, \
                 no biases), run on the same machine right after the run above ({} wall, key generation included).\n",
                b.script, b.bits, b.hidden, b.samples, fmt_secs(b.wall_s)
            );
            let _ = writeln!(*s, "| per sample | this project | python-paillier | ratio (python / ours) |\n|---|---:|---:|---:|");
            let _ = writeln!(
                *s,
                "| training (median) | {:.3} s | {:.3} s | {:.1}× |",
                t.train_sample_median_s,
                b.train_s,
                b.train_s / t.train_sample_median_s
            );
            let _ = writeln!(
                *s,
                "| classification | {:.3} s | {:.3} s | {:.1}× |",
                cl.seconds_per_sample,
                b.classify_s,
                b.classify_s / cl.seconds_per_sample
            );
            let _ = writeln!(
                *s,
                "\nOur classification includes the encrypted comparison with ½ (the class stays encrypted); the \
                 peer's is a forward pass only. Ours uses {} rayon threads, the peer one.",
                c.rayon_threads
            );
            for n in &b.notes {
                let _ = writeln!(*s, "\n- peer: {n}");
            }
        }
    }
}
