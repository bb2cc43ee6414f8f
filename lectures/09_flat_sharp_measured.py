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
# # 09 · Flat and sharp minima, measured
#
# **What you learn:** how to turn "flat" and "sharp" into numbers (λ_max of
# the Hessian, filter-normalised sharpness) and whether small batches, decay,
# restarts and SWA find flatter minima that test better.
#
# **How long:** about 25 minutes; the default run takes about 23 s of CPU time
# on 2 cores (20 s with `--data-dir`), most of it training the large batch as
# far as the small one.
#
# *Recitation: "Learning-rate decay" and "SGDR" — the claim that small batches
# and restarts find flat minima, and that flat minima generalise better.*
#
# Lecture 05 told the story on a 1-D curve. Here we measure it on a trained
# network. Five networks start from the same weights and see the same data;
# they differ in how they were trained:
#
# - **small batch** (B = 32) against **large batch** (B = 1024), both with a
#   cosine decay (Keskar et al. 2017, "On Large-Batch Training … Sharp Minima"),
#   the large batch trained for more epochs, until its training loss matches;
# - at B = 128: a **constant rate**, one **cosine**, and **SGDR** (three cycles);
# - **SWA**, the average of the constant-rate run's weights over its second
#   half (Izmailov et al. 2018), when minisgd has `optim.swa_utils`.
#
# For each we measure, on a fixed sample of training images:
#
# - **λ_max**, the largest eigenvalue of the Hessian ∇²L: the curvature in the
#   sharpest direction. Gradient descent with rate α cannot stay in a minimum
#   with α > 2/λ_max. `landscape.hessian_top_eigenvalue` finds it by power
#   iteration, v ← Hv/‖Hv‖, with Hv from central differences of gradients in
#   float64 (`landscape.hessian_vector_product`).
# - a **sharpness number**: the mean rise of the training loss at distance
#   ρ = 0.5 along random *filter-normalised* directions (`landscape.sharpness`).
#   Filter normalisation (Li et al. 2018) scales the random direction of every
#   neuron's weights to the norm of those weights, so networks with weights of
#   different sizes are compared fairly.
# - the **test accuracy**.
#
# Then we draw the loss along one filter-normalised direction for every run on
# one figure (1-D slices), the 2-D slices of the small- and large-batch
# solutions, and the loss on the straight line between them.
#
# Run it: `python lectures/09_flat_sharp_measured.py` (`--data-dir DIR` for
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
import math

import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import landscape, lecture, nn, optim, recipe, schedules  # lecture: the plumbing (options, figures)
from minisgd.data import DataLoader
from minisgd.nn import functional as F
from minisgd.train import evaluate, fit

try:
    from minisgd.optim.swa_utils import AveragedModel
except ImportError:  # a minisgd without stochastic weight averaging: the SWA row is left out
    AveragedModel = None

args = lecture.start("Flat and sharp minima, measured: λ_max, sharpness, slices.", data_dir=True)
N_TRAIN, N_TEST, EPOCHS, PROBE, POWER_STEPS, DIRECTIONS, SLICE, GRID = lecture.sizes(
    args,
    smoke=(600, 300, 2, 200, 4, 2, 9, 5),
    default=(3_000, 1_000, 6, 300, 12, 3, 21, 7),
    full=(None, None, 30, 1_000, 50, 10, 41, 21),  # None: every image
)
LR, MOMENTUM, RADIUS = 0.02, 0.9, 0.5

# %% [markdown]
# ## Five ways to train the same network
#
# A two-layer network like that of lectures 04–06, narrower (3072 → 64 → 10)
# so that five runs and their curvature fit in a minute, and with the smooth
# SiLU, x·σ(x), in place of ReLU: a ReLU network's loss has kinks (its gradient
# jumps where a unit switches on or off), and a Hessian measured by
# differences of gradients across a kink is dominated by the jump, not by the
# curvature. SGD with momentum 0.9 and α₀ = 0.02.
#
# Sharpness is a property of a *minimum*, so both batch sizes must be trained
# as far. In 6 epochs the large batch makes 32 times fewer updates than the
# small one (18 against 564 on 3 000 images) and is barely trained: "flat"
# would then mean "still near the start". So the B = 32 run trains 6 epochs,
# and the B = 1024 run trains until its training loss matches: a whole cosine
# run of 12 × 6 = 72 epochs (216 updates on 3 000 images), then runs 25 %
# longer (or shorter) until the target lies between two of them (at most
# three runs), keeping the run whose final training loss (on all training
# images) is closest to the small batch's. The printout lists every try. The
# B = 128 runs train 6 epochs.

