//! The design card's layering, checked as the graph it is (drawn in `docs/architecture.md`):
//! {`paillier`, `yao`} → `secure-ops` → {`transport`, `smlp`} → `smlp-client` (the owner's room and the
//! owner↔S1 protocol) → `smlp-server` (S1 and S2) → `smlp-cli` (the thin `smlp` binary); the
//! Python bindings `smlp-py` sit on `smlp-client` (and on `smlp-cli` only for their `smlp`
//! entry point, the `cli` feature), never on `smlp-server`; `smlp-harness` (the experiment
//! harness) on `smlp`; `xtask` on no workspace crate. Each crate may depend only on the crates
//! [`ALLOWED`] lists for it (normal, dev or build dependency alike; `smlp`'s tests may use
//! `transport`, [`DEV_ONLY`]). An edge not listed — even a dev-dependency, which cargo allows —
//! fails the test.
//!
//! And the roles: S1's code (its side of the sub-protocols, training and classification on
//! ciphertexts, the S1 server, its job runner and store) must not name the secret key or reach the
//! owner's module; a source file of S1's side that does fails the test.

/// S1's side, as source files of the workspace (with the Ray driver S1 runs for its jobs).
pub const S1_SIDE: [&str; 9] = [
    "secure-ops/src/s1.rs",
    "smlp/src/encrypted.rs",
    "smlp-server/src/s1.rs",
    "smlp-server/src/jobs.rs",
    "smlp-server/src/store.rs",
    "smlp-server/src/servers.rs",
    "smlp-server/src/ray.rs",
    "smlp-py/python/smlp/_s1_job.py",
    "smlp-client/src/proto.rs",
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

const BELOW_CLIENT: [&str; 4] = ["paillier", "secure-ops", "transport", "smlp"];

/// Each workspace crate and the workspace crates it may depend on.
pub const ALLOWED: [(&str, &[&str]); 11] = [
    ("paillier", &[]),
    ("yao", &[]),
    ("secure-ops", &["paillier", "yao"]),
    ("transport", &["paillier", "secure-ops"]),
    ("smlp", &["paillier", "secure-ops"]),
    ("smlp-client", &BELOW_CLIENT),
    (
        "smlp-server",
        &["paillier", "secure-ops", "transport", "smlp", "smlp-client"],
    ),
    (
        "smlp-cli",
        &[
            "paillier",
            "secure-ops",
            "transport",
            "smlp",
            "smlp-client",
            "smlp-server",
        ],
    ),
    (
        "smlp-py",
        &[
            "paillier",
            "secure-ops",
            "transport",
            "smlp",
            "smlp-client",
            "smlp-cli",
        ],
    ),
    ("smlp-harness", &BELOW_CLIENT),
    ("xtask", &[]),
];

/// Edges allowed for dev-dependencies only (a test's in-memory or TLS channel).
pub const DEV_ONLY: [(&str, &str); 1] = [("smlp", "transport")];

/// Every (crate, dependency) pair of workspace crates that [`ALLOWED`] (and, for
/// dev-dependencies, [`DEV_ONLY`]) does not list; a crate missing from [`ALLOWED`] counts as
/// allowed nothing.
pub fn back_edges(metadata: &serde_json::Value) -> Vec<(String, String)> {
    let allowed = |name: &str| ALLOWED.iter().find(|(c, _)| *c == name).map(|(_, a)| *a);
    let workspace: Vec<&str> = ALLOWED.iter().map(|(c, _)| *c).collect();
    let mut bad = Vec::new();
    for pkg in metadata["packages"].as_array().into_iter().flatten() {
        let name = pkg["name"].as_str().unwrap_or_default();
        let mine = allowed(name).unwrap_or(&[]);
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            if !workspace.contains(&dep_name) || mine.contains(&dep_name) {
                continue;
            }
            let dev = dep["kind"].as_str() == Some("dev");
            if dev && DEV_ONLY.contains(&(name, dep_name)) {
                continue;
            }
            bad.push((name.to_string(), dep_name.to_string()));
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
        for (l, _) in ALLOWED {
            assert!(names.contains(&l), "{l} is not in the workspace: {names:?}");
        }
        for n in &names {
            assert!(
                ALLOWED.iter().any(|(c, _)| c == n),
                "{n} is a workspace crate the layering does not know: add it to ALLOWED"
            );
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
        // Sideways edges of the new rooms are caught too: the Python bindings on the servers,
        // the owner's crate on the servers, and `smlp` on `transport` outside its tests.
        let sideways = serde_json::json!({"packages": [
            {"name": "smlp-py", "dependencies": [{"name": "smlp-server", "kind": null}]},
            {"name": "smlp-client", "dependencies": [{"name": "smlp-server", "kind": null}]},
            {"name": "smlp", "dependencies": [
                {"name": "transport", "kind": null},
                {"name": "transport", "kind": "dev"},
            ]},
        ]});
        assert_eq!(
            back_edges(&sideways),
            vec![
                ("smlp-py".to_string(), "smlp-server".to_string()),
                ("smlp-client".to_string(), "smlp-server".to_string()),
                ("smlp".to_string(), "transport".to_string()),
            ]
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
