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
# # 05 · Warm restarts (SGDR) and snapshot ensembles
#
# **What you learn:** SGDR's warm restarts, whether restarts really find flat
# minima (tested on a 1-D loss), and snapshot ensembles, with the noise of a
# test accuracy.
#
# **How long:** about 20 minutes; the default run takes about 8 s of CPU time
# on 2 cores (the same with `--data-dir`).
#
# *Recitation: "Learning-rate decay" — and the SGDR and snapshot-ensemble articles.*
#
# **SGDR** (Loshchilov & Hutter, 2017) anneals the rate with a cosine, then
# *restarts* it at its maximum, again and again. Inside cycle i, which lasts
# $T_i$ epochs,
#
# $$\alpha_t = \alpha_{\min} + \tfrac12(\alpha_{\max} - \alpha_{\min})\bigl(1 + \cos(\pi\,T_{cur}/T_i)\bigr),
# \qquad T_i = T_0 \cdot T_{mult}^{\,i},$$
#
# where $T_{cur}$ counts the epochs since the last restart (moved a little every
# mini-batch). With $T_{mult} = 2$ each cycle is twice as long as the one before.
#
# Why restart? The argument goes: a large rate cannot stay in a *sharp*
# minimum (one with high curvature): it overshoots out of it. A *flat* minimum
# tolerates large steps. So each restart throws the weights out of sharp minima
# and lets them settle in flat ones, and flat minima generalise better: when
# the test loss is the training loss shifted a little, a flat minimum barely
# notices the shift. Below we test the argument on a 1-D loss, against a
# single cosine of the same length — and measure it on real networks in
# lecture 09.
#
# **Snapshot ensembles** (Huang et al., 2017) use the end of every cycle, where
# the rate is near zero and the weights sit in a minimum: save a copy there
# (a *snapshot*), and at test time average the softmax outputs of all snapshots.
# M models for the price of one training run.
#
# Run it: `python lectures/05_sgdr.py` (`--full` for a longer run, `--smoke`
# for a quick check, `--out DIR` for where the figures go).

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

args = lecture.start("SGDR: warm restarts, sharp vs flat minima, snapshot ensembles.", data_dir=True)
if args.smoke:
    RUNS, CYCLE, N_TRAIN, N_VAL, EPOCHS, SNAPSHOTS = 50, 60, 600, 300, 3, 3
elif args.full:
    RUNS, CYCLE, N_TRAIN, N_VAL, EPOCHS, SNAPSHOTS = 1000, 100, 10_000, 2_000, 30, 6
else:
    RUNS, CYCLE, N_TRAIN, N_VAL, EPOCHS, SNAPSHOTS = 200, 100, 4_000, 1_000, 8, 4

# %% [markdown]
# ## Warm restarts with T_mult = 1 and T_mult = 2
#
# `schedules.sgdr(α_max, t0=T₀, t_mult=T_mult)`; t in epochs here (T₀ = 10),
# evaluated at fractional epochs so the curve is what a per-batch update sees.
# `ensemble.cycle_ends(schedule, T)` lists the times after which a cycle ended
# (the rate turns back up): the restarts, and the moments to take snapshots.

# %%
alpha_max, t0, horizon = 0.1, 10, 150
restart_schedules = {
    "T_mult = 1": schedules.sgdr(alpha_max, t0=t0, t_mult=1),
    "T_mult = 2": schedules.sgdr(alpha_max, t0=t0, t_mult=2),
}
epochs_fine = np.linspace(0, horizon, 30 * horizon + 1)  # 30 mini-batches per epoch
fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, layout="constrained")
for ax, (name, schedule) in zip(axes, restart_schedules.items()):
    restarts = cycle_ends(schedule, horizon)
    print(f"SGDR {name} (T₀ = {t0} epochs): restarts after epochs {restarts}")
    ax.plot(epochs_fine, schedule(epochs_fine), color="C0", lw=2)
    for r in restarts:
        ax.axvline(r, color="C3", ls=":", lw=1.2)
    ax.set_title(f"SGDR, {name}: restarts after epochs {', '.join(map(str, restarts))}")
    ax.set_ylabel("learning rate α_t")
    ax.grid(True, alpha=0.3)
