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
# # 06 · Choosing hyperparameters
#
# **What you learn:** the four checks before tuning (initial loss, overfitting
# a small sample, an lr sweep, the LR range test) and how to read validation
# curves to decide whether to train longer.
#
# **How long:** about 20 minutes; the default run takes about 7 s of CPU time
# on 2 cores (6 s with `--data-dir`).
#
# *Recitation: "Choosing hyperparameters" and "accuracy still going up: train longer".*
#
# Before a long training run, three cheap checks catch most mistakes:
#
# 1. **Check the initial loss.** At initialisation a classifier knows nothing,
#    so its softmax should give every one of the C classes about the same
#    probability 1/C, and the cross-entropy loss should be
#    $-\ln(1/C) = \ln C$: for 10 classes, $\ln 10 \approx 2.303$. Much more
#    means the initial weights are too large (confident and wrong), or the loss is wrong.
# 2. **Overfit a small sample.** Train on 50–100 images only, without
#    regularisation: the network must reach ~100 % training accuracy. If it
#    cannot memorise 100 images, something is broken (the model, the loss, the
#    gradients, the data pipeline).
# 3. **Find a learning rate that makes the loss go down within ~100
#    iterations.** Try 1e-1, 1e-2, 1e-3, 1e-4 on the full training set and keep
#    the largest that makes the loss fall clearly without exploding.
#
# The **LR range test** does step 3 in one run: it raises the rate
# exponentially, batch after batch, and watches the loss. Finally, the train
# and validation curves tell us what to do next: if the validation accuracy is
# *still going up*, train longer.
#
# The data: `SyntheticShapes`, minisgd's built-in ten-class CIFAR-10
# look-alike (32×32 colour images, no download). The model: a small
# two-layer network on the pixels (3072 → 64 → 10), so that every step runs
# in seconds; the same checks apply unchanged to the CNN of lecture 07.
#
# Run it: `python lectures/06_choosing_hyperparameters.py` (`--full` for a
# longer run, `--smoke` for a quick check, `--out DIR` for where the figures go).

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
from minisgd import lecture, nn, optim, recipe  # lecture: the plumbing (options, figures)
from minisgd.data import DataLoader
from minisgd.lr_finder import lr_range_test
from minisgd.nn import functional as F
from minisgd.train import evaluate, fit

args = lecture.start("Initial loss, overfitting a sample, lr sweep, LR range test.", data_dir=True)
if args.smoke:
    N_TRAIN, N_VAL, ITERATIONS, SHORT, LONG = 1_000, 500, 30, 2, 4
elif args.full:
    N_TRAIN, N_VAL, ITERATIONS, SHORT, LONG = 10_000, 2_000, 100, 5, 40
else:
    N_TRAIN, N_VAL, ITERATIONS, SHORT, LONG = 2_000, 1_000, 100, 4, 12
N_SMALL, OVERFIT_EPOCHS = 100, 30  # the sample to overfit, and for how long
BATCH_SIZE = 64

train_set, test_set, data_name = lecture.images(args, N_TRAIN, N_VAL)  # --data-dir: CIFAR-10; else built-in


def batches():
    """A fresh training loader: every run sees the same mini-batches."""
    return recipe.build_loaders(train_set, val_set, batch_size=BATCH_SIZE, seed=0)[0]


print(f"data: {data_name}, {len(train_set.classes)} classes: "
      f"{', '.join(train_set.classes)}")


def make_model():
    """The same initial weights every time it is called."""
    minisgd.random.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))


# %% [markdown]
# ## Validation images, held out from the training images
#
# The cell above loaded N_TRAIN training images and N_VAL images of the *test*
# split. Every choice below (the rate, how long to train, the best epoch) is
# made on *validation* images: a quarter of the training images, set aside at
# random by `recipe.hold_out_validation` and never trained on. The test images
# are used once, at the very end, for the number we would report: choosing on
# them would make that number optimistic.

