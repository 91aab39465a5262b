"""Keys and files: what Python writes the CLI reads, and the other way round; the owner's
encryption against a plaintext computation."""

import csv
import os
import stat

import numpy as np
import pytest

import smlp
from conftest import BITS, smlp_cli


@pytest.fixture(scope="module")
def key():
    return smlp.keygen(BITS, insecure_test_key=True)


def standardise(X, mean=None, std=None):
    mean = X.mean(axis=0) if mean is None else mean
    std = X.std(axis=0) if std is None else std
    std = np.where(std == 0, 1.0, std)
    return (X - mean) / std


def test_small_keys_need_the_explicit_opt_in():
    with pytest.raises(smlp.SMLPError, match="insecure-test-key"):
        smlp.keygen(512)


def test_python_files_are_read_by_the_cli(tmp_path, key, wdbc):
    X, y = wdbc[0][:12], wdbc[1][:12]
    key.save(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "secret.key").st_mode) == 0o600
    with pytest.raises(smlp.SMLPError, match="already exists"):
        key.save(tmp_path / "keys")
    ds = smlp.Owner(key).encrypt(X, y, progress=False)
    scaler_path = ds.save(str(tmp_path / "train.enc"))
    assert str(scaler_path) == str(tmp_path / "train.enc.scaler.json")
    # The CLI decrypts what Python encrypted: the standardised features (population std, as
    # computed here independently) at 2^-16 and the labels.
    smlp_cli("decrypt", "--secret-key", tmp_path / "keys" / "secret.key", "--in", tmp_path / "train.enc",
             "--out", tmp_path / "train.csv")
    with open(tmp_path / "train.csv") as f:
        rows = list(csv.reader(f))
    values = np.array([[float(v) for v in r] for r in rows[1:]])
    np.testing.assert_allclose(values[:, :-1], standardise(X), atol=2.0**-16)
    assert values[:, -1].astype(int).tolist() == y.tolist()
    # The CLI encrypts new samples with the scaler Python wrote.
    with open(tmp_path / "new.csv", "w") as f:
        f.write(",".join(f"x{i}" for i in range(X.shape[1])) + "\n")
        for row in wdbc[0][12:15]:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    smlp_cli("encrypt", "--public-key", tmp_path / "keys" / "public.key", "--csv", tmp_path / "new.csv",
             "--no-label", "--scaler", scaler_path, "--out", tmp_path / "new.enc")
    new = smlp.EncryptedDataset.load(str(tmp_path / "new.enc"))
    assert (len(new), new.features, new.labelled) == (3, 30, False)
    x_new, y_new = smlp.Owner(key).decrypt_dataset(new)
    assert y_new is None
    np.testing.assert_allclose(x_new, standardise(wdbc[0][12:15], X.mean(axis=0), X.std(axis=0)), atol=2.0**-16)


def test_cli_files_are_read_by_python(tmp_path, wdbc):
    smlp_cli("keygen", "--bits", BITS, "--insecure-test-key", "--out", tmp_path / "keys")
    sk = smlp.SecretKey.load(str(tmp_path / "keys" / "secret.key"))
    assert smlp.PublicKey.load(str(tmp_path / "keys" / "public.key")) == sk.public_key
    X, y = wdbc[0][:10, :3], wdbc[1][:10]
    with open(tmp_path / "d.csv", "w") as f:
        f.write("a,b,c,label\n")
        for row, label in zip(X, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
    smlp_cli("encrypt", "--secret-key", tmp_path / "keys" / "secret.key", "--csv", tmp_path / "d.csv",
             "--out", tmp_path / "d.enc")
    ds = smlp.EncryptedDataset.load(str(tmp_path / "d.enc"))
    x, targets = smlp.Owner(sk).decrypt_dataset(ds)
    np.testing.assert_allclose(x, standardise(X), atol=2.0**-16)
    assert targets[:, 0].tolist() == y.astype(float).tolist()
    scaler = smlp.Scaler.load(str(tmp_path / "d.enc.scaler.json"))
    assert scaler.feature_names == ["a", "b", "c"]
    np.testing.assert_allclose(scaler.mean, X.mean(axis=0))
    # A DataFrame with the scaler's columns encrypts exactly like the CLI's file.
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    again = smlp.Owner(sk).encrypt(frame, scaler=scaler, progress=False)
    np.testing.assert_array_equal(smlp.Owner(sk).decrypt_dataset(again)[0], x)
    with pytest.raises(smlp.SMLPError, match="column"):
        smlp.Owner(sk).encrypt(frame.rename(columns={"a": "z"}), scaler=scaler, progress=False)


def test_bad_input_gets_clear_errors(tmp_path, key):
    owner = smlp.Owner(key)
    with pytest.raises(smlp.SMLPError, match="not a finite number"):
        owner.encrypt(np.array([[1.0, np.nan]]), progress=False)
    with pytest.raises(smlp.SMLPError, match="class 1"):
        owner.encrypt(np.zeros((3, 2)), np.array([0, 2, 0]), progress=False)
    with pytest.raises(ValueError, match="class indices"):
        owner.encrypt(np.zeros((2, 2)), np.array([0.5, 1.0]), progress=False)
    (tmp_path / "junk.enc").write_bytes(b"SMLP" + os.urandom(64))
    with pytest.raises(smlp.SMLPError):
        smlp.EncryptedDataset.load(str(tmp_path / "junk.enc"))
    other = smlp.keygen(BITS, insecure_test_key=True)
    ds = smlp.Owner(other).encrypt(np.eye(3), np.array([0, 1, 0]), progress=False)
    with pytest.raises(smlp.SMLPError, match="key"):
        owner.decrypt_dataset(ds)


def test_progress_callback_sees_every_sample(key):
    seen = []
    smlp.Owner(key).encrypt(np.random.default_rng(1).normal(size=(70, 2)), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (70, 70) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cli_usage_errors_do_not_exit_the_interpreter():
    from smlp.__main__ import main

    assert main(["no-such-command"]) == 2
    assert main(["--version"]) == 0
