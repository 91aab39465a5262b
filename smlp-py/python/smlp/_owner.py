"""The data owner's side: keys, encryption of arrays, decryption of results."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    EncryptedDataset,
    EncryptedModel,
    EncryptedPredictions,
    PublicKey,
    Scaler,
    SecretKey,
)
from ._progress import Progress, ProgressArg

PathLike = Union[str, "os.PathLike[str]"]


def keygen(bits: int = 2048, *, insecure_test_key: bool = False) -> SecretKey:
    """Generates a Paillier key pair (n of ``bits`` bits) from the operating system's CSPRNG.

    ``bits`` below 2048 needs ``insecure_test_key=True`` (tests only; at least 256). Save it with
    ``key.save("keys")`` — the files ``keys/public.key`` and ``keys/secret.key`` (0600) of
    ``smlp keygen`` — and load it with ``SecretKey.load("keys/secret.key")``.
    """
    return SecretKey.generate(bits, insecure_test_key)


def feature_matrix(
    X: Any, names: Optional[Sequence[str]] = None
) -> Tuple[List[List[float]], List[str]]:
    """Rows of floats and column names from a numpy array, a pandas DataFrame or a list of rows."""
    columns = getattr(X, "columns", None)
    if columns is not None and names is None:
        names = [str(c) for c in columns]
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (samples × features), got shape {arr.shape}")
    if names is None:
        names = [f"x{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise ValueError(f"{len(names)} feature names for {arr.shape[1]} columns")
    return arr.tolist(), list(names)


class Owner:
    """The data owner: holds the secret key, encrypts data, decrypts models and predictions.

    Nothing here leaves the owner's machine except what :class:`smlp.Client` uploads.
    """

    def __init__(self, secret_key: Union[SecretKey, PathLike]) -> None:
        if not isinstance(secret_key, SecretKey):
            secret_key = SecretKey.load(os.fspath(secret_key))
        self.secret_key: SecretKey = secret_key

    @property
    def public_key(self) -> PublicKey:
        return self.secret_key.public_key

    # sklearn's clone() deep-copies parameters: an owner is shared, never copied.
    def __deepcopy__(self, memo: Dict[int, Any]) -> "Owner":
        return self

    def __copy__(self) -> "Owner":
        return self

    def __repr__(self) -> str:
        return f"Owner({self.public_key!r})"

    def encrypt(
        self,
        X: Any,
        y: Any = None,
        scaler: Optional[Union[Scaler, PathLike]] = None,
        *,
        classes: Optional[int] = None,
        frac_bits: int = 16,
        progress: ProgressArg = True,
        tune: Optional[str] = "auto",
    ) -> EncryptedDataset:
        """Standardises, encodes in fixed point (2^-``frac_bits``) and encrypts ``X``.

        ``y`` holds class indices 0..k-1 (training data) or is ``None`` (new samples to
        classify). Without ``scaler`` a standardiser is fitted on ``X`` (``ds.scaler``; saved as
        ``PATH.scaler.json`` by ``ds.save(PATH)``, like ``smlp encrypt``); give the training
        data's scaler for test and new samples. Encryption uses the secret key's CRT (same
        ciphertexts as with the public key, faster).

        Training data (``y`` given, scaler fitted here) gets training settings recorded in it, as
        ``smlp encrypt`` does: with ``tune="auto"`` the defaults with the learning rate chosen by
        3-fold cross-validation of the fixed-point twin (in the clear, seconds; ``ds.settings``);
        ``Client.train`` takes them as its defaults. ``tune=None`` records none.
        """
        if scaler is not None and not isinstance(scaler, Scaler):
            scaler = Scaler.load(os.fspath(scaler))
        names = None
        if scaler is not None and getattr(X, "columns", None) is None and scaler.feature_names:
            names = scaler.feature_names
        rows, names = feature_matrix(X, names)
        labels = None
        if y is not None:
            yy = np.asarray(y)
            if yy.ndim != 1 or not np.issubdtype(yy.dtype, np.integer) or (yy < 0).any():
                raise ValueError("y must be a 1-D array of class indices 0, 1, ..., k-1")
            labels = [int(v) for v in yy]
        with Progress(progress, "encrypting") as bar:
            return _native.encrypt(
                self.secret_key,
                rows,
                names,
                labels,
                classes,
                scaler,
                frac_bits,
                progress=bar,
                tune=tune,
            )

    def decrypt_predictions(self, predictions: EncryptedPredictions) -> np.ndarray:
        """The predicted class index of each sample."""
        classes, _ = _native.decrypt_predictions(self.secret_key, predictions)
        return np.asarray(classes, dtype=np.int64)

    def decrypt_scores(self, predictions: EncryptedPredictions) -> np.ndarray:
        """The network's output scores (samples × outputs; one column for two classes)."""
        _, scores = _native.decrypt_predictions(self.secret_key, predictions)
        if not scores and len(predictions):
            raise _native.SMLPError("these predictions hold no scores")
        return np.asarray(scores, dtype=np.float64).reshape(len(predictions), -1)

    def decrypt_model(self, model: EncryptedModel) -> Dict[str, Any]:
        """The model's weights: ``{"shape", "classes", ..., "layers": [{"weights", "biases",
        "weights_raw", "biases_raw"}]}`` with numpy arrays (weights are outputs × inputs), as
        ``smlp decrypt`` writes in JSON."""
        out = json.loads(_native.decrypt_model(self.secret_key, model))
        for layer in out["layers"]:
            layer["weights"] = np.asarray(layer["weights"], dtype=np.float64)
            layer["biases"] = np.asarray(layer["biases"], dtype=np.float64)
            layer["weights_raw"] = np.asarray(layer["weights_raw"], dtype=object)
            layer["biases_raw"] = np.asarray(layer["biases_raw"], dtype=object)
        return out

    def decrypt_dataset(self, data: EncryptedDataset) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The standardised features and (for training data) the targets of an encrypted data
        set, as reals."""
        x, y = _native.decrypt_dataset(self.secret_key, data)
        return np.asarray(x, dtype=np.float64), None if y is None else np.asarray(y)
