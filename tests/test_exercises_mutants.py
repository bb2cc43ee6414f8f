"""Every exercise task rejects known-wrong solutions, with the diagnosis a student can act on.

Each mutant is a plausible wrong answer a student writes in plain NumPy. It
replaces one function of the library-built solution (``exercise_solutions``),
and the grader must fail that task with the expected hint.
"""

import re
import textwrap

import pytest
from exercise_solutions import SOLUTIONS

from minisgd.exercises import grading

MUTANTS = [
    # ------------------------------------------------------------------ sgd
    ("sgd", "gd_step", "the step goes against the gradient", """
        def gd_step(w, grad, lr):
            return w + lr * grad
    """),
    ("sgd", "minibatch_gradient", "divide by the batch size len(idx), not by len(X)", """
        def minibatch_gradient(X, y, w, idx):
            Xb = X[idx]
            return Xb.T @ (Xb @ w - y[idx]) / len(X)
    """),
    ("sgd", "minibatch_gradient", "use only the rows idx", """
        def minibatch_gradient(X, y, w, idx):
            return X.T @ (X @ w - y) / len(X)
    """),
    # ------------------------------------------------------------- momentum
    ("momentum", "heavy_ball_step", "is α inside V?", """
        def heavy_ball_step(w, v, grad, lr, beta):
            v = beta * v + grad
            return w - lr * v, v
    """),
    ("momentum", "heavy_ball_step", "there is no (1 − β)", """
        def heavy_ball_step(w, v, grad, lr, beta):
            v = beta * v + (1 - beta) * lr * grad
            return w - v, v
    """),
    ("momentum", "pytorch_momentum_step", "PyTorch keeps the rate out of the buffer", """
        def pytorch_momentum_step(w, buf, grad, lr, momentum):
            buf = momentum * buf + lr * grad
            return w - buf, buf
    """),
    ("momentum", "nesterov_step", "the gradient term g is missing", """
        def nesterov_step(w, buf, grad, lr, momentum):
            buf = momentum * buf + grad
            return w - lr * momentum * buf, buf
    """),
    ("momentum", "nesterov_step", "that is plain momentum", """
        def nesterov_step(w, buf, grad, lr, momentum):
            buf = momentum * buf + grad
            return w - lr * buf, buf
    """),
    # ------------------------------------------------------------ schedules
    ("schedules", "step_decay", "the rate drops in steps", """
        def step_decay(t, lr0, step_size, gamma):
            return lr0 * gamma ** (t / step_size)
    """),
    ("schedules", "cosine", "lr at t = 10 is 0.002025, expected 0: is the period T + 1?", """
        import math
        def cosine(t, lr0, T):
            t = min(t, T + 1)
            return 0.5 * lr0 * (1 + math.cos(math.pi * t / (T + 1)))
    """),
    ("schedules", "cosine", "after T the rate stays at 0", """
        import math
        def cosine(t, lr0, T):
            return 0.5 * lr0 * (1 + math.cos(math.pi * t / T))
    """),
    ("schedules", "linear", "use min(t, T)", """
        def linear(t, lr0, T):
            return lr0 * (1 - t / T)
    """),
    ("schedules", "sgdr", "not at t0·t_mult^i", """
        import math
        def sgdr(t, lr0, t0, t_mult):
            if t_mult == 1:
                return 0.5 * lr0 * (1 + math.cos(math.pi * (t % t0) / t0))
            i = 0
            while t >= t0 * t_mult ** (i + 1):   # wrong: restarts at t0 * t_mult**i
                i += 1
            start = 0 if t < t0 else t0 * t_mult ** i
            return 0.5 * lr0 * (1 + math.cos(math.pi * (t - start) / (t0 * t_mult ** i)))
    """),
    ("schedules", "sgdr", "a floating-point logarithm put the restart at t = 121", """
        import math
        def sgdr(t, lr0, t0, t_mult):
            if t_mult == 1:
                i = t // t0
                return 0.5 * lr0 * (1 + math.cos(math.pi * (t - i * t0) / t0))
            i = math.floor(math.log(t / t0 * (t_mult - 1) + 1, t_mult))
            start = t0 * (t_mult ** i - 1) / (t_mult - 1)
            return 0.5 * lr0 * (1 + math.cos(math.pi * (t - start) / (t0 * t_mult ** i)))
    """),
    ("schedules", "sgdr", "the cycles grow", """
        import math
        def sgdr(t, lr0, t0, t_mult):
            return 0.5 * lr0 * (1 + math.cos(math.pi * (t % t0) / t0))
    """),
    ("schedules", "warmup_cosine", "cosine(t − warmup)", """
        import math
        def warmup_cosine(t, lr0, warmup, T):
            if t < warmup:
                return lr0 * t / warmup
            return 0.5 * lr0 * (1 + math.cos(math.pi * min(t, T) / T))
    """),
    ("schedules", "warmup_cosine", "reaches lr0 at t = warmup", """
        import math
        def warmup_cosine(t, lr0, warmup, T):
            if t < warmup:
                return lr0 * (t + 1) / warmup
            s = min(t - warmup, T)
            return 0.5 * lr0 * (1 + math.cos(math.pi * s / T))
    """),
    # ------------------------------------------------------------- backprop
    ("backprop", "softmax_cross_entropy", "loss is nan for logits of ±1000: subtract the max before exp", """
        def softmax_cross_entropy(logits, y):
            e = np.exp(logits)
            p = e / e.sum(axis=1, keepdims=True)
            N = len(y)
            dlogits = p.copy()
            dlogits[np.arange(N), y] -= 1
            return -np.log(p[np.arange(N), y]).mean(), dlogits / N
    """),
    ("backprop", "softmax_cross_entropy", "log(softmax) is log 0", """
        def softmax_cross_entropy(logits, y):
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            N = len(y)
            dlogits = p.copy()
            dlogits[np.arange(N), y] -= 1
            return -np.log(p[np.arange(N), y]).mean(), dlogits / N
    """),
    ("backprop", "softmax_cross_entropy", "the loss is the mean over the batch", """
        def softmax_cross_entropy(logits, y):
            z = logits - logits.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            N = len(y)
            dlogits = np.exp(log_p)
            dlogits[np.arange(N), y] -= 1
            return -log_p[np.arange(N), y].sum(), dlogits
    """),
    ("backprop", "linear_backward", "transposed", """
        def linear_backward(dout, x, W):
            return dout @ W, x.T @ dout, dout.sum(axis=0)
    """),
    ("backprop", "linear_backward", "db sums dout over the batch", """
        def linear_backward(dout, x, W):
            return dout @ W, dout.T @ x, dout.mean(axis=0)
    """),
    ("backprop", "sum_to_shape", "also sum the axes where shape has a 1", """
        def sum_to_shape(grad, shape):
            extra = grad.ndim - len(shape)
            return grad.sum(axis=tuple(range(extra)))
    """),
    ("backprop", "sum_to_shape", "keepdims=True", """
        def sum_to_shape(grad, shape):
            extra = grad.ndim - len(shape)
            grad = grad.sum(axis=tuple(range(extra)))
            axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
            return grad.sum(axis=axes)
    """),
    # ------------------------------------------------------------------ cnn
    ("cnn", "conv2d_forward", "do not flip the kernel", """
        def conv2d_forward(x, w, b, stride, padding):
            w = w[:, :, ::-1, ::-1]
            xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            O, _, kh, kw = w.shape
            Ho, Wo = (xp.shape[2] - kh) // stride + 1, (xp.shape[3] - kw) // stride + 1
            out = np.zeros((x.shape[0], O, Ho, Wo))
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
            return out + b[None, :, None, None]
    """),
    ("cnn", "conv2d_forward", "pad the input", """
        def conv2d_forward(x, w, b, stride, padding):
            O, _, kh, kw = w.shape
            Ho, Wo = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
            out = np.zeros((x.shape[0], O, Ho, Wo))
            for i in range(Ho):
                for j in range(Wo):
                    patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
            return out + b[None, :, None, None]
    """),
    ("cnn", "conv2d_backward", "the kernel flipped (rotated by 180°)", """
        def conv2d_backward(dout, x, w, stride, padding):
            xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            dxp, dw = np.zeros_like(xp), np.zeros_like(w)
            kernel = w[:, :, ::-1, ::-1]   # the full convolution written as a correlation, but the flip is wrong
            _, _, kh, kw = w.shape
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                    dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], kernel, axes=(1, 0))
                    dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=(0, 0))
            H, W = x.shape[2:]
            return dxp[:, :, padding:padding + H, padding:padding + W], dw, dout.sum(axis=(0, 2, 3))
    """),
    ("cnn", "max_pool2d_backward", "only to its maximum", """
        def max_pool2d_backward(dout, x, k, stride):
            dx = np.zeros_like(x)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    rows, cols = slice(i * stride, i * stride + k), slice(j * stride, j * stride + k)
                    dx[:, :, rows, cols] += dout[:, :, i:i + 1, j:j + 1] / k**2
            return dx
    """),
    ("cnn", "max_pool2d_backward", "add the gradients (+=), do not overwrite", """
        def max_pool2d_backward(dout, x, k, stride):
            dx = np.zeros_like(x)
            for n in range(x.shape[0]):
                for c in range(x.shape[1]):
                    for i in range(dout.shape[2]):
                        for j in range(dout.shape[3]):
                            window = x[n, c, i * stride:i * stride + k, j * stride:j * stride + k]
                            a, b = np.unravel_index(np.argmax(window), window.shape)
                            dx[n, c, i * stride + a, j * stride + b] = dout[n, c, i, j]
            return dx
    """),
    ("cnn", "batchnorm_backward", "the mean terms are missing", """
        def batchnorm_backward(dout, x, gamma, eps):
            mu, var = x.mean(axis=0), x.var(axis=0)
            x_hat = (x - mu) / np.sqrt(var + eps)
            return dout * gamma / np.sqrt(var + eps), (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    """),
    ("cnn", "batchnorm_backward", "−x̂·mean(g·x̂) is missing", """
        def batchnorm_backward(dout, x, gamma, eps):
            mu, var = x.mean(axis=0), x.var(axis=0)
            x_hat = (x - mu) / np.sqrt(var + eps)
            dx = (dout - dout.mean(axis=0)) * gamma / np.sqrt(var + eps)
            return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    """),
    # ------------------------------------------------------------- adaptive
    ("adaptive", "adam_step", "bias correction", """
        def adam_step(w, m, v, grad, t, lr, beta1, beta2, eps):
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            return w - lr * m / (np.sqrt(v) + eps), m, v
    """),
    ("adaptive", "adam_step", "is t held at 1?", """
        def adam_step(w, m, v, grad, t, lr, beta1, beta2, eps):
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            m_hat, v_hat = m / (1 - beta1), v / (1 - beta2)
            return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    """),
    ("adaptive", "adam_step", "ε outside the square root", """
        def adam_step(w, m, v, grad, t, lr, beta1, beta2, eps):
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            return w - lr * m_hat / np.sqrt(v_hat + eps), m, v
    """),
    ("adaptive", "rmsprop_step", "the (1 − α) is missing", """
        def rmsprop_step(w, sq, grad, lr, alpha, eps):
            sq = alpha * sq + grad**2
            return w - lr * grad / (np.sqrt(sq) + eps), sq
    """),
    ("adaptive", "rmsprop_step", "ε outside the square root", """
        def rmsprop_step(w, sq, grad, lr, alpha, eps):
            sq = alpha * sq + (1 - alpha) * grad**2
            return w - lr * grad / np.sqrt(sq + eps), sq
    """),
    # ------------------------------------------------------------ ensembles
    ("ensembles", "snapshot_times", "multiply by steps_per_epoch", """
        def snapshot_times(epochs, cycles, steps_per_epoch):
            return [round(k * epochs / cycles) for k in range(1, cycles + 1)]
    """),
    ("ensembles", "snapshot_times", "not t = L − 1", """
        def snapshot_times(epochs, cycles, steps_per_epoch):
            T = epochs * steps_per_epoch
            L = -(-T // cycles)
            return [min(k * L, T) - 1 for k in range(1, cycles + 1)]
    """),
    ("ensembles", "snapshot_times", "cut short", """
        def snapshot_times(epochs, cycles, steps_per_epoch):
            T = epochs * steps_per_epoch
            L = -(-T // cycles)
            return list(range(L, T + 1, L))
    """),
    ("ensembles", "ensemble_predict", "not a vote", """
        def ensemble_predict(prob_list):
            votes = np.stack([p.argmax(axis=1) for p in prob_list])
            C = prob_list[0].shape[1]
            return np.array([np.bincount(votes[:, n], minlength=C).argmax() for n in range(votes.shape[1])])
    """),
    ("ensembles", "ensemble_predict", "not their logarithms", """
        def ensemble_predict(prob_list):
            return np.mean([np.log(p) for p in prob_list], axis=0).argmax(axis=1)
    """),
    ("ensembles", "lr_range_suggestion", "correct the average for its start at 0", """
        def lr_range_suggestion(lrs, losses):
            avg, smoothed = 0.0, []
            for loss in losses:
                avg = 0.98 * avg + 0.02 * loss
                smoothed.append(avg)
            skip = 10 if len(lrs) > 20 else 0
            return lrs[skip + int(np.argmin(smoothed[skip:]))] / 5
    """),
    ("ensembles", "lr_range_suggestion", "divides the rate at the minimum by 5", """
        def lr_range_suggestion(lrs, losses):
            avg, smoothed = 0.0, []
            for k, loss in enumerate(losses, 1):
                avg = 0.98 * avg + 0.02 * loss
                smoothed.append(avg / (1 - 0.98**k))
            skip = 10 if len(lrs) > 20 else 0
            return lrs[skip + int(np.argmin(smoothed[skip:]))] / 10
    """),
    ("ensembles", "lr_range_suggestion", "leave the first 10 smoothed points out", """
        def lr_range_suggestion(lrs, losses):
            avg, smoothed = 0.0, []
            for k, loss in enumerate(losses, 1):
                avg = 0.98 * avg + 0.02 * loss
                smoothed.append(avg / (1 - 0.98**k))
            return lrs[int(np.argmin(smoothed))] / 5
    """),
    ("ensembles", "lr_range_suggestion", "not of the raw ones", """
        def lr_range_suggestion(lrs, losses):
            skip = 10 if len(lrs) > 20 else 0
            return lrs[skip + int(np.argmin(losses[skip:]))] / 5
    """),
    # ---------------------------------------------- more known mistakes, one per hint

    ("momentum", "heavy_ball_step", "update V first", """
        def heavy_ball_step(w, v, grad, lr, beta):
            return w - v, beta * v + lr * grad
    """),
    ("momentum", "pytorch_momentum_step", "PyTorch's dampening is 0", """
        def pytorch_momentum_step(w, buf, grad, lr, momentum):
            buf = momentum * buf + (1 - momentum) * grad
            return w - lr * buf, buf
    """),
    ("schedules", "step_decay", "the first drop comes at t = step_size", """
        def step_decay(t, lr0, step_size, gamma):
            return lr0 * gamma ** ((t + 1) // step_size)
    """),
    ("schedules", "cosine", "not to 2π", """
        import math
        def cosine(t, lr0, T):
            return 0.5 * lr0 * (1 + math.cos(2 * math.pi * min(t, T) / T))
    """),
    ("schedules", "linear", "the first update uses lr(0) = lr0", """
        def linear(t, lr0, T):
            return lr0 * max(0.0, 1 - (t + 1) / T)
    """),
    ("cnn", "conv2d_backward", "db sums dout over the batch and every pixel", """
        def conv2d_backward(dout, x, w, stride, padding):
            dx, dw, db = _grads(lambda x, w, b: F.conv2d(x, w, b, stride, padding), dout, x, w, np.zeros(w.shape[0]))
            return dx, dw, dout.mean(axis=(0, 2, 3))
    """),
    ("cnn", "batchnorm_backward", "dgamma = Σ dout·x̂", """
        def batchnorm_backward(dout, x, gamma, eps):
            forward = lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=eps)
            dx, dgamma, dbeta = _grads(forward, dout, x, gamma, np.zeros(len(gamma)))
            return dx, dout.sum(axis=0), dbeta
    """),
    ("adaptive", "adam_step", "t counts from 1", """
        def adam_step(w, m, v, grad, t, lr, beta1, beta2, eps):
            t = t + 1
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    """),
    ("adaptive", "rmsprop_step", "α weighs the old average", """
        def rmsprop_step(w, sq, grad, lr, alpha, eps):
            sq = (1 - alpha) * sq + alpha * grad**2
            return w - lr * grad / (np.sqrt(sq) + eps), sq
    """),
    ("ensembles", "ensemble_predict", "not the most confident model's", """
        def ensemble_predict(prob_list):
            return np.max(prob_list, axis=0).argmax(axis=1)
    """),
    ("ensembles", "snapshot_times", "rounded up", """
        def snapshot_times(epochs, cycles, steps_per_epoch):
            T = epochs * steps_per_epoch
            L = T // cycles
            return list(range(L, T + 1, L))
    """),
]