# %%
import time

train_set, test_set, data_name = lecture.images(args, N_TRAIN, N_TEST)
# The recipe's loaders (`python -m minisgd train` uses the same): images normalised with the
# training images' channel statistics, the training batches shuffled from seed 0 (the same batches for every run).
_, test_loader = recipe.build_loaders(train_set, test_set, seed=0)
to_input = test_loader.transform  # uint8 (N, 32, 32, 3) → normalised float (N, 3, 32, 32)
train_eval_loader = DataLoader(train_set, batch_size=1000, transform=to_input)
x_probe, y_probe = next(iter(DataLoader(train_set, batch_size=PROBE, shuffle=True, seed=1, transform=to_input)))
x_probe = minisgd.tensor(x_probe.data, dtype=np.float64)  # the landscape functions evaluate in float64
print(f"data: {data_name}; {EPOCHS} epochs; curvature measured on {len(y_probe)} training images")


class SiLU(nn.Module):
    """x·σ(x), a smooth ReLU (SiLU, "swish"): the Hessian exists everywhere (see above)."""

    def forward(self, x):
        return x * x.sigmoid()


def make_model():
    minisgd.random.manual_seed(0)  # the same initial weights for every run
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), SiLU(), nn.Linear(64, 10))


def train(batch_size, schedule_of, swa=False, updates=None):
    """Train a fresh network; schedule_of(total updates) gives the rate. Returns (model, SWA average or None).

    ``updates``: train for (at least) that many updates instead of ``EPOCHS`` epochs (whole epochs).
    """
    model = make_model()
    loader, _ = recipe.build_loaders(train_set, test_set, batch_size=batch_size, seed=0)
    epochs = EPOCHS if updates is None else math.ceil(updates / len(loader))
    total = epochs * len(loader)
    updates_made[batch_size] = (epochs, total)
    optimizer = optim.SGD(model.parameters(), lr=schedule_of(total), momentum=MOMENTUM)
    average = AveragedModel(model) if swa and AveragedModel is not None else None
    every = max(1, len(loader) // 4)  # four averages per epoch, over the second half of the run

    def collect(t):
        if average is not None and t > total // 2 and t % every == 0:
            average.update_parameters(model)

    fit(model, loader, optimizer, epochs=epochs, on_step_end=collect, progress=False)
    return model, average


updates_made = {}  # batch size -> (epochs, updates) of its run


recipes = {
    "B = 32, cosine": (32, lambda T: schedules.cosine(LR, total_steps=T)),
    "B = 1024, cosine": (1024, lambda T: schedules.cosine(LR, total_steps=T)),
    "B = 128, constant": (128, lambda T: schedules.constant(LR)),
    "B = 128, cosine": (128, lambda T: schedules.cosine(LR, total_steps=T)),
    "B = 128, SGDR ×3": (128, lambda T: schedules.sgdr(LR, t0=math.ceil(T / 3))),
}
def train_to_loss(batch_size, schedule_of, target, first_epochs, tries=3):
    """The large batch, trained as far as the small batch got: a whole cosine run of first_epochs, then runs
    25 % longer (or shorter) while the training loss stays on the same side of target, at most `tries` runs
    in all; the run whose final training loss is closest to target is kept."""
    tried = {}  # epochs -> (training loss, model)

    def attempt(epochs):
        model, _ = train(batch_size, schedule_of, updates=epochs * math.ceil(len(train_set) / batch_size))
        tried[epochs] = (evaluate(model, train_eval_loader)["loss"], model)
        print(f"    B = {batch_size}, {epochs:3d} epochs: training loss {tried[epochs][0]:.4f} (target {target:.4f})")
        return tried[epochs][0] > target  # True: not trained far enough yet

    epochs = first_epochs
    too_short = attempt(epochs)
    while len(tried) < tries:
        epochs = round(epochs * 1.25) if too_short else max(1, round(epochs / 1.25))
        if attempt(epochs) != too_short:
            break  # the target lies between the last two runs
    chosen = min(tried, key=lambda e: abs(tried[e][0] - target))
    updates_made[batch_size] = (chosen, chosen * math.ceil(len(train_set) / batch_size))
    return tried[chosen][1]


networks = {}
for name, (batch_size, schedule_of) in recipes.items():
    began = time.perf_counter()
    if batch_size == 1024:  # train it as far as the small batch got, so that both are minima, not one a start
        target = evaluate(networks["B = 32, cosine"], train_eval_loader)["loss"]
        model, average = train_to_loss(batch_size, schedule_of, target, first_epochs=12 * EPOCHS), None
    else:
        model, average = train(batch_size, schedule_of, swa="constant" in name)
    epochs, updates = updates_made[batch_size]
    print(f"{name:18s}: {epochs:3d} epochs, {updates:3d} updates ({time.perf_counter() - began:.1f} s)")
    networks[name] = model
    if average is not None:
        networks["SWA of B = 128, constant"] = average.module

# %% [markdown]
# ## λ_max, sharpness and test accuracy
#
# `loss_fn()` is the cross-entropy on the fixed probe sample, for the network's
# current weights; the landscape functions move the weights, call it, and put
# them back. Power iteration stops after a fixed number of products (or once
# λ settles to 1e-3); `sharpness` averages the loss rise at ρ = 0.5 over a few
# random filter-normalised directions, both ways (+ρ and −ρ) so the slope cancels.

# %%
def probe_loss(model):
    return lambda: F.cross_entropy(model(x_probe), y_probe)


measured = {}
for name, model in networks.items():
    params = list(model.parameters())
    measured[name] = {
        "train": evaluate(model, train_eval_loader),
        "test": evaluate(model, test_loader),
        "lambda": landscape.hessian_top_eigenvalue(probe_loss(model), params, iterations=POWER_STEPS,
                                                   tolerance=1e-3),
        "sharpness": landscape.sharpness(probe_loss(model), params, radius=RADIUS, directions=DIRECTIONS),
    }

print(f"\n{'run':26s} {'train loss':>10s} {'test acc':>9s} {'λ_max':>9s} {'2/λ_max':>8s} {'sharpness':>10s}")
for name, m in measured.items():
    print(f"{name:26s} {m['train']['loss']:10.4f} {m['test']['acc']:9.3f} {m['lambda']:9.3f} "
          f"{2 / m['lambda']:8.3f} {m['sharpness']:10.4f}")
if AveragedModel is None:
    print("(SWA: this minisgd has no optim.swa_utils; the SWA row is left out)")

# %% [markdown]
# ## What the numbers say, against the folklore
#
# The lines below compare the pairs the folklore speaks about, with the
# numbers of this run. The folklore: a large batch finds a sharper minimum
# that tests worse; a decayed or restarted rate finds a flatter one than a
# constant rate; SWA's average is flatter and tests better than the iterates.
# On the built-in data (default run), what we measured is summarised in
# `lectures/README.md`; the printout is the authority for any other run.
#
# Note what λ_max measures at the end of a *constant*-rate run: the weights
# are still bouncing (the rate never fell), and SGD with momentum β at rate α
# only stays near a minimum whose λ_max < 2(1 + β)/α — the rate itself caps
# the sharpness it can sit in. A run that decays its rate to 0 has no such cap.

# %%
def compare(a, b, what):
    """One line: does run a have a larger λ_max, sharpness, and lower test accuracy than run b?"""
    ma, mb = measured[a], measured[b]
    sharper = ma["lambda"] > mb["lambda"]
    print(f"{what}: λ_max {ma['lambda']:.2f} vs {mb['lambda']:.2f} ({'sharper' if sharper else 'flatter'}), "
          f"sharpness {ma['sharpness']:.3f} vs {mb['sharpness']:.3f}, "
          f"test acc {ma['test']['acc']:.3f} vs {mb['test']['acc']:.3f} "
          f"({'worse' if ma['test']['acc'] < mb['test']['acc'] else 'not worse'}), "
          f"train loss {ma['train']['loss']:.3f} vs {mb['train']['loss']:.3f}")


print()
compare("B = 1024, cosine", "B = 32, cosine", "large vs small batch")
compare("B = 128, constant", "B = 128, cosine", "constant vs cosine")
compare("B = 128, SGDR ×3", "B = 128, cosine", "SGDR vs cosine")
if "SWA of B = 128, constant" in measured:
    compare("SWA of B = 128, constant", "B = 128, constant", "SWA average vs its constant-rate run")
names = list(measured)
lambdas = np.array([measured[n]["lambda"] for n in names])
accuracies = np.array([measured[n]["test"]["acc"] for n in names])


def rank_correlation(x, y):
    """Spearman's ρ: the correlation of the ranks (−1: the larger x, the smaller y, always)."""
    return float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])


