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
# # 01 · Gradient descent vs stochastic gradient descent
#
# **What you learn:** why SGD's cheap, noisy steps beat gradient descent's
# exact ones per gradient computed, and why SGD then bounces in a noise ball
# around the minimum.
#
# **How long:** about 15 minutes to read and discuss; the default run takes
# about 3 s of CPU time on 2 cores (it prints its own time at the end).
#
# *Recitation: "SGD recap".*
#
# We train on N examples and minimise the average of the per-example losses
#
# $$F(w) = \frac{1}{N}\sum_{i=1}^{N} F_i(w).$$
#
# - **Gradient descent (GD)**: $w \leftarrow w - \alpha\,\nabla F(w)$. One update
#   needs the gradient of *every* $F_i$: N gradient evaluations.
# - **Stochastic gradient descent (SGD)**: pick one example $i$ at random and
#   step $w \leftarrow w - \alpha\,\nabla F_i(w)$. One update costs one gradient
#   evaluation. $\nabla F_i$ is an *unbiased* estimate of $\nabla F$
#   ($\mathbb{E}_i[\nabla F_i] = \nabla F$), but a *noisy* one: its variance is
#   $\mathbb{E}_i\,\lVert \nabla F_i(w) - \nabla F(w)\rVert^2$.
#
# The model is a line with two parameters, $\hat y = w\,x + b$, and
# $F_i(w, b) = \tfrac12 (w x_i + b - y_i)^2$, so the whole loss is a surface over
# the $(w, b)$ plane that we can draw.
#
# Run it: `python lectures/01_gd_vs_sgd.py` (`--full` for a longer run,
# `--smoke` for a quick check, `--out DIR` for where the figures go).

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
from minisgd import lecture, optim  # lecture: the plumbing (options, figures)
from minisgd.data import DataLoader, toy

args = lecture.start("GD vs SGD on a 2-parameter linear regression.")
if args.smoke:
    N, EPOCHS = 100, 2
elif args.full:
    N, EPOCHS = 1000, 20
else:
    N, EPOCHS = 200, 5
LR = 0.1  # the same step size α for GD and SGD
START = (-1.0, 2.5)  # (w0, b0), far from the minimum

# %% [markdown]
# ## The data and the loss
#
# `toy.linear_regression` draws $x_i \sim \mathcal N(0, 1)$ and
# $y_i = w^* x_i + b^* + \varepsilon_i$ with noise $\varepsilon_i \sim \mathcal N(0, 0.5^2)$.
# Because of the noise, even the best line has a loss $F(w_{\rm opt}) > 0$; we
# find that minimum exactly with least squares, to measure every run against it.
# We ask for float64 data (the parameters follow), so that GD's approach to the
# minimum is not hidden by float32 rounding.
#
# `loss(w, b, x, y)` is written with minisgd tensors, so the same function gives
# the loss to differentiate during training *and* the loss on a whole grid of
# $(w, b)$ values for the contour plot (by broadcasting).

# %%
X, y, true_w, true_b = toy.linear_regression(n_samples=N, n_features=1, noise=0.5, seed=3, dtype=np.float64)
x = X[:, 0]  # one feature: x has shape (N,)


def loss(w, b, x, y):
    """F = (1/N) Σ_i ½ (w·x_i + b − y_i)², the mean over the last axis."""
    residual = w * x + b - y
    return (0.5 * residual**2).mean(axis=-1)


# Least squares (host-side NumPy, only to know where the minimum is).
design = np.stack([x, np.ones_like(x)], axis=1)
w_opt, b_opt = np.linalg.lstsq(design, y, rcond=None)[0]
xt, yt = minisgd.Tensor(x), minisgd.Tensor(y)
with minisgd.no_grad():
    F_opt = loss(minisgd.Tensor(np.array([w_opt])), minisgd.Tensor(np.array([b_opt])), xt, yt).item()
print(f"data: N = {N}, true line w* = {float(true_w[0]):.3f}, b* = {true_b:.3f}")
print(f"least squares: w_opt = {w_opt:.4f}, b_opt = {b_opt:.4f}, F(w_opt) = {F_opt:.4f}")

# %% [markdown]
# ## One training loop for both
#
# GD and SGD are the *same* update rule, `optim.SGD(params, lr=α)`; only the
# batch the gradient comes from differs. A `DataLoader` with `batch_size=None`
# hands out the whole data set every time (GD); with `batch_size=1` and
# `shuffle=True` one random example at a time (SGD).
#
# After every update we record the full loss $F$ (under `no_grad`, it is only a
# measurement), the point $(w, b)$, and how many per-example gradients were
# evaluated so far: N per GD update, 1 per SGD update.


