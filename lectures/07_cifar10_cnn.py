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
# # 07 · The coding example: a CNN on CIFAR-10
#
# **What you learn:** the whole recipe (data, normalisation, a CNN, SGD with
# momentum and a schedule) on CIFAR-10, and how to read learning curves and
# per-class accuracy.
#
# **How long:** about 20 minutes; the default run takes about 6 s of CPU time
# on 2 cores, 15 s with `--data-dir` on the 4 068-image subset (all of it, 10
# epochs).
#
# *Recitation: "Coding example".*
#
# CIFAR-10: 60 000 colour images of 32×32 pixels in ten classes (airplane,
# automobile, bird, cat, deer, dog, frog, horse, ship, truck), 50 000 for
# training and 10 000 for testing. We train a convolutional network on it with
# everything from the previous lectures:
#
# - mini-batch SGD (lectures 01–02), batches of 64;
# - momentum 0.9 (lecture 03), PyTorch's form `optim.SGD(..., momentum=0.9)`,
#   with a little weight decay (an L2 penalty);
# - a cosine learning-rate decay over the whole run (lecture 04), changed every update;
# - a rate and an initial loss checked as in lecture 06.
#
# The network is `models.lenet()` (the CNN of PyTorch's CIFAR-10 tutorial,
# 62 006 parameters) or, with `--model small-vgg`, two VGG blocks of 3×3
# convolutions (1.1 M parameters, several times slower).
#
# Data, loaders, model, schedule and optimizer come from `minisgd.recipe`, the
# same builders `python -m minisgd train` uses: this lecture *is* that recipe,
# written out step by step.
#
# **No CIFAR-10 on disk?** The script then says so and trains on minisgd's
# built-in `SyntheticShapes` (ten classes of shapes and textures, drawn from a
# seed, same format as CIFAR-10), so it always runs. `--download` fetches
# CIFAR-10 (163 MB, checksum-verified) into `--data-dir` (default
# `$MINISGD_DATA` or `~/.cache/minisgd`).
#
# Run it: `python lectures/07_cifar10_cnn.py` (`--full` for the whole data set
# and more epochs, `--smoke` for a quick check, `--out DIR` for the figures,
# `--download`, `--data-dir DIR`, `--device {cpu,cuda}`, `--model {lenet,small-vgg}`).

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
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minisgd
from minisgd import backend, lecture, recipe  # lecture: the plumbing (options, figures)
from minisgd.data import transforms
from minisgd.nn import functional as F
from minisgd.plots import plot_history
from minisgd.train import fit

parser = lecture.parser("The coding example: a CNN on CIFAR-10 (or the built-in data set).")
parser.add_argument("--download", action="store_true", help="download CIFAR-10 (163 MB) if it is not on disk")
parser.add_argument("--data-dir", type=Path, default=None,
                    help="where CIFAR-10 is (or goes); default $MINISGD_DATA or ~/.cache/minisgd")
parser.add_argument("--device", choices=["cpu", "cuda"], default=backend.default_device(),
                    help="train on the CPU (NumPy) or a GPU (CuPy); default $MINISGD_DEVICE or cpu")
parser.add_argument("--model", choices=recipe.MODELS, default="lenet", help="the network")
parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
args = lecture.start(parser)
if args.device == "cuda" and not backend.gpu_available():
    parser.error(f"--device cuda needs CuPy and a CUDA GPU, and none was found; {backend.INSTALL_HINT}")
if args.epochs is not None and args.epochs < 1:
    parser.error(f"--epochs must be >= 1; got {args.epochs}")

if args.smoke:
    N_TRAIN, N_TEST, EPOCHS = 500, 300, 1
elif args.full:
    N_TRAIN, N_TEST, EPOCHS = None, None, 15  # None: the whole data set
else:
    N_TRAIN, N_TEST, EPOCHS = 2_500, 1_000, 3
EPOCHS = args.epochs or EPOCHS
BATCH_SIZE, LR, MOMENTUM, WEIGHT_DECAY = 64, 0.05, 0.9, 5e-4

