//! `smlp`: train a multilayer perceptron on Paillier-encrypted data with two non-colluding
//! servers. The commands live in the `smlp_cli` library (also used by the Python package).

fn main() -> std::process::ExitCode {
    smlp_cli::run(std::env::args_os())
}
