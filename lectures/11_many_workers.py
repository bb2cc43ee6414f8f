# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Many workers and large batches
#
# *Course: machine learning with large datasets — how SGD runs on many
# machines, and what large batches do to it.*
#
# K processes, started by `mpiexec`, talk through MPI (`minisgd.distributed`,
# on mpi4py). **Synchronous data parallelism** gives each worker k its slice
# of n_k = B/K images of the *same* global mini-batch one process would draw;
# the all-reduce averages the gradients,
#
#   g = Σ_k (n_k/n) g_k = (1/B) Σ_{i in batch} ∇ℓ_i,
#
# so every worker takes the single-process step with batch B. Adding workers
# therefore changes nothing about the algorithm — it makes the batch B
# *affordable*. Four measurements:
#
# 1. **K workers × B/K = one worker with B**: the largest weight difference.
# 2. **Large batches** (B = 64 … 1024) at a fixed number of epochs: the same
#    rate, a linearly scaled rate α·B/64 (Goyal et al. 2017), scaled plus a
#    warm-up, and the **matched-updates control** (Hoffer et al. 2017: train
#    the large batch for as many updates as B = 64 makes).
# 3. **Communication**: the all-reduce's time against the message size,
#    ring against MPI, fitted to α + β·n; compute against communication per
#    step for lenet and small_vgg at K = 1, 2, 4; a projection to K = 256.
# 4. **Local SGD** (average every H updates) and an **asynchronous
#    parameter server** (staleness τ).
#
# The notebook starts the workers itself, with `mpiexec` as a subprocess
# (`minisgd/lecture_workers.py` is what each worker runs), so it works in
# Jupyter. Run it: `python lectures/11_many_workers.py` (`--data-dir DIR` for
# CIFAR-10, `--full`, `--smoke`, `--out DIR`).

# %%
# Set-up, the same in every lecture: the installed minisgd, else this checkout's, else install it.
# In Colab or outside a checkout, set MINISGD_SOURCE: what `pip install` takes (README, "Notebooks").
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

MINISGD_SOURCE = os.environ.get("MINISGD_SOURCE", "git+https://github.com/<owner>/minisgd.git")
if importlib.util.find_spec("minisgd") is None:
    folder = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
    if (folder.parent / "minisgd" / "lecture.py").is_file():  # a notebook or script in a checkout's lectures/
        sys.path.insert(0, str(folder.parent))
    elif "<owner>" in MINISGD_SOURCE:
        sys.exit("minisgd is not installed: set MINISGD_SOURCE to its git URL, folder or wheel (see the README)")
    else:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", MINISGD_SOURCE], check=True)
        importlib.invalidate_caches()

# %%
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import lecture, nn, recipe  # lecture: the plumbing (options, figures)
from minisgd.train import fit

args = lecture.start("Many workers and large batches: data parallelism on MPI, measured.", data_dir=True)
SIZE = "smoke" if args.smoke else "full" if args.full else "default"
N_TRAIN, N_TEST, EPOCHS, BATCHES, MATCHED = lecture.sizes(
    args,
    smoke=(512, 256, 1, (64, 256), (256,)),
    default=(2_048, 1_000, 3, (64, 128, 256, 512, 1024), (256, 1024)),
    full=(8_192, 2_000, 6, (64, 128, 256, 512, 1024), (128, 256, 512, 1024)),
)
BASE_BATCH, BASE_LR, MOMENTUM, WEIGHT_DECAY = 64, 0.01, 0.9, 5e-4
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
if MPIEXEC is None:
    sys.exit("lecture 11 needs MPI: pip install mpi4py mpich (the mpich wheel brings mpiexec)")
SCRATCH = Path(tempfile.mkdtemp(prefix="lecture11-"))


def on_workers(k, task):
    """Run ``task`` of minisgd.lecture_workers on k processes (mpiexec -n k); rank 0's numbers."""
    result = SCRATCH / f"{task}-{k}.json"
    command = [MPIEXEC, "-n", str(k), sys.executable, "-m", "minisgd.lecture_workers", task, str(result),
               "--size", SIZE]
    if args.data_dir is not None:
        command += ["--data-dir", str(args.data_dir)]
    package_root = str(Path(minisgd.__file__).resolve().parents[1])  # the workers import this same minisgd
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path,
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # one core's worth per worker
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"mpiexec -n {k} {task} failed:\n{proc.stderr[-2000:]}")
    return json.loads(result.read_text())


