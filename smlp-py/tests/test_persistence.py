"""A fitted SMLPClassifier saved with pickle and loaded in a fresh interpreter, and its
probabilities."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import smlp


@pytest.fixture(scope="module")
def fitted(client, owner, wdbc):
    X, y = wdbc
    clf = smlp.SMLPClassifier(hidden=(3,), epochs=1, learning_rate=1 / 16, init_seed=4,
                              client=client, owner=owner)
    return clf.fit(X[:40], np.where(y[:40] == 1, "benign", "malignant"))


def test_a_fitted_estimator_pickles_without_its_connection_or_key(cluster, fitted, wdbc, tmp_path):
    X, _ = wdbc
    new = X[300:310]
    expected = fitted.predict(new)
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(fitted))
    blob = path.read_bytes()
    # No secret in the pickle: neither of the secret key's primes, nor a connection.
    p, q = fitted.owner.secret_key.primes()
    assert p not in blob and q not in blob
    # A fresh interpreter: loads it, is told it needs a client and an owner, then predicts the
    # same classes with them; an owner with another key is refused.
    script = """
import pickle, sys
import numpy as np
import smlp
clf = pickle.loads(open(sys.argv[1], "rb").read())
assert clf.client is None and clf.owner is None
assert clf.key_fingerprint_ == clf.model_.fingerprint
X = np.load(sys.argv[2])
try:
    clf.predict(X)
    raise SystemExit("predict without a client worked")
except ValueError as e:
    assert "set_params" in str(e), e
client = smlp.Client(sys.argv[3], sys.argv[4], "owner")
other = smlp.Owner(smlp.keygen(512, insecure_test_key=True))
try:
    clf.set_params(client=client, owner=other).predict(X)
    raise SystemExit("another key was accepted")
except smlp.SMLPError as e:
    assert "wrong key" in str(e), e
clf.set_params(owner=smlp.Owner(sys.argv[5]))
print(",".join(clf.predict(X)))
p = clf.predict_proba(X)
assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1)
"""
    np.save(tmp_path / "X.npy", new)
    out = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "X.npy"), cluster.s1, cluster.pki,
         os.path.join(cluster.keys, "secret.key")],
        capture_output=True, text=True, env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split(",") == list(expected)


def test_probabilities_sum_to_one_and_rank_like_predict(fitted, wdbc):
    X, _ = wdbc
    new = X[310:330]
    proba = fitted.predict_proba(new)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert (fitted.classes_[proba.argmax(axis=1)] == fitted.predict(new)).all()
    # The documented map of the decrypted scores.
    s = fitted.decision_function(new)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-4 * (2 * s - 1))))