# %% [markdown]
# ## The data
#
# `recipe.load_datasets("cifar10", data_dir=…)` reads CIFAR-10's training
# batches (or the test batch) with `data.CIFAR10`: `.data`, (N, 32, 32, 3)
# uint8, `.targets` and `.classes`, cut to the first `train_size` /
# `test_size` images (CIFAR-10's files are in random order). Without the files
# it raises `ValueError` with one line saying why, and we fall back to the
# built-in set, `recipe.load_datasets("synthetic")`. An explicit `--data-dir`
# is different: the lecture reads every batch file there (a subset with fewer
# training batches works) and stops with one line if there are none — it
# never trains on other data than asked for, and its default run uses every
# image it finds, for 10 epochs (the real subset of 4 068 training images:
# about 11 s on a quiet 2-core machine; all 50 000 CIFAR-10 images are twelve
# times as many, so expect about twelve times as long). The default run on the built-in set (or CIFAR-10 found in
# `$MINISGD_DATA`) uses the first 2 500 / 1 000 images for 3 epochs, so that
# it finishes in seconds; `--full` uses everything, with augmentation, for 15
# epochs.

# %%
from minisgd.data.cifar import describe_files

if args.data_dir is not None and not args.download:  # asked for these files: use them (any data_batch_* present)
    if not (args.smoke or args.full or args.epochs):  # the default run: every image found, 10 epochs
        N_TRAIN, N_TEST, EPOCHS = None, None, 10
    train_set, test_set, _ = lecture.images(args, N_TRAIN, N_TEST)
    dataset_name = "CIFAR-10"
else:
    try:
        train_set, test_set = recipe.load_datasets("cifar10", data_dir=args.data_dir, download=args.download,
                                                   train_size=N_TRAIN, test_size=N_TEST)
        dataset_name = "CIFAR-10"
    except ValueError as error:
        print(f"CIFAR-10 is not available: {error}")
        hint = "" if args.download else " Run with --download to fetch CIFAR-10 (163 MB)."
        print("Falling back to the built-in synthetic data set (SyntheticShapes: ten classes of shapes and "
              f"textures, 32×32×3, the same format as CIFAR-10).{hint}\n")
        dataset_name = "SyntheticShapes (built-in)"
        train_set, test_set = recipe.load_datasets("synthetic", train_size=N_TRAIN or 20_000,
                                                   test_size=N_TEST or 4_000)
classes = train_set.classes
files = (f" from {train_set.folder} ({describe_files(train_set.files)}, test_batch)"
         if hasattr(train_set, "files") else "")
cut = len(train_set) < getattr(train_set, "total", len(train_set))
of_total = f" (the first of {train_set.total})" if cut else ""
print(f"data: {dataset_name}{files}, {len(train_set)} training images{of_total} and {len(test_set)} test images, "
      f"{len(classes)} classes: {', '.join(classes)}")

# %% [markdown]
# A few training images with their class names:

# %%
per_class = 3
fig, axes = plt.subplots(per_class, len(classes), figsize=(1.6 * len(classes), 1.8 * per_class + 0.6),
                         layout="constrained")
for c, name in enumerate(classes):
    rows = np.flatnonzero(train_set.targets == c)[:per_class]
    for r in range(per_class):
        ax = axes[r, c]
        ax.axis("off")
        if r < len(rows):
            ax.imshow(train_set.data[rows[r]], interpolation="nearest")
    axes[0, c].set_title(name, fontsize=11)
fig.suptitle(f"{dataset_name}: training images and their classes", fontsize=14)
lecture.save(fig, "07_sample_images.png")

# %% [markdown]
# ## From images to tensors
#
# The network wants (N, C, H, W) floats with every colour channel standardised:
# $\hat x_c = (x_c - \mu_c)/\sigma_c$, with the mean and standard deviation of
# each channel measured on the *training* images only. `recipe.build_loaders`
# builds that pipeline (`transforms.image_transforms`) and the two `DataLoader`s:
# the training one shuffles (from a seed) and, with `augment=True` (used with
# `--full`), crops randomly after padding by 4 pixels and flips half the images
# left–right, the standard CIFAR-10 augmentation. Each loader applies the
# pipeline to every batch and moves the batch to `--device`.