# %%
def train(batch_size, n_updates, seed=0):
    """Run SGD on the line fit; return the path of (w, b), F after each update, and the gradient count."""
    w = minisgd.Tensor(np.array([START[0]]), requires_grad=True)  # shape (1,), float64
    b = minisgd.Tensor(np.array([START[1]]), requires_grad=True)
    optimizer = optim.SGD([w, b], lr=LR)
    loader = DataLoader((x, y), batch_size=batch_size, shuffle=True, seed=seed)
    path, losses, evaluations = [START], [], [0]
    with minisgd.no_grad():
        losses.append(loss(w, b, xt, yt).item())
    while len(losses) <= n_updates:
        for xb, yb in loader:
            optimizer.zero_grad()
            loss(w, b, xb, yb).backward()  # gradient of the mean loss on this batch
            optimizer.step()  # w ← w − α g
            with minisgd.no_grad():
                losses.append(loss(w, b, xt, yt).item())
            path.append((w.item(), b.item()))
            evaluations.append(evaluations[-1] + len(xb))
            if len(losses) > n_updates:
                break
    return np.array(path), np.array(losses), np.array(evaluations)


n_updates = EPOCHS * N  # SGD: EPOCHS passes over the data
gd_path, gd_loss, gd_evals = train(batch_size=None, n_updates=n_updates)
sgd_path, sgd_loss, sgd_evals = train(batch_size=1, n_updates=n_updates)
print(f"\n{n_updates} updates each, α = {LR}")
for name, losses, evals in [("GD ", gd_loss, gd_evals), ("SGD", sgd_loss, sgd_evals)]:
    print(f"  {name}: final F − F_opt = {losses[-1] - F_opt:.2e} after {evals[-1]} gradient evaluations")

# The same compute budget: N gradient evaluations = 1 GD update = N SGD updates (one epoch).
print(f"\nafter N = {N} gradient evaluations (one pass over the data):")
print(f"  GD  (1 update):     F − F_opt = {gd_loss[1] - F_opt:.3f}")
print(f"  SGD ({N} updates):  F − F_opt = {sgd_loss[N] - F_opt:.3f}")
print(f"after {n_updates} gradient evaluations (all of SGD's run; {n_updates // N} GD updates):")
print(f"  GD  ({n_updates // N} updates):    F − F_opt = {gd_loss[n_updates // N] - F_opt:.3f}")
print(f"  SGD ({n_updates} updates): F − F_opt = {sgd_loss[n_updates] - F_opt:.3f}")