correlation = rank_correlation(lambdas, accuracies)
print(f"rank correlation of λ_max with test accuracy over the {len(names)} networks: {correlation:+.2f} "
      "(−1: the flatter, the better, always; +1: the opposite)")
trained = [i for i, n in enumerate(names) if n != "B = 1024, cosine"]
correlation_without_large = rank_correlation(lambdas[trained], accuracies[trained])
print(f"the same without the large batch (the {len(trained)} networks trained for {EPOCHS} epochs): "
      f"{correlation_without_large:+.2f}")
standard_error = 100 * math.sqrt(0.25 / len(test_set))  # the largest binomial standard error, at p = 0.5
print(f"noise: one test accuracy on {len(test_set)} images has a binomial standard error of up to "
      f"±{standard_error:.1f} points, sqrt(p(1 − p)/n); smaller differences say nothing")

# %% [markdown]
# ## The 1-D slices, on one figure
#
# For each network, L(θ + α d) for α from −1 to 1 along one random
# filter-normalised direction d (seed 0, normalised to that network's own
# weights). A flat minimum shows as a wide bowl; a sharp one as a narrow one.

# %%
alphas = np.linspace(-1.0, 1.0, SLICE)
fig, (ax_slice, ax_scatter) = plt.subplots(1, 2, figsize=(15, 5.5), layout="constrained")
for i, (name, model) in enumerate(networks.items()):
    params = list(model.parameters())
    losses = landscape.loss_slice_1d(probe_loss(model), params, landscape.random_direction(params, seed=0), alphas)
    ax_slice.plot(alphas, losses, color=f"C{i}", lw=2, label=name)
