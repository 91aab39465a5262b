"""A local deployment for notebooks and tests: S2 and S1 as real processes on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from . import _native
from ._client import Client
from ._native import PublicKey, SecretKey, SMLPError
from ._owner import Owner, keygen


class LocalCluster:
    """S2 and S1 as two real server processes (``python -m smlp serve-s2 / serve-s1``) on free
    loopback ports, with mutually authenticated TLS from a PKI of their own, keys and S1's store
    in a temporary directory; removed on :meth:`close` (or at the end of a ``with`` block).

    >>> with smlp.LocalCluster(bits=512, insecure_test_key=True) as cluster:
    ...     client, owner = cluster.client(), cluster.owner()

    ``secret_key`` uses an existing key (else one of ``bits`` bits is generated; 2048 by default,
    smaller only with ``insecure_test_key``, for tests): the key of the first of ``owners`` (the
    owner identities that get certificates). The cluster plays S2's operator too: S2 holds that
    key in its state directory (``smlp s2-keys add``), and :meth:`client` registers it at S1 for
    that owner. Every other owner brings a key of its own (:meth:`add_key`, then
    ``Client.register``). ``s2_replicas`` starts that many S2 processes on one state directory,
    S1 given them all (``s2_addresses``; :meth:`stop` ends one). ``s1_args``/``s2_args`` add
    command-line options of the servers (S2
serves the strict profile only, as ``serve-s2`` does by default; ``s2_args=("--profile", "any")``
lets ``profile="fast"`` run).
    """

    def __init__(
        self,
        *,
        secret_key: Optional[SecretKey] = None,
        bits: int = 2048,
        insecure_test_key: bool = False,
        owners: Sequence[str] = ("owner",),
        directory: Optional[str] = None,
        s1_args: Sequence[str] = (),
        s2_args: Sequence[str] = (),
        s2_replicas: int = 1,
        startup_timeout: float = 60,
        keep: bool = False,
    ) -> None:
        self.keep = keep
        self.owners = list(owners)
        self.dir = directory or tempfile.mkdtemp(prefix="smlp-cluster-")
        self._procs: List[subprocess.Popen] = []
        self._logs: Dict[str, str] = {}
        self._named: Dict[str, subprocess.Popen] = {}
        self._started: Dict[str, List[str]] = {}
        self._startup_timeout = startup_timeout
        try:
            self.secret_key = secret_key or keygen(bits, insecure_test_key=insecure_test_key)
            self.keys = os.path.join(self.dir, "keys")
            self.secret_key.save(self.keys, True)
            self.pki = os.path.join(self.dir, "pki")
            owner_args: List[str] = []
            for o in owners:
                owner_args += ["--owner", o]
            self._run(
                ["pki", "--out", self.pki, "--s1-host", "127.0.0.1", "--s2-host", "127.0.0.1", *owner_args]
            )
            variable_time = [] if _native.BACKEND == "gmp" else ["--allow-variable-time"]
            self.s2_state = os.path.join(self.dir, "s2-state")
            self.add_key(self.secret_key)
            dgk_bits = str(max(512, self.secret_key.public_key.bits))
            # S2 and its replicas: processes on one state directory (the same tenant keys, one
            # refusal book), S1 given them all.
            self.s2_addresses: List[str] = [
                self._start(
                    "s2" if i == 0 else f"s2-{i}",
                    ["serve-s2", "--state-dir", self.s2_state, "--dgk-bits", dgk_bits,
                     "--pki", os.path.join(self.pki, "s2"),
                     "--listen", "127.0.0.1:0", "--grace-secs", "2", *variable_time, *s2_args],
                    startup_timeout,
                )
                for i in range(max(1, s2_replicas))
            ]
            self.s2 = self.s2_addresses[0]
            #: S1's TLS kit (what S1 workers, e.g. ``smlp.ray``'s, connect to S2 with).
            self.s1_kit = os.path.join(self.pki, "s1")
            self.s1 = self._start(
                "s1",
                ["serve-s1", "--pki", self.s1_kit,
                 "--s2", ",".join(self.s2_addresses), "--state-dir", os.path.join(self.dir, "s1-state"),
                 "--listen", "127.0.0.1:0", "--grace-secs", "2", *s1_args],
                startup_timeout,
            )
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _command() -> List[str]:
        # The package's own command line (the default build); a build without it (the `cli`
        # feature of smlp-py off: the owner's side only) uses the `smlp` binary on PATH.
        if hasattr(_native, "run_cli"):
            return [sys.executable, "-m", "smlp"]
        found = shutil.which("smlp")
        if found is None:
            raise SMLPError(
                "this build of smlp has no command line and no `smlp` binary is on PATH: "
                "LocalCluster needs one to start S1 and S2"
            )
        return [found]

    def _run(self, args: List[str]) -> None:
        out = subprocess.run(self._command() + args, capture_output=True, text=True)
        if out.returncode != 0:
            raise SMLPError(f"smlp {args[0]} failed: {out.stderr.strip()}")

    def _start(self, name: str, args: List[str], timeout: float) -> str:
        ready = os.path.join(self.dir, f"{name}.addr")
        if os.path.exists(ready):  # a killed server's
            os.remove(ready)
        log = os.path.join(self.dir, f"{name}.log")
        self._logs[name] = log
        self._started[name] = args
        with open(log, "ab") as f:
            proc = subprocess.Popen(
                self._command() + args + ["--ready-file", ready],
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        self._procs.append(proc)
        self._named[name] = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(ready):
                with open(ready) as f:
                    addr = f.read().strip()
                if addr:
                    return addr
            if proc.poll() is not None:
                raise SMLPError(f"{name.upper()} exited with status {proc.returncode}:\n{self.log(name)}")
            time.sleep(0.05)
        raise SMLPError(f"{name.upper()} did not start within {timeout} s:\n{self.log(name)}")

    def restart(self, name: str) -> str:
        """Kills the server ``name`` (SIGKILL, as a crash) and starts it again with the same
        arguments and state directory; its new address (``self.s1``/``self.s2`` follow)."""
        self.stop(name)
        addr = self._start(name, self._started[name], self._startup_timeout)
        if name == "s1":
            self.s1 = addr
        elif name == "s2":
            self.s2 = addr
        return addr

    def stop(self, name: str, kill: bool = True) -> None:
        """Ends the server ``name`` (``"s1"``, ``"s2"``, ``"s2-1"`` …): SIGKILL, or SIGTERM with
        ``kill=False`` (tests of what survives a dead replica)."""
        proc = self._named.get(name)
        if proc is None:
            raise KeyError(name)
        if proc.poll() is None:
            proc.kill() if kill else proc.terminate()
            proc.wait()

    def log(self, name: str) -> str:
        """The log of server ``"s1"`` or ``"s2"``."""
        try:
            with open(self._logs[name], encoding="utf-8", errors="replace") as f:
                return f.read()
        except (KeyError, OSError):
            return ""

    @property
    def public_key(self) -> PublicKey:
        return self.secret_key.public_key

    def add_key(self, secret_key: SecretKey) -> None:
        """Gives S2 a tenant's secret key (as S2's operator does with ``smlp s2-keys add``; S2
        serves it from its next session, without a restart)."""
        with tempfile.TemporaryDirectory(prefix="smlp-key-") as tmp:
            secret_key.save(tmp, True)
            small = ["--insecure-test-key"] if secret_key.public_key.bits < 2048 else []
            self._run(["s2-keys", "--state-dir", self.s2_state, "add", "--plain", *small,
                       os.path.join(tmp, "secret.key")])

    def client(self, owner: Optional[str] = None, **kwargs: Any) -> Client:
        """A :class:`Client` of S1 as ``owner`` (the first of ``owners`` by default, with the
        cluster's key registered)."""
        owner = owner or self.owners[0]
        client = Client(self.s1, self.pki, owner, **kwargs)
        if owner == self.owners[0]:
            client.register(self.secret_key.public_key)
        return client

    def owner(self) -> Owner:
        """An :class:`Owner` with the cluster's secret key."""
        return Owner(self.secret_key)

    def close(self, timeout: float = 15) -> None:
        """Stops both servers (SIGTERM, then SIGKILL after ``timeout``) and removes the
        directory unless ``keep``."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = []
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_procs", None):
            self.close()

    def __repr__(self) -> str:
        return f"LocalCluster(s1={getattr(self, 's1', None)!r}, s2={getattr(self, 's2', None)!r})"
