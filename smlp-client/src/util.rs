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

/// Initialises `tracing` on stderr with `RUST_LOG` or `default` as the filter. Every event is one
/// line: line breaks and other control characters inside it (from a peer's id, name or error
/// text) are written escaped ([`OneLine`]).
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| OneLine(std::io::stderr()))
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

/// `s` for a log line, an error message or an audit row: control characters escaped (`\n`,
/// `\u{1b}` …) and cut to `max` characters, with the original length when cut.
pub fn shown(s: &str, max: usize) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| {
            let e: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            e
        })
        .take(max.saturating_add(1))
        .collect();
    if escaped.chars().count() > max {
        let cut: String = escaped.chars().take(max).collect();
        format!("{cut}… ({} bytes)", s.len())
    } else {
        escaped
    }
}

/// A writer for log events: each `write` is one formatted event (tracing-subscriber writes an
/// event whole), whose line breaks and carriage returns, except the final newline, are written
/// as `\n` and `\r`, so no peer-supplied text starts a line of its own.
pub struct OneLine<W>(pub W);

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.split_last() {
            Some((b'\n', body)) => (body, &b"\n"[..]),
            _ => (buf, &b""[..]),
        };
        if !body.iter().any(|&b| b == b'\n' || b == b'\r') {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b => out.push(b),
            }
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod one_line_tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_forged_line_stays_on_its_event_line() {
        let mut w = OneLine(Vec::new());
        w.write_all(
            b"INFO request refused error=no job x\nFAKE LOG LINE level=INFO owner=admin\r\n",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "INFO request refused error=no job x\\nFAKE LOG LINE level=INFO owner=admin\\r\n"
        );
    }

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown("job-1\nFAKE", 40), "job-1\\nFAKE");
        let long = "a".repeat(5000);
        assert_eq!(shown(&long, 8), "aaaaaaaa… (5000 bytes)");
        assert_eq!(shown("ok", 8), "ok");
    }
}

/// Creates `dir` if needed and makes it 0700 (an error if that fails: a server's state must not
/// be readable by other users).
pub fn private_dir(dir: &std::path::Path) -> crate::error::CliResult<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::error::CliError(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            crate::error::CliError(format!("cannot make {} private (0700): {e}", dir.display()))
        })?;
    }
    Ok(())
}