ax_slice.set(xlabel="α (step along a filter-normalised direction)", ylabel="training loss (probe sample)",
             yscale="log", title="1-D slices through each solution")
ax_slice.grid(True, alpha=0.3)
ax_slice.legend(fontsize=10)
for i, name in enumerate(names):
    ax_scatter.errorbar(measured[name]["lambda"], 100 * measured[name]["test"]["acc"], yerr=standard_error,
                        fmt="o", ms=10, color=f"C{i}", mec="k", capsize=4, zorder=3, label=name)
ax_scatter.set(xscale="log", xlabel="λ_max of the Hessian (log scale)", ylabel="test accuracy (%)",
               title=f"λ_max against test accuracy (± binomial standard error)\nrank correlation: all "
                     f"{len(names)} networks {correlation:+.2f}, without B = 1024 {correlation_without_large:+.2f}")
ax_scatter.grid(True, alpha=0.3)
ax_scatter.legend(fontsize=10)
fig.suptitle(f"Flat and sharp minima, measured — {data_name}", fontsize=13)
lecture.save(fig, "09_slices_and_sharpness.png")

# %% [markdown]
# ## Small against large batch: 2-D slices and the line between them
#
# Left and middle: L(θ + α d₁ + β d₂) on a grid, for two filter-normalised
# directions, around the small-batch and the large-batch solutions (the same
# colour scale). Right: the loss on the straight line
# θ(t) = (1 − t) θ_small + t θ_large, training and test. Both runs started
# from the same weights, so the line joins two points of one basin or crosses
# a barrier between two.

# %%
small, large = networks["B = 32, cosine"], networks["B = 1024, cosine"]
grid = np.linspace(-1.0, 1.0, GRID)
surfaces = {}
for name, model in (("B = 32", small), ("B = 1024", large)):
    params = list(model.parameters())
    surfaces[name] = landscape.loss_slice_2d(probe_loss(model), params, landscape.random_direction(params, seed=0),
                                             landscape.random_direction(params, seed=1), grid, grid)
x_test, y_test = next(iter(DataLoader(test_set, batch_size=PROBE, transform=to_input)))
x_test = minisgd.tensor(x_test.data, dtype=np.float64)  # float64, like the weights inside loss_along_line
ts = np.linspace(0.0, 1.0, SLICE)
params = list(small.parameters())
ends = [[p.data.copy() for p in m.parameters()] for m in (small, large)]
line_train = landscape.loss_along_line(probe_loss(small), params, ends[0], ends[1], ts)
line_test = landscape.loss_along_line(lambda: F.cross_entropy(small(x_test), y_test), params, ends[0], ends[1], ts)
barrier = line_train.max() - max(line_train[0], line_train[-1])
print(f"\nline from the B = 32 to the B = 1024 solution: training loss {line_train[0]:.4f} → {line_train[-1]:.4f}, "
      f"highest in between {line_train.max():.4f} (barrier {barrier:.4f}); "
      f"test loss {line_test[0]:.4f} → {line_test[-1]:.4f}, "
      f"lowest {line_test.min():.4f} at t = {ts[line_test.argmin()]:.2f}")

fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), layout="constrained")
levels = np.geomspace(min(s.min() for s in surfaces.values()), max(s.max() for s in surfaces.values()), 15)
for ax, (name, surface) in zip(axes, surfaces.items()):
    filled = ax.contourf(grid, grid, surface, levels=levels, norm=plt.matplotlib.colors.LogNorm(), cmap="viridis")
    ax.contour(grid, grid, surface, levels=levels, colors="white", linewidths=0.4)
    ax.plot(0, 0, "r*", ms=14)
    ax.set(xlabel="α (direction 1)", ylabel="β (direction 2)", title=f"{name}: training loss around the solution")
fig.colorbar(filled, ax=axes[:2], label="training loss (log scale)", format="%.2g")
axes[2].plot(ts, line_train, color="C0", lw=2, label="training loss")
axes[2].plot(ts, line_test, color="C3", lw=2, ls="--", label="test loss")
axes[2].set(xlabel="t: θ = (1 − t) θ_small + t θ_large", ylabel="loss",
            title="On the line from B = 32 (t = 0) to B = 1024 (t = 1)")
axes[2].grid(True, alpha=0.3)
axes[2].legend()
lecture.save(fig, "09_small_vs_large_batch.png")

# %% [markdown]
# ## What to take away
#
# - λ_max (power iteration on Hessian-vector products) and a filter-normalised
#   sharpness number turn "flat" and "sharp" into numbers you can print for any
#   network.
# - Small against large batch, trained to the same training loss: on the
#   built-in data (default run) B = 1024 matched in 72 epochs the loss
#   B = 32 reached in 6 (0.446 against 0.442). Its minimum is 4.3 times sharper
#   by λ_max (89.5 against 20.8; sharpness 0.92 against 0.31) and it tests
#   worse, 45.4 % against 53.9 %: Keskar et al.'s finding, reproduced. On the
#   real CIFAR-10 subset (`--data-dir`) B = 1024 reached 0.767 against 0.790,
#   again much sharper (λ_max 52.7 against 15.7) — but its test accuracy is
#   40.1 % against 41.3 %, a difference below the binomial standard error
#   (±1.6 points on 1 000 images, printed): sharper, yes; worse, not shown.
# - Among the five networks trained for 6 epochs (all but the large batch)
#   the flatter by λ_max tested better on the built-in data: rank correlation
#   −0.90 (B = 32 the flattest and best, the B = 128 cosine the sharpest and
#   worst). With the large batch included it is −0.37: the large batch is the
#   sharpest of all but tests about as well as the B = 128 runs, which stopped
#   at higher training losses (0.70–1.00). The figure's title gives both
#   numbers. On the real subset they are −0.71 (all six) and −0.60 (without
#   the large batch). So flatness and accuracy go together at the extremes,
#   not as a law across every recipe; the filter-normalised sharpness ranks
#   the runs differently from λ_max (it averages many directions, λ_max takes
#   the worst one).
# - SWA's average is flatter than the constant-rate run it averages (λ_max
#   29.5 against 37.2 built-in, 19.0 against 29.4 real) and tests as well or
#   better (45.3 % against 44.9 %, within noise; 40.6 % against 37.1 % on the
#   real subset).
# - Whether the flatter solution tests better is a measurement, not a law: read
#   the comparison lines above, and the table of both data sets in
#   `lectures/README.md`. The rate caps the sharpness SGD can sit in
#   (λ_max < 2(1 + β)/α), so comparisons between runs that end at different
#   rates partly measure the rate.
# - Dinh et al. (2017) showed sharpness can be changed without changing the
#   function (rescale the layers of a ReLU network); filter normalisation
#   removes that effect from the slices, not from λ_max.

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **adaptive**. In a terminal:
#
# ```bash
# python -m minisgd exercise start adaptive   # sets the exercise up
# python -m minisgd exercise check adaptive   # checks your solution
# ```
