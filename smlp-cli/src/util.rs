//! Progress bars, logging set-up and small helpers shared by the commands.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether progress bars are drawn: stderr is a terminal and `--quiet` was not given.
pub fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Layout of the progress bars.
const BAR_TEMPLATE: &str =
    "{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} samples ({per_sec}, ETA {eta})";

/// A progress bar on stderr counting samples (hidden unless [`show_progress`]).
pub fn sample_bar(len: u64, quiet: bool) -> ProgressBar {
    if !show_progress(quiet) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(BAR_TEMPLATE)
            .expect("valid template (checked by a unit test)")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

/// Initialises `tracing` on stderr with `RUST_LOG` or `default` as the filter.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// `12.3 s`, `4 min 05 s`, ...
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:04.1} s", (s / 60.0).floor() as u64, s % 60.0)
    }
}

/// `1.2 MiB` etc.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", n / 1024.0 / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_template_is_valid() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
        // Hidden bars (not a terminal, or --quiet) accept every call.
        let bar = sample_bar(10, true);
        bar.set_prefix("x");
        bar.inc(3);
        bar.finish_and_clear();
    }

    #[test]
    fn formatting() {
        assert_eq!(secs(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(secs(Duration::from_secs(125)), "2 min 05.0 s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
