"""python-paillier interoperability: keys, ciphertexts and a whole data set made by python-paillier
(a library nobody here wrote), used by smlp and back."""

import numpy as np
import pytest

import smlp
from smlp import phe as interop

phe = pytest.importorskip("phe")


@pytest.fixture(scope="module")
def phe_keys():
    return phe.generate_paillier_keypair(n_length=512)


def test_keys_and_jwk_files_come_across(phe_keys, tmp_path):
    pub, priv = phe_keys
    pk = interop.public_key_from_phe(pub)
    sk = interop.secret_key_from_phe(priv)
    assert sk.public_key == pk and int.from_bytes(pk.n_bytes(), "big") == pub.n
    back = interop.secret_key_to_phe(sk)
    assert (back.p, back.q) == (priv.p, priv.q) and interop.public_key_to_phe(pk) == pub
    # pheutil's JWK files (the layout of `pheutil genpkey`).
    b64 = phe.util.int_to_base64
    jwk_pub = {"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n": b64(pub.n), "kid": "t"}
    jwk_priv = {"kty": "DAJ", "key_ops": ["decrypt"], "p": b64(priv.p), "q": b64(priv.q), "pub": jwk_pub}
    import json

    (tmp_path / "pub.jwk").write_text(json.dumps(jwk_pub))
    assert interop.load_jwk_public(tmp_path / "pub.jwk") == pk
    assert interop.load_jwk_private(json.dumps(jwk_priv)).public_key == pk
    with pytest.raises(smlp.SMLPError, match="no private key"):
        interop.load_jwk_private(jwk_pub)


def test_ciphertexts_decrypt_to_the_same_numbers_both_ways(phe_keys):
    pub, priv = phe_keys
    sk = interop.secret_key_from_phe(priv)
    values = [0.0, 1.0, -1.5, 3.14159, -1234.000015, 2.0**-16]
    enc = [pub.encrypt(v, precision=2.0**-16) for v in values]
    assert {e.exponent for e in enc} == {-4}
    got = [int(m) for m in sk.decrypt_ints(interop.ciphertexts_from_phe(enc))]
    # python-paillier's own encoding at exponent -4: round(v · 16^4).
    assert got == [round(v * 65536) for v in values]
    # Coarser exponents are rescaled homomorphically; finer ones are refused.
    coarse = [pub.encrypt(7), pub.encrypt(-3)]
    assert [int(m) for m in sk.decrypt_ints(interop.ciphertexts_from_phe(coarse))] == [7 * 65536, -3 * 65536]
    with pytest.raises(smlp.SMLPError, match="finer"):
        interop.ciphertexts_from_phe([pub.encrypt(0.1)])  # exponent -32 and below
    # smlp's ciphertexts decrypt in python-paillier.
    cts = sk.public_key.encrypt_ints(["-5", "65536", "98304"])
    assert [priv.decrypt(x) for x in interop.to_phe(cts, pub)] == [-5 / 65536, 1.0, 1.5]


def test_a_python_paillier_data_set_trains_to_the_same_model_bit_for_bit(phe_keys, wdbc):
    pub, priv = phe_keys
    sk = interop.secret_key_from_phe(priv)
    owner = smlp.Owner(sk)
    X, y = wdbc[0][:8, :4], wdbc[1][:8]
    with smlp.LocalCluster(secret_key=sk) as cluster:
        client = cluster.client()
        mine = owner.encrypt(X, y, progress=False)
        # The same fixed-point integers, encrypted by python-paillier (integer encoding).
        x_fixed = np.rint(owner.decrypt_dataset(mine)[0] * 65536).astype(np.int64)
        theirs = interop.dataset_from_phe(
            pub,
            [[pub.encrypt(int(v)) for v in row] for row in x_fixed],
            [[pub.encrypt(int(label) * 65536)] for label in y],
            classes=2,
            encoding="fixed",
        )
        settings = dict(hidden=(2,), epochs=1, learning_rate=1 / 16, profile="strict", init_seed=11, progress=False)
        model_a = client.train(mine, **settings)
        model_b = client.train(theirs, **settings)
        a, b = owner.decrypt_model(model_a), owner.decrypt_model(model_b)
        assert a["shape"] == [4, 2, 1]
        for la, lb in zip(a["layers"], b["layers"]):
            assert la["weights_raw"].tolist() == lb["weights_raw"].tolist()
            assert la["biases_raw"].tolist() == lb["biases_raw"].tolist()
        # Classify python-paillier samples; read the scores back in python-paillier.
        unlabelled = interop.dataset_from_phe(
            pub, [[pub.encrypt(int(v)) for v in row] for row in x_fixed[:3]], encoding="fixed"
        )
        preds = client.classify(model_b, unlabelled, progress=False)
        ours = owner.decrypt_scores(preds)[:, 0]
        via_phe = [priv.decrypt(x) for row in interop.predictions_to_phe(preds, pub) for x in row]
        assert via_phe == ours.tolist()


def test_the_readme_flow_builds_the_data_set_smlp_would(phe_keys):
    pub, priv = phe_keys
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5, 3))
    y = np.array([0, 1, 1, 0, 1])
    X_enc = [[pub.encrypt(float(v), precision=2**-16) for v in row] for row in X]
    y_enc = [[pub.encrypt(int(label))] for label in y]
    data = interop.dataset_from_phe(pub, X_enc, y_enc, classes=2)
    assert (len(data), data.features, data.classes, data.labelled) == (5, 3, 2, True)
    x, targets = smlp.Owner(interop.secret_key_from_phe(priv)).decrypt_dataset(data)
    np.testing.assert_allclose(x, X, atol=2.0**-17)
    assert targets[:, 0].tolist() == y.astype(float).tolist()
    # Numbers under another key are refused (a ciphertext alone does not show its key).
    other, _ = phe.generate_paillier_keypair(n_length=512)
    with pytest.raises(smlp.SMLPError, match="another key"):
        interop.dataset_from_phe(pub, [[other.encrypt(1)]], classes=2)
