"""Optimizers: the update rules that ``optimizer.step()`` applies, each exactly as PyTorch computes it.

| file | what it holds |
|---|---|
| ``optimizer.py`` | ``Optimizer``: parameter groups, the update counter t, schedules, ``state_dict``; |
| | ``no_decay_groups(model)``: no weight decay on biases and BatchNorm |
| ``sgd.py`` | ``SGD`` (PyTorch's momentum form) and ``HeavyBallSGD`` (the recitation's V ← βV + αg) |
| ``adaptive.py`` | ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``: a step size per weight |
| ``swa_utils.py`` | stochastic weight averaging: ``AveragedModel``, ``update_bn``, ``swa_schedule`` |

Every optimizer takes the parameters (or PyTorch's list of parameter groups)
and a learning rate that is a number or a schedule ``t -> lr``; update t uses
``lr(t)``, the first update ``lr(0)``. Gradient clipping lives beside the
layers, in ``minisgd.nn.utils``, as in PyTorch.
"""

from minisgd.optim import swa_utils
from minisgd.optim.adaptive import Adagrad, Adam, AdamW, RMSprop
from minisgd.optim.optimizer import Optimizer, no_decay_groups
from minisgd.optim.sgd import SGD, HeavyBallSGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "HeavyBallSGD", "Optimizer", "RMSprop", "no_decay_groups", "swa_utils"]
