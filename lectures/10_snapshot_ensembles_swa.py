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
# # 10 · Snapshot ensembles and SWA: M models for the price of one?
#
# **What you learn:** whether snapshot ensembles and SWA give several models
# for the price of one, measured at one run's budget.
#
# **How long:** about 20 minutes; the default run takes about 9 s of CPU time
# on 2 cores (the same with `--data-dir`).
#
# *Recitation: "SGDR" — snapshot ensembles (Huang et al. 2017) and stochastic
# weight averaging (Izmailov et al. 2018).*
#
# Both ideas take several points of *one* training run and combine them:
#
# - a **snapshot ensemble** saves the weights at the end of each cosine cycle
#   (rate ≈ 0) and averages the snapshots' *predictions*,
#   $p(y\mid x) = \frac1m\sum_{k} \mathrm{softmax}(f(x; W_k))$: m forward passes
#   at test time;
# - **SWA** averages the *weights* visited by SGD at a high constant rate,
#   $W_{\rm swa} = \frac1n\sum_k W_k$: one network, one forward pass.
#
# The claim is "for free": the same training budget as one ordinary run. We
# measure it. Three runs from the same initial weights, on the same batches,
# for the same number of updates:
#
# 1. the snapshot schedule, M cosine cycles (`schedules.snapshot`), a snapshot
#    at the end of each, and — with `optim.swa_utils.AveragedModel` — the
#    average of those snapshots' weights as well;
# 2. one cosine decay over the whole budget (the fair single model);
# 3. SWA: a cosine down to a constant `swa_lr` at 75 % of the budget, then the
#    weights averaged four times per epoch until the end.
#
# Huang et al.'s Fig. 4 plots the ensemble's accuracy against the number of
# snapshots it uses: we draw the same, with the single cosine and SWA beside it.
#
# Run it: `python lectures/10_snapshot_ensembles_swa.py` (`--data-dir DIR` for
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
import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import lecture, nn, optim, recipe, schedules  # lecture: the plumbing (options, figures)
from minisgd.ensemble import SnapshotEnsemble, cycle_ends
from minisgd.train import evaluate, fit

try:
    from minisgd.optim.swa_utils import AveragedModel
except ImportError:  # a minisgd without stochastic weight averaging: the SWA results are left out
    AveragedModel = None

args = lecture.start("Snapshot ensembles and SWA: ensemble accuracy against snapshots, at one run's budget.",
                     data_dir=True)
N_TRAIN, N_TEST, EPOCHS, CYCLES = lecture.sizes(
    args, smoke=(600, 300, 3, 3), default=(4_000, 1_000, 6, 3), full=(None, None, 40, 8)
)
BATCH_SIZE, LR, SWA_LR, MOMENTUM = 64, 0.05, 0.01, 0.9

# %% [markdown]
# ## The data, the network, the budget
#
# The small network of lectures 04–06 (3072 → 128 → 10, ReLU), SGD with
# momentum 0.9, batches of 64; `--data-dir` trains on CIFAR-10 instead of the
# built-in `SyntheticShapes`.

# %%
train_set, test_set, data_name = lecture.images(args, N_TRAIN, N_TEST)
# The recipe's loaders (`python -m minisgd train` uses the same): images normalised with the
# training images' channel statistics, the training batches shuffled from seed 0.
_, test_loader = recipe.build_loaders(train_set, test_set, batch_size=BATCH_SIZE, seed=0)


def make_model():
    minisgd.random.manual_seed(0)  # the same initial weights for every run
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128), nn.ReLU(), nn.Linear(128, 10))


def batches():
    """A fresh training loader: every run sees the same mini-batches."""
    return recipe.build_loaders(train_set, test_set, batch_size=BATCH_SIZE, seed=0)[0]


steps_per_epoch = len(batches())
total = EPOCHS * steps_per_epoch
print(f"data: {data_name}; budget: {EPOCHS} epochs = {total} updates for every run")

