"""Data-parallel training on a local Ray cluster (issue "past one machine"): the same encrypted-
then-decrypted weights bit for bit as S1's single-process trainer, with 3 workers, with a worker
killed mid-run and with an S2 replica killed mid-run."""

import pytest

import smlp

ray = pytest.importorskip(
    "ray", reason="ray is not installed here: `pip install 'smlp[ray]'` (cargo xtask test installs it)"
)
import smlp.ray  # noqa: E402

from conftest import BITS  # noqa: E402


@pytest.fixture(scope="module")
def replicated():
    """S1 and two S2 replicas (one state directory), and a local Ray instance of 2 CPUs."""
    with smlp.LocalCluster(bits=BITS, insecure_test_key=True, s2_replicas=2) as c:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield c
        finally:
            ray.shutdown()


def weights(owner, model):
    d = owner.decrypt_model(model)
    return d["shape"], [(la["weights_raw"].tolist(), la["biases_raw"].tolist()) for la in d["layers"]]


def test_ray_training_equals_s1s_trainer_bit_for_bit_through_worker_and_replica_failures(replicated, wdbc):
    c = replicated
    owner, client = c.owner(), c.client()
    X, y = wdbc[0][:10, :5], wdbc[1][:10]
    data = owner.encrypt(X, y, progress=False, tune=None)
    settings = dict(hidden=(3,), epochs=2, batch=4, learning_rate=1 / 16, seed=3, loss="smooth_hinge")
    # S1's own trainer (the service, one process), the same initial weights.
    reference = client.train(data, init_seed=7, profile="strict", progress=False, **settings)
    want = weights(owner, reference)
    assert want[0] == [5, 3, 1]
    common = dict(s2=c.s2_addresses, pki=c.s1_kit, public_key=c.public_key, init_seed=7, **settings)

    # Three workers, each batch of 4 split 2/1/1 (the last batch of 2 over two of them).
    plain = smlp.ray.train(data, workers=3, **common)
    assert plain.epochs_trained == 2
    assert weights(owner, plain) == want
    # Both models say how they were trained: S1's with where each setting came from (here every
    # one from the request), the driver's from its arguments; both survive a save and a load.
    assert reference.settings.startswith("hidden 3, batch 4, η 1/2^4, 2 epoch(s), smooth-hinge loss, seed 3 — ")
    assert "from the request" in reference.settings, reference.settings
    assert plain.settings == ("hidden 3, batch 4, η 1/2^4, 2 epoch(s), smooth-hinge loss, seed 3 — "
                              "all from smlp.ray.train's arguments")
    assert smlp.EncryptedModel.from_bytes(plain.to_bytes()).settings == plain.settings

    # A worker killed before step 1 and an S2 replica killed before step 3: replaced, shards
    # computed again, the same weights.
    events = []

    def havoc(step, actors):
        if step == 1:
            ray.kill(actors[0])
            events.append("worker")
        if step == 3:
            c.stop("s2-1")
            events.append("replica")

    survived = smlp.ray.train(data, workers=2, on_step=havoc, **common)
    assert events == ["worker", "replica"]
    assert weights(owner, survived) == want


def test_ray_training_needs_ray_init_and_the_right_key(replicated, wdbc):
    c = replicated
    owner = c.owner()
    other = smlp.keygen(BITS, insecure_test_key=True)
    data = smlp.Owner(other).encrypt(wdbc[0][:4, :3], wdbc[1][:4], progress=False, tune=None)
    with pytest.raises(smlp.SMLPError, match="encrypted under key"):
        smlp.ray.train(data, s2=c.s2_addresses, pki=c.s1_kit, public_key=c.public_key)


