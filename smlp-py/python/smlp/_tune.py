"""``smlp.tune``: choose training settings in the clear, before encrypting (as ``smlp tune``)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence, Union

import numpy as np

from . import _native
from ._client import learning_rate_fraction

_LOSSES = {"smooth_hinge": "SmoothHinge", "smooth-hinge": "SmoothHinge", "squared": "Squared"}
_LOSS_NAMES = {"SmoothHinge": "smooth_hinge", "Squared": "squared"}

#: The learning rates tried by default (and by ``SMLPClassifier(learning_rate="auto")``).
LEARNING_RATES = (1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128)


def tune(
    X: Any,
    y: Any,
    *,
    hidden: Sequence[int] = (8,),
    batch: Sequence[int] = (16, 8),
    learning_rate: Sequence[float] = LEARNING_RATES,
    epochs: Sequence[int] = (1, 2),
    loss: str = "smooth_hinge",
    folds: int = 3,
    seconds: float = 60.0,
    seed: int = 1,
) -> Union["Any", List[Dict[str, Any]]]:
    """Cross-validates (``folds`` folds, stratified) the fixed-point twin of the encrypted
    training -- the same integer arithmetic, so its accuracy is the encrypted run's -- on the
    plaintext ``X``, ``y`` for every combination of ``batch``, ``learning_rate`` and ``epochs``,
    tried in that order for at most ``seconds``, on every core. Nothing is encrypted or sent:
    this runs on the owner's machine in seconds.

    Returns a pandas DataFrame (a list of dicts without pandas), best first: ``hidden``,
    ``batch``, ``learning_rate``, ``epochs``, ``loss``, ``mean`` and ``worst`` (fold accuracy),
    ``diverged`` (folds whose training left the fixed-point range; they count 0).
    """
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {sorted(_LOSSES)}")
    X = np.asarray(X, dtype=np.float64)
    classes, labels = np.unique(np.asarray(y), return_inverse=True)
    if X.ndim != 2 or len(labels) != len(X):
        raise ValueError(f"X must be 2-D with one label per row ({len(labels)} labels, shape {X.shape})")
    settings = []
    for e in epochs:
        for b in batch:
            for lr in learning_rate:
                num, shift = learning_rate_fraction(lr)
                settings.append({"hidden": [int(h) for h in hidden], "batch": int(b), "lr_num": num,
                                 "lr_shift": shift, "epochs": int(e), "loss": _LOSSES[loss]})
    scored = json.loads(_native.tune(X.tolist(), labels.tolist(), json.dumps(settings), folds, seconds, seed))
    rows = [
        {
            "hidden": tuple(s["setting"]["hidden"]),
            "batch": s["setting"]["batch"],
            "learning_rate": s["setting"]["lr_num"] / 2 ** s["setting"]["lr_shift"],
            "epochs": s["setting"]["epochs"],
            "loss": _LOSS_NAMES[s["setting"]["loss"]],
            "mean": s["mean"],
            "worst": s["worst"],
            "diverged": s["diverged"],
        }
        for s in scored
    ]
    # Best first: mean, then worst fold; a stable sort keeps the earlier (cheaper) of a tie.
    rows.sort(key=lambda r: (-r["mean"], -r["worst"]))
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - exercised only without pandas
        return rows
    return pd.DataFrame(rows)