train_set, test_set, description = lecture.images(args, N_TRAIN, N_TEST)
print(f"data: {description}; {os.cpu_count()} cores on this machine")

# %% [markdown]
# ## 1 · K workers × B/K = one worker with batch B
#
# LeNet, 24 updates with B = 64, SGD with momentum 0.9 and weight decay, in
# float32: once in this process, once on K = 4 workers that each take 16
# images of every batch. If the claim holds, the weights differ only by the
# order of the float additions (the workers' sums are grouped differently):
# differences of the size of float32's rounding, 1e-7 relative.

# %%
def one_process_lenet():
    from minisgd import random

    train_loader, _ = recipe.build_loaders(*recipe.load_datasets(
        "synthetic", train_size=64 * 24, test_size=100, seed=0) if args.data_dir is None else
        recipe.load_datasets("cifar10", data_dir=args.data_dir, train_size=64 * 24, test_size=100),
        batch_size=64, seed=0)
    random.manual_seed(0)
    model = recipe.build_model("lenet")
    optimizer = recipe.build_optimizer(model, lr=0.05, momentum=0.9, weight_decay=5e-4)
    fit(model, train_loader, optimizer, epochs=1, progress=False)
    return model.state_dict()


single = one_process_lenet()
K_EQUIVALENCE = 4
many = on_workers(K_EQUIVALENCE, "equivalence")["weights"]
largest = max(float(np.abs(np.array(many[name]) - value).max()) for name, value in single.items())
scale = max(float(np.abs(value).max()) for value in single.values())
print(f"K = {K_EQUIVALENCE} workers × 16 images vs one process × 64 images, after 24 updates: "
      f"largest weight difference {largest:.2e} (largest weight {scale:.2f}; float32 eps 1.19e-07)")

# %% [markdown]
# ## 2 · Large batches: what changes when B grows
#
# Since K workers with B/K each *are* one process with batch B, we study the
# batch size in one process (cheaper, and the same numbers). The small network
# of lectures 04–10 (3072 → 64 → 10), B from 64 to 1024, the same number of
# epochs, so a batch 16 times larger makes 16 times fewer updates:
#
# - **same rate** α = 0.01 for every B;
# - **linear scaling** α = 0.01 · B/64 (Goyal et al. 2017: the average of
#   B/64 small-batch steps is one large step of that size);
# - **scaled + warm-up**: the same, with a linear warm-up over the first
#   epoch's updates;
# - **matched updates** (Hoffer et al. 2017): the same rate, but as many
#   updates as B = 64 makes — B/64 times the epochs. This separates "large
#   batches generalise worse" from "large batches were trained for fewer
#   updates", the confound of lecture 09's B = 1024 run (18 updates).
#
# "Steps to target": the first update at which the running mean (EMA, 0.9)
# of the mini-batch loss is below the loss B = 64 reaches after one epoch.

# %%
def small_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))