def test_ray_classification_equals_s1s_classifier_bit_for_bit(replicated, wdbc):
    c = replicated
    owner, client = c.owner(), c.client()
    X, y = wdbc[0][:12, :5], wdbc[1][:12]
    data = owner.encrypt(X, y, progress=False, tune=None)
    model = client.train(data, hidden=(3,), epochs=1, batch=4, learning_rate=1 / 16, init_seed=5,
                         profile="strict", progress=False)
    new = owner.encrypt(wdbc[0][20:27, :5], progress=False, tune=None, scaler=data.scaler)
    reference = client.classify(model, new, progress=False)
    common = dict(s2=c.s2_addresses, pki=c.s1_kit, public_key=c.public_key, chunk=2)
    # Seven samples over three workers (3/2/2), joined in sample order: the same classes and
    # scores as S1's own classifier, bit for bit.
    split = smlp.ray.classify(model, new, workers=3, **common)
    assert len(split) == 7
    assert owner.decrypt_predictions(split).tolist() == owner.decrypt_predictions(reference).tolist()
    assert owner.decrypt_scores(split).tolist() == owner.decrypt_scores(reference).tolist()
    # A model under another key is refused before any work.
    other = smlp.keygen(BITS, insecure_test_key=True)
    with pytest.raises(smlp.SMLPError, match="encrypted under key"):
        smlp.ray.classify(model, new, s2=c.s2_addresses, pki=c.s1_kit, public_key=other.public_key)


def test_a_driver_that_dies_resumes_from_its_checkpoint_bit_for_bit(replicated, wdbc, tmp_path):
    c = replicated
    owner, client = c.owner(), c.client()
    X, y = wdbc[0][:10, :5], wdbc[1][:10]
    data = owner.encrypt(X, y, progress=False, tune=None)
    settings = dict(hidden=(3,), epochs=2, batch=4, learning_rate=1 / 16, seed=3, loss="smooth_hinge")
    want = weights(owner, client.train(data, init_seed=7, profile="strict", progress=False, **settings))
    common = dict(s2=c.s2_addresses, pki=c.s1_kit, public_key=c.public_key, init_seed=7, workers=2,
                  **settings)
    ckpt = str(tmp_path / "run.ckpt")

    class Crash(Exception):
        pass

    def die(step, actors):
        # 10 samples in batches of 4: steps 0-2 are epoch 0, step 4 is epoch 1's second batch.
        if step == 4:
            raise Crash()

    with pytest.raises(Crash):
        smlp.ray.train(data, checkpoint=ckpt, on_step=die, **common)
    steps = []
    stats = {}
    resumed = smlp.ray.train(data, checkpoint=ckpt, on_step=lambda s, a: steps.append(s), stats=stats,
                             **common)
    # Resumed after epoch 0 and the first batch of epoch 1: two steps left, the same weights.
    assert stats["resumed_at"] == (1, 4)
    assert len(steps) == 2
    assert weights(owner, resumed) == want
    # A checkpoint of another run (another batch size) is refused with what differs.
    with pytest.raises(smlp.SMLPError, match="batch"):
        smlp.ray.train(data, checkpoint=ckpt, **{**common, "batch": 2})


def test_serve_s1_runs_its_training_jobs_on_ray_bit_for_bit(replicated, wdbc):
    """``smlp serve-s1 --ray``: the operator's option. The owner's side is unchanged (upload,
    train, fetch through ``Client``); S1 hands each training job to a Ray driver whose workers
    (2 actors on this test's Ray instance) talk to S2 with S1's kit. The model equals S1's
    in-process trainer's bit for bit, and S1 kept the job's checkpoints in its store."""
    import sys

    X, y = wdbc[0][:10, :5], wdbc[1][:10]
    settings = dict(hidden=(3,), epochs=2, batch=4, learning_rate=1 / 16, seed=3, loss="smooth_hinge",
                    init_seed=7, profile="strict", progress=False)
    c = replicated
    owner = c.owner()
    want = weights(owner, c.client().train(owner.encrypt(X, y, progress=False, tune=None), **settings))

    args = ["--ray", "auto", "--ray-workers", "2", "--ray-python", sys.executable, "--checkpoint-every", "4"]
    with smlp.LocalCluster(bits=BITS, insecure_test_key=True, s1_args=args) as on_ray:
        owner = on_ray.owner()
        client = on_ray.client()
        model = client.train(owner.encrypt(X, y, progress=False, tune=None), **settings)
        assert weights(owner, model) == want
        assert model.epochs_trained == 2
        assert model.settings.startswith("hidden 3, batch 4, η 1/2^4, 2 epoch(s), smooth-hinge loss, seed 3")
        job = client.jobs()[-1]
        assert job["state"] == "done", job
        # The driver's steps came back into S1's store (what a restarted S1 resumes from).
        ckpt = client.fetch(job["id"], checkpoint=True)
        assert ckpt.epochs_trained == 2


