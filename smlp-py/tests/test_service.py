"""The client, the estimator and the local cluster, end to end: real S1 and S2 processes, TLS on
loopback, encrypted training and classification; results checked against plaintext numpy."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import smlp
from conftest import smlp_cli


def forward(model, Xs):
    """The network in float numpy from the decrypted weights (ReLU hidden layers, linear output):
    an independent reference for the encrypted classification."""
    a = Xs
    layers = model["layers"]
    for i, layer in enumerate(layers):
        a = a @ layer["weights"].T + layer["biases"]
        if i + 1 < len(layers):
            a = np.maximum(a, 0.0)
    return a


def standardise(X, scaler):
    return (X - np.asarray(scaler.mean)) / np.asarray(scaler.std)


def test_estimator_fits_and_predicts_on_ciphertexts(client, owner, wdbc):
    X, y = wdbc
    Xtr, ytr, Xte, yte = X[:60], y[:60], X[400:440], y[400:440]
    labels = np.where(ytr == 1, "benign", "malignant")
    clf = smlp.SMLPClassifier(hidden=(4,), epochs=2, learning_rate=1 / 16, init_seed=3,
                              client=client, owner=owner)
    assert clf.fit(Xtr, labels) is clf
    assert list(clf.classes_) == ["benign", "malignant"] and clf.n_features_in_ == 30
    predicted = clf.predict(Xte)
    scores = clf.decision_function(Xte)
    # Against the plaintext forward pass with the decrypted weights.
    model = owner.decrypt_model(clf.model_)
    assert model["shape"] == [30, 4, 1] and model["epochs_trained"] == 2
    reference = forward(model, standardise(Xte, clf.scaler_))[:, 0]
    np.testing.assert_allclose(scores, reference, atol=2e-3)
    sure = np.abs(reference - 0.5) > 2e-3
    assert sure.sum() >= 35
    assert (predicted[sure] == clf.classes_[(reference[sure] > 0.5).astype(int)]).all()
    accuracy = clf.score(Xte, np.where(yte == 1, "benign", "malignant"))
    assert accuracy >= 0.8, accuracy


def test_estimator_follows_scikit_learn_conventions(client, owner, wdbc):
    from sklearn.base import clone
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score

    clf = smlp.SMLPClassifier(hidden=(3,), client=client, owner=owner)
    params = clf.get_params()
    assert params["hidden"] == (3,) and params["client"] is client
    twin = clone(clf).set_params(epochs=3)
    # The defaults are the library's and the CLI's (smlp::defaults).
    assert clf.epochs == smlp.DEFAULTS["epochs"] == 2 and clf.batch == smlp.DEFAULTS["batch"] == 16
    assert twin.epochs == 3 and twin.client is client
    with pytest.raises(AttributeError, match="not fitted"):
        clone(clf).predict(wdbc[0][:2])
    # Three classes, inside cross_val_score (3 folds over 24 iris samples).
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == k), 8, replace=False) for k in range(3)])
    scores = cross_val_score(smlp.SMLPClassifier(hidden=(3,), epochs=2, learning_rate=1 / 8, init_seed=1,
                                                 client=client, owner=owner), X[idx], y[idx], cv=3)
    assert scores.shape == (3,) and ((0 <= scores) & (scores <= 1)).all()


def test_detached_jobs_wait_fetch_and_owners_are_isolated(cluster, client, owner, wdbc, tmp_path):
    X, y = wdbc
    data = owner.encrypt(X[:16], y[:16], progress=False)
    ds = client.upload(data, "sixteen")
    assert client.upload(data) == ds  # stored once
    job = client.train(ds, hidden=(2,), epochs=1, detach=True)
    assert isinstance(job, smlp.Job) and job.kind == "train"
    assert job.id in [j["id"] for j in client.jobs()]
    seen = []
    final = client.wait(job, progress=lambda d, t: seen.append((d, t)))
    assert final["state"] == "done" and seen[-1] == (16, 16)
    model = job.result()
    assert isinstance(model, smlp.EncryptedModel) and model.shape == [30, 2, 1]
    assert model.fingerprint == owner.public_key.fingerprint
    new = owner.encrypt(X[20:25], None, data.scaler, progress=False)
    preds = client.classify(model, new)
    classes = owner.decrypt_predictions(preds)
    assert len(classes) == 5
    # The model and predictions Python holds are files the CLI decrypts to the same numbers.
    model.save(tmp_path / "model.enc")
    preds.save(tmp_path / "pred.enc")
    secret = os.path.join(cluster.keys, "secret.key")
    smlp_cli("decrypt", "--secret-key", secret, "--in", tmp_path / "model.enc", "--out", tmp_path / "model.json")
    smlp_cli("decrypt", "--secret-key", secret, "--in", tmp_path / "pred.enc", "--out", tmp_path / "pred.csv", "--scores")
    import json

    cli_model = json.loads((tmp_path / "model.json").read_text())
    ours = owner.decrypt_model(model)
    for a, b in zip(cli_model["layers"], ours["layers"]):
        assert a["weights_raw"] == b["weights_raw"].tolist() and a["biases_raw"] == b["biases_raw"].tolist()
    rows = [line.split(",") for line in (tmp_path / "pred.csv").read_text().split()[1:]]
    assert [int(r[1]) for r in rows] == classes.tolist()
    assert [float(r[2]) for r in rows] == owner.decrypt_scores(preds)[:, 0].tolist()
    assert {o["id"] for o in client.list("datasets")} >= {ds}
    # Another owner sees none of it.
    bob = cluster.client("bob")
    assert bob.list("datasets") == [] and bob.jobs() == []
    with pytest.raises(smlp.SMLPError, match="not found|unknown|no "):
        bob.fetch(job.id)
    # Each owner works under a key of its own: bob cannot take the owner's key, nor upload
    # under it.
    with pytest.raises(smlp.SMLPError, match="registered to another owner"):
        bob.register(owner.public_key)
    assert bob.keys == [] and client.keys == [owner.public_key]
    with pytest.raises(smlp.SMLPError, match="has not registered"):
        bob.upload(owner.encrypt(X[:4], y[:4], progress=False))
    client.delete(job.id)
    assert job.id not in [j["id"] for j in client.jobs()]


def test_ctrl_c_cancels_a_blocking_training_job(client, owner, wdbc):
    X, y = wdbc
    ds = client.upload(owner.encrypt(X[:200], y[:200], progress=False))
    # SIGINT arrives while train() blocks, as Ctrl-C in a notebook.
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.train(ds, hidden=(8,), epochs=5, progress=False)
    assert time.monotonic() - start < 20
    job = max(client.jobs(), key=lambda j: j["created"])
    final = client.wait(job["id"], progress=False)
    assert final["state"] == "cancelled", final
    assert final["done"] + final["epoch"] * final["samples"] < 5 * 200


def test_client_errors_are_clear(cluster, client, owner, tmp_path):
    with pytest.raises(ValueError, match="num / 2\\*\\*shift"):
        client.train("ds-000000000000", learning_rate=0.01)
    with pytest.raises(smlp.SMLPError):
        client.train("ds-000000000000")
    # Private by default: no warning for the strict profile; choosing fast says what S2 learns.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(smlp.SMLPError):
            client.train("ds-000000000000")
    with pytest.warns(UserWarning, match="fast profile lets S2 learn the bit-length"):
        with pytest.raises(smlp.SMLPError):
            client.train("ds-000000000000", profile="fast")
    assert smlp.SMLPClassifier().get_params()["profile"] == "strict"
    other = smlp.keygen(512, insecure_test_key=True)
    foreign = smlp.Owner(other).encrypt(np.eye(2), np.array([0, 1]), progress=False)
    with pytest.raises(smlp.SMLPError, match="key"):
        client.upload(foreign)
    with pytest.raises(smlp.SMLPError):
        smlp.Client(cluster.s1, tmp_path, "owner")  # no certificates there
    with pytest.raises(smlp.SMLPError):
        smlp.Client("127.0.0.1:1", cluster.pki, "owner", timeout=2)


def test_a_shared_model_serves_another_owner_under_its_own_key(cluster, client, owner, wdbc):
    X, y = wdbc
    data = owner.encrypt(X[:12], y[:12], progress=False)
    job = client.train(data, hidden=(2,), epochs=1, profile="strict", init_seed=5, detach=True)
    model_id = client.wait(job, progress=False)["result"]
    assert model_id.startswith("md-")
    # bob has a key of his own, which S2 holds and S1 knows as his.
    bob_sk = smlp.keygen(512, insecure_test_key=True)
    cluster.add_key(bob_sk)
    bob = cluster.client("bob")
    bob.register(bob_sk.public_key)
    bob_owner = smlp.Owner(bob_sk)
    new = X[30:34]
    theirs = bob_owner.encrypt(new, None, data.scaler, progress=False)
    with pytest.raises(smlp.SMLPError, match="not found"):
        bob.classify(model_id, theirs, progress=False)
    client.share(model_id, "bob")
    preds = bob.classify(model_id, theirs, progress=False)
    assert preds.fingerprint == bob_sk.public_key.fingerprint
    # Bit for bit the model owner's own classification of the same samples.
    mine = client.classify(model_id, owner.encrypt(new, None, data.scaler, progress=False), progress=False)
    assert (bob_owner.decrypt_scores(preds) == owner.decrypt_scores(mine)).all()
    client.unshare(model_id, "bob")
    with pytest.raises(smlp.SMLPError, match="not found"):
        bob.classify(model_id, theirs, progress=False)
