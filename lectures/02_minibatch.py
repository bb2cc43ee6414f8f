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
# # 02 · Mini-batch gradient descent: from B = 1 to B = N
#
# **What you learn:** how the batch size B trades gradient noise (variance
# σ²/B) against the cost of an update, per epoch and per second.
#
# **How long:** about 15 minutes; the default run takes about 5 s of CPU time
# on 2 cores.
#
# *Recitation: "SGD recap — mini-batch GD".*
#
# Mini-batch SGD averages the gradients of a batch $\mathcal B$ of $B$ examples,
#
# $$g_B = \frac{1}{B}\sum_{i\in\mathcal B} \nabla F_i(w), \qquad w \leftarrow w - \alpha\, g_B .$$
#
# $B = 1$ is pure SGD, $B = N$ is full-batch gradient descent. The average of
# $B$ independent draws has $1/B$ of the variance of one draw:
#
# $$\mathbb E\,\lVert g_B - \nabla F\rVert^2 = \frac{\sigma^2}{B},\qquad
#   \sigma^2 = \mathbb E_i\,\lVert \nabla F_i - \nabla F\rVert^2 .$$
#
# (A `DataLoader` draws each epoch's batches *without* replacement, which makes
# the variance a little smaller: $\frac{\sigma^2}{B}\cdot\frac{N-B}{N-1}$, and 0 at $B = N$.)
#
# Larger batches: less noise per update, but more compute per update and fewer
# updates per epoch. We measure both sides on logistic regression.
#
# Run it: `python lectures/02_minibatch.py` (`--full`, `--smoke`, `--out DIR`).

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
import time

import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import lecture, optim  # lecture: the plumbing (options, figures)
from minisgd.data import DataLoader, toy

args = lecture.start("Mini-batch size: gradient noise and convergence.")
if args.smoke:
    N, BATCHES_MEASURED, EPOCHS, SECONDS = 512, 100, 1, 0.05
elif args.full:
    N, BATCHES_MEASURED, EPOCHS, SECONDS = 2048, 2000, 10, 2.0
else:
    N, BATCHES_MEASURED, EPOCHS, SECONDS = 2048, 400, 3, 0.3
LR = 0.2

# %% [markdown]
# ## Logistic regression on two blobs
#
# Two Gaussian clouds, labels $y_i \in \{0, 1\}$; the model is
# $p_i = \sigma(x_i \cdot w + b)$ with three parameters, and the loss of one
# example is the cross-entropy
# $F_i = -[y_i \log p_i + (1 - y_i)\log(1 - p_i)] = \log(1 + e^{-m_i})$ with the
# *margin* $m_i = \pm(x_i\cdot w + b)$ (+ for class 1, − for class 0).
# The second form is the one we code: it never takes the log of 0. The data is
# float64 (the parameters follow), so that the loss can be compared with its
# minimum to many digits.

# %%
X, labels = toy.two_blobs(n_samples=N, distance=3.0, std=1.0, seed=0, dtype=np.float64)
sign = (2 * labels - 1).astype(np.float64)  # +1 for class 1, −1 for class 0
Xt, signt = minisgd.Tensor(X), minisgd.Tensor(sign)


def loss(w, b, x, s):
    """Mean cross-entropy (1/B) Σ_i log(1 + exp(−m_i)), margin m_i = s_i (x_i·w + b)."""
    margin = s * (x @ w + b)
    return (1 + (-margin).exp()).log().mean()


def new_parameters():
    """w = 0, b = 0: every prediction starts at p = ½."""
    return (minisgd.Tensor(np.zeros(2), requires_grad=True),
            minisgd.Tensor(np.zeros(1), requires_grad=True))


def gradient(w, b, x, s):
    """∇F on the examples (x, s) as one flat array (∂/∂w₁, ∂/∂w₂, ∂/∂b)."""
    w.zero_grad()
    b.zero_grad()
    loss(w, b, x, s).backward()
    return np.concatenate([w.grad, b.grad])


print(f"data: two blobs, N = {N} examples, 2 features; model p = σ(x·w + b)")

# %% [markdown]
# ## Gradient noise against batch size
#
# We fix the parameters (at the start, $w = 0$, $b = 0$), compute the full
# gradient $\nabla F$ once, then draw many mini-batches of each size $B$ from a
# shuffling `DataLoader` and measure $\mathbb E\,\lVert g_B - \nabla F\rVert^2$.
# $\sigma^2$ itself we compute exactly, from the gradients of all N examples.

# %%
w, b = new_parameters()
full_gradient = gradient(w, b, Xt, signt)
batch_sizes = [2**k for k in range(int(np.log2(N)) - 1)]  # 1, 2, 4, … N/4
measured, samples = {}, {}
for B in batch_sizes:
    loader = DataLoader((X, sign), batch_size=B, shuffle=True, drop_last=True, seed=B)
    grads = []
    while len(grads) < BATCHES_MEASURED:
        for xb, sb in loader:
            grads.append(gradient(w, b, xb, sb))
            if len(grads) == BATCHES_MEASURED:
                break
    grads = np.array(grads)
    samples[B] = grads
    measured[B] = np.mean(np.sum((grads - full_gradient) ** 2, axis=1))