def test_there_are_enough_mutants_and_every_task_has_one():
    from minisgd.exercises import TOPIC_NAMES, task_names

    assert len(MUTANTS) >= 25
    covered = {(topic, task) for topic, task, _, _ in MUTANTS}
    assert covered == {(topic, task) for topic in TOPIC_NAMES for task in task_names(topic)}


@pytest.mark.parametrize("topic, task, diagnosis, code", MUTANTS,
                         ids=[f"{topic}.{task}:{diagnosis[:30]}" for topic, task, diagnosis, _ in MUTANTS])
def test_a_known_wrong_solution_fails_with_its_diagnosis(tmp_path, topic, task, diagnosis, code):
    path = tmp_path / f"{topic}.py"
    path.write_text(SOLUTIONS[topic] + "\n" + textwrap.dedent(code))
    import_error, results = grading.grade(topic, path, tasks=[task])
    assert import_error == ""
    (result,) = results
    assert result.status == grading.FAIL, result.line()
    assert diagnosis in result.message, result.message
    assert "\n" not in result.message


def test_an_unknown_mistake_fails_without_a_guessed_hint(tmp_path):
    path = tmp_path / "backprop.py"
    path.write_text(SOLUTIONS["backprop"] + textwrap.dedent("""
        def linear_backward(dout, x, W):
            return 2 * dout @ W, dout.T @ x, dout.sum(axis=0)
    """))
    _, (result,) = grading.grade("backprop", path, tasks=["linear_backward"])
    assert result.status == grading.FAIL
    assert re.fullmatch(r"for x \(4, 3\), W \(5, 3\): dx\[0, 0\] is -?[\d.]+, expected -?[\d.]+", result.message)
