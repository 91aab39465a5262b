"""``SMLPClassifier``: a scikit-learn estimator whose training and inference run on ciphertexts."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from ._client import Client
from ._owner import Owner
from ._native import DEFAULTS as _DEFAULTS

try:  # scikit-learn is optional: without it the estimator still has the same API.
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import NotFittedError as _NotFitted

    _Bases: tuple = (ClassifierMixin, BaseEstimator)
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _Bases = (object,)

    class _NotFitted(ValueError, AttributeError):  # type: ignore[no-redef]
        """Raised by predict before fit (scikit-learn's NotFittedError when it is installed)."""


class SMLPClassifier(*_Bases):  # type: ignore[misc]
    """A multilayer perceptron trained and run on Paillier-encrypted data.

    ``fit(X, y)`` encrypts ``X`` and ``y`` here with the ``owner``'s key, uploads them to S1
    through ``client``, trains there (S1 with S2, on ciphertexts) and keeps the encrypted model
    (``model_``; nobody but the owner can read it: ``owner.decrypt_model(clf.model_)``).
    ``predict(X)`` encrypts the new samples, classifies them at S1 and decrypts the classes here.
    Follows scikit-learn's conventions (``get_params``/``set_params``, ``classes_``,
    ``n_features_in_``, ``score``), so it works in ``cross_val_score`` and pipelines.

    ``hidden``: hidden layer sizes; ``learning_rate``: num / 2**shift, or ``"auto"`` (the default:
    ``fit`` first cross-validates the fixed-point twin in the clear over 1/8 … 1/128 for the given
    batch, epochs and loss, ``smlp.tune``, and trains with the best; ``learning_rate_`` and
    ``tuning_`` say what it chose and why);
    ``batch``: mini-batch size (1: per-sample SGD); ``loss``: ``"smooth_hinge"`` (the default:
    error clip(o, 0, 1) - y) or ``"squared"`` (error o - y, the paper's); ``profile``: ``"strict"`` (the default: S2 learns
    nothing beyond 2^-kappa, bit-exact) or ``"fast"`` (S2 learns bit-lengths; warns); ``init_seed``: draw the initial weights here (reproducible; default: S1 and
    S2 draw them).

    **On a Ray cluster.** With ``cluster=smlp.ray.Cluster(s2=[...], pki="pki/s1", workers=8)``
    (after ``ray.init(...)``), ``fit`` trains with :func:`smlp.ray.train` and ``predict`` classifies
    with :func:`smlp.ray.classify` (no ``client``: this process drives the workers, which act as S1
    towards S2 with S1's kit; the same model bit for bit as through S1). Without ``init_seed`` the
    initial weights are drawn from seed 1 here. Another way, with nothing to change here: a
    ``client`` of an S1 that runs its jobs on Ray (``serve-s1 --ray``).

    **Saving.** A fitted estimator pickles (``pickle``, ``joblib.dump``) to its encrypted model
    (ciphertexts under the owner's key), the scaler, ``classes_``, the settings and the key's
    fingerprint -- never the ``client`` (a connection) nor the ``owner`` (the secret key). After
    loading, give them again (``set_params(client=..., owner=...)``) before ``predict``; an owner
    with another key is refused. As with any pickle, loading one runs code: load only your own.

    **Probabilities.** ``predict_proba`` maps the decrypted scores s to probabilities: for two
    classes p(classes_[1]) = 1 / (1 + exp(-4 (2 s - 1))), for more a softmax of 4 s. They rank
    like ``predict`` (the most probable class is the predicted one) but are **not calibrated**:
    wrap the estimator in ``sklearn.calibration.CalibratedClassifierCV`` for calibrated ones.
    """

    #: The slope of the score-to-probability map of :meth:`predict_proba`.
    PROBA_SLOPE = 4.0

    def __init__(
        self,
        hidden: Sequence[int] = tuple(_DEFAULTS["hidden"]),
        epochs: int = _DEFAULTS["epochs"],
        batch: int = _DEFAULTS["batch"],
        learning_rate: Any = "auto",
        loss: str = _DEFAULTS["loss"],
        profile: str = "strict",
        kappa: int = 80,
        seed: int = 1,
        init_seed: Optional[int] = None,
        client: Optional[Client] = None,
        owner: Optional[Owner] = None,
        progress: Any = False,
        cluster: Any = None,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch = batch
        self.learning_rate = learning_rate
        self.loss = loss
        self.profile = profile
        self.kappa = kappa
        self.seed = seed
        self.init_seed = init_seed
        self.client = client
        self.owner = owner
        self.progress = progress
        self.cluster = cluster

    if _Bases == (object,):  # pragma: no cover - the sklearn-free fallbacks

        def get_params(self, deep: bool = True) -> Dict[str, Any]:
            names = self.__init__.__code__.co_varnames[1 : self.__init__.__code__.co_argcount]
            return {n: getattr(self, n) for n in names}

        def set_params(self, **params: Any) -> "SMLPClassifier":
            for k, v in params.items():
                setattr(self, k, v)
            return self

        def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
            return float(np.mean(self.predict(X) == np.asarray(y)))

    def _parts(self) -> "tuple[Client, Owner]":
        if self.cluster is not None and self.owner is not None:
            return self.client, self.owner  # type: ignore[return-value]
        if self.client is None or self.owner is None:
            raise ValueError(
                "SMLPClassifier needs owner= (an smlp.Owner with the secret key) and client= (an "
                "smlp.Client of S1) or cluster= (an smlp.ray.Cluster), e.g. from "
                "smlp.LocalCluster(); a loaded estimator gets them with set_params(client=..., "
                "owner=...)"
            )
        return self.client, self.owner

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        # A connection and a secret key never go into a pickle.
        state["client"] = None
        state["owner"] = None
        # The model's id belongs to the S1 it was uploaded to: predict uploads it again (S1 keeps
        # one copy of identical uploads).
        state.pop("model_id_", None)
        if "model_" in state:
            state["key_fingerprint_"] = state["model_"].fingerprint
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

    def fit(self, X: Any, y: Any) -> "SMLPClassifier":
        """Encrypts ``X`` and ``y``, trains at S1 and keeps the encrypted model. Returns self."""
        client, owner = self._parts()
        X = np.asarray(X, dtype=np.float64) if getattr(X, "columns", None) is None else X
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one label per row of X ({len(X)})")
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("fit needs samples of at least two classes")
        self.n_features_in_ = int(np.shape(X)[1])
        if getattr(X, "columns", None) is not None:
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise ValueError('learning_rate must be a number num / 2**shift or "auto"')
            from ._tune import tune

            self.tuning_ = tune(np.asarray(X, dtype=np.float64), labels, hidden=tuple(self.hidden),
                                batch=(self.batch,), epochs=(self.epochs,), loss=self.loss,
                                seed=self.seed)
            best = self.tuning_.iloc[0] if hasattr(self.tuning_, "iloc") else self.tuning_[0]
            self.learning_rate_ = float(best["learning_rate"])
        else:
            self.learning_rate_ = self.learning_rate
        # The estimator chose its learning rate above (or was given one): nothing to record.
        data = owner.encrypt(X, labels, classes=len(self.classes_), progress=self.progress, tune=None)
        self.scaler_ = data.scaler
        if self.cluster is not None:
            from . import ray as sray

            c = self.cluster
            self.model_ = sray.train(
                data, s2=c.s2, pki=c.pki, public_key=owner.public_key, s2_name=c.s2_name,
                workers=c.workers, hidden=tuple(self.hidden), epochs=self.epochs, batch=self.batch,
                learning_rate=self.learning_rate_, loss=self.loss, profile=self.profile,
                kappa=self.kappa, seed=self.seed,
                init_seed=1 if self.init_seed is None else self.init_seed,
            )
            return self
        self.dataset_id_ = client.upload(data, "SMLPClassifier.fit")
        self.model_ = client.train(
            self.dataset_id_,
            hidden=tuple(self.hidden),
            epochs=self.epochs,
            batch=self.batch,
            learning_rate=self.learning_rate_,
            loss=self.loss,
            profile=self.profile,
            kappa=self.kappa,
            seed=self.seed,
            init_seed=self.init_seed,
            progress=self.progress,
        )
        self.model_id_ = client.upload(self.model_, "SMLPClassifier.model")
        return self

    def _predictions(self, X: Any) -> Any:
        client, owner = self._parts()
        if not hasattr(self, "model_"):
            raise _NotFitted("this SMLPClassifier is not fitted yet: call fit(X, y) first")
        if self.model_.fingerprint != owner.public_key.fingerprint:
            from ._native import SMLPError

            raise SMLPError(
                f"wrong key: the model is encrypted under key {self.model_.fingerprint}, but this "
                f"owner's key is {owner.public_key.fingerprint}"
            )
        if np.shape(X)[1] != self.n_features_in_:
            raise ValueError(f"X has {np.shape(X)[1]} features, the model {self.n_features_in_}")
        if getattr(X, "columns", None) is None:
            X = np.asarray(X, dtype=np.float64)
        data = owner.encrypt(X, None, self.scaler_, progress=self.progress)
        if self.cluster is not None:
            from . import ray as sray

            c = self.cluster
            return sray.classify(self.model_, data, s2=c.s2, pki=c.pki, public_key=owner.public_key,
                                 workers=c.workers, chunk=c.chunk, kappa=self.kappa, s2_name=c.s2_name)
        if getattr(self, "model_id_", None) is None:
            self.model_id_ = client.upload(self.model_, "SMLPClassifier.model")
        return client.classify(self.model_id_, data, profile=self.profile, kappa=self.kappa,
                               progress=self.progress)

    def predict(self, X: Any) -> np.ndarray:
        """Classes of ``X``: encrypted here, classified at S1, decrypted here."""
        predictions = self._predictions(X)
        return self.classes_[self._parts()[1].decrypt_predictions(predictions)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities per class, in ``classes_`` order (samples x classes), from the decrypted
        scores (see the class's docs: they rank like ``predict`` and are not calibrated)."""
        _, owner = self._parts()
        scores = owner.decrypt_scores(self._predictions(X))
        slope = self.PROBA_SLOPE
        if scores.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-slope * (2.0 * scores[:, 0] - 1.0)))
            return np.column_stack([1.0 - p1, p1])
        z = slope * scores
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def decision_function(self, X: Any) -> np.ndarray:
        """The network's decrypted output scores: one per sample for two classes (the class is
        ``classes_[1]`` where it is above 1/2), samples × classes otherwise."""
        _, owner = self._parts()
        scores = owner.decrypt_scores(self._predictions(X))
        return scores[:, 0] if scores.shape[1] == 1 else scores
