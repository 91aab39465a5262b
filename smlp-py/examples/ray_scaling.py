# Throughput of data-parallel encrypted training (and of split classification) with smlp.ray
# against the number of S1 workers, next to S1's own trainer and classifier (one process), and
# S1's service running its training job on Ray (`serve-s1 --ray`, with `--s1-ray`): the
# demo network (30→8→1, wdbc), mini-batches of 16, strict profile, a 2048-bit key (`--bits 512`
# for a quick look), S2 replicas on this machine.
#
#   python ray_scaling.py [--samples 64] [--workers 1,2,4] [--replicas 2] [--bits 2048] [--classify 32] [--s1-ray]
import argparse, os, sys, time
import ray
import smlp
import smlp.ray
from sklearn.datasets import load_breast_cancer

p = argparse.ArgumentParser()
p.add_argument("--samples", type=int, default=64)
p.add_argument("--workers", default="1,2,4")
p.add_argument("--replicas", type=int, default=2)
p.add_argument("--bits", type=int, default=2048)
p.add_argument("--classify", type=int, default=32, help="samples to classify (0: none)")
p.add_argument("--s1-ray", action="store_true", help="also S1's service with --ray (a training job through Client)")
a = p.parse_args()
X, y = load_breast_cancer(return_X_y=True)
X, y = X[: a.samples], y[: a.samples]
print(f"{os.cpu_count()} cores; {a.samples} samples, 30→8→1, batch 16, strict, {a.bits}-bit key, "
      f"{a.replicas} S2 replica(s)")
with smlp.LocalCluster(bits=a.bits, insecure_test_key=a.bits < 2048, s2_replicas=a.replicas) as c:
    owner, client = c.owner(), c.client()
    data = owner.encrypt(X, y, progress=False, tune=None)
    settings = dict(hidden=(8,), epochs=1, batch=16, learning_rate=1 / 16, seed=1)
    t = time.time()
    model = client.train(data, init_seed=3, progress=False, **settings)
    want = owner.decrypt_model(model)
    base = time.time() - t
    print(f"| S1's trainer (one process) | {a.samples / base:.2f} samples/s | {base / a.samples:.3f} s/sample |")
    if a.classify:
        new = owner.encrypt(X[: a.classify], progress=False, tune=None, scaler=data.scaler)
        t = time.time()
        reference = owner.decrypt_scores(client.classify(model, new, progress=False)).tolist()
        cbase = time.time() - t
        print(f"| S1's classifier (one process) | {a.classify / cbase:.2f} samples/s | {cbase / a.classify:.3f} s/sample |")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    for w in [int(v) for v in a.workers.split(",")]:
        t = time.time()
        stats = {}
        got = smlp.ray.train(data, s2=c.s2_addresses, pki=c.s1_kit, public_key=c.public_key,
                             init_seed=3, workers=w, stats=stats, **settings)
        took = time.time() - t
        same = owner.decrypt_model(got)["layers"][0]["weights_raw"].tolist() == want["layers"][0]["weights_raw"].tolist()
        print(f"| smlp.ray, {w} worker(s) | {a.samples / took:.2f} samples/s | {took / a.samples:.3f} s/sample | same weights: {same} | driver per step: broadcast {1000 * stats['broadcast'] / stats['steps']:.1f} ms, sum + apply {1000 * stats['apply'] / stats['steps']:.1f} ms |")
        if a.classify:
            t = time.time()
            pred = smlp.ray.classify(model, new, s2=c.s2_addresses, pki=c.s1_kit,
                                     public_key=c.public_key, workers=w)
            took = time.time() - t
            same = owner.decrypt_scores(pred).tolist() == reference
            print(f"| smlp.ray.classify, {w} worker(s) | {a.classify / took:.2f} samples/s | {took / a.classify:.3f} s/sample | same scores: {same} |")
        if a.s1_ray:
            # S1's service with its training jobs on this Ray instance: the owner's job as any
            # (upload, train, fetch), the same key; the driver's start is inside the timing.
            args = ["--ray", "auto", "--ray-workers", str(w), "--ray-python", sys.executable]
            with smlp.LocalCluster(secret_key=c.secret_key, s2_replicas=a.replicas, s1_args=args) as r:
                on_ray = r.client()
                stored = on_ray.upload(data)
                t = time.time()
                got = on_ray.train(stored, init_seed=3, progress=False, **settings)
                took = time.time() - t
                same = owner.decrypt_model(got)["layers"][0]["weights_raw"].tolist() == want["layers"][0]["weights_raw"].tolist()
                print(f"| serve-s1 --ray, {w} worker(s) | {a.samples / took:.2f} samples/s | {took / a.samples:.3f} s/sample | same weights: {same} |")
    ray.shutdown()
