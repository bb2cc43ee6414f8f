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
# # 04 · Learning-rate decay
#
# **What you learn:** the recitation's step, cosine and linear decays, every
# schedule of `minisgd.schedules`, and what each does to a network's training,
# compared on a held-out validation split.
#
# **How long:** about 20 minutes; the default run takes about 12 s of CPU time
# on 2 cores (the same with `--data-dir`).
#
# *Recitation: "Learning-rate decay".*
#
# With a constant learning rate α, SGD does not settle: near a minimum the full
# gradient is almost zero but the mini-batch gradients are not, so every step
# still moves the weights by about α times the gradient noise, and the loss
# bounces in a "noise ball" whose size grows with α (lecture 01). A large α is
# good early (fast progress), a small α is good late (a small noise ball). So we
# *decay* α during training. The recitation's three schedules, with α₀ the
# initial rate and T the length of the run:
#
# - **step**: multiply α by 0.1 after epochs 30, 60 and 90;
# - **cosine**: $\alpha_t = \tfrac12\,\alpha_0\,\bigl(1 + \cos(t\pi/T)\bigr)$;
# - **linear**: $\alpha_t = \alpha_0\,(1 - t/T)$.
#
# In minisgd a schedule is a function `lr = schedule(t)`, where t counts the
# optimizer updates done so far (the first update uses `schedule(0)`), and
# `optim.SGD(params, lr=schedule)` evaluates it at every update.
#
# Below: the three schedules, every other schedule of `minisgd.schedules`, and
# the same small network trained with each of them.
#
# Run it: `python lectures/04_lr_decay.py` (`--full` for a longer run,
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
import math

import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import lecture, nn, optim, recipe, schedules  # lecture: the plumbing (options, figures)
from minisgd.data import DataLoader
from minisgd.plots import moving_average, plot_schedules
from minisgd.train import evaluate, fit

args = lecture.start("Learning-rate decay: step, cosine, linear and the rest.", data_dir=True)
if args.smoke:
    N_TRAIN, N_VAL, EPOCHS = 600, 300, 3
elif args.full:
    N_TRAIN, N_VAL, EPOCHS = 10_000, 2_000, 40
else:
    N_TRAIN, N_VAL, EPOCHS = 2_000, 500, 12
BATCH_SIZE = 64
LR = 0.02  # α₀, the same for every schedule

# %% [markdown]
# ## The recitation's three schedules
#
# Here t counts *epochs* and the run lasts T = 100 epochs, as on the slide.
# "×0.1 after epochs 30, 60, 90" is `schedules.multistep(α₀, milestones=[30, 60, 90])`:
# epoch 29 still uses α₀, epoch 30 uses 0.1·α₀. We print a few values and check
# them against the formulas written out by hand.

# %%
T = 100
alpha0 = 0.1
recitation = {
    "step: ×0.1 after epochs 30, 60, 90": schedules.multistep(alpha0, milestones=[30, 60, 90], gamma=0.1),
    "cosine: ½α₀(1 + cos(tπ/T))": schedules.cosine(alpha0, total_steps=T),
    "linear: α₀(1 − t/T)": schedules.linear(alpha0, total_steps=T),
}
by_hand = {  # the same formulas, written directly
    "step": lambda t: alpha0 * 0.1 ** sum(t >= m for m in (30, 60, 90)),
    "cosine": lambda t: 0.5 * alpha0 * (1 + math.cos(t * math.pi / T)),
    "linear": lambda t: alpha0 * (1 - t / T),
}
epochs_shown = [0, 29, 30, 50, 59, 60, 90, 99]
print(f"α₀ = {alpha0}, T = {T} epochs")
print("epoch t  " + "".join(f"{name.split(':')[0]:>10s}" for name in recitation))
for t in epochs_shown:
    print(f"{t:7d}  " + "".join(f"{s(t):10.5f}" for s in recitation.values()))
for (name, schedule), formula in zip(recitation.items(), by_hand.values()):
    worst = max(abs(schedule(t) - formula(t)) for t in range(T))
    print(f"  {name.split(':')[0]:6s}: largest difference from the hand-written formula over t = 0…99: {worst:.1e}")

fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
plot_schedules(*recitation.values(), steps=T, ax=ax, labels=list(recitation))
ax.set_xlabel("epoch t")
ax.set_ylabel("learning rate α_t")
ax.set_title(f"The recitation's learning-rate decays (α₀ = {alpha0}, T = {T} epochs)")
ax.legend(loc="upper right", frameon=True)  # inside the axes: the three labels are short
lecture.save(fig, "04_recitation_schedules.png")

# %% [markdown]
# ## Every other schedule in `minisgd.schedules`
#
# The same idea (a function of t) covers the schedules of the papers and the
# libraries. Each panel is one schedule over 300 updates, α₀ = 0.1:
#
# - `step` (every s updates ×γ), `exponential` (α₀γ^t), `polynomial`
#   ((α₀ − α_end)(1 − t/T)^p + α_end), `inverse_time` (α₀ / (1 + r t/T)),
#   `inverse_sqrt` (warm-up, then α₀√(W/t), the Transformer's);
# - `sgdr` (cosine with warm restarts, lecture 05), `snapshot` (M equal cosine
#   cycles, lecture 05), `cyclic` (Smith's triangles, here halving each cycle),
#   `one_cycle` (up, then far down);
# - `warmup(cosine)` (a linear ramp first, for large rates) and `join` (one
#   schedule after another, each from its own t = 0).
#
# `ReduceLROnPlateau` is not a function of t (it watches the validation loss);
# it appears in the training comparison below.

# %%
steps = 300
others = {
    "constant": schedules.constant(0.1),
    "step (s = 100, γ = 0.5)": schedules.step(0.1, step_size=100, gamma=0.5),
    "exponential (γ = 0.99)": schedules.exponential(0.1, gamma=0.99),
    "polynomial (p = 2)": schedules.polynomial(0.1, total_steps=steps, power=2.0),
    "inverse_time (r = 5)": schedules.inverse_time(0.1, decay_rate=5.0, decay_steps=steps),
    "inverse_sqrt (W = 30)": schedules.inverse_sqrt(0.1, warmup_steps=30),
    "sgdr (T₀ = 50, T_mult = 2)": schedules.sgdr(0.1, t0=50, t_mult=2),
    "snapshot (M = 4 cycles)": schedules.snapshot(0.1, total_steps=steps, cycles=4),
    "cyclic (triangular2)": schedules.cyclic(0.01, 0.1, step_size=40, mode="triangular2"),
    "one_cycle": schedules.one_cycle(0.1, total_steps=steps),
    "warmup(cosine), W = 30": schedules.warmup(schedules.cosine(0.1, total_steps=steps - 30), warmup_steps=30),
    "join(constant, linear)": schedules.join(
        [schedules.constant(0.1), schedules.linear(0.1, total_steps=200, end_lr=0.0)], boundaries=[100]
    ),
}
fig, axes = plt.subplots(3, 4, figsize=(16, 10), sharex=True, layout="constrained")
for ax, (name, schedule) in zip(axes.flat, others.items()):
    plot_schedules(schedule, steps=steps, ax=ax, labels=[name])
    ax.get_legend().remove()  # the title names the schedule
    ax.set_title(name)
    ax.set_ylim(-0.005, 0.108)
    ax.set_xlabel("update t" if ax in axes[-1] else "")
    ax.set_ylabel("learning rate" if ax in axes[:, 0] else "")
fig.suptitle("The schedules of minisgd.schedules (α₀ = 0.1, 300 updates)", fontsize=15)
lecture.save(fig, "04_all_schedules.png")
print("\nthe other schedules, as the library prints them:")
for schedule in others.values():
    print(f"  {schedule!r}")

