"""Known-answer vectors for smlp's DGK implementation, made with an independent one:
TNO's tno.mpc.encryption_schemes.dgk (Apache-2.0, https://pypi.org/project/tno.mpc.encryption_schemes.dgk/).

    python3 -m venv venv && venv/bin/pip install tno.mpc.encryption_schemes.dgk==3.0.5 gmpy2
    venv/bin/python make_dgk_vectors.py > dgk_tno.json  # in paillier/tests/data

Each key is TNO's key generation; each case is a plaintext m, an exponent r and TNO's
ciphertext g^m·h^r mod n, its zero test and decryption, and TNO's homomorphic sum and scalar
product. smlp's test (paillier/tests/dgk.rs) reads the key, re-encrypts with the same r,
decrypts and zero-tests TNO's ciphertexts and repeats the homomorphic operations.
"""
import json
import secrets

from tno.mpc.encryption_schemes.dgk import DGK
from tno.mpc.encryption_schemes.dgk.dgk import DGKCiphertext


def key(v_bits, n_bits, u):
    pk, sk = DGK.generate_key_material(v_bits, n_bits, u)
    return DGK(pk, sk, full_decryption=True)


def vectors(scheme, count):
    pk, sk = scheme.public_key, scheme.secret_key
    out = {
        "n": str(pk.n), "g": str(pk.g), "h": str(pk.h), "u": pk.u, "t": pk.t,
        "p": str(sk.p), "q": str(sk.q), "v_p": str(sk.v_p), "v_q": str(sk.v_q),
        "cases": [],
    }
    half = pk.u // 2  # TNO encodes plaintexts signed, in [-(u//2), u//2]
    ms = [0, 1, 2, -1, half, -half] + [secrets.randbelow(pk.u) - half for _ in range(count - 6)]
    for m in ms:
        r = secrets.randbelow(1 << int(2.5 * pk.t)) + 1
        c = scheme.unsafe_encrypt(m)
        c.apply_randomness(pow(pk.h, r, pk.n))
        m2 = secrets.randbelow(pk.u) - half
        c2 = scheme.encrypt(m2)
        k = secrets.randbelow(pk.u) - half
        out["cases"].append({
            "m": m,
            "r": str(r),
            "c": str(c.peek_value()),
            "is_zero": scheme.is_zero(c),
            "decrypted": int(scheme.decrypt(c)) % pk.u,
            "other": str(c2.peek_value()),
            "other_m": m2,
            "sum": str((c + c2).peek_value()),
            "k": k,
            "product": str((c * k).peek_value()),
        })
    return out


print(json.dumps({
    "source": "tno.mpc.encryption_schemes.dgk 3.0.5 (TNO, Apache-2.0)",
    "keys": [vectors(key(160, 1024, 227), 12), vectors(key(160, 2048, 1549), 8)],
}, indent=1))