axes[-1].set_xlabel("epoch (fractional: the rate moves every mini-batch)")
fig.suptitle(f"Cosine annealing with warm restarts (α_max = {alpha_max}, T₀ = {t0})", fontsize=14)
lecture.save(fig, "05_sgdr_schedules.png")

# %% [markdown]
# ## A sharp and a flat minimum
#
# One weight w and a loss with two minima: a narrow, deep one at w ≈ −1.2
# (curvature ≈ 150) and a wide, slightly shallower one at w ≈ 1.2
# (curvature ≈ 2):
#
# $$f(w) = 0.05\,w^2 - \frac{1.1}{1 + \bigl((w + 1.2)/0.12\bigr)^2} - e^{-(w - 1.3)^2 / (2 \cdot 0.7^2)}.$$
#
# Gradient descent is stable in a minimum of curvature λ only if α < 2/λ (a
# larger step overshoots by more than it corrects). For the sharp minimum that
# is α < 0.013, for the flat one α < 1. SGD's mini-batch noise is imitated by a
# random tilt: each update uses the gradient of $f(w) + \xi w$ with
# $\xi \sim \mathcal N(0, 0.5^2)$, an unbiased but noisy estimate of $f'(w)$.
#
# The "test loss" is the same curve shifted right by δ = 0.15: the data the
# model meets later is a little different from the training data.

# %%
SHIFT = 0.15
NOISE = 0.5


def loss_curve(w):
    """f(w) for a Tensor w (any shape), element by element."""
    sharp = 1.1 / (1 + ((w + 1.2) / 0.12) ** 2)
    flat = minisgd.exp(-((w - 1.3) ** 2) / (2 * 0.7**2))
    return 0.05 * w**2 - sharp - flat


grid = np.linspace(-3.2, 3.6, 6801)
with minisgd.no_grad():
    f_grid = loss_curve(minisgd.Tensor(grid)).numpy()
    f_test_grid = loss_curve(minisgd.Tensor(grid - SHIFT)).numpy()
inner = np.arange(1, len(grid) - 1)
minima = inner[(f_grid[inner] < f_grid[inner - 1]) & (f_grid[inner] < f_grid[inner + 1])]
w_sharp, w_flat = grid[minima[0]], grid[minima[-1]]
barrier = grid[minima[0] + np.argmax(f_grid[minima[0] : minima[-1]])]  # the hill between them
step = grid[1] - grid[0]
curvature = {name: (f_grid[i - 1] - 2 * f_grid[i] + f_grid[i + 1]) / step**2
             for name, i in (("sharp", minima[0]), ("flat", minima[-1]))}
print(f"\nsharp minimum: w = {w_sharp:.3f}, train loss {f_grid[minima[0]]:.3f}, "
      f"curvature λ = {curvature['sharp']:.0f}, stable for α < 2/λ = {2 / curvature['sharp']:.4f}")
print(f"flat minimum:  w = {w_flat:.3f}, train loss {f_grid[minima[-1]]:.3f}, "
      f"curvature λ = {curvature['flat']:.2f}, stable for α < 2/λ = {2 / curvature['flat']:.2f}")
print(f"the hill between them is at w = {barrier:.3f}")
print(
    f"test loss (the curve shifted by δ = {SHIFT}): at the sharp minimum {np.interp(w_sharp, grid, f_test_grid):.3f}, "
    f"at the flat minimum {np.interp(w_flat, grid, f_test_grid):.3f}"
)