# σ² exactly: every example's gradient once (one pass with B = 1, in order).
per_example = np.array([gradient(w, b, xb, sb) for xb, sb in DataLoader((X, sign), batch_size=1)])
sigma2 = np.mean(np.sum((per_example - full_gradient) ** 2, axis=1))
print(f"\n‖∇F‖² = {np.sum(full_gradient**2):.4f};  σ² = E‖∇F_i − ∇F‖² = {sigma2:.4f}")
print(f"{'B':>6} {'E‖g_B − ∇F‖²':>14} {'σ²/B':>10} {'σ²/B·(N−B)/(N−1)':>18}")
for B in batch_sizes:
    print(f"{B:>6} {measured[B]:>14.5f} {sigma2 / B:>10.5f} {sigma2 / B * (N - B) / (N - 1):>18.5f}")
ratio = measured[1] / measured[16]
print(f"variance ratio B=1 / B=16: {ratio:.2f} (1/B predicts 16, without replacement "
      f"{16 * (N - 1) / (N - 16):.2f})")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
for B, color in [(1, "C3"), (16, "C1"), (256, "C2")]:
    if B in samples:
        ax1.scatter(samples[B][:, 0], samples[B][:, 1], s=8, alpha=0.5, color=color, label=f"$g_B$, B = {B}")
ax1.plot(full_gradient[0], full_gradient[1], "+", ms=14, mew=2.5, color="k", label=r"$\nabla F$")
ax1.set_xlabel(r"$\partial F / \partial w_1$")
ax1.set_ylabel(r"$\partial F / \partial w_2$")
ax1.set_title("Mini-batch gradients around the full gradient")
legend = ax1.legend(loc="lower left", framealpha=0.95)
for handle in legend.legend_handles[:-1]:
    handle.set_sizes([40])  # bigger dots in the legend than in the cloud

B_arr = np.array(batch_sizes)
ax2.loglog(B_arr, [measured[B] for B in batch_sizes], "o", ms=8, color="C0", label="measured")
ax2.loglog(B_arr, sigma2 / B_arr, "-", color="k", lw=1.5, label=r"$\sigma^2 / B$")
ax2.loglog(B_arr, sigma2 / B_arr * (N - B_arr) / (N - 1), "--", color="gray", lw=1.5,
           label=r"$\frac{\sigma^2}{B}\cdot\frac{N-B}{N-1}$ (without replacement)")
ax2.set_xscale("log", base=2)
ax2.set_xlabel("batch size B")
ax2.set_ylabel(r"$E\,\Vert g_B - \nabla F\Vert^2$")
ax2.set_title("Gradient noise falls as 1/B")
ax2.grid(True, which="major", alpha=0.3)
ax2.legend()
fig.tight_layout()
lecture.save(fig, "02_gradient_noise_vs_batch_size.png")

# %% [markdown]
# ## Convergence per epoch and per second
#
# Now we train with each batch size, with the same $\alpha$, and watch the
# training loss $F$ against two clocks.
#
# - **Per epoch** (pass over the data): one epoch is $N/B$ updates. B = 1 makes
#   N noisy updates, B = N (full-batch GD) a single exact one, so small batches
#   win — until their noise floor stops them.
# - **Per second**: what does one update cost? B examples go through *one*
#   vectorised matrix product, so an update on B examples costs far less than B
#   updates on one example each (here, where Python's overhead per operation
#   dominates, an update costs about the same for B = 1 and B = 64). Each batch
#   size gets the same time budget.
#
# We plot $F - F_{\min}$, the distance to the best possible loss, which we get
# first by running full-batch GD until its gradient vanishes. The clock counts
# training only, not the loss measurements.
#
# **What the measurement shows** (and where it parts from the slogan "SGD
# finds the minimiser much faster"): with a *constant* α, SGD with a small
# batch never gets closer to the minimum than its noise floor (proportional to
# $\alpha\sigma^2/B$), while full-batch GD keeps converging geometrically. On
# this problem an update costs about the same for every B (3 weights: Python's
# overhead, not arithmetic, is the cost), so per second B = 1 is only
# competitive for a loose tolerance (10⁻²) and never reaches a tight one; the
# mid-size batches reach the tight tolerances first, and full-batch GD, with
# no noise at all, keeps going down and ends among the lowest. SGD's advantage
# per second needs what this toy lacks: a large N, where one GD update costs N
# example gradients of real arithmetic (lecture 01 counts gradient evaluations
# and shows it), and a modest target accuracy —
# or a decaying α, which lowers the noise floor (lecture 04).

# %%
w, b = new_parameters()
optimizer = optim.SGD([w, b], lr=1.0)
for _ in range(5000):
    g = gradient(w, b, Xt, signt)
    if np.sum(g**2) < 1e-20:
        break
    optimizer.step()
with minisgd.no_grad():
    F_min = loss(w, b, Xt, signt).item()
print(f"\nF_min = {F_min:.6f} (full-batch GD, ‖∇F‖² = {np.sum(g**2):.1e})")