# %% [markdown]
# ## One network, every schedule
#
# The data: `SyntheticShapes`, minisgd's built-in CIFAR-10 look-alike (32×32
# colour images of ten classes of shapes and textures, drawn from a seed, no
# download). The model: a small two-layer network on the pixels,
# 3072 → 128 → 10, so that each run takes a few seconds.
#
# Every run starts from the same weights (`minisgd.random.manual_seed`) and sees
# the same mini-batches (the loader's `seed`); only the schedule differs.
# SGD with momentum 0.9, α₀ = 0.02. The loaders and the schedules come from
# `minisgd.recipe`, as in `python -m minisgd train` (schedule times in epochs,
# turned into updates by `recipe.build_schedule`):
#
# - `step`: the slide's 30/60/90 out of 100 epochs, scaled to this run's length
#   (×0.1 after 30 %, 60 % and 90 % of the epochs, rounded to whole epochs);
# - `cosine`, `linear`: T = all the updates of the run, changed every update;
# - `ReduceLROnPlateau`: ×0.1 when the validation loss has not improved for
#   one epoch (for comparison: it watches the validation loss, not t).
#
# The *validation* images are held out from the training images
# (`recipe.hold_out_validation`, a random sample drawn from a seed): the
# plateau schedule watches them, and we compare the schedules on them. The
# *test* images (CIFAR-10's test split, or the built-in set's) are touched
# once, at the end, for the final number; nothing is chosen on them.
#
# (SGDR and one-cycle train the same way; lecture 05 compares SGDR with one
# cosine. Five runs keep this lecture under a minute.)

# %%
all_train, test_set, data_name = lecture.images(args, N_TRAIN + N_VAL, N_VAL)  # --data-dir: CIFAR-10; else built-in
train_set, val_set = recipe.hold_out_validation(all_train, min(N_VAL, len(all_train) // 5), seed=0)
# The recipe's loaders (`python -m minisgd train` uses the same): images normalised with the
# training images' channel statistics, the training batches shuffled from seed 0.
train_loader, val_loader = recipe.build_loaders(train_set, val_set, batch_size=BATCH_SIZE, seed=0)
to_input = val_loader.transform  # uint8 (N, 32, 32, 3) → normalised float (N, 3, 32, 32)
train_eval_loader = DataLoader(train_set, batch_size=1000, transform=to_input)
test_loader = DataLoader(test_set, batch_size=1000, transform=to_input)
steps_per_epoch = len(train_loader)
total = EPOCHS * steps_per_epoch
milestones = [round(EPOCHS * f) for f in (0.3, 0.6, 0.9)]
print(f"\ndata: {data_name}; {len(train_set)} of the training images train, {len(val_set)} held out for "
      f"validation, {len(test_set)} test images for the final number")
print(f"{EPOCHS} epochs of {steps_per_epoch} updates = {total} updates; step milestones at epochs {milestones}")


def make_model():
    minisgd.random.manual_seed(0)  # the same initial weights for every run
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128), nn.ReLU(), nn.Linear(128, 10))


def schedule(name, **settings):
    """The recipe's schedule `name` for this run: times in epochs, turned into updates."""
    return recipe.build_schedule(name, lr=LR, epochs=EPOCHS, steps_per_epoch=steps_per_epoch, **settings)


compared = {
    "constant": schedule("constant"),
    "step": schedule("multistep", milestones=milestones, gamma=0.1),
    "cosine": schedule("cosine"),
    "linear": schedule("linear"),
    "plateau": schedule("reduce-on-plateau", factor=0.1, patience=1),
}
plateau = compared["plateau"]  # a ReduceLROnPlateau: it reads the validation loss after every epoch
results = {}
for name, schedule in compared.items():
    model = make_model()
    optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=0.9)
    loader = recipe.build_loaders(train_set, val_set, batch_size=BATCH_SIZE, seed=0)[0]  # the same batches
    on_epoch_end = None
    if schedule is plateau:  # it reads the validation loss after every epoch
        on_epoch_end = lambda epoch, history: plateau.step(history.epochs[-1]["test_loss"])  # noqa: E731
    history = fit(model, loader, optimizer, epochs=EPOCHS, test_loader=val_loader,
                  on_epoch_end=on_epoch_end, progress=False)
    final_train = evaluate(model, train_eval_loader)  # the loss of the final weights on all training images
    results[name] = {"history": history, "train": final_train, "val": evaluate(model, val_loader),
                     "test": evaluate(model, test_loader)}

print(f"\nfinal loss after {EPOCHS} epochs (α₀ = {LR}, momentum 0.9):")
print(f"{'schedule':16s} {'last lr':>9s} {'train loss':>11s} {'train acc':>10s} {'val loss':>9s} {'val acc':>8s} "
      f"{'test acc':>9s}")