# %% [markdown]
# ## Many runs of SGD on this loss, three ways
#
# We start RUNS independent runs at points spread evenly over [−3, 3.5] (one
# tensor holds all of them; the loss is their sum, so each gets its own
# gradient) and give each the same number of updates, four cycles' worth:
#
# - a small constant rate, α = 0.01 (below the sharp minimum's limit);
# - one cosine from α = 0.15 down to 0 (no restart);
# - SGDR with α_max = 0.15 and four cycles (T_mult = 1).
#
# We record every run's position at every update and count how many sit in the
# flat minimum's basin (right of the hill).
#
# What the measurement shows: the large rates are what matters, not the
# restarts. The small constant rate never leaves the basin it starts in. One
# cosine spends its first half at rates far above the sharp minimum's limit
# 2/λ, so nearly all its runs reach the flat basin early and stay. SGDR's first
# cycle is short: its rate drops below 2/λ sooner, and the runs near the sharp
# minimum get caught there at the end of the cycle; each restart throws them
# out again, and after four cycles SGDR ends about level with the single
# cosine (within a few runs of 200). Restarts rescue what a *short* anneal
# traps; they do not beat one long anneal here.

# %%
CYCLES = 4
UPDATES = CYCLES * CYCLE
LR_MAX = 0.15


def run_sgd(lr_schedule, seed=0):
    """All RUNS runs for UPDATES updates of SGD on f(w) + ξ·w; returns positions, shape (UPDATES + 1, RUNS)."""
    rng = np.random.default_rng(seed)
    w = minisgd.Tensor(np.linspace(-3.0, 3.5, RUNS), requires_grad=True)
    optimizer = optim.SGD([w], lr=lr_schedule)
    path = [w.detach().numpy().copy()]
    for _ in range(UPDATES):
        xi = minisgd.Tensor(rng.normal(0.0, NOISE, size=RUNS))  # the mini-batch noise of this update
        optimizer.zero_grad()
        (loss_curve(w) + xi * w).sum().backward()
        optimizer.step()
        path.append(w.detach().numpy().copy())
    return np.array(path)


strategies = {
    "constant α = 0.01": schedules.constant(0.01),
    f"cosine, α {LR_MAX} → 0, no restart": schedules.cosine(LR_MAX, total_steps=UPDATES),
    f"SGDR, α_max = {LR_MAX}, {CYCLES} cycles": schedules.sgdr(LR_MAX, t0=CYCLE, t_mult=1),
}
paths = {name: run_sgd(schedule) for name, schedule in strategies.items()}
sgdr_name = list(strategies)[-1]
ends = cycle_ends(strategies[sgdr_name], UPDATES)  # the ends of SGDR's cycles; the last is the end of the run

print(f"\n{RUNS} runs, {UPDATES} updates each; share of runs in the flat minimum's basin (w > {barrier:.2f}):")
print(f"{'':38s}" + "".join(f"{'t = ' + str(t):>10s}" for t in ends))
for name, path in paths.items():
    print(f"{name:38s}" + "".join(f"{np.mean(path[t] > barrier):10.0%}" for t in ends))
print("(SGDR's columns are the ends of its cycles: at each restart the runs left in the sharp minimum are thrown out.)")
final_share = {name: np.mean(path[-1] > barrier) for name, path in paths.items()}
print("at the end of the same budget: " + ", ".join(f"{name}: {share:.0%}" for name, share in final_share.items()))

# %% [markdown]
# ## One SGDR run, step by step
#
# We pick the first SGDR run whose first cycle ended in the sharp minimum and
# follow it. Left: its positions on the loss curve, coloured by time. Right:
# its position against t, with the rate. When the first cycle ends (rate ≈ 0),
# it sits in the sharp minimum — the *lower* training loss. The restart's large
# rate makes that minimum unstable and throws it out; it settles in the flat
# minimum and stays there through the later restarts, since α_max < 2/λ there.
# The dashed test curve shows why we are glad: shifted by δ, the sharp minimum's
# loss jumps, the flat one's hardly moves.

# %%
sgdr_path = paths[sgdr_name]
first_end = ends[0]
caught = np.flatnonzero((np.abs(sgdr_path[first_end] - w_sharp) < 0.1) & (sgdr_path[-1] > barrier))
chosen = int(caught[0]) if len(caught) else int(np.argmin(np.abs(sgdr_path[0] - w_sharp)))
trajectory = sgdr_path[:, chosen]
print(f"\nfollowed run #{chosen}: starts at w = {trajectory[0]:.2f}, at the end of cycle 1 (t = {first_end}) "
      f"w = {trajectory[first_end]:.3f}, at the end (t = {UPDATES}) w = {trajectory[-1]:.3f}")


