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
# # 03 · SGD with momentum
#
# **What you learn:** how momentum carries SGD through a ravine, the
# recitation's worked example step by step, why its form and PyTorch's part
# ways once α decays, and why decay pays only when gradients are noisy.
#
# **How long:** about 20 minutes; the default run takes about 3 s of CPU time
# on 2 cores.
#
# *Recitation: "SGD with momentum".*
#
# Plain SGD steps along the current gradient only: $W \leftarrow W - \alpha\,\nabla L$.
# Momentum keeps a *velocity* $V$, a running sum of past steps, and moves along it:
#
# $$V \leftarrow \beta V + \alpha\,\nabla L, \qquad W \leftarrow W - V \qquad (V_0 = 0).$$
#
# Directions in which the gradient keeps its sign build up speed (up to
# $1/(1-\beta)$ times the plain step); directions in which it flips sign
# (zig-zagging across a ravine) cancel out in $V$.
#
# In minisgd this recitation form is `optim.HeavyBallSGD(params, lr=α, momentum=β)`.
# PyTorch writes momentum differently, `optim.SGD(params, lr=α, momentum=β)`:
#
# $$b \leftarrow \beta b + \nabla L \;(b = \nabla L \text{ on the first step}), \qquad W \leftarrow W - \alpha\, b .$$
#
# Below: a ravine, the worked example, and where the two forms part ways.
#
# Run it: `python lectures/03_momentum.py` (`--full`, `--smoke`, `--out DIR`).

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
from minisgd import lecture, optim, schedules  # lecture: the plumbing (options, figures)

args = lecture.start("Momentum: a ravine, the worked example, two forms.")
STEPS = 60 if args.smoke else 300 if args.full else 100

# %% [markdown]
# ## A ravine: an ill-conditioned quadratic
#
# $$L(w_1, w_2) = \tfrac12\,(0.1\, w_1^2 + 10\, w_2^2)$$
#
# is 100 times steeper across ($w_2$) than along ($w_1$): its condition number
# is $\kappa = 10 / 0.1 = 100$. A step size that is safe across the ravine
# ($\alpha < 2/10$) is tiny along it, so plain gradient descent zig-zags from
# wall to wall while creeping along the floor.

# %%
CURVATURE = np.array([0.1, 10.0])  # the eigenvalues of the Hessian
LR = 0.17
START = (-10.0, 1.0)


def ravine(w):
    """L(w) = ½ (0.1 w₁² + 10 w₂²), for a tensor w of shape (..., 2)."""
    return 0.5 * (minisgd.Tensor(CURVATURE) * w * w).sum(axis=-1)


def run(optimizer_class, steps, **options):
    """Minimise the ravine from START; return the points visited, shape (steps + 1, 2)."""
    w = minisgd.Tensor(np.array(START), requires_grad=True)  # float64
    optimizer = optimizer_class([w], **options)
    path = [w.detach().numpy().copy()]
    for _ in range(steps):
        optimizer.zero_grad()
        ravine(w).backward()
        optimizer.step()
        path.append(w.detach().numpy().copy())
    return np.array(path)


def ravine_loss(path):
    """L at every point of a path (no gradient needed)."""
    with minisgd.no_grad():
        return ravine(minisgd.Tensor(path)).numpy()


betas = [0.0, 0.5, 0.9]
paths = {beta: run(optim.HeavyBallSGD, STEPS, lr=LR, momentum=beta) for beta in betas}
print(f"ravine L = ½(0.1 w₁² + 10 w₂²), start {START}, α = {LR}, {STEPS} steps (recitation form)")
for beta, path in paths.items():
    losses = ravine_loss(path)
    below = np.flatnonzero(losses < 1e-3)
    reached = f"first at step {below[0]}" if below.size else f"not within {STEPS} steps"
    print(f"  β = {beta}: L after {STEPS} steps = {losses[-1]:.2e}; L < 1e-3 {reached}")

# %% [markdown]
# With $\beta = 0$ the path zig-zags and crawls. With $\beta = 0.5$ the
# zig-zag is damped and the ball rolls faster along the floor. With
# $\beta = 0.9$ it is fastest along the floor (lowest loss after 100 steps), but
# it overshoots: a heavy ball with little friction ($1 - \beta$) swings from wall
# to wall and past the minimum, and its swing dies out only slowly (as
# $\sqrt\beta$ per step here).