def test_serve_s1_with_ray_refuses_to_start_without_a_python_that_has_smlp_ray():
    with pytest.raises(smlp.SMLPError, match="--ray: cannot run"):
        with smlp.LocalCluster(bits=BITS, insecure_test_key=True,
                               s1_args=["--ray", "auto", "--ray-python", "/nonexistent/python3"]):
            pass


def test_a_ray_job_survives_a_killed_s1_bit_for_bit(replicated, wdbc):
    """S1 killed (SIGKILL) while its Ray driver trains: the driver exits with it (S1 held its
    standard input), and S1 started again on its state directory resumes the job from the
    checkpoint it stored, with a new driver; the model equals the uninterrupted run's."""
    import subprocess
    import sys
    import time

    X, y = wdbc[0][:12, :5], wdbc[1][:12]
    settings = dict(hidden=(3,), epochs=3, batch=4, learning_rate=1 / 16, seed=2, loss="smooth_hinge",
                    init_seed=9, profile="strict", progress=False)
    c = replicated
    owner = c.owner()
    want = weights(owner, c.client().train(owner.encrypt(X, y, progress=False, tune=None), **settings))

    def drivers() -> set:
        out = subprocess.run(["pgrep", "-f", "smlp._s1_job"], capture_output=True, text=True).stdout
        return set(out.split())

    args = ["--ray", "auto", "--ray-workers", "2", "--ray-python", sys.executable, "--checkpoint-every", "4"]
    with smlp.LocalCluster(bits=BITS, insecure_test_key=True, s1_args=args) as on_ray:
        owner = on_ray.owner()
        data = owner.encrypt(X, y, progress=False, tune=None)
        job = on_ray.client().train(data, detach=True, **settings)
        client = on_ray.client()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            j = client.job(job.id)
            if j["epoch"] >= 1:  # an epoch's checkpoint is in the store
                break
            time.sleep(0.2)
        assert j["epoch"] >= 1 and j["state"] == "running", j
        old = drivers()
        assert old
        on_ray.restart("s1")
        # The old driver is gone with its S1 (a new one may already run for the resumed job).
        deadline = time.monotonic() + 20
        while old & drivers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not old & drivers()
        client = on_ray.client()
        info = client.wait(job.id, progress=False)
        assert info["state"] == "done", info
        model = client.fetch(job.id)
        assert weights(owner, model) == want
        assert "resuming from checkpoint" in on_ray.log("s1")


def test_smlpclassifier_on_a_ray_cluster_equals_the_one_through_s1(replicated, wdbc):
    """``SMLPClassifier(cluster=smlp.ray.Cluster(...))``: fit with smlp.ray.train, predict with
    smlp.ray.classify, no client; the same scores as the estimator through S1, bit for bit."""
    c = replicated
    X, y = wdbc[0][:12, :5], wdbc[1][:12]
    common = dict(hidden=(3,), epochs=1, batch=4, learning_rate=1 / 16, init_seed=4, owner=c.owner())
    through_s1 = smlp.SMLPClassifier(client=c.client(), **common).fit(X, y)
    on_ray = smlp.SMLPClassifier(cluster=smlp.ray.Cluster(c.s2_addresses, c.s1_kit, workers=2), **common)
    on_ray.fit(X, y)
    new = wdbc[0][30:36, :5]
    assert on_ray.decision_function(new).tolist() == through_s1.decision_function(new).tolist()
    assert on_ray.predict(new).tolist() == through_s1.predict(new).tolist()
