"""Interoperability with python-paillier (``phe``): keys, ciphertexts and data sets.

python-paillier and smlp both use Paillier with g = n + 1, so a ciphertext is the same number in
both: only the encoding of reals differs. python-paillier encodes x as a mantissa m and an
exponent e with x = m · 16^e; smlp uses a fixed point x̂ = round(x · 2^f) (f = 16 by default,
that is e = -f/4 = -4). This module moves keys and ciphertexts between the two, rescaling a
python-paillier ciphertext to smlp's fixed point with python-paillier's own
``decrease_exponent_to`` (a homomorphic multiplication by a power of 16). Only the ``phe``
package is needed; nothing here decrypts.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Iterable, List, Optional, Sequence, Union

from ._native import EncryptedDataset, EncryptedPredictions, PublicKey, SecretKey, SMLPError

PathLike = Union[str, "os.PathLike[str]"]


def _phe() -> Any:
    try:
        import phe
    except ImportError as e:  # pragma: no cover - phe is a test dependency
        raise ImportError("python-paillier is not installed: pip install phe") from e
    return phe


def _to_bytes(v: int) -> bytes:
    return v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")


def _from_bytes(b: bytes) -> int:
    return int.from_bytes(b, "big")


# -- keys ----------------------------------------------------------------------------------


def public_key_from_phe(public_key: Any) -> PublicKey:
    """smlp's :class:`PublicKey` of a ``phe.PaillierPublicKey``."""
    if public_key.g != public_key.n + 1:
        raise SMLPError("only keys with g = n + 1 (python-paillier's default) are supported")
    return PublicKey.from_n(_to_bytes(public_key.n))


def secret_key_from_phe(private_key: Any) -> SecretKey:
    """smlp's :class:`SecretKey` of a ``phe.PaillierPrivateKey`` (from its primes p and q)."""
    return SecretKey.from_primes(_to_bytes(private_key.p), _to_bytes(private_key.q))


def public_key_to_phe(public_key: PublicKey) -> Any:
    """A ``phe.PaillierPublicKey`` of smlp's key."""
    return _phe().PaillierPublicKey(_from_bytes(public_key.n_bytes()))


def secret_key_to_phe(secret_key: SecretKey) -> Any:
    """A ``phe.PaillierPrivateKey`` of smlp's key."""
    p, q = secret_key.primes()
    return _phe().PaillierPrivateKey(public_key_to_phe(secret_key.public_key), _from_bytes(p), _from_bytes(q))