# %%
grid_1 = np.linspace(-11, 5, 161)
grid_2 = np.linspace(-1.6, 1.6, 121)
G1, G2 = np.meshgrid(grid_1, grid_2)
surface = ravine_loss(np.stack([G1, G2], axis=-1))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
ax1.contour(G1, G2, surface, levels=np.geomspace(0.01, surface.max(), 14), cmap="Greys", linewidths=0.8)
colors = {0.0: "C3", 0.5: "C0", 0.9: "C2"}
shown = min(STEPS, 60)
for beta, path in paths.items():
    ax1.plot(path[: shown + 1, 0], path[: shown + 1, 1], "o-", ms=2.5, lw=1.4, color=colors[beta], label=f"β = {beta}")
    losses = ravine_loss(path)
    ax2.semilogy(losses, lw=2, color=colors[beta], label=f"β = {beta}")
ax1.plot(*START, "ks", ms=8)
ax1.plot(0, 0, "k*", ms=14)
ax1.set_xlabel("$w_1$ (along the ravine)")
ax1.set_ylabel("$w_2$ (across)")
ax1.set_title(f"Paths of the first {shown} steps, α = {LR}")
ax1.legend(loc="upper right")
ax2.set_xlabel("step t")
ax2.set_ylabel("loss L")
ax2.set_title("Loss per step")
ax2.grid(True, which="major", alpha=0.3)
ax2.legend()
fig.tight_layout()
lecture.save(fig, "03_ravine_trajectories.png")

# %% [markdown]
# ## The worked example
#
# Loss $L(w) = w^2/2$, so $\nabla L = w$; start at $w_0 = 1$ with $\alpha = 0.1$ and $\beta = 0.9$:
#
# | step | recitation: $V \leftarrow \beta V + \alpha w$ | $W \leftarrow W - V$ |
# |---|---|---|
# | 1 | $V_1 = 0.9 \cdot 0 + 0.1 \cdot 1 = 0.1$ | $w_1 = 1 - 0.1 = 0.9$ |
# | 2 | $V_2 = 0.9 \cdot 0.1 + 0.1 \cdot 0.9 = 0.18$ | $w_2 = 0.9 - 0.18 = 0.72$ |
#
# The second step (0.18) is larger than the first (0.1) although the gradient
# shrank from 1 to 0.9: that is the momentum. PyTorch's form gives the same
# numbers ($b_1 = 1, b_2 = 0.9 \cdot 1 + 0.9 = 1.8$, steps $\alpha b$ = 0.1, 0.18).
# **Nesterov** momentum evaluates the step at the look-ahead: PyTorch moves along
# $\nabla L + \beta b$, so the first step is $0.1 \cdot (1 + 0.9 \cdot 1) = 0.19$ and $w_1 = 0.81$.
#
# We let minisgd's optimizers do it, and read the velocity back from
# `state_dict()` (`"buffer.0"`: V for the recitation form, b for PyTorch's).


# %%
def worked_example(optimizer_class, steps=2, **options):
    """Two steps on L = w²/2 from w₀ = 1; return the w's, the steps taken and the buffers."""
    w = minisgd.Tensor(np.array([1.0]), requires_grad=True)  # float64: exact decimals
    optimizer = optimizer_class([w], lr=0.1, momentum=0.9, **options)
    ws, buffers = [w.item()], []
    for _ in range(steps):
        optimizer.zero_grad()
        (w * w / 2).sum().backward()  # L = w²/2, so ∇L = w
        optimizer.step()
        ws.append(w.item())
        buffers.append(optimizer.state_dict()["buffer.0"].item())
    return ws, [ws[i] - ws[i + 1] for i in range(steps)], buffers


print("\nworked example: L = w²/2, w0 = 1, α = 0.1, β = 0.9")
for name, optimizer_class, buffer_name in [
    ("recitation form (HeavyBallSGD)", optim.HeavyBallSGD, "V"),
    ("PyTorch form (SGD)", optim.SGD, "b"),
]:
    ws, steps, buffers = worked_example(optimizer_class)
    print(f"  {name:31s}: step 1 = {steps[0]:.4f}, step 2 = {steps[1]:.4f};  "
          f"w1 = {ws[1]:.4f}, w2 = {ws[2]:.4f};  {buffer_name}1 = {buffers[0]:.4f}, {buffer_name}2 = {buffers[1]:.4f}")
ws, steps, _ = worked_example(optim.SGD, steps=1, nesterov=True)
print(f"  {'Nesterov (SGD, nesterov=True)':31s}: step 1 = {steps[0]:.4f};  w1 = {ws[1]:.4f}")