# %%
train_set, val_set = recipe.hold_out_validation(train_set, len(train_set) // 4, seed=0)
# The recipe's loaders (`python -m minisgd train` uses the same): images normalised with the
# channel statistics of the images that train, the training batches shuffled from seed 0.
_, val_loader = recipe.build_loaders(train_set, val_set, batch_size=BATCH_SIZE, seed=0)
to_input = val_loader.transform  # uint8 (N, 32, 32, 3) → normalised float (N, 3, 32, 32)
test_loader = DataLoader(test_set, batch_size=1000, transform=to_input)
print(f"split: {len(train_set)} images train, {len(val_set)} held out for validation (choices), "
      f"{len(test_set)} test images (the final number only)")


# %% [markdown]
# ## Step 1: check the initial loss
#
# One forward pass, no training, on 1000 training images (under `no_grad`: we
# only measure). With 10 classes we expect $\ln 10 = 2.303$. For contrast, the
# same network with its last layer's weights multiplied by 10 (a careless
# initialisation): its outputs are large, its softmax is confident, and the loss
# starts far above ln 10.

# %%
model = make_model()
x, y = next(iter(DataLoader(train_set, batch_size=1000, transform=to_input)))
with minisgd.no_grad():
    initial_loss = F.cross_entropy(model(x), y).item()
    mean_probability = F.softmax(model(x), axis=-1).numpy().max(axis=1).mean()
expected = math.log(10)
print("\nstep 1: the initial loss")
print(f"initial loss = {initial_loss:.4f} (ln 10 = {expected:.4f}, difference {initial_loss - expected:+.4f})")
print(f"  the most likely class gets probability {mean_probability:.3f} on average (uniform: 0.100)")
print("  OK: close to ln 10" if abs(initial_loss - expected) < 0.1 else "  CHECK: far from ln 10")

careless = make_model()
careless[-1].weight.data *= 10  # the last Linear layer, scaled up
with minisgd.no_grad():
    careless_loss = F.cross_entropy(careless(x), y).item()
print(f"  with the last layer's weights ×10 the initial loss is {careless_loss:.2f}: far too large")

# %% [markdown]
# ## Step 2: overfit a small sample
#
# 100 training images, no weight decay, SGD with lr 0.01 and momentum 0.9,
# batches of 25, and enough epochs to memorise them. The training accuracy must reach ~100 %
# (the loss goes to ~0). The validation accuracy stays low: 100 images are
# memorised, not generalised from — that is expected here.

# %%
small = (train_set.data[:N_SMALL], train_set.targets[:N_SMALL])
small_loader = DataLoader(small, batch_size=25, shuffle=True, seed=0, transform=to_input)
model = make_model()
optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
overfit = fit(model, small_loader, optimizer, epochs=OVERFIT_EPOCHS, test_loader=val_loader, progress=False)
small_scores = evaluate(model, DataLoader(small, batch_size=N_SMALL, transform=to_input))
print(f"\nstep 2: overfit {N_SMALL} images ({OVERFIT_EPOCHS} epochs of 4 updates, lr = 0.01)")
print(f"overfit train accuracy = {100 * small_scores['acc']:.1f}% (loss {small_scores['loss']:.4f}) "
      f"on the {N_SMALL} images; validation accuracy {100 * overfit.last('test_acc'):.1f}%")

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
epochs = [e["epoch"] for e in overfit.epochs]
ax_loss.plot(epochs, [e["train_loss"] for e in overfit.epochs], "o-", ms=3, color="C1", label="train (100 images)")
ax_loss.plot(epochs, [e["test_loss"] for e in overfit.epochs], "s-", ms=3, color="C2", label="validation")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="Loss")
ax_acc.plot(epochs, [100 * e["train_acc"] for e in overfit.epochs], "o-", ms=3, color="C1", label="train (100 images)")
ax_acc.plot(epochs, [100 * e["test_acc"] for e in overfit.epochs], "s-", ms=3, color="C2", label="validation")
ax_acc.axhline(100, color="k", lw=0.8, ls=":")
ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 105), title="Accuracy")
for ax in (ax_loss, ax_acc):
    ax.grid(True, alpha=0.3)
    ax.legend()
fig.suptitle(f"Step 2: the network memorises {N_SMALL} images (train accuracy → 100 %)", fontsize=14)
lecture.save(fig, "06_overfit_small_sample.png")

# %% [markdown]
# ## Step 3: a learning rate that makes the loss go down within ~100 iterations
#
# Same initial weights for each rate, SGD with momentum 0.9, the whole training
# set in batches of 64, ITERATIONS updates each. The loop is written out: this
# is all that `train.fit` does on each batch.
#
# - too large a rate: the loss explodes (or becomes NaN);
# - too small: the loss barely moves from ln 10;
# - a good one: a clear fall within these iterations. Keep the largest such rate.


# %%
def train_iterations(lr, iterations):
    """Mini-batch losses of `iterations` updates of SGD (momentum 0.9) at rate lr, from the same start."""
    model = make_model()
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = batches()
    losses = []
    while len(losses) < iterations:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]) or len(losses) == iterations:
                return np.array(losses)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return np.array(losses)


