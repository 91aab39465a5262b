//! `smlp demo`.
use crate::error::CliResult;
use clap::Args;

/// Demo.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {}

/// Runs the demo.
pub fn demo(_a: &DemoArgs) -> CliResult<()> {
    Ok(())
}
