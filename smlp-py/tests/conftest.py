"""Shared fixtures: one local deployment (S2 and S1 as real processes, real TLS on loopback) for
the session, with a small key through the explicit test-only opt-in."""

import os

import numpy as np
import pytest

import smlp

#: Key size of the tests: the properties tested do not depend on it (512-bit keys are not secure).
BITS = 512


@pytest.fixture(scope="session")
def cluster():
    with smlp.LocalCluster(bits=BITS, insecure_test_key=True, owners=("owner", "bob")) as c:
        yield c


@pytest.fixture(scope="session")
def client(cluster):
    return cluster.client()


@pytest.fixture(scope="session")
def owner(cluster):
    return cluster.owner()


@pytest.fixture(scope="session")
def wdbc():
    """The breast-cancer data set (the repository's copy of wdbc, as scikit-learn ships it)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(7)
    order = rng.permutation(len(y))
    return X[order], y[order]


def smlp_cli(*args, check=True):
    """Runs the command line (``python -m smlp``: the same code as the ``smlp`` binary)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "smlp", *map(str, args)], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"smlp {' '.join(map(str, args))} failed ({out.returncode}):\n{out.stderr}")
    return out