def place(w):
    """Where w is: at one of the minima, or in which basin."""
    if abs(w - w_sharp) < 0.1:
        return "at the sharp minimum"
    if abs(w - w_flat) < 0.3:
        return "at the flat minimum"
    return "in the flat basin" if w > barrier else "in the sharp basin"


for t in ends:
    print(f"  t = {t:4d}: w = {trajectory[t]:7.3f} ({place(trajectory[t])}), train loss "
          f"{np.interp(trajectory[t], grid, f_grid):.3f}, test loss {np.interp(trajectory[t], grid, f_test_grid):.3f}")

fig, (ax_curve, ax_time, ax_share) = plt.subplots(1, 3, figsize=(19, 5.5), layout="constrained")
ax_curve.plot(grid, f_grid, color="k", lw=2, label="training loss f(w)")
ax_curve.plot(grid, f_test_grid, color="0.5", lw=1.5, ls="--", label=f"test loss f(w − {SHIFT})")
dots = ax_curve.scatter(trajectory, np.interp(trajectory, grid, f_grid), c=np.arange(len(trajectory)),
                        cmap="viridis", s=14, zorder=3)
ax_curve.plot(trajectory[0], np.interp(trajectory[0], grid, f_grid), "ks", ms=9, zorder=4, label="start")
ax_curve.plot(trajectory[first_end], np.interp(trajectory[first_end], grid, f_grid), "o", color="C1", ms=11,
              mec="k", zorder=4, label=f"end of cycle 1 (t = {first_end})")
ax_curve.plot(trajectory[-1], np.interp(trajectory[-1], grid, f_grid), "*", color="C3", ms=18, mec="k",
              zorder=4, label=f"end (t = {UPDATES})")
fig.colorbar(dots, ax=ax_curve, label="update t")
ax_curve.set(xlabel="weight w", ylabel="loss", title="One SGDR run on the loss curve", ylim=(-1.2, 0.6))
ax_curve.legend(loc="upper center", fontsize=10)
ax_curve.grid(True, alpha=0.3)

ax_time.plot(trajectory, color="C0", lw=1.2, label="w of the followed run")
ax_time.axhline(w_sharp, color="C1", ls="--", label=f"sharp minimum (w = {w_sharp:.2f})")
ax_time.axhline(w_flat, color="C2", ls="--", label=f"flat minimum (w = {w_flat:.2f})")
for t in ends[:-1]:
    ax_time.axvline(t, color="C3", ls=":", lw=1.2)
ax_time.set(xlabel="update t (dotted: restarts)", ylabel="weight w", title="Position over time, and the rate")
ax_lr = ax_time.twinx()
ts = np.arange(UPDATES)
ax_lr.plot(ts, strategies[sgdr_name](ts), color="0.6", lw=1, label="learning rate (right axis)")
ax_lr.set_ylabel("learning rate α_t")
lines = ax_time.get_legend_handles_labels()
more = ax_lr.get_legend_handles_labels()
ax_time.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=10)

for i, (name, path) in enumerate(paths.items()):
    ax_share.plot(np.arange(UPDATES + 1), 100 * np.mean(path > barrier, axis=1), color=f"C{i}", lw=2, label=name)
for t in ends[:-1]:
    ax_share.axvline(t, color="C3", ls=":", lw=1.2)
ax_share.set(xlabel="update t", ylabel="% of runs in the flat basin", ylim=(0, 105),
             title=f"All {RUNS} runs: who ends in the flat minimum")
ax_share.legend(loc="lower right", fontsize=10)
ax_share.grid(True, alpha=0.3)
fig.suptitle("Large rates cannot stay in a sharp minimum: restarts free SGDR's trapped runs, "
             "one long cosine gets there as well", fontsize=14)
lecture.save(fig, "05_sharp_vs_flat.png")