# %% [markdown]
# ## The two forms under a decaying learning rate
#
# With a constant $\alpha$ the forms are the same algorithm: $V = \alpha\, b$ at
# every step, so the iterates agree (to rounding).
#
# When $\alpha$ changes they do not. Take a **step decay** like the recitation's
# (which multiplies α by 0.1 after epochs 30, 60, 90), here $\alpha \times 0.1$
# every 20 steps, `schedules.step(α, step_size=20, gamma=0.1)`:
#
# - PyTorch multiplies the *whole* buffer by today's rate, $W \leftarrow W - \alpha_t b$:
#   the step shrinks ten-fold at once.
# - The recitation form keeps the old, larger rates inside $V$: only the new
#   gradient gets the small $\alpha_t$, and the old velocity fades as $\beta^k$,
#   so the ball keeps rolling for a while after the decay. Worse: the pull back
#   towards the floor, $\alpha_t \nabla L$, is now ten times weaker while the
#   velocity is not. A ball thrown at the same speed against a spring ten times
#   softer climbs ten times higher in potential energy ($\tfrac12 v^2$ turns
#   into $\tfrac12 \alpha\lambda w^2$): right after the cut the loss *jumps*
#   (printed below: from 0.214 to 5.64, 26 times), and the friction $1 - \beta$ takes many
#   steps to bring it back down.
#
# Neither is wrong, but a schedule tuned for one form does not give the same
# run with the other. (Keras uses the recitation form; PyTorch and optax the other.)

# %%
DECAY_AT = 20
decayed = schedules.step(LR, step_size=DECAY_AT, gamma=0.1)  # α for t < 20, then 0.1 α, …
runs = {}
for schedule_name, lr in [("constant α", LR), ("step decay", decayed)]:
    for form, optimizer_class in [("recitation", optim.HeavyBallSGD), ("PyTorch", optim.SGD)]:
        runs[schedule_name, form] = run(optimizer_class, STEPS, lr=lr, momentum=0.9)

print(f"\nrecitation form vs PyTorch form on the ravine, β = 0.9, {STEPS} steps:")
for schedule_name in ["constant α", "step decay"]:
    difference = np.max(np.abs(runs[schedule_name, "recitation"] - runs[schedule_name, "PyTorch"]))
    print(f"  {schedule_name:10s}: max |W_recitation − W_PyTorch| = {difference:.3e}   "
          f"(final L: recitation {ravine_loss(runs[schedule_name, 'recitation'])[-1]:.3e}, "
          f"PyTorch {ravine_loss(runs[schedule_name, 'PyTorch'])[-1]:.3e})")
jump = ravine_loss(runs["step decay", "recitation"])
peak = DECAY_AT + int(np.argmax(jump[DECAY_AT:DECAY_AT + 10]))
print(f"  recitation form, step decay: L = {jump[DECAY_AT]:.3f} at the cut (step {DECAY_AT}), "
      f"{jump[peak]:.2f} at step {peak} ({jump[peak] / jump[DECAY_AT]:.0f} times higher)")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
t = np.arange(STEPS)
styles = {"recitation": dict(color="C2", lw=2.5), "PyTorch": dict(color="C4", lw=1.5, ls="--")}
for form in ["recitation", "PyTorch"]:
    path = runs["step decay", form]
    step_length = np.linalg.norm(np.diff(path, axis=0), axis=1)
    ax1.semilogy(t, step_length, label=f"{form} form", **styles[form])
ax1.semilogy(t, decayed(t), color="gray", lw=1, ls=":", label=r"$\alpha_t$ (step decay)")
ax1.axvline(DECAY_AT, color="k", lw=0.8)
ax1.set_xlabel("step t")
ax1.set_ylabel(r"step length $\Vert W_{t+1} - W_t \Vert$")
ax1.set_title(rf"Step decay ($\alpha \times 0.1$ every {DECAY_AT} steps): the step")
ax1.legend(loc="lower left")
faded = {"recitation": dict(color="C7", lw=4, alpha=0.5), "PyTorch": dict(color="k", lw=1.2, ls="--")}
for form in ["recitation", "PyTorch"]:
    ax2.semilogy(ravine_loss(runs["constant α", form]), label=f"{form}, constant α", **faded[form])
for form in ["recitation", "PyTorch"]:
    ax2.semilogy(ravine_loss(runs["step decay", form]), label=f"{form}, step decay", **styles[form])
ax2.axvline(DECAY_AT, color="k", lw=0.8)
ax2.set_xlabel("step t")
ax2.set_ylabel("loss L")
ax2.set_title("Same at constant α, different under decay")
ax2.legend(fontsize=10)
for ax in (ax1, ax2):
    ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()
