//! The design card's layering, checked: `paillier` → `secure-ops` → `transport` → `smlp` →
//! `smlp-cli` → `smlp-py` (the Python bindings), plus `smlp-harness` (the experiment harness) and
//! `xtask` (which depends on no workspace crate); each crate may depend (normal, dev or build dependency) only on crates
//! before it. A back edge — even a dev-dependency, which cargo allows — fails the test.
//!
//! And the roles: S1's code (its side of the sub-protocols, training and classification on
//! ciphertexts, the S1 server, its job runner and store) must not name the secret key or reach the
//! owner's module; a source file of S1's side that does fails the test.

/// S1's side, as source files of the workspace.
pub const S1_SIDE: [&str; 7] = [
    "secure-ops/src/s1.rs",
    "smlp/src/encrypted.rs",
    "smlp-cli/src/s1.rs",
    "smlp-cli/src/jobs.rs",
    "smlp-cli/src/store.rs",
    "smlp-cli/src/servers.rs",
    "smlp-cli/src/proto.rs",
];

/// What S1's side must not contain: the secret-key type, its file and loader, the owner's and
/// S2's modules.
pub const FORBIDDEN: [&str; 7] = [
    "SecretKey",
    "SECRET_KEY",
    "secret_key",
    "load_secret",
    "owner::",
    "crate::s2",
    "S2Service",
];

/// The forbidden tokens in `source`, with their line numbers.
pub fn role_violations(source: &str) -> Vec<(usize, &'static str)> {
    source
        .lines()
        .enumerate()
        .flat_map(|(i, line)| {
            FORBIDDEN
                .iter()
                .filter(move |t| line.contains(**t))
                .map(move |t| (i + 1, *t))
        })
        .collect()
}

/// The workspace crates in layer order.
pub const LAYERS: [&str; 8] = [
    "paillier",
    "secure-ops",
    "transport",
    "smlp",
    "smlp-cli",
    "smlp-py",
    "smlp-harness",
    "xtask",
];

/// Every (crate, dependency) pair of workspace crates that points up or sideways.
pub fn back_edges(metadata: &serde_json::Value) -> Vec<(String, String)> {
    let rank = |name: &str| LAYERS.iter().position(|l| *l == name);
    let mut bad = Vec::new();
    for pkg in metadata["packages"].as_array().into_iter().flatten() {
        let name = pkg["name"].as_str().unwrap_or_default();
        let Some(me) = rank(name) else { continue };
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            if let Some(them) = rank(dep_name) {
                if them >= me {
                    bad.push((name.to_string(), dep_name.to_string()));
                }
            }
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcmd::{cargo, workspace_root};

    #[test]
    fn crates_depend_only_on_earlier_layers() {
        let out = std::process::Command::new(cargo())
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(workspace_root())
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: Vec<&str> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for l in LAYERS {
            assert!(names.contains(&l), "{l} is not in the workspace: {names:?}");
        }
        assert_eq!(
            back_edges(&meta),
            vec![],
            "dependencies against the layering"
        );
        // The check itself: a dev-dependency of secure-ops on transport is caught.
        let cycle = serde_json::json!({"packages": [
            {"name": "secure-ops", "dependencies": [{"name": "transport", "kind": "dev"}]},
        ]});
        assert_eq!(
            back_edges(&cycle),
            vec![("secure-ops".to_string(), "transport".to_string())]
        );
    }

    #[test]
    fn s1_side_never_names_the_secret_key() {
        for file in S1_SIDE {
            let path = workspace_root().join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                role_violations(&text),
                vec![],
                "{file} reaches the secret key"
            );
        }
        // The check itself: the pre-split smlp::encrypted (owner decryption beside S1's
        // training) is caught.
        let before = "use paillier::{BigInt, Ciphertext, Fingerprint, PublicKey, SecretKey};\n\
                      pub fn decrypt(&self, sk: &SecretKey) -> SecureResult<Params<i128>> {";
        assert_eq!(
            role_violations(before),
            vec![(1, "SecretKey"), (2, "SecretKey")]
        );
    }
}