# %% [markdown]
# ## Snapshot ensemble vs a single model
#
# Now a real network: the small two-layer network of lecture 04 (3072 → 128 → 10)
# on the built-in `SyntheticShapes` images, or on CIFAR-10 with `--data-dir`
# (the data line below says which, and which files). `schedules.snapshot(α₀, T, M)` is M
# equal cosine cycles over the T updates (SGDR with T_mult = 1). After every
# update we check the optimizer's count t against `cycle_ends(schedule, T)`,
# and at each cycle's end `SnapshotEnsemble.add(model)` stores a copy of the
# weights. The ensemble predicts with the average of the snapshots' softmax
# outputs,
#
# $$p(y \mid x) = \frac1M \sum_{k=1}^{M} \mathrm{softmax}\bigl(f(x; W_k)\bigr).$$
#
# The fair comparison is a single model trained for the same number of updates
# with one cosine decay (no restarts), from the same initial weights.
#
# All accuracies here are on the *test* images, and nothing is chosen on them:
# we measure every snapshot, the ensemble and the single model, and report all
# of them (choosing the best snapshot on these numbers would need a validation
# split, as in lecture 06). One accuracy on n test images has a binomial
# standard error of √(p(1 − p)/n), up to ±1.6 points on 1 000 images: a lead
# smaller than that is noise, and the figure draws it as error bars.

# %%
train_set, test_set, data_name = lecture.images(args, N_TRAIN, N_VAL)  # --data-dir: CIFAR-10; else built-in
BATCH_SIZE, LR = 64, 0.05
# The recipe's loaders (`python -m minisgd train` uses the same): images normalised with the
# training images' channel statistics, the training batches shuffled from seed 0.
loader, test_loader = recipe.build_loaders(train_set, test_set, batch_size=BATCH_SIZE, seed=0)
total = EPOCHS * len(loader)
print(f"data: {data_name}")


def make_model():
    minisgd.random.manual_seed(0)  # the same initial weights for both runs
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128), nn.ReLU(), nn.Linear(128, 10))


snapshot_schedule = schedules.snapshot(LR, total_steps=total, cycles=SNAPSHOTS)
snapshot_times = cycle_ends(snapshot_schedule, total)  # after these updates, take a snapshot
model = make_model()
optimizer = optim.SGD(model.parameters(), lr=snapshot_schedule, momentum=0.9)
ensemble = SnapshotEnsemble()
snapshot_acc = []


def take_snapshot(t):
    """Called by fit after every update with t = updates done so far."""
    if t in snapshot_times:
        ensemble.add(model)
        snapshot_acc.append(evaluate(model, test_loader)["acc"])


snapshot_history = fit(model, loader, optimizer, epochs=EPOCHS, on_step_end=take_snapshot, progress=False)
ensemble_acc = ensemble.accuracy(test_loader)
ensemble_acc_last = [ensemble.accuracy(test_loader, last=k) for k in range(1, len(ensemble) + 1)]

single = make_model()
single_optimizer = optim.SGD(single.parameters(), lr=schedules.cosine(LR, total_steps=total), momentum=0.9)
loader.set_epoch(0)  # the same batches as the snapshot run
single_history = fit(single, loader, single_optimizer, epochs=EPOCHS, progress=False)
single_acc = evaluate(single, test_loader)["acc"]

print(
    f"\nsnapshot ensemble: {EPOCHS} epochs = {total} updates, {SNAPSHOTS} cycles, "
    f"snapshots after updates {snapshot_times}"
)
for k, acc in enumerate(snapshot_acc, start=1):
    print(f"  snapshot {k}: test accuracy {acc:.3f}")
print(
    "  ensemble of the last m snapshots: " + ", ".join(f"m = {m}: {a:.3f}" for m, a in enumerate(ensemble_acc_last, 1))
)
print(f"single model (last snapshot):          accuracy {snapshot_acc[-1]:.3f}")
print(f"single model (one cosine, same budget): accuracy {single_acc:.3f}")
print(f"snapshot ensemble ({len(ensemble)} snapshots):       accuracy {ensemble_acc:.3f}")
standard_error = float(np.sqrt(ensemble_acc * (1 - ensemble_acc) / len(test_set)))
lead = ensemble_acc - max(snapshot_acc + [single_acc])
print(f"noise: binomial standard error of one accuracy on {len(test_set)} test images, sqrt(p(1 − p)/n) = "
      f"±{100 * standard_error:.1f} points; the ensemble's lead over the best single model: {100 * lead:+.1f} points "
      f"({'within' if abs(lead) < 2 * standard_error else 'beyond'} two standard errors)")