def _b64int(s: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def _jwk(source: Union[PathLike, str, dict]) -> dict:
    if isinstance(source, dict):
        return source
    text = str(source)
    if not text.lstrip().startswith("{"):
        with open(os.fspath(source), encoding="utf-8") as f:
            text = f.read()
    data = json.loads(text)
    if data.get("kty") != "DAJ":
        raise SMLPError("not a python-paillier JWK key (kty must be \"DAJ\")")
    return data


def load_jwk_public(source: Union[PathLike, str, dict]) -> PublicKey:
    """smlp's :class:`PublicKey` from a ``pheutil genpkey``/``extract`` public JWK (file, text or
    dict)."""
    return PublicKey.from_n(_to_bytes(_b64int(_jwk(source)["n"])))


def load_jwk_private(source: Union[PathLike, str, dict]) -> SecretKey:
    """smlp's :class:`SecretKey` from a ``pheutil genpkey`` private JWK (file, text or dict)."""
    data = _jwk(source)
    if "p" not in data or "q" not in data:
        raise SMLPError("the JWK holds no private key (p and q)")
    sk = SecretKey.from_primes(_to_bytes(_b64int(data["p"])), _to_bytes(_b64int(data["q"])))
    if "pub" in data and _b64int(data["pub"]["n"]) != _from_bytes(sk.public_key.n_bytes()):
        raise SMLPError("the JWK's public n is not p·q")
    return sk


# -- ciphertexts ---------------------------------------------------------------------------


def _exponent(frac_bits: int) -> int:
    if frac_bits % 4:
        raise SMLPError(f"f = {frac_bits} is not a multiple of 4: no python-paillier exponent matches 2^-f")
    return -(frac_bits // 4)


def ciphertexts_from_phe(
    numbers: Iterable[Any], frac_bits: int = 16, *, encoding: str = "phe", public_key: Any = None
) -> List[bytes]:
    """Ciphertexts (bytes) in smlp's fixed point of ``phe.EncryptedNumber`` values.

    ``encoding="phe"``: each number is a real x = m·16^e as python-paillier encodes it; it is
    rescaled to x̂ = x·2^f with ``decrease_exponent_to(-f/4)`` (refused when e < -f/4: that
    would need a division, i.e. decryption — encrypt with ``precision=2**-f`` or coarser).
    ``encoding="fixed"``: each number already encrypts smlp's integer x̂ (exponent 0).
    With ``public_key`` (a ``phe.PaillierPublicKey``), numbers under another key are refused (a
    ciphertext alone does not show its key).
    """
    target = _exponent(frac_bits)
    out = []
    for x in numbers:
        if public_key is not None and x.public_key != public_key:
            raise SMLPError("a python-paillier number is encrypted under another key")
        if encoding == "fixed":
            if x.exponent != 0:
                raise SMLPError(f"encoding='fixed' expects integers (exponent 0), got exponent {x.exponent}")
        elif encoding == "phe":
            if x.exponent < target:
                raise SMLPError(
                    f"a python-paillier number has exponent {x.exponent}, finer than smlp's 2^-{frac_bits} "
                    f"(exponent {target}); encrypt with precision=2**-{frac_bits} or a coarser exponent"
                )
            if x.exponent > target:
                x = x.decrease_exponent_to(target)
        else:
            raise ValueError("encoding must be 'phe' or 'fixed'")
        out.append(_to_bytes(x.ciphertext(be_secure=True)))
    return out


def to_phe(ciphertexts: Iterable[bytes], public_key: Any, frac_bits: int = 16) -> List[Any]:
    """``phe.EncryptedNumber`` values of smlp ciphertexts at scale 2^f (``public_key``: the
    ``phe.PaillierPublicKey``); python-paillier's ``decrypt`` then gives the reals."""
    phe = _phe()
    e = _exponent(frac_bits)
    return [phe.EncryptedNumber(public_key, _from_bytes(c), e) for c in ciphertexts]


def dataset_from_phe(
    public_key: Any,
    X: Sequence[Sequence[Any]],
    y: Optional[Sequence[Sequence[Any]]] = None,
    *,
    classes: int = 2,
    frac_bits: int = 16,
    encoding: str = "phe",
) -> EncryptedDataset:
    """An smlp :class:`EncryptedDataset` of data encrypted with python-paillier.

    ``X``: rows of ``EncryptedNumber`` features (standardised by the owner); ``y``: rows of
    encrypted targets (one per sample, 0 or 1, for two classes; one-hot for k classes), or
    ``None`` for samples to classify. See :func:`ciphertexts_from_phe` for ``encoding``.
    Every ciphertext is checked under the key.
    """
    pk = public_key_from_phe(public_key)
    xs = [ciphertexts_from_phe(row, frac_bits, encoding=encoding, public_key=public_key) for row in X]
    ys = None if y is None else [
        ciphertexts_from_phe(row, frac_bits, encoding=encoding, public_key=public_key) for row in y
    ]
    return EncryptedDataset.from_ciphertexts(pk, xs, ys, classes, frac_bits)


def predictions_to_phe(predictions: EncryptedPredictions, public_key: Any) -> List[List[Any]]:
    """The encrypted output scores of smlp's predictions as ``phe.EncryptedNumber`` rows."""
    return [to_phe(row, public_key, predictions.frac_bits) for row in predictions.score_ciphertexts()]
