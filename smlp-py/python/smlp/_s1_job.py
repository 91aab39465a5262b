"""S1's training job on a Ray cluster: what ``smlp serve-s1 --ray ADDRESS`` runs for each
training job, as ``python -m smlp._s1_job DIR``.

S1 prepares ``DIR`` (private to S1): ``job.json`` (the run's settings, the S2 replicas, S1's TLS
kit, the Ray address, the number of workers), ``data.enc`` (the stored encrypted data set),
``public.key`` (the owner's key the job works under) and ``checkpoint.ckpt`` (where the run
stands: the initial weights S1 drew with S2, or its last stored checkpoint). This driver trains
with :func:`smlp.ray.train` from that checkpoint, which it rewrites after every step, and
writes ``model.enc`` at the end. After each step it prints one JSON line (``{"steps": …}``) so
that S1 can show progress and store the checkpoint; S1 owns the job, its checkpoints in SQLite
and its result, exactly as for a job it runs itself.

Exit codes: 0 done; 3 the workers or S2 failed past the retries (S1 retries the job from its
last checkpoint); 2 anything else (S1 fails the job with the last line of standard error).
SIGTERM (S1 cancelling or stopping) shuts Ray down and exits 143; so does the end of standard
input, which S1 holds open while it lives: a driver never outlives its S1 (a killed S1 starts a
new driver from its stored checkpoint when it comes back).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import List


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m smlp._s1_job DIR", file=sys.stderr)
        return 2
    d = argv[1]
    with open(os.path.join(d, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def orphaned() -> None:
        # The raw descriptor (no buffer lock that interpreter shutdown would wait for); EOF
        # when S1 is gone.
        while os.read(0, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        import ray

        from . import ray as sray
        from ._native import EncryptedDataset, PublicKey
    except ImportError as e:
        print(f"error: the Ray driver cannot import {e.name}: {e}", file=sys.stderr)
        return 2
    data = EncryptedDataset.load(os.path.join(d, "data.enc"))
    pk = PublicKey.load(os.path.join(d, "public.key"))
    address = job["address"]
    if address == "local":
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    else:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        def on_step(step: int, _actors: object) -> None:
            if step > 0:
                _say(steps=step)

        model = sray.train(
            data,
            s2=job["s2"],
            s2_name=job.get("s2_name"),
            pki=job["pki"],
            public_key=pk,
            epochs=job["epochs"],
            batch=job["batch"],
            seed=job["seed"],
            loss=job["loss"],
            workers=job["workers"],
            profile=job["profile"],
            kappa=job["kappa"],
            value_bits=job["value_bits"],
            checkpoint=os.path.join(d, "checkpoint.ckpt"),
            on_step=on_step,
        )
        _say(steps="all")  # the last step's checkpoint (the end of the last epoch)
        model.save(os.path.join(d, "model.enc"))
        _say(done=True)
        return 0
    except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
        print(f"error: Ray workers failed past the retries: {str(e).splitlines()[0]}", file=sys.stderr)
        return 3
    finally:
        ray.shutdown()


if __name__ == "__main__":  # pragma: no cover - run by S1
    try:
        sys.exit(main(sys.argv))
    except SystemExit:
        raise
    except BaseException as e:  # one line for S1's job note
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
