"""The service client: the owner's requests to S1 (upload, train, jobs, wait, fetch, classify)."""

from __future__ import annotations

import json
import os
import time
import warnings
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _native
from ._native import EncryptedDataset, EncryptedModel, EncryptedPredictions, PublicKey, SMLPError
from ._progress import Progress, ProgressArg

PathLike = Union[str, "os.PathLike[str]"]
Fetched = Union[EncryptedDataset, EncryptedModel, EncryptedPredictions]


def _warn_if_fast(profile: Optional[str]) -> None:
    if profile == "fast":
        warnings.warn(_native.FAST_WARNING, UserWarning, stacklevel=3)


class JobFailed(SMLPError):
    """A job ended failed or cancelled; ``.info`` is its final status."""

    def __init__(self, message: str, info: Dict[str, Any]) -> None:
        super().__init__(message)
        self.info = info


def _job_info(raw: Dict[str, Any]) -> Dict[str, Any]:
    info = dict(raw)
    info["kind"] = str(info["kind"]).lower()
    info["state"] = str(info["state"]).lower()
    return info


def learning_rate_fraction(lr: float, max_shift: int = 16) -> Tuple[int, int]:
    """``(num, shift)`` with ``num / 2**shift == lr`` exactly (smlp's learning rates are dyadic:
    the update is a multiplication and a shift on ciphertexts)."""
    f = Fraction(lr).limit_denominator(1 << max_shift)
    den = f.denominator
    if lr <= 0 or f != Fraction(lr) or den & (den - 1):
        raise ValueError(
            f"learning_rate {lr} is not num / 2**shift with shift <= {max_shift} "
            "(e.g. 1/64 = 0.015625, 3/128 = 0.0234375)"
        )
    return f.numerator, den.bit_length() - 1


class Job:
    """A job at S1 (training or classification). It runs without this process: ``wait()`` picks
    it up again any time, ``result()`` fetches what it made."""

    def __init__(self, client: "Client", info: Dict[str, Any]) -> None:
        self.client = client
        self.id: str = info["id"]
        self.kind: str = info["kind"]
        self._info = info

    def info(self) -> Dict[str, Any]:
        """The job's current status (state, epoch, done, samples, samples_per_s, note, ...)."""
        self._info = self.client.job(self.id)
        return self._info

    def wait(self, progress: ProgressArg = True, *, cancel_on_interrupt: bool = False) -> Dict[str, Any]:
        """Follows the job to its end; see :meth:`Client.wait`."""
        self._info = self.client.wait(self.id, progress, cancel_on_interrupt=cancel_on_interrupt)
        return self._info

    def result(self) -> Fetched:
        """The job's result (waits first if it is still running): the encrypted model of a
        training job, the encrypted predictions of a classification job."""
        info = self._info if self._info["state"] == "done" else self.wait(progress=False)
        if info["state"] != "done":
            raise JobFailed(f"job {self.id} {info['state']}: {info.get('note') or ''}", info)
        return self.client.fetch(self.id)

    def cancel(self) -> str:
        return self.client.cancel(self.id)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.kind}, {self._info['state']})"