for name, r in results.items():
    print(f"{name:16s} {r['history'].step_lr[-1]:9.2e} {r['train']['loss']:11.4f} {r['train']['acc']:10.3f} "
          f"{r['val']['loss']:9.4f} {r['val']['acc']:8.3f} {r['test']['acc']:9.3f}")
best = min(results, key=lambda name: results[name]["train"]["loss"])
print(f"lowest final training loss: {best} ({results[best]['train']['loss']:.4f}); "
      f"constant α: {results['constant']['train']['loss']:.4f}")
chosen = max(results, key=lambda name: results[name]["val"]["acc"])
print(f"chosen on validation accuracy: {chosen} ({results[chosen]['val']['acc']:.3f}); "
      f"its test accuracy, the final number: {results[chosen]['test']['acc']:.3f}")
print(f"noise: on {len(val_set)} validation images one accuracy has a binomial standard error of up to "
      f"±{100 * math.sqrt(0.25 / len(val_set)):.1f} points, sqrt(p(1 − p)/n)")

# %% [markdown]
# ## What the schedules did to the loss
#
# Left, the rate each run used at every update; right, its mini-batch training
# loss (a moving average, log scale). Solid lines: constant α and the
# recitation's three decays; dashed: ReduceLROnPlateau. With a constant α the loss stops falling
# and keeps bouncing; every decaying schedule ends lower, because the last
# updates are small. A decay that comes too early (the scaled step schedule is
# down to 2·10⁻⁴ after 7 of the 12 epochs, and to 2·10⁻⁵ for the last one)
# stops learning too soon: its loss levels off after the second cut; cosine
# and linear spend longer at a useful rate, end with the smallest steps and
# reach the lowest loss.

# %%
fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(15, 5.5), layout="constrained")
window = max(1, steps_per_epoch // 2)
RECITATION = ("constant", "step", "cosine", "linear")  # solid lines; the others dashed
for i, (name, r) in enumerate(results.items()):
    h = r["history"]
    style = {"color": f"C{i}", "lw": 2.2 if name in RECITATION else 1.3, "ls": "-" if name in RECITATION else "--"}
    ax_lr.plot(np.arange(len(h.step_lr)), h.step_lr, label=name, **style)
    smooth = moving_average(h.step_loss, window)
    ax_loss.plot(np.arange(window - 1, len(h.step_loss)), smooth, label=name, **style)
ax_lr.set(xlabel="update t", ylabel="learning rate α_t", title="the rate each run used")
ax_loss.set(xlabel="update t", ylabel=f"training loss (mean of {window} batches)", yscale="log",
            title="mini-batch training loss")
for ax in (ax_lr, ax_loss):
    ax.grid(True, alpha=0.3)
    ax.legend()
fig.suptitle(f"Same network, same batches, {len(results)} schedules (α₀ = {LR}, momentum 0.9)", fontsize=14)
lecture.save(fig, "04_training_comparison.png")

# %% [markdown]
# ## What to take away
#
# - A constant α leaves SGD bouncing in a noise ball; a decay that keeps the
#   rate useful long enough lets it settle lower. Default run on the built-in
#   data: cosine and linear end with training losses of 0.15 and 0.12 against
#   0.43 for the constant rate; on the real CIFAR-10 subset 0.26 and 0.23
#   against 1.10.
# - Step decay needs its milestones chosen for the run's length. With the
#   slide's 30 % / 60 % / 90 % of a 12-epoch run (epochs 4, 7, 11), the rate is
#   ×0.01 after 7 epochs and training all but stops: on the built-in data it
#   ends level with the constant rate (0.42 against 0.43), far above cosine and
#   linear; ReduceLROnPlateau ends between them (0.27).
# - On held-out validation images every decay beats the constant rate (built-in:
#   44.8–46.2 % against 40.2 %; real subset: 37.0–40.4 % against 29.4 %), by
#   two standard errors or more (±2.2 points on 500 images, printed). Between
#   the decays the differences are within that noise. Choosing on validation
#   picks cosine on both data sets; its test accuracy, the number to report,
#   is 45.4 % (built-in) and 38.6 % (real). Cosine and linear need only T,
#   the length of the run, and are the usual defaults.
# - The schedule is a plain function of the update count t: plot it before
#   training with it (`plots.plot_schedules`).

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
