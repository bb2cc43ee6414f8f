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
# # 08 · The loss landscape of a 2-parameter model
#
# **What you learn:** what the loss surface of a two-parameter network looks
# like (two minima, a saddle, a flat valley) and how GD, SGD and momentum move
# on it.
#
# **How long:** about 10 minutes; the default run takes about 2 s of CPU time
# on 2 cores.
#
# *Recitation: "the loss surface of a 2-parameter model" (and the SGDR reading).*
#
# A network with millions of weights has a loss surface we cannot draw. A model
# with **two** parameters has one we can: every point $(a, b)$ of the plane is a
# model, and the height above it is its training loss. We take the smallest
# neural network there is — one hidden tanh unit, no biases:
#
# $$\hat y = a \tanh(b\,x), \qquad L(a, b) = \frac1N \sum_i \tfrac12\,(a \tanh(b x_i) - y_i)^2 ,$$
#
# fitted to data from a "teacher" $y = 2\tanh(1.5\,x) + $ noise. Unlike
# linear regression (lecture 01) this surface is **not convex**:
#
# - two minima, $(a, b)$ and $(-a, -b)$ — the same function (tanh is odd): a
#   symmetry every neural network has (swap or flip hidden units);
# - a **saddle** at $(0, 0)$, on a *level line* $a = 0$: there the model predicts
#   0 whatever $b$ is, so the loss is the same all along it. For a fixed $b$
#   the loss is a convex parabola in $a$ (the model is linear in $a$), whose
#   lowest point has the sign of $b$;
# - a long, curved, nearly flat valley: for large $b$, $\tanh(bx)$ is almost a
#   step, and making it steeper changes the loss very little.
#
# We draw it as a contour map and as a 3-D surface, and run GD, SGD and SGD
# with momentum on it from the same start.
#
# Run it: `python lectures/08_loss_landscape.py` (`--full`, `--smoke`, `--out DIR`).

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

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import lecture, optim  # lecture: the plumbing (options, figures)
from minisgd.data import DataLoader

args = lecture.start("Loss surface of a 2-parameter model, with GD/SGD/momentum paths.")
STEPS, GRID = (60, 60) if args.smoke else (500, 201) if args.full else (150, 121)
START = (-1.5, 2.5)  # (a0, b0)

# %% [markdown]
# ## The data and the loss
#
# The two parameters live in one tensor, $\theta = (a, b)$, so that the loss
# takes any array of points of shape (…, 2): one point while training, a whole
# grid of points for the picture.

# %%
N = 200
rng = np.random.default_rng(0)
x = rng.uniform(-2.0, 2.0, N)
y = 2.0 * np.tanh(1.5 * x) + 0.2 * rng.standard_normal(N)  # the teacher: a = 2, b = 1.5
xt, yt = minisgd.Tensor(x), minisgd.Tensor(y)  # float64


def loss(theta, x, y):
    """L(a, b) = mean_i ½ (a tanh(b x_i) − y_i)² for θ = (a, b) of shape (..., 2); shape (...) out."""
    a, b = theta[..., 0:1], theta[..., 1:2]  # (..., 1): broadcast against the N examples
    return (0.5 * (a * (b * x).tanh() - y) ** 2).mean(axis=-1)


def loss_along(path):
    """L at every point of an array of points (no gradient needed)."""
    with minisgd.no_grad():
        return loss(minisgd.Tensor(np.asarray(path)), xt, yt).numpy()


print(f"data: N = {N}, y = 2 tanh(1.5 x) + noise; model ŷ = a tanh(b x)")
print(f"L at the saddle (0, 0) = {loss_along([0.0, 0.0]):.4f} (the model predicts 0 everywhere)")

# %% [markdown]
# ## Three optimizers from the same start
#
# - **GD**: the full gradient, $\alpha = 0.2$;
# - **SGD**: batches of 10 examples, $\alpha = 0.2$;
# - **momentum** (recitation form, $V \leftarrow \beta V + \alpha\nabla L$,
#   $W \leftarrow W - V$): full gradient, $\alpha = 0.02$, $\beta = 0.9$.
#
# An equal-step comparison: where the gradient keeps its direction, momentum's
# step grows to $\alpha/(1 - \beta) = 0.02/0.1 = 0.2$, GD's step. So any lead
# momentum takes comes from how it uses the steps (it keeps its speed along
# the valley and damps the zig-zag), not from a larger rate.
#
# Each records the point after every update.


# %%
def run(optimizer_class, batch_size, steps, **options):
    """Train θ = (a, b) from START; return the points visited, shape (steps + 1, 2)."""
    theta = minisgd.Tensor(np.array(START), requires_grad=True)
    optimizer = optimizer_class([theta], **options)
    loader = DataLoader((x, y), batch_size=batch_size, shuffle=True, seed=0)
    path = [START]
    while len(path) <= steps:
        for xb, yb in loader:
            optimizer.zero_grad()
            loss(theta, xb, yb).sum().backward()  # .sum(): the one point's loss as a scalar
            optimizer.step()
            path.append(tuple(theta.detach().numpy()))
            if len(path) > steps:
                break
    return np.array(path)


methods = {
    "GD (α = 0.2)": run(optim.SGD, None, STEPS, lr=0.2),
    "SGD, B = 10 (α = 0.2)": run(optim.SGD, 10, STEPS, lr=0.2),
    "momentum (α = 0.02, β = 0.9)": run(optim.HeavyBallSGD, None, STEPS, lr=0.02, momentum=0.9),
}
# The minimum itself: a long momentum run (the valley is too flat for plain GD to finish quickly).
minimum = run(optim.HeavyBallSGD, None, 2000 if not args.smoke else 400, lr=0.05, momentum=0.9)[-1]
L_min = loss_along(minimum)
print(f"minima at (a, b) = ({minimum[0]:.3f}, {minimum[1]:.3f}) and ({-minimum[0]:.3f}, {-minimum[1]:.3f}), "
      f"L = {L_min:.4f}")
