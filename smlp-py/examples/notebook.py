# The README's notebook example: smlp's encrypted MLP next to scikit-learn's MLPClassifier on the
# same split of the Wisconsin breast-cancer data (100 training, 57 test samples, as the demo), then
# the fitted estimator saved with joblib, loaded, and asked for probabilities.
#
# `python notebook.py --insecure-test-key` runs the same code with 512-bit keys (what
# `cargo xtask wheel --check` runs in a clean virtual environment after installing the wheel) and
# fails when the encrypted accuracy is below 70 % (the 2048-bit runs measured 89.5-94.7 %).
import os, sys, tempfile, time
import joblib
import smlp
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

test_key = "--insecure-test-key" in sys.argv[1:]
keys = {"bits": 512, "insecure_test_key": True} if test_key else {}  # default: a 2048-bit key

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=100, test_size=57, stratify=y, random_state=0)
start = time.time()
with smlp.LocalCluster(**keys) as cluster:  # S2 and S1 as processes on loopback: mutual TLS
    clf = smlp.SMLPClassifier(hidden=(8,), epochs=2, client=cluster.client(), owner=cluster.owner(), progress=True)
    clf.fit(X_train, y_train)  # encrypted here, trained on ciphertexts at S1 with S2
    accuracy = clf.score(X_test, y_test)
    print(f"smlp, encrypted:            {accuracy:.3f}  ({time.time() - start:.0f} s)")

    saved = os.path.join(tempfile.mkdtemp(), "clf.joblib")
    joblib.dump(clf, saved)  # the encrypted model, scaler, classes, settings: no connection, no key
    clf = joblib.load(saved)
    clf.set_params(client=cluster.client(), owner=cluster.owner())  # given again after loading
    proba = clf.predict_proba(X_test)  # uncalibrated: a logistic of the decrypted scores
    print(f"smlp, loaded from {os.path.getsize(saved)} bytes: ROC AUC {roc_auc_score(y_test, proba[:, 1]):.3f}")
clear = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=2000, random_state=0)).fit(X_train, y_train)
print(f"scikit-learn, in the clear: {clear.score(X_test, y_test):.3f}")
print(f"smlp {smlp.__version__} from {os.path.dirname(smlp.__file__)}, bignum backend {smlp.BACKEND}")
if test_key and accuracy < 0.7:
    sys.exit(f"encrypted accuracy {accuracy:.3f} is below the check's floor of 0.7")