# %%
mean, std = transforms.channel_stats(train_set.data)
print(f"channel means {np.round(mean, 3)}, standard deviations {np.round(std, 3)} (on the [0, 1] scale)")
augment = args.full
train_loader, test_loader = recipe.build_loaders(train_set, test_set, batch_size=BATCH_SIZE, augment=augment,
                                                 seed=0, device=args.device)

# %% [markdown]
# ## The network, the optimizer and the schedule
#
# SGD with momentum and weight decay, the rate following a cosine from α₀ = 0.05
# down to 0 over all the updates of the run:
# $\alpha_t = \tfrac12\alpha_0\bigl(1 + \cos(t\pi/T)\bigr)$. Before training we check
# the initial loss against ln 10 (lecture 06, step 1).

# %%
minisgd.random.manual_seed(0)
model = recipe.build_model(args.model).to(args.device)
n_parameters = sum(p.size for p in model.parameters())
total_updates = EPOCHS * len(train_loader)
schedule = recipe.build_schedule("cosine", lr=LR, epochs=EPOCHS, steps_per_epoch=len(train_loader))
optimizer = recipe.build_optimizer(model, "sgd", lr=schedule, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
print(f"model: {args.model}, {n_parameters:,} parameters, on {args.device}")
print(f"optimizer: SGD, momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}; schedule {schedule!r}")
print(f"training: {EPOCHS} epoch(s) of {len(train_loader)} updates = {total_updates} updates"
      + (", with augmentation" if augment else ""))

x, y = next(iter(test_loader))
with minisgd.no_grad():
    initial_loss = F.cross_entropy(model(x), y).item()
print(f"initial loss = {initial_loss:.4f} (ln 10 = {math.log(10):.4f})")

# %% [markdown]
# ## Training
#
# `train.fit` runs the loop of lecture 01 (forward, loss, `zero_grad`,
# `backward`, `step`) over the epochs, evaluates on the test set after each
# epoch, and records everything in a `History`.


# %%
def report(epoch, history):
    e = history.epochs[-1]
    print(f"epoch {epoch}/{EPOCHS}: train loss {e['train_loss']:.4f}, train acc {100 * e['train_acc']:.1f}%, "
          f"test loss {e['test_loss']:.4f}, test acc {100 * e['test_acc']:.1f}% "
          f"({e['seconds']:.1f} s, {e['images_per_second']:.0f} images/s)")


history = fit(model, train_loader, optimizer, epochs=EPOCHS, test_loader=test_loader,
              on_epoch_end=report, progress=False)
if history.stopped:
    print(history.stopped)
with plt.rc_context({"figure.constrained_layout.use": True}):  # keeps the three panels' labels apart
    curves = plot_history(history, args.out / "07_learning_curves.png",
                          title=f"{args.model} on {dataset_name}: SGD + momentum {MOMENTUM} + cosine decay")
lecture.show_file(curves)

# %% [markdown]
# ## Accuracy per class
#
# Overall accuracy hides which classes the network confuses. We predict every
# test image (the class with the largest output) and count, for each class,
# the share of its images predicted correctly. Chance level is 10 %.

# %%
model.eval()
predictions, labels, images = [], [], []
with minisgd.no_grad():
    for x, y in test_loader:
        predictions.append(model(x).argmax(axis=1).numpy())
        labels.append(y.numpy())
predictions, labels = np.concatenate(predictions), np.concatenate(labels)
test_accuracy = np.mean(predictions == labels)
class_accuracy = np.array([np.mean(predictions[labels == c] == c) if np.any(labels == c) else np.nan
                           for c in range(len(classes))])  # NaN: no test image of that class
print(f"\ntest accuracy = {100 * test_accuracy:.1f}% on {len(labels)} test images (chance: 10%)")
print(f"{'class':20s} {'accuracy':>9s} {'images':>7s}")
for c, name in enumerate(classes):
    print(f"{name:20s} {100 * class_accuracy[c]:8.1f}% {np.sum(labels == c):7d}")

fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
order = np.argsort(class_accuracy)
bars = ax.barh(np.arange(len(classes)), 100 * class_accuracy[order], color="C0")
ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=11)
ax.set_yticks(np.arange(len(classes)), [classes[c] for c in order])
ax.axvline(100 * test_accuracy, color="C3", ls="--", label=f"overall: {100 * test_accuracy:.1f}%")
ax.axvline(10, color="0.4", ls=":", label="chance: 10%")
ax.set(xlabel="test accuracy (%)", xlim=(0, 110), title=f"Accuracy per class — {args.model} on {dataset_name}")
ax.legend(loc="lower right")
ax.grid(True, axis="x", alpha=0.3)
lecture.save(fig, "07_per_class_accuracy.png")

