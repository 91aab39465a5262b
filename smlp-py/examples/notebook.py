# The README's notebook example: smlp's encrypted MLP next to scikit-learn's MLPClassifier on the
# same split of the Wisconsin breast-cancer data (100 training, 57 test samples, as the demo).
import smlp, time
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=100, test_size=57, stratify=y, random_state=0)
start = time.time()
with smlp.LocalCluster() as cluster:  # S2 and S1 as processes on loopback: 2048-bit key, mutual TLS
    clf = smlp.SMLPClassifier(hidden=(8,), epochs=2, client=cluster.client(), owner=cluster.owner(), progress=True)
    clf.fit(X_train, y_train)  # encrypted here, trained on ciphertexts at S1 with S2
    print(f"smlp, encrypted:            {clf.score(X_test, y_test):.3f}  ({time.time() - start:.0f} s)")
clear = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=2000, random_state=0)).fit(X_train, y_train)
print(f"scikit-learn, in the clear: {clear.score(X_test, y_test):.3f}")
