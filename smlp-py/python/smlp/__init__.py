"""smlp: train and run a multilayer perceptron on Paillier-encrypted data.

The data owner encrypts its data here (:class:`Owner`), a cloud server S1 trains on the
ciphertexts with the help of a second, non-colluding server S2 (:class:`Client`,
:class:`LocalCluster`), and only the owner can decrypt the model and the predictions.
:class:`SMLPClassifier` wraps it all as a scikit-learn estimator; :mod:`smlp.phe` brings
python-paillier keys and ciphertexts in and out.

Python bindings of the smlp Rust workspace: the cryptography, the protocols and the file formats
are the Rust crates', shared with the ``smlp`` command line (also available as ``python -m smlp``).
"""

from ._native import (
    BACKEND,
    DEFAULTS,
    EncryptedDataset,
    EncryptedModel,
    EncryptedPredictions,
    PublicKey,
    Scaler,
    SecretKey,
    SMLPError,
    __version__,
)
from ._client import Client, Job, JobFailed, learning_rate_fraction
from ._cluster import LocalCluster
from ._estimator import SMLPClassifier
from ._owner import Owner, keygen
from ._tune import tune

__all__ = [
    "BACKEND",
    "Client",
    "DEFAULTS",
    "EncryptedDataset",
    "EncryptedModel",
    "EncryptedPredictions",
    "Job",
    "JobFailed",
    "LocalCluster",
    "Owner",
    "PublicKey",
    "SMLPClassifier",
    "Scaler",
    "SecretKey",
    "SMLPError",
    "__version__",
    "keygen",
    "learning_rate_fraction",
    "tune",
]