# %% [markdown]
# Some test images with the network's answer (green: right, red: wrong, with the true class):

# %%
shown = min(16, len(test_set))
fig, axes = plt.subplots(2, shown // 2, figsize=(1.9 * (shown // 2), 5), layout="constrained")
for i, ax in enumerate(axes.flat):
    ax.imshow(test_set.data[i], interpolation="nearest")
    ax.axis("off")
    right = predictions[i] == labels[i]
    text = classes[predictions[i]] if right else f"{classes[predictions[i]]}\n(true: {classes[labels[i]]})"
    ax.set_title(text, fontsize=10, color="green" if right else "red")
fig.suptitle(f"Test images: predicted class (green right, red wrong) — test accuracy {100 * test_accuracy:.1f}%",
             fontsize=13)
lecture.save(fig, "07_test_predictions.png")

# %% [markdown]
# ## What to take away
#
# - The whole recipe is a few lines: a `DataLoader` with normalisation, a CNN,
#   `optim.SGD(params, lr=schedule, momentum=0.9, weight_decay=5e-4)`, and `fit`
#   (here through `minisgd.recipe`; `python -m minisgd train` runs the same).
# - The loss goes down and the accuracy up, epoch after epoch. On the real
#   CIFAR-10 subset (`--data-dir ../shared/data/cifar10-subset`: all 4 068
#   training images, 10 epochs, about 11 s) the training loss falls from
#   2.20 (epoch 1) to 0.93 and the test accuracy rises from 23.1 % to 48.5 %.
# - The test loss stops falling after about epoch 6 (1.58) while the training
#   loss keeps falling: training accuracy ends at 65.5 %, 17 points above the
#   test accuracy. That gap is overfitting on 4 068 images; `--full` adds
#   augmentation (random crops and flips) and 15 epochs, and ends at 49.8 %
#   with training and test accuracy level (49.3 %, 49.8 %).
# - Per-class accuracy shows where the network struggles: on the real subset
#   bird (22.9 %) and cat (33.0 %) are hardest, ship (63.2 %) and frog (62.7 %)
#   easiest; on the built-in set it misses the shapes that differ only in
#   outline, square (8.0 %) and triangle (22.0 %).
# - On all 50 000 CIFAR-10 training images, LeNet-sized networks are usually
#   reported at about 60–65 % after tens of epochs. That is *not* measured
#   here (the subset has 4 068 images); `--model small-vgg` goes higher, more slowly.
#
# The numbers above are what the default runs printed on a 2-core machine;
# your run prints its own, in the lines above.

# %%
lecture.finish()

# %% [markdown]
# ## Your turn
#
# This lecture's topics have two exercises, **cnn** and **backprop**. In a terminal:
#
# ```bash
# python -m minisgd exercise start cnn   # sets the exercise up
# python -m minisgd exercise check cnn   # checks your solution
# python -m minisgd exercise start backprop   # sets the exercise up
# python -m minisgd exercise check backprop   # checks your solution
# ```
