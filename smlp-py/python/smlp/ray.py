"""Data-parallel encrypted training on a Ray cluster (``pip install "smlp[ray]"``).

S1's work on a mini-batch splits across Ray actors: each actor is an S1 worker with its own
mutually authenticated TLS session to an S2 replica (``S1Worker``: the S1 certificate of the
deployment's kit, e.g. ``PKI/s1``), and returns the encrypted gradient sums of its shard
(postcard bytes through Ray's object store). The driver adds the shards' sums homomorphically,
applies the step and broadcasts the new encrypted model. The sums are exact integers under
encryption, so the result equals single-process training bit for bit (strict profile), whatever
the number of workers and the order in which their sums arrive.

Ray schedules, moves bytes and restarts what fails; the cryptography and the protocols stay in
Rust. A worker that dies, or whose S2 replica dies, is replaced (on the next replica) and its
shard computed again; nothing else is repeated.

>>> model = smlp.ray.train(dataset, s2=["10.0.0.5:7002", "10.0.0.6:7002"], pki="pki/s1",
...                        public_key=pk, hidden=(8,), workers=8)
>>> predictions = smlp.ray.classify(model, new_samples, s2=[...], pki="pki/s1", public_key=pk,
...                                 workers=8)

Classification splits the samples into one contiguous shard per worker; each worker classifies
its shard with S1's classifier and the driver joins the encrypted predictions in sample order
(the same ciphertexts' plaintexts as ``Client.classify``, bit for bit).

The driver holds only public material: the owner's public key, ciphertexts and the S1 kit (as
S1 does); nobody here can decrypt.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, Callable, List, Optional, Sequence, Union

from . import _native
from ._client import learning_rate_fraction
from ._native import EncryptedDataset, EncryptedModel, EncryptedPredictions, PublicKey, SMLPError

try:  # pragma: no cover - exercised where ray is installed
    import ray
except ImportError as e:  # pragma: no cover
    raise ImportError('smlp.ray needs Ray: pip install "smlp[ray]" (or pip install ray)') from e

__all__ = ["train", "classify", "Cluster", "Worker"]


class Cluster:
    """Where :func:`train` and :func:`classify` run, for ``SMLPClassifier(cluster=...)``: the S2
    replicas ``s2``, S1's TLS kit ``pki`` (the workers are S1 towards S2), ``workers`` actors per
    call, ``chunk`` samples per classification request, ``s2_name`` if S2's certificates do not
    carry the addresses' host. Needs ``ray.init()`` before ``fit``. Holds no secret and no
    connection (it pickles with the estimator)."""

    def __init__(self, s2: Union[str, Sequence[str]], pki: str, workers: int = 2, chunk: int = 32,
                 s2_name: Optional[str] = None) -> None:
        self.s2 = [s2] if isinstance(s2, str) else list(s2)
        self.pki, self.workers, self.chunk, self.s2_name = pki, workers, chunk, s2_name

    def __repr__(self) -> str:
        return f"smlp.ray.Cluster(s2={self.s2!r}, pki={self.pki!r}, workers={self.workers})"


class Worker:
    """One S1 worker (a Ray actor class: ``ray.remote(Worker)``): an S2 session, the data set
    cached once per training run."""

    def __init__(self, s2: str, pki: str, n: bytes, frac_bits: int, value_bits: int, kappa: int,
                 profile: str, s2_name: Optional[str] = None) -> None:
        self._worker = _native.S1Worker(s2, pki, PublicKey.from_n(n), frac_bits, value_bits, kappa,
                                        profile, s2_name)
        self._data: Optional[EncryptedDataset] = None
        self._data_token: Optional[str] = None

    def _dataset(self, data: List[Any], token: str) -> EncryptedDataset:
        if self._data_token != token:
            # `data` is [ObjectRef]: fetched from the object store once per run.
            self._data = EncryptedDataset.from_bytes(ray.get(data[0]))
            self._data_token = token
        assert self._data is not None
        return self._data

    def gradients(self, model: bytes, data: List[Any], token: str, indices: List[int],
                  loss: str) -> bytes:
        return self._worker.gradients(EncryptedModel.from_bytes(model), self._dataset(data, token),
                                      indices, loss)

    def classify(self, model: bytes, data: List[Any], token: str, indices: List[int],
                 chunk: int) -> bytes:
        return self._worker.classify(EncryptedModel.from_bytes(model), self._dataset(data, token),
                                     indices, chunk)


def _shards(indices: Sequence[int], parts: int) -> List[List[int]]:
    """`indices` in `parts` contiguous, nearly equal, non-empty shards."""
    parts = max(1, min(parts, len(indices)))
    size, extra = divmod(len(indices), parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        out.append(list(indices[start:end]))
        start = end
    return out


class _Pool:
    """The driver's workers: Ray actors at the S2 replicas (round robin), each shard's call
    retried on a new actor at the next replica when its actor or replica fails."""

    def __init__(self, replicas: List[str], pki: str, public_key: PublicKey, frac_bits: int,
                 value_bits: int, kappa: int, profile: str, workers: int, retries: int,
                 spent: dict, s2_name: Optional[str] = None) -> None:
        self._remote = ray.remote(Worker)
        self._next = itertools.count()
        self._args = (pki, public_key.n_bytes(), frac_bits, value_bits, kappa, profile, s2_name)
        self._replicas, self._retries, self._spent = replicas, retries, spent
        self.actors = [self._start() for _ in range(workers)]

    def _start(self) -> Any:
        addr = self._replicas[next(self._next) % len(self._replicas)]
        return self._remote.remote(addr, *self._args)

    def run(self, call: Callable[[Any, List[int]], Any], shards: List[List[int]]) -> List[Any]:
        """``call(actor, shard)`` for each shard on its own actor; the results in shard order."""
        pending = {i: call(self.actors[i], shard) for i, shard in enumerate(shards)}
        results: List[Any] = [None] * len(shards)
        failures = 0
        while pending:
            done, _ = ray.wait(list(pending.values()), num_returns=1)
            i = next(k for k, v in pending.items() if v == done[0])
            try:
                results[i] = ray.get(done[0])
                del pending[i]
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError):
                failures += 1
                self._spent["retries"] += 1
                if failures > self._retries * len(shards):
                    raise
                try:
                    ray.kill(self.actors[i])
                except Exception:  # already gone
                    pass
                self.actors[i] = self._start()
                pending[i] = call(self.actors[i], shards[i])
        return results

    def close(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # pragma: no cover
                pass


def _replicas(s2: Union[str, Sequence[str]]) -> List[str]:
    if not ray.is_initialized():
        raise SMLPError("call ray.init() first (ray.init() for this machine, or a cluster's address)")
    replicas = [s2] if isinstance(s2, str) else list(s2)
    if not replicas:
        raise SMLPError("s2: give at least one S2 address")
    return replicas


def train(
    data: EncryptedDataset,
    *,
    s2: Union[str, Sequence[str]],
    pki: str,
    public_key: PublicKey,
    hidden: Sequence[int] = tuple(_native.DEFAULTS["hidden"]),
    epochs: int = _native.DEFAULTS["epochs"],
    batch: int = _native.DEFAULTS["batch"],
    learning_rate: float = _native.DEFAULTS["learning_rate"],
    loss: str = _native.DEFAULTS["loss"],
    seed: int = _native.DEFAULTS["seed"],
    init_seed: int = 1,
    model: Optional[EncryptedModel] = None,
    workers: int = 2,
    profile: str = "strict",
    kappa: int = 80,
    value_bits: int = _native.DEFAULTS["value_bits"],
    retries: int = 3,
    on_step: Optional[Callable[[int, List[Any]], None]] = None,
    stats: Optional[dict] = None,
    checkpoint: Optional[str] = None,
    s2_name: Optional[str] = None,
) -> EncryptedModel:
    """Trains on ``data`` (labelled, encrypted under ``public_key``) with ``workers`` Ray actors,
    each with an S2 session at one of the replicas ``s2`` (round robin), as S1 with the kit
    ``pki``. Same order and steps as S1's trainer (``smlp train``): epochs in the order
    ``epoch_order(n, seed, epoch)``, mini-batches of ``batch`` whose gradients are summed; the
    initial weights are drawn from ``init_seed`` (as ``smlp train --init-seed``) unless
    ``model`` continues one. A shard whose worker fails is computed again by a new worker on the
    next replica, at most ``retries`` times in a row. ``on_step(step, actors)`` is called before
    each step (progress, tests). ``stats``, a dict, receives the driver's own seconds per part
    (``broadcast``: model to the object store, ``apply``: adding the shards and applying) and
    ``steps``, ``retries``. With ``checkpoint`` (a path), the model and its place in the epoch
    are written there after every step (atomically; the format of ``smlp fetch --checkpoint``),
    and a run that finds the file continues from it (its batch, seed and loss must be this
    run's): a driver that dies loses at most the step it was in. ``s2_name``: the name S2's
    certificates carry (default: the host of each address). Needs ``ray.init()`` first (a local
    or a cluster's)."""

    spent = {"broadcast": 0.0, "apply": 0.0, "steps": 0, "retries": 0}
    replicas = _replicas(s2)
    if batch < 1 or epochs < 1 or workers < 1:
        raise ValueError("batch, epochs and workers must be at least 1")
    if data.fingerprint != public_key.fingerprint:
        raise SMLPError(f"the data set is encrypted under key {data.fingerprint}, not {public_key.fingerprint}")
    num, shift = learning_rate_fraction(learning_rate)
    frac_bits = data.frac_bits
    n = len(data)
    position = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        model, position = _native.resume_checkpoint(checkpoint, public_key, epochs, batch, seed, loss, n)
        if model.profile != profile or model.frac_bits != frac_bits or model.value_bits != value_bits:
            raise SMLPError(f"{checkpoint}: the checkpoint's model is {model!r}, not of this run's "
                            f"profile {profile}, f = {frac_bits}, l = {value_bits}")
        spent["resumed_at"] = (model.epochs_trained, position)
    elif model is None:
        model = _native.initial_model(public_key, data.features, [int(h) for h in hidden], data.classes,
                                      int(init_seed), num, shift, frac_bits, value_bits, profile)
    pool = _Pool(replicas, pki, public_key, frac_bits, value_bits, kappa, profile, workers, retries, spent,
                 s2_name)
    data_ref = ray.put(data.to_bytes())
    token = f"{id(data)}-{n}-{data.fingerprint}"
    step = 0
    try:
        while model.epochs_trained < epochs:
            epoch = model.epochs_trained
            order = _native.epoch_order(n, seed, epoch)
            chunks = [order[i:i + batch] for i in range(0, n, batch)]
            first, position = position // batch, 0
            for c, chunk in enumerate(chunks[first:], start=first):
                if on_step is not None:
                    on_step(step, pool.actors)
                t0 = time.perf_counter()
                model_bytes = ray.put(model.to_bytes())
                spent["broadcast"] += time.perf_counter() - t0
                results = pool.run(
                    lambda actor, shard: actor.gradients.remote(model_bytes, [data_ref], token, shard, loss),
                    _shards(chunk, len(pool.actors)),
                )
                t0 = time.perf_counter()
                last = c == len(chunks) - 1
                model = _native.apply_gradients(public_key, model, results, last)
                spent["apply"] += time.perf_counter() - t0
                if checkpoint is not None:
                    _native.save_checkpoint(checkpoint, model, epochs, batch, seed, loss,
                                            0 if last else (c + 1) * batch)
                step += 1
                spent["steps"] = step
    finally:
        if stats is not None:
            stats.update(spent)
        pool.close()
    return model.trained_with(epochs, batch, seed, loss, "all from smlp.ray.train's arguments")


def classify(
    model: EncryptedModel,
    data: EncryptedDataset,
    *,
    s2: Union[str, Sequence[str]],
    pki: str,
    public_key: PublicKey,
    workers: int = 2,
    chunk: int = 32,
    kappa: int = 80,
    retries: int = 3,
    stats: Optional[dict] = None,
    s2_name: Optional[str] = None,
) -> EncryptedPredictions:
    """Classifies the encrypted samples ``data`` with the encrypted ``model`` (both under
    ``public_key``) on ``workers`` Ray actors, each with an S2 session at one of the replicas
    ``s2`` as S1 with the kit ``pki``: one contiguous shard of the samples per worker, ``chunk``
    samples per request to S2, the shards' predictions joined in sample order. The session uses
    the model's profile. A shard whose worker fails is classified again by a new worker on the
    next replica, at most ``retries`` times per shard. ``stats``, a dict, receives ``retries``.
    Needs ``ray.init()`` first."""
    spent = {"retries": 0}
    replicas = _replicas(s2)
    if workers < 1 or chunk < 1:
        raise ValueError("workers and chunk must be at least 1")
    for what, fp in (("model", model.fingerprint), ("data set", data.fingerprint)):
        if fp != public_key.fingerprint:
            raise SMLPError(f"the {what} is encrypted under key {fp}, not {public_key.fingerprint}")
    n = len(data)
    if n == 0:
        raise SMLPError("no samples to classify")
    pool = _Pool(replicas, pki, public_key, model.frac_bits, model.value_bits, kappa, model.profile,
                 min(workers, n), retries, spent, s2_name)
    try:
        model_ref = ray.put(model.to_bytes())
        data_ref = ray.put(data.to_bytes())
        token = f"{id(data)}-{n}-{data.fingerprint}"
        results = pool.run(
            lambda actor, shard: actor.classify.remote(model_ref, [data_ref], token, shard, chunk),
            _shards(list(range(n)), len(pool.actors)),
        )
    finally:
        if stats is not None:
            stats.update(spent)
        pool.close()
    return _native.concat_predictions(public_key, results)