fig, (ax_lr, ax_acc) = plt.subplots(1, 2, figsize=(15, 5), layout="constrained")
ax_lr.plot(snapshot_history.step_lr, color="C0", lw=2, label="snapshot schedule (M cosine cycles)")
ax_lr.plot(single_history.step_lr, color="0.5", lw=1.5, ls="--", label="single cosine (baseline)")
for k, t in enumerate(snapshot_times):
    ax_lr.axvline(t - 1, color="C3", ls=":", lw=1.2, label="snapshot taken" if k == 0 else None)
ax_lr.set(xlabel="update t", ylabel="learning rate α_t", title="When the snapshots are taken")
ax_lr.grid(True, alpha=0.3)
ax_lr.legend(loc="upper right")
labels = [f"snapshot {k}" for k in range(1, len(snapshot_acc) + 1)] + ["single\n(cosine)", "ensemble\n(all)"]
values = snapshot_acc + [single_acc, ensemble_acc]
colors = ["C0"] * len(snapshot_acc) + ["0.5", "C3"]
errors = [100 * np.sqrt(v * (1 - v) / len(test_set)) for v in values]  # binomial standard errors
bars = ax_acc.bar(range(len(values)), [100 * v for v in values], color=colors, yerr=errors, capsize=5)
ax_acc.bar_label(bars, fmt="%.1f", fontsize=11, padding=8)
ax_acc.set_xticks(range(len(values)), labels, fontsize=10)
ax_acc.set(ylabel="test accuracy (%)", ylim=(0, 100 * max(values) + 12),
           title="Each snapshot, one model, and the ensemble (± binomial standard error)")
ax_acc.grid(True, axis="y", alpha=0.3)
fig.suptitle(f"Snapshot ensemble: {SNAPSHOTS} models from one training run ({EPOCHS} epochs) — {data_name}",
             fontsize=14)
lecture.save(fig, "05_snapshot_ensemble.png")

# %% [markdown]
# ## What to take away
#
# - SGDR restarts the rate at α_max every cycle; T_mult = 2 doubles the
#   cycle's length each time.
# - A minimum of curvature λ survives a rate α only if α < 2/λ: large rates
#   shake SGD out of sharp minima, and each restart gives it another chance to
#   settle in a flat one — which keeps its low loss when the data shift.
# - Measured on the 1-D loss (200 runs): the time spent at large rates decides.
#   One cosine of the same length ends about as often in the flat minimum as
#   SGDR (98 % against 100 %; a small constant rate: 64 %); SGDR's restarts
#   free the runs its short first cycle trapped (84 % after cycle 1). Lecture
#   09 measures sharpness (λ_max of the Hessian) on trained networks.
# - The end of every cycle is a model for free, and averaging their
#   predictions (a snapshot ensemble) is at least as accurate as the best of
#   them here — but read the noise line first: one accuracy on 1 000 test
#   images has a binomial standard error of about ±1.6 points. Default run on
#   the built-in data: the ensemble of 4 reaches 55.9 %, 1.8 points above its
#   best snapshot (54.1 %, snapshot 3), within two standard errors, and 5.4
#   points above one cosine of the same budget (50.5 %), beyond them. On the
#   real CIFAR-10 subset the snapshots get worse cycle after cycle
#   (38.5 % → 27.2 %); the ensemble (38.4 %) beats one cosine (27.5 %) and the
#   last snapshot by far, and ties the first (−0.1 points: noise).

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **schedules**. In a terminal:
#
# ```bash
# python -m minisgd exercise start schedules   # sets the exercise up
# python -m minisgd exercise check schedules   # checks your solution
# ```