rates = [1e-1, 1e-2, 1e-3, 1e-4]
sweep = {lr: train_iterations(lr, ITERATIONS) for lr in rates}
print(f"\nstep 3: lr sweep, {ITERATIONS} iterations each (SGD, momentum 0.9, batch {BATCH_SIZE})")
print(f"{'lr':>8s} {'first loss':>11s} {'loss after ' + str(ITERATIONS) + ' it.':>19s}   verdict")
verdicts = {}
for lr, losses in sweep.items():
    end = losses[-10:].mean()  # the mean of the last 10 batches: less noisy than the last one
    if not math.isfinite(end) or end > 1.5 * losses[0]:
        verdicts[lr] = "explodes: too large"
    elif end > 0.95 * losses[0]:
        verdicts[lr] = "barely moves: too small"
    else:
        verdicts[lr] = "goes down"
    print(f"{lr:8.0e} {losses[0]:11.4f} {end:19.4g}   {verdicts[lr]}")
good = [lr for lr in rates if verdicts[lr] == "goes down"]
chosen_lr = max(good) if good else 1e-2
print(f"chosen: lr = {chosen_lr:g} (the largest rate whose loss goes down)")

fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(15, 5), layout="constrained")
for ax in (ax_all, ax_zoom):
    for i, (lr, losses) in enumerate(sweep.items()):
        ax.plot(np.arange(len(losses)), losses, color=f"C{i}", lw=1.8, label=f"lr = {lr:g}: {verdicts[lr]}")
    ax.axhline(expected, color="k", ls=":", lw=1, label="ln 10 (the initial loss)")
    ax.set_xlabel("iteration")
    ax.grid(True, alpha=0.3)
ax_all.set(ylabel="mini-batch loss (log scale)", yscale="log", title="All four rates (log scale)")
ax_zoom.set(ylabel="mini-batch loss", ylim=(1.0, 2.8), title="Zoom on the rates that did not explode")
ax_zoom.legend(loc="lower left")
fig.suptitle(f"Step 3: which rate makes the loss go down within {ITERATIONS} iterations?", fontsize=14)
lecture.save(fig, "06_lr_sweep.png")

# %% [markdown]
# ## The LR range test
#
# `lr_finder.lr_range_test` trains for 100 mini-batches while the rate grows
# exponentially, $\alpha_i = \alpha_{start}(\alpha_{end}/\alpha_{start})^{i/n}$,
# and records a smoothed loss (an exponential moving average, corrected for its
# start at 0). It stops once the loss has diverged, and restores the weights
# afterwards. It suggests a fifth of the rate at the smoothed loss's minimum,
# and marks the steepest descent before the minimum beside it. Both are printed
# and marked on the plot. They are hints, not answers: the moving average
# (β = 0.98) lags the batch losses by tens of batches, so its minimum sits late,
# close to the blow-up; hence the division. In the default run the suggestion
# (0.008) lands next to step 3's choice (0.01).

# %%
model = make_model()
optimizer = optim.SGD(model.parameters(), lr=chosen_lr, momentum=0.9)
loader = batches()
finder = lr_range_test(model, optimizer, loader, start_lr=1e-4, end_lr=1.0, steps=100)
print("\nLR range test: rates from 1e-4 to 1 over 100 batches")
print(f"  smoothed minimum at lr = {finder.min_loss_lr:.3g}; suggested (minimum / 5) = {finder.suggested_lr:.3g}; "
      f"steepest descent before the minimum at lr = {finder.steepest_lr:.3g}; step 3 chose {chosen_lr:g}")
print(f"  stopped early: {finder.stopped}" if finder.stopped else "  ran all 100 batches")
fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
finder.plot(ax=ax)
ax.axvline(chosen_lr, color="k", ls="-.", lw=1.8, label=f"chosen in step 3: {chosen_lr:g}")
ax.set_ylim(finder.losses.min() - 0.05, expected + 0.2)  # the start (≈ ln 10) down to the lowest batch loss
ax.set_title("LR range test: loss while the rate grows exponentially")
ax.legend(loc="lower left", fontsize=10)
lecture.save(fig, "06_lr_range_test.png")