class Client:
    """A connection to S1 as one owner, over mutually authenticated TLS with the owner's
    certificate ``pki/owner-OWNER.crt`` of the deployment PKI (``smlp pki``).

    Mirrors the CLI: :meth:`upload`, :meth:`train`, :meth:`jobs`, :meth:`wait`, :meth:`fetch`,
    :meth:`classify`, :meth:`cancel`, :meth:`list`, :meth:`delete`. Jobs run at S1 without
    this process; a dropped connection is re-opened on the next call.
    """

    def __init__(
        self,
        s1: str,
        pki: PathLike,
        owner: str = "owner",
        *,
        s1_name: Optional[str] = None,
        timeout: float = 600,
        reconnect: float = 120,
    ) -> None:
        self.s1 = s1
        self.pki = os.fspath(pki)
        self.owner = owner
        self.reconnect = reconnect
        self._native = _native.Client(s1, self.pki, owner, s1_name, int(max(1, timeout)))
        #: What the last :meth:`train` used and where each setting came from.
        self.last_settings: Optional[str] = None

    # sklearn's clone() deep-copies parameters: a client is shared, never copied.
    def __deepcopy__(self, memo: Dict[int, Any]) -> "Client":
        return self

    def __copy__(self) -> "Client":
        return self

    def __repr__(self) -> str:
        return f"Client(s1={self.s1!r}, owner={self.owner!r})"

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def keys(self) -> List[PublicKey]:
        """The public keys this owner registered at S1 (every upload must be under one)."""
        return self._native.keys()

    def register(self, public_key: PublicKey) -> str:
        """Registers one of this owner's public keys at S1 (once per key; a key belongs to the
        first owner who registers it). S2 must hold its secret half (``smlp seal-key``, then
        ``smlp s2-keys add`` by S2's operator) before S1 can train under it."""
        return self._native.register(public_key)

    # -- objects -------------------------------------------------------------------------

    def upload(self, data: Union[EncryptedDataset, EncryptedModel, PathLike], name: Optional[str] = None) -> str:
        """Uploads an encrypted data set or model (object or file); S1 keeps it. Returns its id
        (an identical data set of this owner is stored once)."""
        if not isinstance(data, (EncryptedDataset, EncryptedModel)):
            path = os.fspath(data)
            name = name or os.path.basename(path)
            try:
                data = EncryptedDataset.load(path)
            except SMLPError:
                data = EncryptedModel.load(path)
        if isinstance(data, EncryptedModel):
            raw = self._native.upload_model(data, name or "model")
        else:
            raw = self._native.upload(data, name or "dataset")
        return json.loads(raw)["id"]

    def fetch(self, id: str, *, checkpoint: bool = False) -> Fetched:
        """A stored object, or a job's result (``checkpoint=True``: a training job's latest
        checkpoint, as a model)."""
        kind, body = self._native.fetch(id, checkpoint)
        if kind == "dataset":
            return EncryptedDataset.from_bytes(body)
        if kind == "predictions":
            return EncryptedPredictions.from_bytes(body)
        return EncryptedModel.from_bytes(body)

    def list(self, what: str = "datasets") -> List[Dict[str, Any]]:
        """The owner's ``"datasets"``, ``"models"`` or ``"predictions"`` at S1."""
        return json.loads(self._native.list(what))

    def delete(self, id: str) -> str:
        """Deletes an object (not while a job uses it) or an ended job."""
        return self._native.delete(id)

    def share(self, model: str, with_: str) -> str:
        """Lets the owner ``with_`` classify with our model ``model`` (an id at S1) under its own
        key, as ``smlp share``: S1 switches keys through S2, the model never leaves our key."""
        return self._native.share(model, with_, True)

    def unshare(self, model: str, with_: str) -> str:
        """Stops a :meth:`share`."""
        return self._native.share(model, with_, False)

    # -- jobs ----------------------------------------------------------------------------

    def jobs(self) -> List[Dict[str, Any]]:
        """The owner's jobs with state, progress, throughput and notes."""
        return [_job_info(j) for j in json.loads(self._native.jobs())]

    def job(self, id: str) -> Dict[str, Any]:
        """One job's status."""
        for j in self.jobs():
            if j["id"] == id:
                return j
        raise SMLPError(f"no job {id} at S1")

    def cancel(self, job: Union[str, Job]) -> str:
        """Cancels a queued or running job (a running one stops at its next exchange with S2)."""
        return self._native.cancel(job.id if isinstance(job, Job) else job)

    def wait(
        self,
        job: Union[str, Job],
        progress: ProgressArg = True,
        *,
        cancel_on_interrupt: bool = False,
        poll: float = 0.5,
    ) -> Dict[str, Any]:
        """Follows a job until it ends and returns its final status (``state``: ``"done"``,
        ``"failed"`` or ``"cancelled"``). Reconnects for up to ``reconnect`` seconds when the
        link to S1 drops. On Ctrl-C (KeyboardInterrupt) the job goes on at S1 unless
        ``cancel_on_interrupt``, which cancels it first; the interrupt is re-raised."""
        id = job.id if isinstance(job, Job) else job
        last_ok = time.monotonic()
        with Progress(progress, "job") as bar:
            try:
                while True:
                    try:
                        info = self.job(id)
                        last_ok = time.monotonic()
                    except SMLPError as e:
                        if "no job" in str(e) or time.monotonic() - last_ok > self.reconnect:
                            raise
                        time.sleep(poll)
                        continue
                    total = max(1, info["epochs"]) * max(1, info["samples"])
                    done = info["epoch"] * info["samples"] + info["done"]
                    label = (
                        f"epoch {min(info['epoch'] + 1, info['epochs'])}/{info['epochs']}"
                        if info["kind"] == "train"
                        else "classify"
                    )
                    bar(min(done, total) if info["state"] != "done" else total, total, label)
                    if info["state"] in ("done", "failed", "cancelled"):
                        return info
                    time.sleep(poll)
            except KeyboardInterrupt:
                if cancel_on_interrupt:
                    try:
                        self.cancel(id)
                    except SMLPError:
                        pass
                raise

    def _finish(self, job: Job, detach: bool, progress: ProgressArg) -> Union[Job, Fetched]:
        if detach:
            return job
        info = job.wait(progress, cancel_on_interrupt=True)
        if info["state"] != "done":
            raise JobFailed(
                f"job {job.id} {info['state']}: {info.get('note') or 'no reason given'}", info
            )
        return self.fetch(job.id)

    def _stored(self, obj: Any) -> str:
        """The id at S1 of an id, an object or a file (uploading the latter two)."""
        if isinstance(obj, str) and not os.path.exists(obj):
            return obj
        return self.upload(obj)

    def train(
        self,
        data: Union[str, EncryptedDataset, PathLike],
        *,
        hidden: Optional[Sequence[int]] = None,
        epochs: Optional[int] = None,
        batch: Optional[int] = None,
        learning_rate: Optional[float] = None,
        profile: str = "strict",
        kappa: int = 80,
        seed: Optional[int] = None,
        value_bits: Optional[int] = None,
        init_seed: Optional[int] = None,
        loss: Optional[str] = None,
        detach: bool = False,
        progress: ProgressArg = True,
    ) -> Union[EncryptedModel, Job]:
        """Trains an MLP at S1 (with S2) on an encrypted data set: an id at S1, an
        :class:`EncryptedDataset` or a file (uploaded first). Blocks and returns the encrypted
        model, or with ``detach=True`` returns the :class:`Job` at once. Ctrl-C while blocked
        cancels the job. A setting left ``None`` is the one recorded in the data set when it was
        encrypted (``Owner.encrypt`` chooses the learning rate for the data), else the default
        (``smlp.DEFAULTS``), as ``smlp train`` does; ``self.last_settings`` says what was used and
        where it came from. ``learning_rate`` must be num / 2**shift; ``init_seed`` draws the
        initial weights here (reproducible runs; default: S1 and S2 draw them, nobody sees them);
        ``loss``: ``"smooth_hinge"`` (error clip(o, 0, 1) - y, bounded: stable at larger rates)
        or ``"squared"`` (error o - y, the paper's)."""
        _warn_if_fast(profile)
        dataset = self._stored(data)
        num, shift = learning_rate_fraction(learning_rate) if learning_rate is not None else (None, None)
        raw, self.last_settings = self._native.train(
            dataset,
            None if hidden is None else [int(h) for h in hidden],
            None if epochs is None else int(epochs),
            None if batch is None else int(batch),
            None if seed is None else int(seed),
            num,
            shift,
            None if value_bits is None else int(value_bits),
            profile,
            int(kappa),
            init_seed,
            loss,
        )
        return self._finish(Job(self, _job_info(json.loads(raw))), detach, progress)

    def classify(
        self,
        model: Union[str, EncryptedModel, PathLike],
        data: Union[str, EncryptedDataset, PathLike],
        *,
        profile: Optional[str] = None,
        kappa: int = 80,
        chunk: int = 32,
        detach: bool = False,
        progress: ProgressArg = True,
    ) -> Union[EncryptedPredictions, Job]:
        """Classifies encrypted samples with an encrypted model at S1 (each an id, an object or
        a file, uploaded first). Blocks and returns the encrypted predictions, or with
        ``detach=True`` the :class:`Job`."""
        _warn_if_fast(profile)
        model_id = self._stored(model)
        data_id = self._stored(data)
        raw = self._native.classify(model_id, data_id, chunk, profile, kappa)
        return self._finish(Job(self, _job_info(json.loads(raw))), detach, progress)
