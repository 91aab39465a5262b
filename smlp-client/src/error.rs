//! One error type for the whole tool: a message meant for the user, printed as `error: ...`.

use std::fmt;

/// An error with a message for the user. Any `std::error::Error` converts into it (its source
/// chain is appended where the message does not already contain it).
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(describe(&e))
    }
}

/// The error's message followed by those of its sources that it does not already contain.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}

/// Result alias of the tool.
pub type CliResult<T> = Result<T, CliError>;

/// Adds context (what was being done) in front of an error's message.
pub trait Context<T> {
    /// `what: error`.
    fn context(self, what: impl fmt::Display) -> CliResult<T>;
    /// Like [`Context::context`], with the text computed only on error.
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> CliResult<T>;
}

impl<T, E: Into<CliError>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> CliResult<T> {
        self.map_err(|e| CliError(format!("{what}: {}", e.into().0)))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> CliResult<T> {
        self.map_err(|e| CliError(format!("{}: {}", what(), e.into().0)))
    }
}

/// Returns early with a formatted [`CliError`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::CliError(format!($($arg)*)))
    };
}