print(f"\nafter {STEPS} updates from (a, b) = {START}:")
for name, path in methods.items():
    losses = loss_along(path)
    print(f"  {name:29s}: (a, b) = ({path[-1, 0]:6.3f}, {path[-1, 1]:6.3f}), L = {losses[-1]:.4f}, "
          f"L − L_min = {losses[-1] - L_min:.1e}")

# %% [markdown]
# ## The contour map
#
# The levels are spaced on a log scale so that the flat valley shows. All three
# start on the "wrong" side of the level line $a = 0$ (for their $b > 0$ the
# best $a$ is positive), cross it, and turn into the valley of the minimum at
# $a > 0$. GD then crawls along the flat valley floor;
# SGD jitters around GD's path; momentum keeps its speed along the valley, swings
# past its side walls and reaches the minimum first.

# %%
A, B = np.meshgrid(np.linspace(-3.5, 3.5, GRID), np.linspace(-3.5, 3.5, GRID))
surface = loss_along(np.stack([A, B], axis=-1))  # every grid point at once
colors = {name: color for name, color in zip(methods, ["C0", "C1", "C2"])}

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1.15, 1]})
levels = np.geomspace(L_min * 1.02, surface.max(), 18)
filled = ax1.contourf(A, B, surface, levels=levels, cmap="viridis", norm=matplotlib.colors.LogNorm())
ax1.contour(A, B, surface, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
fig.colorbar(filled, ax=ax1, label="loss L (log scale)", format="%.2g")
for name, path in methods.items():
    width = 3.5 if name.startswith("GD") else 1.5  # GD wide, so that SGD's path on top of it shows both
    ax1.plot(path[:, 0], path[:, 1], "-", lw=width, color=colors[name], label=name)
    ax2.semilogy(loss_along(path) - L_min, lw=2, color=colors[name], label=name)
ax1.plot(*START, "ws", ms=9, mec="k", label="start")
ax1.plot([minimum[0], -minimum[0]], [minimum[1], -minimum[1]], "r*", ms=16, mec="k", label="minima")
ax1.plot(0, 0, "wX", ms=11, mec="k", label="saddle")
ax1.set_xlabel("a (output weight)")
ax1.set_ylabel("b (input weight)")
ax1.set_title(r"Loss surface of $\hat y = a\,\tanh(b\,x)$")
ax1.legend(loc="lower right", fontsize=9.5, framealpha=0.9)
ax2.set_xlabel("update")
ax2.set_ylabel(r"$L - L_{\min}$")
ax2.set_title("Loss along each path")
ax2.grid(True, which="major", alpha=0.3)
ax2.legend(fontsize=10)
fig.tight_layout()
lecture.save(fig, "08_loss_landscape_contour.png")

# %% [markdown]
# ## The 3-D surface
#
# The same surface seen from the side (height: $\log_{10} L$, so the valleys
# are visible next to the high walls), with the three paths drawn on it.

# %%
fig = plt.figure(figsize=(11, 7))
ax = fig.add_subplot(projection="3d", computed_zorder=False)  # draw in the order given: paths on top
ax.plot_surface(A, B, np.log10(surface), cmap="viridis", alpha=0.75, linewidth=0, antialiased=True,
                rstride=2, cstride=2, zorder=1)
for name, path in methods.items():
    height = np.log10(loss_along(path)) + 0.03  # just above the surface
    ax.plot(path[:, 0], path[:, 1], height, "-", lw=2.2, color=colors[name], label=name, zorder=3)
ax.scatter(*START, np.log10(loss_along(START)) + 0.03, color="k", s=40, label="start", zorder=4)
ax.scatter([minimum[0], -minimum[0]], [minimum[1], -minimum[1]], [np.log10(L_min)] * 2, color="red", marker="*",
           s=150, label="minima", zorder=4)
ax.set_xlabel("a", labelpad=8)
ax.set_ylabel("b", labelpad=8)
ax.set_zlabel(r"$\log_{10} L$", labelpad=8)
ax.view_init(elev=40, azim=-60)
ax.set_title(r"Loss surface of $\hat y = a\,\tanh(b\,x)$ with GD, SGD and momentum")
ax.legend(loc="upper left", fontsize=10)
fig.tight_layout()
lecture.save(fig, "08_loss_landscape_3d.png")

# %% [markdown]
# ## What to take away
#
# - Even two parameters give a non-convex surface: symmetric minima, a saddle,
#   flat regions where the gradient is tiny. Real networks have all of these, in
#   millions of dimensions.
# - Where you start decides which minimum you reach (here: either is fine, they
#   are the same function).
# - Flat valleys are slow for plain GD; momentum keeps moving through them. At
#   the same long-run step (0.2), after 150 updates momentum ends 6.7e-4 above
#   the minimum's loss, GD 3.6e-3 and SGD 3.8e-3 — though it first overshoots
#   out of the valley (the bump near update 25 on the right).
#   SGD's noise shakes the path, which also helps it leave sharp, narrow
#   regions — one reason SGD tends to settle in *flat* minima (lecture 05).

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **backprop**. In a terminal:
#
# ```bash
# python -m minisgd exercise start backprop   # sets the exercise up
# python -m minisgd exercise check backprop   # checks your solution
# ```