def train(batch_size, max_epochs, max_seconds=np.inf, points_per_epoch=25):
    """Train from w = 0; return rows (epochs done, seconds of training, F − F_min)."""
    w, b = new_parameters()
    optimizer = optim.SGD([w, b], lr=LR)
    loader = DataLoader((X, sign), batch_size=batch_size, shuffle=True, seed=0)
    record_every = max(1, len(loader) // points_per_epoch)
    history, clock, updates = [(0.0, 0.0, loss(w, b, Xt, signt).item() - F_min)], 0.0, 0
    while updates < max_epochs * len(loader) and clock < max_seconds:
        tick = time.perf_counter()
        for xb, sb in loader:
            optimizer.zero_grad()
            loss(w, b, xb, sb).backward()
            optimizer.step()
            updates += 1
            if updates % record_every == 0:
                clock += time.perf_counter() - tick
                with minisgd.no_grad():  # a measurement: off the clock
                    history.append((updates / len(loader), clock, loss(w, b, Xt, signt).item() - F_min))
                tick = time.perf_counter()
                if clock >= max_seconds:
                    break
        else:
            clock += time.perf_counter() - tick
    return np.array(history)


train_sizes = [1, 8, 64, 512, N] if N > 512 else [1, 8, 64, N]
per_epoch = {B: train(B, EPOCHS) for B in train_sizes}
per_second = {B: train(B, np.inf, max_seconds=SECONDS) for B in train_sizes}
print(f"\nα = {LR}; {EPOCHS} epoch(s) each, then {SECONDS} s of training each:")
print(f"{'B':>6} {'updates/epoch':>14} {'µs/update':>10} {'F − F_min after epochs':>23} "
      f"{'F − F_min after seconds':>24}")
for B in train_sizes:
    history = per_second[B]
    n_updates = history[-1, 0] * np.ceil(N / B)
    print(f"{B:>6} {int(np.ceil(N / B)):>14} {1e6 * history[-1, 1] / n_updates:>10.1f} "
          f"{per_epoch[B][-1, 2]:>23.2e} {history[-1, 2]:>24.2e}")


def seconds_to_reach(history, tolerance):
    """The training time at which F − F_min first fell below tolerance (inf if it never did)."""
    below = np.flatnonzero(history[:, 2] <= tolerance)
    return history[below[0], 1] if len(below) else np.inf


TOLERANCES = (1e-2, 1e-4, 1e-6)
print("\nseconds of training until F − F_min first falls below a tolerance (inf: not within the budget):")
print(f"{'B':>6}" + "".join(f"{'≤ ' + format(tol, '.0e'):>12}" for tol in TOLERANCES))
for B in train_sizes:
    print(f"{B:>6}" + "".join(f"{seconds_to_reach(per_second[B], tol):>12.3f}" for tol in TOLERANCES))
lowest = min(train_sizes, key=lambda B: per_second[B][-1, 2])
print(f"lowest F − F_min after {SECONDS} s: B = {lowest}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.2))
colors = ["C3", "C1", "C2", "C0", "C4"][: len(train_sizes)]  # distinct hues, one per batch size
for B, color in zip(train_sizes, colors):
    label = f"B = {B}" + (" (full batch, GD)" if B == N else " (pure SGD)" if B == 1 else "")
    ax1.plot(per_epoch[B][:, 0], per_epoch[B][:, 2], "-", color=color, lw=2, label=label)
    ax2.plot(per_second[B][1:, 1], per_second[B][1:, 2], "-", color=color, lw=2, label=label)
ax1.set_xlabel("epochs (passes over the data)")
ax1.set_title("Per epoch: small batches go down fastest")
ax2.set_xlabel("training time (s)")
ax2.set_title("Per second, constant α: small B stalls at its noise floor")
for ax in (ax1, ax2):
    ax.set_ylabel(r"$F - F_{\min}$ (cross-entropy)")
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
fig.legend(*ax1.get_legend_handles_labels(), loc="lower center", ncol=len(train_sizes), fontsize=10.5)
fig.tight_layout(rect=(0, 0.07, 1, 1))
lecture.save(fig, "02_convergence_per_epoch_and_second.png")

# %% [markdown]
# ## What to take away
#
# - The mini-batch gradient is unbiased for every $B$; its variance falls as $1/B$
#   (the log-log plot is a line of slope −1).
# - Halving the noise costs doubling the batch: diminishing returns. Past a
#   point, a bigger batch buys little noise reduction but takes fewer updates per epoch.
# - On real hardware a batch is processed in parallel, so the time per update
#   grows much slower than $B$ until the hardware is full: this is why we train
#   with batches of 32–512, not with $B = 1$.
# - Measured here: at a constant α, the smaller the batch, the higher the floor
#   where its loss stops; per second, B = 1 only wins to a loose tolerance and
#   the larger batches (GD included) get closest to the minimum (see the table
#   of times to each tolerance). SGD wins per unit of *computation* when N is
#   large (lecture 01), not per second on a problem whose updates cost nothing
#   but overhead.

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **sgd**. In a terminal:
#
# ```bash
# python -m minisgd exercise start sgd   # sets the exercise up
# python -m minisgd exercise check sgd   # checks your solution
# ```
