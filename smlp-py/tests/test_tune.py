"""smlp.tune and SMLPClassifier(learning_rate="auto"): settings chosen in the clear."""

import numpy as np
import pandas as pd

import smlp


def test_tune_cross_validates_the_grid_best_first(wdbc):
    X, y = wdbc
    table = smlp.tune(X[:200], np.where(y[:200] == 1, "benign", "malignant"), hidden=(4,), seconds=30)
    assert isinstance(table, pd.DataFrame) and len(table) == 20
    assert list(table.columns) == ["hidden", "batch", "learning_rate", "epochs", "loss", "mean", "worst", "diverged"]
    assert (table["mean"].diff().dropna() <= 1e-12).all(), "best first"
    assert (table["worst"] <= table["mean"] + 1e-12).all()
    assert table.iloc[0]["mean"] >= 0.85
    assert set(table["learning_rate"]) == set(smlp._tune.LEARNING_RATES)


def test_auto_learning_rate_is_chosen_in_the_clear_before_training(client, owner, wdbc):
    X, y = wdbc
    clf = smlp.SMLPClassifier(hidden=(3,), batch=8, epochs=1, init_seed=2, client=client, owner=owner)
    assert clf.learning_rate == "auto"
    clf.fit(X[:48], y[:48])
    assert len(clf.tuning_) == 5 and clf.learning_rate_ in smlp._tune.LEARNING_RATES
    assert clf.learning_rate_ == clf.tuning_.iloc[0]["learning_rate"]
    # The model was trained with it: its fixed-point parameters carry η.
    model = owner.decrypt_model(clf.model_)
    assert model["learning_rate"]["value"] == clf.learning_rate_