# %% [markdown]
# ## Run 1: M cosine cycles, a snapshot at the end of each
#
# `cycle_ends(schedule, T)` lists the updates after which a cycle ends; `fit`
# calls `take_snapshot(t)` after every update. At each cycle's end we store the
# weights in the ensemble, measure that snapshot alone, and fold it into the
# average of the snapshots' weights (SWA on the cyclic schedule, as in
# Izmailov et al.'s Fig. 1).

# %%
snapshot_schedule = schedules.snapshot(LR, total_steps=total, cycles=CYCLES)
snapshot_times = cycle_ends(snapshot_schedule, total)
model = make_model()
snapshot_optimizer = optim.SGD(model.parameters(), lr=snapshot_schedule, momentum=MOMENTUM)
ensemble = SnapshotEnsemble()
snapshot_average = AveragedModel(model) if AveragedModel is not None else None
snapshot_acc, snapshot_train_acc = [], []
train_images = batches()  # built once: each snapshot is also measured on the training images


def take_snapshot(t):
    if t in snapshot_times:
        ensemble.add(model)
        snapshot_acc.append(evaluate(model, test_loader)["acc"])
        snapshot_train_acc.append(evaluate(model, train_images)["acc"])  # a worse snapshot: overfitting, or not?
        if snapshot_average is not None:
            snapshot_average.update_parameters(model)


snapshot_history = fit(model, batches(), snapshot_optimizer, epochs=EPOCHS, on_step_end=take_snapshot,
                       progress=False)
ensemble_acc = [ensemble.accuracy(test_loader, last=m) for m in range(1, len(ensemble) + 1)]
print(f"\nrun 1: {CYCLES} cycles, snapshots after updates {snapshot_times}")
for k, (acc, train_acc) in enumerate(zip(snapshot_acc, snapshot_train_acc), start=1):
    print(f"  snapshot {k}: test accuracy {acc:.3f} (training images: {train_acc:.3f})")
print("  ensemble of the last m snapshots: " + ", ".join(f"m = {m}: {a:.3f}" for m, a in enumerate(ensemble_acc, 1)))

# %% [markdown]
# ## Run 2: one cosine over the same budget

# %%
single = make_model()
single_optimizer = optim.SGD(single.parameters(), lr=schedules.cosine(LR, total_steps=total), momentum=MOMENTUM)
single_history = fit(single, batches(), single_optimizer, epochs=EPOCHS, progress=False)
single_acc = evaluate(single, test_loader)["acc"]
print(f"\nrun 2: one cosine, {total} updates: test accuracy {single_acc:.3f}")

# %% [markdown]
# ## Run 3: SWA
#
# The rate: a cosine from α₀ down to `swa_lr` over the first 75 % of the
# updates, then held at `swa_lr` (`schedules.cosine(α₀, T_swa, min_lr=swa_lr)`
# does both: it stays at `min_lr` after T_swa). From there, four times per
# epoch, `AveragedModel.update_parameters(model)` folds the current weights
# into the running average $W_{\rm swa} \leftarrow (n W_{\rm swa} + W)/(n+1)$.
# The network has no batch norm, so `update_bn` has nothing to recompute.