lecture.save(fig, "03_recitation_vs_pytorch_under_decay.png")

# %% [markdown]
# ## Decay pays when the gradients are noisy
#
# On the ravine above both decayed runs end far *above* constant α. That is
# no argument against decay: the gradient there is exact, so a constant α
# converges all the way (lecture 01: with exact gradients there is no noise
# ball), and decaying it only slows the crawl along the floor. Decay is for
# *stochastic* gradients. Below, the same ravine with a noisy gradient,
# $\nabla L + \sigma\,\xi$ ($\xi$ standard normal, σ = 1, as a mini-batch
# would give), averaged over 20 runs: a constant α now leaves the ball
# bouncing in a noise ball, and a decay late in the run (×0.1 at half and at
# three quarters of the steps) lets it settle, in both forms.

# %%
SIGMA, NOISY_RUNS = 1.0, 20
late_decay = schedules.multistep(LR, milestones=[STEPS // 2, 3 * STEPS // 4], gamma=0.1)


def run_noisy(optimizer_class, steps, seed, **options):
    """Like run(), with σ·ξ added to every gradient (a stochastic gradient); returns L per step."""
    rng = np.random.default_rng(seed)
    w = minisgd.Tensor(np.array(START), requires_grad=True)
    optimizer = optimizer_class([w], **options)
    losses = [ravine_loss(w.detach().numpy())]
    for _ in range(steps):
        optimizer.zero_grad()
        ravine(w).backward()
        w.grad += SIGMA * rng.standard_normal(2)
        optimizer.step()
        losses.append(ravine_loss(w.detach().numpy()))
    return np.array(losses)


noisy = {}
for schedule_name, lr in [("constant α", LR), ("late step decay", late_decay)]:
    for form, optimizer_class in [("recitation", optim.HeavyBallSGD), ("PyTorch", optim.SGD)]:
        noisy[schedule_name, form] = np.mean(
            [run_noisy(optimizer_class, STEPS, seed, lr=lr, momentum=0.9) for seed in range(NOISY_RUNS)], axis=0)
print(f"\nnoisy gradients (σ = {SIGMA}), mean L over the last 10 of {STEPS} steps, {NOISY_RUNS} runs, β = 0.9:")
for (schedule_name, form), losses in noisy.items():
    print(f"  {schedule_name:15s} {form:10s}: {losses[-10:].mean():.3f}")

fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
colors = {"constant α": "C0", "late step decay": "C3"}
for (schedule_name, form), losses in noisy.items():
    ax.semilogy(losses, color=colors[schedule_name], ls="-" if form == "recitation" else "--",
                lw=2 if form == "recitation" else 1.5, label=f"{schedule_name}, {form} form")
for milestone in (STEPS // 2, 3 * STEPS // 4):
    ax.axvline(milestone, color="k", lw=0.8, ls=":")
ax.set(xlabel="step t", ylabel=f"loss L (mean of {NOISY_RUNS} runs)",
       title=f"Noisy gradients (σ = {SIGMA}): decay (×0.1 at the dotted lines) settles below constant α")
ax.grid(True, alpha=0.3)
ax.legend()
lecture.save(fig, "03_decay_with_noisy_gradients.png")

# %% [markdown]
# ## What to take away
#
# - Momentum $V \leftarrow \beta V + \alpha\nabla L$, $W \leftarrow W - V$ speeds
#   up along consistent directions and damps the zig-zag; with large $\beta$ it
#   overshoots and oscillates before settling.
# - $\beta = 0.9$ is the usual default: worked example steps 0.1 → 0.18.
# - Read which form a library uses before you port a learning-rate schedule:
#   at constant $\alpha$ they agree, after a decay they do not (the recitation
#   form's loss jumps right after the cut).
# - Decay pays when gradients are noisy: on the exact ravine a constant α ends
#   lowest (2.9e-4, against 0.63 and 0.15 decayed); with noisy gradients the
#   late decay ends at 0.48 (recitation form) and 0.27 (PyTorch form) against
#   1.23 for constant α, 2.6 and 4.6 times lower (`03_decay_with_noisy_gradients.png`;
#   the recitation form's jump after each cut shows there too).

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# The exercise on this lecture's topic is **momentum**. In a terminal:
#
# ```bash
# python -m minisgd exercise start momentum   # sets the exercise up
# python -m minisgd exercise check momentum   # checks your solution
# ```