def train_batch(batch_size, lr, epochs, warmup=False):
    train_loader, test_loader = recipe.build_loaders(train_set, test_set, batch_size=batch_size, seed=0)
    steps = len(train_loader)
    schedule = recipe.build_schedule("constant", lr=lr, epochs=epochs, steps_per_epoch=steps,
                                     warmup_steps=steps if warmup else 0)
    minisgd.random.manual_seed(0)
    model = small_net()
    optimizer = recipe.build_optimizer(model, lr=schedule, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = fit(model, train_loader, optimizer, epochs=epochs, test_loader=test_loader, progress=False)
    return history


def steps_to(history, target):
    ema = None
    for t, loss in enumerate(history.step_loss, 1):
        ema = loss if ema is None else 0.9 * ema + 0.1 * loss
        if ema <= target:
            return t
    return None


runs = {}
for batch in BATCHES:
    scaled = BASE_LR * batch / BASE_BATCH
    runs[("same lr", batch)] = train_batch(batch, BASE_LR, EPOCHS)
    runs[("scaled lr", batch)] = train_batch(batch, scaled, EPOCHS)
    runs[("scaled + warm-up", batch)] = train_batch(batch, scaled, EPOCHS, warmup=True)
for batch in MATCHED:
    runs[("matched updates", batch)] = train_batch(batch, BASE_LR, EPOCHS * batch // BASE_BATCH)
base = runs[("same lr", BASE_BATCH)]
TARGET = float(np.mean(base.step_loss[len(base.step_loss) // EPOCHS - 5:len(base.step_loss) // EPOCHS]))
print(f"target loss: {TARGET:.3f} (B = {BASE_BATCH}'s mean mini-batch loss over the last 5 updates of epoch 1)")
print(f"{'recipe':18} {'B':>5} {'lr':>6} {'epochs':>6} {'updates':>7} {'test acc':>8} {'steps to target':>15}")
VARIANTS = ("same lr", "scaled lr", "scaled + warm-up", "matched updates")
for (variant, batch), history in sorted(runs.items(), key=lambda item: (VARIANTS.index(item[0][0]), item[0][1])):
    lr = BASE_LR * batch / BASE_BATCH if variant.startswith("scaled") else BASE_LR
    reached = steps_to(history, TARGET)
    test_acc = history.last("test_acc") if history.stopped is None else float("nan")
    print(f"{variant:18} {batch:5d} {lr:6.3f} {len(history.epochs):6d} {len(history.step_loss):7d} "
          f"{test_acc:8.3f} {'never' if reached is None else reached:>15}")
largest_batch = max(BATCHES)
print(f"at B = {largest_batch}: same lr {runs[('same lr', largest_batch)].last('test_acc'):.3f}, scaled "
      f"{runs[('scaled lr', largest_batch)].last('test_acc'):.3f}, scaled + warm-up "
      f"{runs[('scaled + warm-up', largest_batch)].last('test_acc'):.3f}, B = {BASE_BATCH}: "
      f"{base.last('test_acc'):.3f}")
if largest_batch in MATCHED:
    print(f"matched updates at B = {largest_batch} ({len(runs[('matched updates', largest_batch)].step_loss)} updates"
          f", like B = {BASE_BATCH}): test acc {runs[('matched updates', largest_batch)].last('test_acc'):.3f}")

# %%
figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
markers = {"same lr": "o", "scaled lr": "s", "scaled + warm-up": "^", "matched updates": "D"}
for variant in VARIANTS:
    batches = [b for b in BATCHES if (variant, b) in runs]
    accs = [runs[(variant, b)].last("test_acc") if runs[(variant, b)].stopped is None else np.nan for b in batches]
    left.plot(batches, accs, marker=markers[variant], label=variant)
    reached = [steps_to(runs[(variant, b)], TARGET) for b in batches]
    right.plot(batches, [np.nan if r is None else r for r in reached], marker=markers[variant], label=variant)
for ax in (left, right):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("global batch B")
    ax.set_xticks(BATCHES, [str(b) for b in BATCHES])
left.set_ylabel("test accuracy")
left.set_title(f"test accuracy after {EPOCHS} epochs (matched: B/64 × as many)")
left.legend()
right.set_yscale("log")
right.set_ylabel("updates to reach the target loss")
right.set_title(f"updates until the loss's EMA < {TARGET:.2f} (missing: never)")
lecture.save(figure, "11_large_batches.png")

# %% [markdown]
# ## 3 · Communication: what a step costs on K workers
#
# The all-reduce of n bytes over K workers. minisgd's ring sends each worker
# 2(K−1)/K · n bytes in 2(K−1) messages; with a message costing α + β·m
# (latency α, time per byte β),
#
#   T_ring = 2(K−1)·α + 2(K−1)/K · n·β.
#
# We time MPI's Allreduce and the ring on K = 4 processes for n = 1 … 4·10⁶
# float32 numbers and fit T = a + b·n to each; a/(2(K−1)) and
# b/(2(K−1)/K) are the per-message α and β. This machine has 2 cores shared
# with others, so 4 processes take turns on them: α here is mostly the time
# to be scheduled again, not a network latency — an honest number for this
# machine, not for a cluster.

# %%
K_TIMING = 4
timing = on_workers(K_TIMING, "allreduce")
sizes_n = np.array(timing["n"], dtype=float)
fits = {}
for algorithm in ("mpi", "ring"):
    times = np.array(timing[algorithm])
    slope, intercept = np.polyfit(sizes_n * 4, times, 1, w=1 / times)  # relative least squares, n in bytes
    fits[algorithm] = (max(intercept, 1e-7), max(slope, 1e-13))
    print(f"{algorithm:4} all-reduce on K = {K_TIMING}: T ≈ {1e3 * fits[algorithm][0]:.2f} ms + n × "
          f"{1e9 * fits[algorithm][1]:.3f} ns/byte  (largest n = {int(sizes_n[-1]):,} floats: "
          f"{1e3 * times[-1]:.1f} ms)")
alpha = fits["ring"][0] / (2 * (K_TIMING - 1))
beta = fits["ring"][1] / (2 * (K_TIMING - 1) / K_TIMING)
print(f"ring per message: α = {1e3 * alpha:.3f} ms, β = {1e9 * beta:.3f} ns/byte ({1 / beta / 1e9:.2f} GB/s)")

STEP_WORKERS = (1, 2) if args.smoke else (1, 2, 4)
steps = {k: on_workers(k, "step") for k in STEP_WORKERS}
print(f"{'network':10} {'weights':>9} {'K':>2} {'compute ms':>10} {'comm ms':>8} {'comm share':>10}")
for name in ("lenet", "small_vgg"):
    for k, parts in steps.items():
        p = parts[name]
        print(f"{name:10} {p['weights']:9,d} {k:2d} {1e3 * p['compute']:10.1f} {1e3 * p['comm']:8.2f} "
              f"{p['comm'] / (p['compute'] + p['comm']):10.1%}")

# %% [markdown]
# **A projection to a cluster.** Keep the global batch B fixed (the algorithm
# stays the same): each worker computes B/K images, T_compute(K) =
# T_compute(1)/K, while the ring's all-reduce of the gradients costs
# 2(K−1)·α + 2(K−1)/K · n·β. The speed-up
#
#   S(K) = T_compute(1) / (T_compute(1)/K + T_ring(K))
#
# stops growing when the shrinking compute meets the latency term, which
# grows with K; the bandwidth term stays near 2n·β whatever K. We use the α
# and β fitted above; a cluster's network has another α and β, and the same
# formula with its numbers.

# %%
projection_k = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])
figure, (ax_time, ax_parts, ax_speed) = plt.subplots(1, 3, figsize=(17, 4.8))
for algorithm, marker in (("mpi", "o"), ("ring", "s")):
    ax_time.loglog(sizes_n * 4, timing[algorithm], marker, label=f"{algorithm} (measured)")
    a, b = fits[algorithm]
    ax_time.loglog(sizes_n * 4, a + b * sizes_n * 4, "-", label=f"{algorithm}: {1e3 * a:.2f} ms + {1e9 * b:.2f} ns/B")
ax_time.set_xlabel("message size (bytes)")
ax_time.set_ylabel("all-reduce time (s)")
ax_time.set_title(f"all-reduce on K = {K_TIMING} processes (2 cores)")
ax_time.legend(fontsize=9)
width = 0.35
for offset, name in ((-width / 2, "lenet"), (width / 2, "small_vgg")):
    share = [100 * steps[k][name]["comm"] / (steps[k][name]["compute"] + steps[k][name]["comm"])
             for k in STEP_WORKERS]
    bars = ax_parts.bar(np.arange(len(STEP_WORKERS)) + offset, share, width, label=name)
    for bar, k in zip(bars, STEP_WORKERS):
        total = 1e3 * (steps[k][name]["compute"] + steps[k][name]["comm"])
        ax_parts.annotate(f"{total:.0f} ms", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=9)
ax_parts.set_xticks(range(len(STEP_WORKERS)), [f"K = {k}" for k in STEP_WORKERS])
ax_parts.set_ylabel("communication share of a step (%)")
ax_parts.set_title(f"B = {steps[1]['lenet']['batch']}: share of the all-reduce (label: step time)")
ax_parts.legend(fontsize=9)
peaks = {}
for name in ("lenet", "small_vgg"):
    t1 = steps[1][name]["compute"]
    n_bytes = 4 * steps[1][name]["weights"]
    ring = np.where(projection_k > 1, 2 * (projection_k - 1) * alpha + 2 * (projection_k - 1) / projection_k
                    * n_bytes * beta, 0.0)
    speed_up = t1 / (t1 / projection_k + ring)
    peaks[name] = (int(projection_k[np.argmax(speed_up)]), float(speed_up.max()))
    ax_speed.loglog(projection_k, speed_up, marker="o", label=f"{name} ({n_bytes / 1e6:.2f} MB of gradients)")
    print(f"projection for {name}: speed-up {speed_up.max():.1f}× at best, at K = {peaks[name][0]}; at K = 256: "
          f"{speed_up[-1]:.2f}× (compute {1e3 * t1 / 256:.2f} ms vs all-reduce {1e3 * ring[-1]:.1f} ms)")
ax_speed.loglog(projection_k, projection_k, "k:", label="ideal S = K")
ax_speed.set_xlabel("workers K")
ax_speed.set_ylabel("projected speed-up S(K)")
ax_speed.set_title("projection from the fitted α, β (global B fixed)")
ax_speed.legend(fontsize=9)
lecture.save(figure, "11_communication.png")

# %% [markdown]
# ## 4 · Communicating less: local SGD and an asynchronous parameter server
#
# **Local SGD** lets each of K = 4 workers step on its own slice's gradient
# and averages the weights every H updates, W ← (1/K) Σ_k W_k: H times fewer
# communication rounds. With momentum and weight decay the update is linear
# in the gradient, so H = 1 is exactly synchronous SGD (the tests check it
# to 1e-10). We draw rank 0's test accuracy, at averaged weights, against the
# number of rounds.
#
# **The parameter server**: rank 0 holds the weights; each of the K − 1
# workers computes the gradient of its next batch at the weights it last
# pulled, pushes it, and pulls the new weights. The server applies each
# gradient as it arrives, W_{t+1} = W_t − α g(W_{t−τ}), and records its
# staleness τ. With one worker τ = 0 (plain SGD); with three, about 2.

# %%
local = on_workers(4, "local-sgd")
for every, result in local.items():
    print(f"local SGD, H = {every:>2}: {result['total_rounds']:4d} communication rounds for {result['updates']} "
          f"updates, final test accuracy {result['final_acc']:.3f}")
asynchronous = {k: on_workers(k, "async") for k in (2, 4)}
for k, result in asynchronous.items():
    tau = np.array(result["staleness"])
    print(f"parameter server with {result['workers']} worker(s): mean staleness τ = {tau.mean():.2f} (max {tau.max()})"
          f", final test accuracy {result['final_acc']:.3f}, test loss {result['final_loss']:.3f}")

figure, (ax_local, ax_async) = plt.subplots(1, 2, figsize=(13, 4.8))
for every, result in local.items():
    ax_local.plot(result["rounds"], result["acc"], marker="o", markersize=3, label=f"H = {every}")
ax_local.set_xscale("symlog", linthresh=1)
ax_local.set_xlabel("communication rounds (weights or gradients averaged)")
ax_local.set_ylabel("test accuracy (rank 0, averaged weights)")
ax_local.set_title("local SGD on K = 4 workers")
ax_local.legend()
for k, result in asynchronous.items():
    loss = np.array(result["step_loss"])
    smooth = np.convolve(loss, np.ones(8) / 8, mode="valid")
    tau = np.array(result["staleness"])
    ax_async.plot(np.arange(len(smooth)) + 8, smooth, label=f"{result['workers']} worker(s), mean τ = {tau.mean():.2f}")
ax_async.set_xlabel("update applied by the server")
ax_async.set_ylabel("mini-batch loss (mean of 8)")
ax_async.set_title("asynchronous SGD: the loss against staleness")
ax_async.legend()
lecture.save(figure, "11_local_sgd_and_async.png")
shutil.rmtree(SCRATCH, ignore_errors=True)

# %% [markdown]
# ## What the measurements show
#
# Numbers of one default run on the built-in data (each run prints its own;
# the timings move from run to run on a shared machine; the real subset's
# numbers are in `lectures/README.md`).
#
# - **Data parallelism is mini-batch SGD.** After 24 updates, K = 4 workers
#   with 16 images each and one process with 64 differ by 2.2e-08 in the
#   largest weight: float32 rounding of differently grouped sums. The same
#   holds in float64 to 1e-10 (`tests/test_distributed.py`). Two further
#   checks below agree: local SGD with H = 1 and the parameter server with one
#   worker end with the single-process accuracy (0.340 = 0.340 = 0.340).
# - **Large batches at a fixed number of epochs lose accuracy** — with the
#   same rate, from 0.340 (B = 64) to 0.138 (B = 1024): 16 times fewer
#   updates of the same length. The linearly scaled rate recovers most of it
#   up to B = 256 (0.321) and reaches the target loss in fewer updates as B
#   grows (34, 22, 17, 12 updates for B = 64 … 512), but not at B = 1024
#   (0.249; 6 updates in all). The one-epoch warm-up did not help here
#   (0.207 at B = 1024): with 6 updates, it spends 2 of them at a low rate;
#   Goyal et al. warm up over 5 epochs of hundreds of updates.
# - **The matched-updates control removes the gap.** B = 1024 trained for as
#   many updates as B = 64 (96 updates, 48 epochs) reaches 0.406, *above*
#   B = 64's 0.340 — what lost accuracy was the number of updates, not the
#   batch size (Hoffer et al. 2017). It is not free: 16 times the images, which
#   is exactly what K workers can compute in parallel. This is what lecture
#   09's B = 1024 run (18 updates, "untrained") confounded.
# - **Communication on this machine** (timings of three default runs at
#   load averages of 6 to 12; yours print their own). The ring and MPI's
#   Allreduce cost about the same; the fit gives the ring a per-message α of
#   1.5–2.9 ms and β of 2.7–3.3 ns/byte (0.3–0.4 GB/s). With 4 processes on
#   2 busy cores, α is the time to be scheduled again, not a wire's latency,
#   and β a memory copy between processes. The all-reduce takes 18–44 % of
#   lenet's step at K = 2, 4 (62 006 weights, little compute per byte) and
#   5–11 % of small_vgg's (1 116 970 weights, about 15 times lenet's
#   compute). Two processes cut lenet's compute per step by a third to a half
#   (88 → 47, 87 → 58, 114 → 72 ms); four cannot
#   do better than two cores.
# - **Where the speed-up stops.** With these α, β and the global batch fixed,
#   the projection peaks at 2.4–2.8× (lenet, K = 4) and 7.8–8.8× (small_vgg,
#   K = 16), then falls: compute shrinks like 1/K, but the ring's latency
#   term 2(K−1)·α grows like K (0.75–1.5 s at K = 256), while its bandwidth
#   term stays near 2n·β. A network with a smaller α moves the peak to larger
#   K; a larger model (more compute per message) too.
# - **Local SGD** with H = 4 makes 4 times fewer rounds (24 for 96 updates)
#   at 0.334 against 0.340; H = 16 (6 rounds) loses more (0.291).
# - **Asynchrony**: with three workers the server applied gradients with a
#   mean staleness τ ≈ 2 (the largest 7 to 16, as the scheduler pleased), and
#   the run with momentum 0.9 diverged (loss up from 2.3 to about 4,
#   accuracy 0.136–0.137): a stale gradient with momentum acts
#   like a larger momentum (Mitliagkas et al. 2016), and the rate that is
#   stable for τ = 0 is not stable for τ = 2. On the real subset the same
#   happens (the numbers are in `lectures/README.md`).

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **sgd** (`minibatch_gradient`: each
# worker's slice of a mini-batch averages to the whole batch's gradient). In a terminal:
#
# ```bash
# python -m minisgd exercise start sgd   # sets the exercise up
# python -m minisgd exercise check sgd   # checks your solution
# ```