# %%
swa_start = int(0.75 * total)
swa_schedule = schedules.cosine(LR, total_steps=swa_start, min_lr=SWA_LR)
swa_run = make_model()
swa_optimizer = optim.SGD(swa_run.parameters(), lr=swa_schedule, momentum=MOMENTUM)
swa_model = AveragedModel(swa_run) if AveragedModel is not None else None
average_every = max(1, steps_per_epoch // 4)
averaged_at = []


def average_weights(t):
    if swa_model is not None and t >= swa_start and (t - swa_start) % average_every == 0:
        swa_model.update_parameters(swa_run)
        averaged_at.append(t)


swa_history = fit(swa_run, batches(), swa_optimizer, epochs=EPOCHS, on_step_end=average_weights, progress=False)
swa_last_acc = evaluate(swa_run, test_loader)["acc"]
print(f"\nrun 3: cosine to swa_lr = {SWA_LR} by update {swa_start}, then constant; last iterate: "
      f"test accuracy {swa_last_acc:.3f}")
results = {
    "single model, one cosine": single_acc,
    "best snapshot": max(snapshot_acc),
    "last snapshot": snapshot_acc[-1],
    f"snapshot ensemble (m = {len(ensemble)})": ensemble_acc[-1],
    "SWA run, last iterate": swa_last_acc,
}
if AveragedModel is not None:
    results["SWA average of the snapshots"] = evaluate(snapshot_average.module, test_loader)["acc"]
    results[f"SWA average ({len(averaged_at)} iterates)"] = evaluate(swa_model.module, test_loader)["acc"]
else:
    print("(SWA: this minisgd has no optim.swa_utils; the SWA averages are left out)")

print(f"\ntest accuracy, same budget of {total} updates (forward passes per test image in brackets):")
for name, acc in results.items():
    passes = len(ensemble) if name.startswith("snapshot ensemble") else 1
    print(f"  {name:36s} {acc:.3f}  [{passes}]")
gain = ensemble_acc[-1] - single_acc
print(f"snapshot ensemble − single cosine: {100 * gain:+.1f} points")
if AveragedModel is not None:
    swa_gain = results[f"SWA average ({len(averaged_at)} iterates)"] - single_acc
    print(f"SWA average − single cosine: {100 * swa_gain:+.1f} points")
standard_error = 100 * (0.25 / len(test_set)) ** 0.5  # the largest binomial standard error, at p = 0.5
print(f"noise: one test accuracy on {len(test_set)} images has a binomial standard error of up to "
      f"±{standard_error:.1f} points, sqrt(p(1 − p)/n); smaller differences say nothing")

# %% [markdown]
# ## Figures: the three schedules, each snapshot, and the ensemble of the last m
#
# Two different quantities, on two panels: in the middle, snapshot k *alone*
# (k = 1 is the first, taken after cycle 1), on its test and training images;
# on the right, the ensemble of the *last* m snapshots (m = 1 is the last
# snapshot alone, m = M all of them), the x-axis labelled with the snapshots
# it averages. The horizontal lines are the other runs, one network each.

# %%
fig, (ax_lr, ax_each, ax_acc) = plt.subplots(1, 3, figsize=(21, 5.8), layout="constrained")
ax_lr.plot(snapshot_history.step_lr, color="C0", lw=2, label=f"run 1: {CYCLES} cosine cycles")
ax_lr.plot(single_history.step_lr, color="0.4", lw=1.5, ls="--", label="run 2: one cosine")
ax_lr.plot(swa_history.step_lr, color="C2", lw=1.5, label=f"run 3: cosine to swa_lr = {SWA_LR}, held")
for k, t in enumerate(snapshot_times):
    ax_lr.axvline(t - 1, color="C3", ls=":", lw=1.2, label="snapshot" if k == 0 else None)
if averaged_at:
    ax_lr.plot(np.array(averaged_at) - 1, np.full(len(averaged_at), SWA_LR), "v", color="C2", ms=8,
               label="SWA averages a copy")
ax_lr.set(xlabel="update t", ylabel="learning rate α_t", title="The three runs' rates (same budget)")
ax_lr.grid(True, alpha=0.3)
ax_lr.legend(fontsize=10)

k = np.arange(1, len(snapshot_acc) + 1)
ax_each.plot(k, 100 * np.array(snapshot_acc), "s-", color="C0", ms=8, lw=2, label="test images")
ax_each.plot(k, 100 * np.array(snapshot_train_acc), "^--", color="C1", ms=8, lw=1.5, label="training images")
ax_each.axhline(100 * single_acc, color="0.4", ls="--", lw=1.5, label=f"one cosine (test): {100 * single_acc:.1f}%")
ax_each.set(xlabel="snapshot k (taken at the end of cycle k)", ylabel="accuracy (%)",
            title="Each snapshot alone")
ax_each.set_xticks(k)
ax_each.grid(True, alpha=0.3)
ax_each.legend(fontsize=10, loc="best")

m = np.arange(1, len(ensemble) + 1)
M = len(ensemble)
ax_acc.plot(m, 100 * np.array(ensemble_acc), "o-", color="C3", lw=2, ms=8, label="snapshot ensemble of the last m")
ax_acc.axhline(100 * single_acc, color="0.4", ls="--", lw=1.5, label=f"one cosine: {100 * single_acc:.1f}%")
if AveragedModel is not None:
    swa_acc = results[f"SWA average ({len(averaged_at)} iterates)"]
    ax_acc.axhline(100 * swa_acc, color="C2", lw=1.5, label=f"SWA average: {100 * swa_acc:.1f}%")
    average_acc = results["SWA average of the snapshots"]
    ax_acc.axhline(100 * average_acc, color="C4", lw=1.5, ls="-.",
                   label=f"average of the snapshots' weights: {100 * average_acc:.1f}%")
ax_acc.set(xlabel="m, the number of snapshots in the ensemble (the snapshots it averages)",
           ylabel="test accuracy (%)", title="Ensemble of the last m snapshots (Huang et al., Fig. 4)")
ax_acc.set_xticks(m, [f"{n}\n({M})" if n == 1 else f"{n}\n({M - n + 1}–{M})" for n in m])
ax_acc.grid(True, alpha=0.3)
ax_acc.legend(fontsize=10, loc="best")
fig.suptitle(f"Snapshot ensembles and SWA at one run's budget — {data_name}", fontsize=13)
lecture.save(fig, "10_snapshots_and_swa.png")

# %% [markdown]
# ## What to take away
#
# - Read the two right-hand panels separately: the middle one is each
#   snapshot alone, the right one the ensemble of the last m. The printout
#   gives both, and the binomial standard error of one accuracy on 1 000 test
#   images (±1.6 points): smaller differences are noise.
# - Built-in data (default run): the snapshots improve cycle after cycle
#   (46.6 % → 51.9 % → 54.1 % on the test images), the ensemble of the last
#   two reaches 56.1 % and of all three 55.8 %, against 55.1 % for one cosine
#   at the same budget: +0.7 points, within noise. SWA's average (7 iterates)
#   reaches 57.2 %, +2.1 points over one cosine and +1.4 over its own last
#   iterate (55.8 %) — again about one standard error.
# - Real CIFAR-10 subset (`--data-dir`): each snapshot is worse than the one
#   before (38.5 % → 34.1 % → 32.3 %), on the training images too (50.4 %,
#   44.7 %, 46.3 %): not overfitting, the restarts to α = 0.05 throw this
#   network out of where the first cycle left it. The ensemble of all three
#   (39.3 %) beats one cosine (33.2 %) by 6.1 points, far beyond noise, but
#   the first snapshot alone (38.5 %) is within noise of it. The average of
#   the snapshots' *weights* (30.4 %) is below every snapshot: they do not lie
#   in one basin, so averaging their weights fails where averaging their
#   outputs works. SWA's average (32.4 %) is level with one cosine (−0.8).
# - "For free" holds for training, not for testing: m snapshots cost m forward
#   passes per prediction. SWA gives one network: its weights, not its
#   outputs, are averaged; that works only when the averaged points lie in
#   one basin.
# - Measure before believing: whether the ensemble or SWA beats a single well
#   decayed run depends on the data and the budget, and this lecture prints it.

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **ensembles**. In a terminal:
#
# ```bash
# python -m minisgd exercise start ensembles   # sets the exercise up
# python -m minisgd exercise check ensembles   # checks your solution
# ```