# %% [markdown]
# ## Loss against updates, and against compute
#
# Per **update** GD wins: it steps along the exact gradient, so its loss falls
# smoothly, while SGD's falls in a noisy way and then stalls.
# Per **gradient evaluation** (the compute actually spent) SGD wins by far at
# the start: it has made N updates by the time GD has made one.
#
# With a constant α, SGD does not converge: near the minimum $\nabla F \approx 0$
# but the $\nabla F_i$ are not, so SGD keeps bouncing around in a "noise ball"
# whose size grows with α and with the gradient variance. (Hence the
# learning-rate decay of lecture 04.)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, gd_x, sgd_x, label in [
    (ax1, np.arange(len(gd_loss)), np.arange(len(sgd_loss)), "updates (optimizer steps)"),
    (ax2, gd_evals, sgd_evals, "per-example gradient evaluations"),
]:
    ax.plot(gd_x, gd_loss - F_opt, color="C0", lw=2, label="GD (all N examples)")
    ax.plot(sgd_x, sgd_loss - F_opt, color="C1", lw=1, alpha=0.85, label="SGD (1 example)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-6)  # GD goes on to ~1e-16 (rounding); the interesting part is above
    ax.set_xlabel(label)
    ax.set_ylabel(r"$F(w) - F(w_{\rm opt})$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
ax1.set_title("Loss per update: GD wins")
ax2.set_title("Loss per gradient evaluation: SGD wins early")
fig.suptitle(f"Linear regression, N = {N}, α = {LR}", fontsize=13)
fig.tight_layout()
lecture.save(fig, "01_loss_vs_updates_and_compute.png")

# %% [markdown]
# ## The two paths on the loss surface
#
# The contour lines are the level sets of $F(w, b)$. GD follows the steepest
# descent direction, perpendicular to the contour lines. SGD's steps follow one
# example's gradient each: on average the right direction, one by one a zig-zag,
# and around the minimum a random walk.

# %%
grid_w = np.linspace(-1.5, 3.5, 121)
grid_b = np.linspace(-2.0, 3.0, 121)
W, B = np.meshgrid(grid_w, grid_b)
with minisgd.no_grad():  # every grid point at once: shapes (G², 1) against (N,)
    surface = loss(minisgd.Tensor(W.reshape(-1, 1)), minisgd.Tensor(B.reshape(-1, 1)), xt, yt)
surface = surface.numpy().reshape(W.shape)

fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(12, 5.5))
levels = F_opt + np.geomspace(0.02, surface.max() - F_opt, 10)
contours = {}
for ax in (ax_all, ax_zoom):
    contours[ax] = ax.contour(W, B, surface, levels=levels, cmap="viridis", linewidths=1, zorder=1)
    ax.plot(sgd_path[:, 0], sgd_path[:, 1], "-", color="C1", lw=0.8, alpha=0.8, zorder=2,
            label=f"SGD ({len(sgd_path) - 1} updates)")
    ax.plot(gd_path[:60, 0], gd_path[:60, 1], "o-", color="C0", ms=3, lw=1.5, zorder=3,
            label=f"GD (first {min(len(gd_path), 60) - 1} updates)")
    ax.plot(w_opt, b_opt, "r*", ms=18, mec="k", zorder=4, label="minimum (least squares)")
    ax.set_aspect("equal")
    ax.set_xlabel("slope w")
    ax.set_ylabel("intercept b")
for ax, contour in contours.items():  # each panel labels its own level lines with F(w, b)
    ax.clabel(contour, fmt="%.2f", fontsize=9)
ax_all.plot(*START, "ks", ms=9, zorder=4, label="start")
ax_all.set_title(r"GD and SGD on the contours of $F(w, b)$")
ax_all.legend(loc="upper right", fontsize=10)
ax_zoom.set_xlim(w_opt - 0.4, w_opt + 0.4)
ax_zoom.set_ylim(b_opt - 0.4, b_opt + 0.4)
ax_zoom.set_title("Zoom on the minimum: SGD's noise ball")
fig.tight_layout()
lecture.save(fig, "01_trajectory_contour.png")

# %% [markdown]
# ## The variance of the stochastic gradient
#
# We measure $\mathbb{E}_i\,\lVert \nabla F_i(w) - \nabla F(w) \rVert^2$
# directly: one `backward()` per example gives every $\nabla F_i$, their mean is
# $\nabla F$ (SGD's gradient is unbiased), and the mean squared distance to it is
# the variance. We do it at the start and at the minimum.
#
# At the minimum $\nabla F = 0$ but the variance is *not* zero: each example
# still pulls the line towards itself. For this model the per-example gradient
# is $\nabla F_i = r_i\,(x_i, 1)$ with residual $r_i = w x_i + b - y_i$, so at the
# minimum the variance is $\frac1N\sum_i r_i^2 (x_i^2 + 1)$, which we print as a
# check.


# %%
def per_example_gradients(point):
    """∇F_i at (w, b) = point, for every example i: an (N, 2) array of (∂F_i/∂w, ∂F_i/∂b)."""
    grads = []
    for xb, yb in DataLoader((x, y), batch_size=1, shuffle=False):
        w = minisgd.Tensor(np.array([point[0]]), requires_grad=True)
        b = minisgd.Tensor(np.array([point[1]]), requires_grad=True)
        loss(w, b, xb, yb).backward()
        grads.append((w.grad.item(), b.grad.item()))
    return np.array(grads)


variances = {}
for name, point in [("start", START), ("minimum", (w_opt, b_opt))]:
    g_i = per_example_gradients(point)
    g = g_i.mean(axis=0)  # the full gradient ∇F
    variances[name] = (g_i, g, np.mean(np.sum((g_i - g) ** 2, axis=1)))

print("\nvariance of the per-example gradient, E‖∇F_i − ∇F‖²:")
for name, (g_i, g, variance) in variances.items():
    print(f"  at the {name:7s}: E‖∇F_i − ∇F‖² = {variance:.4f}   (‖∇F‖² = {np.sum(g**2):.2e})")
residual = w_opt * x + b_opt - y
print(f"  check at the minimum, (1/N) Σ r_i² (x_i² + 1) = {np.mean(residual**2 * (x**2 + 1)):.4f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
for ax, (name, (g_i, g, variance)) in zip(axes, variances.items()):
    ax.scatter(g_i[:, 0], g_i[:, 1], s=12, alpha=0.5, color="C1", label=r"$\nabla F_i$ (one per example)")
    ax.plot(g[0], g[1], "*", color="C0", ms=18, mec="k", label=r"$\nabla F$ (their mean)")
    ax.axhline(0, color="gray", lw=0.8)
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_xlabel(r"$\partial F_i / \partial w$")
    ax.set_ylabel(r"$\partial F_i / \partial b$")
    ax.set_title(f"at the {name}: " + r"$E\,\Vert\nabla F_i - \nabla F\Vert^2$" + f" = {variance:.2f}")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2)
fig.suptitle("Per-example gradients: unbiased, but noisy — even at the minimum", fontsize=13)
fig.tight_layout(rect=(0, 0.07, 1, 1))
lecture.save(fig, "01_gradient_variance.png")

# %% [markdown]
# ## What to take away
#
# - GD: exact gradient, smooth descent, N gradient evaluations per step.
# - SGD: one gradient evaluation per step, unbiased but with variance
#   $\mathbb{E}\lVert\nabla F_i - \nabla F\rVert^2$; far more progress per unit of
#   compute early on, but with a constant α it stalls at a noise floor.
# - Mini-batches (lecture 02) sit between the two: the variance falls as 1/B.

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
