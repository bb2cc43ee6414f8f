"""Solution files for the exercises, written with minisgd's own functions (the library is the answer key).

``SOLUTIONS[topic]`` is the text of a file a student could hand in: every
function computes its answer with minisgd (optimizers loaded with the given
state and stepped once, schedules, autograd through ``nn.functional``,
``ensemble.cycle_ends``, ``lr_range_test`` replaying the given losses).
"""

HEADER = '''import numpy as np

import minisgd
from minisgd import Tensor, ensemble, lr_finder, ops, optim, schedules
from minisgd.nn import Module, Parameter
from minisgd.nn import functional as F


def _one_update(optimizer, w, grad, state):
    """Load ``state`` (names as in state_dict) into ``optimizer`` of parameter ``p`` and take one step."""
    p = optimizer.params[0]
    optimizer.load_state_dict(state)
    p.grad = np.array(grad, dtype=np.float64)
    optimizer.step()
    return p.data


def _param(w):
    return Tensor(np.array(w, dtype=np.float64), requires_grad=True)


def _grads(forward, dout, *inputs):
    tensors = [_param(x) for x in inputs]
    out = forward(*tensors)
    (out * Tensor(np.asarray(dout, dtype=np.float64))).sum().backward()
    return [t.grad for t in tensors]
'''

SOLUTIONS = {
    "sgd": HEADER + '''

def gd_step(w, grad, lr):
    p = _param(w)
    return _one_update(optim.SGD([p], lr=lr), w, grad, {"t": np.array(0)})


def minibatch_gradient(X, y, w, idx):
    weights = _param(w)
    residual = Tensor(X[idx]) @ weights - Tensor(y[idx])
    ((residual * residual).sum() / (2 * len(idx))).backward()
    return weights.grad
''',
    "momentum": HEADER + '''

def heavy_ball_step(w, v, grad, lr, beta):
    p = _param(w)
    opt = optim.HeavyBallSGD([p], lr=lr, momentum=beta)
    return _one_update(opt, w, grad, {"t": np.array(0), "buffer.0": v}), opt.state[0]["buffer"]


def pytorch_momentum_step(w, buf, grad, lr, momentum):
    p = _param(w)
    opt = optim.SGD([p], lr=lr, momentum=momentum)
    return _one_update(opt, w, grad, {"t": np.array(0), "buffer.0": buf}), opt.state[0]["buffer"]


def nesterov_step(w, buf, grad, lr, momentum):
    p = _param(w)
    opt = optim.SGD([p], lr=lr, momentum=momentum, nesterov=True)
    return _one_update(opt, w, grad, {"t": np.array(0), "buffer.0": buf}), opt.state[0]["buffer"]
''',
    "schedules": HEADER + '''

def step_decay(t, lr0, step_size, gamma):
    return schedules.step(lr0, step_size, gamma)(t)


def cosine(t, lr0, T):
    return schedules.cosine(lr0, T)(t)


def linear(t, lr0, T):
    return schedules.linear(lr0, T)(t)


def sgdr(t, lr0, t0, t_mult):
    return schedules.sgdr(lr0, t0, t_mult)(t)


def warmup_cosine(t, lr0, warmup, T):
    return schedules.warmup(schedules.cosine(lr0, T), warmup)(t)
''',
    "backprop": HEADER + '''

def softmax_cross_entropy(logits, y):
    z = _param(logits)
    loss = F.cross_entropy(z, y)
    loss.backward()
    return float(loss.data), z.grad


def linear_backward(dout, x, W):
    return tuple(_grads(F.linear, dout, x, W, np.zeros(W.shape[0])))


def sum_to_shape(grad, shape):
    return ops.unbroadcast(grad, tuple(shape))
''',
    "cnn": HEADER + '''

def conv2d_forward(x, w, b, stride, padding):
    return F.conv2d(Tensor(x), Tensor(w), Tensor(b), stride, padding).data


def conv2d_backward(dout, x, w, stride, padding):
    return tuple(_grads(lambda x, w, b: F.conv2d(x, w, b, stride, padding), dout, x, w, np.zeros(w.shape[0])))


def max_pool2d_backward(dout, x, k, stride):
    return _grads(lambda x: F.max_pool2d(x, k, stride), dout, x)[0]


def batchnorm_backward(dout, x, gamma, eps):
    forward = lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=eps)  # noqa: E731
    return tuple(_grads(forward, dout, x, gamma, np.zeros(len(gamma))))
''',
    "adaptive": HEADER + '''

def adam_step(w, m, v, grad, t, lr, beta1, beta2, eps):
    p = _param(w)
    opt = optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    state = {"t": np.array(t - 1), "step.0": np.array(t - 1), "exp_avg.0": m, "exp_avg_sq.0": v}
    w = _one_update(opt, w, grad, state)
    return w, opt.state[0]["exp_avg"], opt.state[0]["exp_avg_sq"]


def rmsprop_step(w, sq, grad, lr, alpha, eps):
    p = _param(w)
    opt = optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps)
    return _one_update(opt, w, grad, {"t": np.array(0), "square_avg.0": sq}), opt.state[0]["square_avg"]
''',
    "ensembles": HEADER + '''

def snapshot_times(epochs, cycles, steps_per_epoch):
    total = epochs * steps_per_epoch
    return ensemble.cycle_ends(schedules.snapshot(0.1, total, cycles), total)


class _Table(Module):
    """A "model" whose output is a fixed table of log-probabilities: softmax(log p) = p."""

    def __init__(self, shape):
        super().__init__()
        self.log_p = Parameter(np.zeros(shape))

    def forward(self, x):
        return self.log_p * 1.0


def ensemble_predict(prob_list):
    model = _Table(prob_list[0].shape)
    snapshots = [{"log_p": np.log(np.maximum(p, 1e-300))} for p in prob_list]
    return ensemble.SnapshotEnsemble(model, snapshots).predict(np.zeros((len(prob_list[0]), 1)))


class _Replay(Module):
    """A one-weight "model" whose loss at update i is the i-th given loss (for lr_range_test)."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.zeros(1))

    def forward(self, x):
        return (self.w * 0.0).sum()


def lr_range_suggestion(lrs, losses):
    model = _Replay()
    replay = iter(losses)
    loss_fn = lambda out, y: out + float(next(replay))  # noqa: E731
    batches = [(np.zeros(1), np.zeros(1))] * len(losses)
    result = lr_finder.lr_range_test(model, optim.SGD(model.parameters(), lr=0.1), batches, start_lr=lrs[0],
                                     end_lr=lrs[0] * 2, steps=len(losses), loss_fn=loss_fn,
                                     diverge_factor=1e300)
    best = int(np.flatnonzero(result.lrs == result.min_loss_lr)[0])
    return lrs[best] / lr_finder.SUGGESTION_DIVISOR
''',
}