# %% [markdown]
# ## Train and validation curves: accuracy still going up — train longer?
#
# With the chosen rate we train for a short run of SHORT epochs and look at the
# curves. If the validation accuracy is still rising at the end, the model has
# not finished learning: the slide says **train longer**. `fit` continues from
# where it stopped (same weights, optimizer and history, `start_epoch`), up to
# LONG epochs. Then we read *both* validation curves, accuracy and loss, since
# they need not agree.
#
# What the default run on the built-in data shows (the numbers are printed
# below): validation accuracy still rose at the dashed line (+5.4 points), and
# the longer run gains several more (36.8 % → 43.2 %, the best at the last
# epoch), so training longer paid — but the validation *loss* reaches its
# minimum one epoch after the dashed line (1.700, epoch 5) and then rises
# (1.897 at epoch 12), while the training loss keeps falling. The network
# keeps getting more images right, and grows over-confident on the ones it
# gets wrong (cross-entropy punishes a confident mistake heavily). The gap
# between train and validation widens from 22.5 to 55.1 points: overfitting
# has started. So the full advice is: train longer while validation
# *accuracy* rises; when the validation loss turns up and the gap widens,
# regularise (weight decay, augmentation, more data) or keep the best epoch —
# training longer alone only widens the gap.
#
# On the real CIFAR-10 subset (`--data-dir`) the same script shows the other
# case: validation accuracy *fell* in the short run's last epoch (−2.0
# points), so the slide's rule says not to train longer, and rightly: twelve
# epochs end at 31.8 % against 31.2 %, a difference well inside the noise
# (±2.2 points on 500 validation images, printed), while the validation loss
# climbs from its minimum 1.92 (epoch 3) to 2.83.
#
# All of this is read on the validation images. The test images are touched
# once, after the last epoch: 41.1 % (built-in), 35.5 % (real subset).

# %%
model = make_model()
optimizer = optim.SGD(model.parameters(), lr=chosen_lr, momentum=0.9)
loader = batches()
finder = lr_range_test(model, optimizer, loader, start_lr=1e-4, end_lr=1.0, steps=100)
print("\nLR range test: rates from 1e-4 to 1 over 100 batches")
print(f"  smoothed minimum at lr = {finder.min_loss_lr:.3g}; suggested (minimum / 5) = {finder.suggested_lr:.3g}; "
      f"steepest descent before the minimum at lr = {finder.steepest_lr:.3g}; step 3 chose {chosen_lr:g}")
print(f"  stopped early: {finder.stopped}" if finder.stopped else "  ran all 100 batches")
fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
finder.plot(ax=ax)
ax.axvline(chosen_lr, color="k", ls="-.", lw=1.8, label=f"chosen in step 3: {chosen_lr:g}")
ax.set_ylim(finder.losses.min() - 0.05, expected + 0.2)  # the start (≈ ln 10) down to the lowest batch loss
ax.set_title("LR range test: loss while the rate grows exponentially")
ax.legend(loc="lower left", fontsize=10)
lecture.save(fig, "06_lr_range_test.png")

# %% [markdown]
# ## Train and validation curves: accuracy still going up — train longer?
#
# With the chosen rate we train for a short run of SHORT epochs and look at the
# curves. If the validation accuracy is still rising at the end, the model has
# not finished learning: the slide says **train longer**. `fit` continues from
# where it stopped (same weights, optimizer and history, `start_epoch`), up to
# LONG epochs. Then we read *both* validation curves, accuracy and loss, since
# they need not agree.
#
# What the default run on the built-in data shows (the numbers are printed
# below): validation accuracy still rose at the dashed line (+4.3 points), and
# the longer run gains several more (39.4 % → 43.1 %, best 44.9 % at epoch 10),
# so training longer paid — but the
# validation *loss* reaches its minimum within a few epochs of the dashed line
# and then rises, while the training loss keeps falling. The network keeps
# getting more images right, and grows over-confident on the ones it gets
# wrong (cross-entropy punishes a confident mistake heavily). The gap between
# train and validation keeps widening: overfitting has started. So the full
# advice is: train longer while validation *accuracy* rises; when the
# validation loss turns up and the gap widens, regularise (weight decay,
# augmentation, more data) or keep the best epoch — training longer alone
# only widens the gap.
#
# On the real CIFAR-10 subset (`--data-dir`) the same script shows the other
# case: validation accuracy *fell* in the short run's last epoch (−2.4
# points), so the slide's rule says not to train longer, and rightly: twelve
# epochs end at 34.4 % against 33.9 % (it wanders between 33 % and 37 %,
# best 37.2 % at epoch 11) while the validation loss climbs from its minimum
# 1.84 (epoch 3) to 2.66.

# %%
model = make_model()
optimizer = optim.SGD(model.parameters(), lr=chosen_lr, momentum=0.9)
loader = batches()
history = fit(model, loader, optimizer, epochs=SHORT, test_loader=val_loader, progress=False)
gain = history.epochs[-1]["test_acc"] - history.epochs[-2]["test_acc"]
print(f"\nshort run, {SHORT} epochs at lr = {chosen_lr:g}:")
for e in history.epochs:
    print(f"  epoch {e['epoch']:2d}: train acc {100 * e['train_acc']:5.1f}%, val acc {100 * e['test_acc']:5.1f}%")
print(f"  val accuracy changed by {100 * gain:+.1f} points in the last epoch"
      + (": still going up, train longer" if gain > 0 else ""))

history = fit(model, loader, optimizer, epochs=LONG, test_loader=val_loader, history=history,
              start_epoch=SHORT, progress=False)
print(f"longer run, continued to {LONG} epochs:")
for e in history.epochs[SHORT:]:
    print(f"  epoch {e['epoch']:2d}: train acc {100 * e['train_acc']:5.1f}%, val acc {100 * e['test_acc']:5.1f}%")
print(f"val accuracy: {100 * history.epochs[SHORT - 1]['test_acc']:.1f}% after {SHORT} epochs, "
      f"{100 * history.last('test_acc'):.1f}% after {LONG} epochs")
val_losses = [e["test_loss"] for e in history.epochs]
best_loss_epoch = history.epochs[int(np.argmin(val_losses))]["epoch"]
best_acc = max(history.epochs, key=lambda e: e["test_acc"])
gap = [100 * (e["train_acc"] - e["test_acc"]) for e in history.epochs]
print(f"val loss: {val_losses[SHORT - 1]:.3f} after {SHORT} epochs, lowest {min(val_losses):.3f} at epoch "
      f"{best_loss_epoch}, {val_losses[-1]:.3f} after {LONG} epochs")
print(f"best val accuracy {100 * best_acc['test_acc']:.1f}% at epoch {best_acc['epoch']}; train − val accuracy gap "
      f"{gap[SHORT - 1]:.1f} points after {SHORT} epochs, {gap[-1]:.1f} after {LONG}")
print(f"noise: one accuracy on {len(val_set)} validation images has a binomial standard error of up to "
      f"±{100 * math.sqrt(0.25 / len(val_set)):.1f} points")
final_test = evaluate(model, test_loader)
print(f"test accuracy of the final network ({LONG} epochs), measured once at the end: "
      f"{100 * final_test['acc']:.1f}% on {len(test_set)} test images")

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(14, 5), layout="constrained")
epochs = [e["epoch"] for e in history.epochs]
for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "acc", "accuracy (%)")):
    scale = 100 if key == "acc" else 1
    ax.plot(epochs, [scale * e[f"train_{key}"] for e in history.epochs], "o-", color="C1", label="train")
    ax.plot(epochs, [scale * e[f"test_{key}"] for e in history.epochs], "s-", color="C2", label="validation")
    ax.axvline(SHORT, color="C3", ls="--", lw=1.5, label=f"short run stopped here ({SHORT} epochs)")
    if key == "loss":
        ax.axvline(best_loss_epoch, color="0.3", ls=":", lw=1.5, label=f"lowest val loss (epoch {best_loss_epoch})")
    ax.set(xlabel="epoch", ylabel=label)
    ax.grid(True, alpha=0.3)
    ax.legend()
ax_loss.set_title(f"Loss: validation lowest at epoch {best_loss_epoch} ({min(val_losses):.2f}), "
                  f"{val_losses[-1]:.2f} at the end")
ax_acc.set_title(f"Accuracy: validation {100 * history.epochs[SHORT - 1]['test_acc']:.1f}% at the dashed line, "
                 f"{100 * history.last('test_acc'):.1f}% at the end")
fig.suptitle(f"Train and validation curves (lr = {chosen_lr:g}, momentum 0.9, {len(train_set)} training images)",
             fontsize=14)
lecture.save(fig, "06_train_longer.png")

# %% [markdown]
# ## What to take away
#
# - Initial loss ≈ ln C for C classes; otherwise fix the initialisation or the loss first.
# - A network that cannot overfit 100 images has a bug; find it before tuning anything.
# - Try rates a factor of 10 apart for ~100 iterations; keep the largest whose
#   loss clearly falls. The LR range test does the same in one run.
# - Read the curves, on validation images held out from the training set:
#   validation accuracy still rising means training longer can pay (here it
#   did, by 6.4 points, 36.8 % → 43.2 %); a validation loss that turns up while
#   the train/validation gap widens means overfitting has started: regularise,
#   or keep the best epoch. The test set gives the final number, once.

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# This lecture's topics have two exercises, **adaptive** and **ensembles**. In a terminal:
#
# ```bash
# python -m minisgd exercise start adaptive   # sets the exercise up
# python -m minisgd exercise check adaptive   # checks your solution
# python -m minisgd exercise start ensembles   # sets the exercise up
# python -m minisgd exercise check ensembles   # checks your solution
# ```
