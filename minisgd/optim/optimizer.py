"""What every optimizer shares: parameter groups, the update counter t, schedules and saved state.

An optimizer holds its parameters in *groups*, as PyTorch does. Each group is
a dict: ``"params"`` (the tensors) and the options that apply to them
(``"lr"``, ``"weight_decay"``, …). Passing plain tensors makes one group with
the optimizer's arguments; passing a list of dicts makes one group per dict,
where options missing from a dict come from the arguments::

    SGD([{"params": weights}, {"params": biases, "weight_decay": 0.0}],
        lr=0.1, momentum=0.9, weight_decay=5e-4)   # biases: no decay, the rest as given

:class:`Optimizer` writes the loop once: at update t (t = 0 for the first),
for every group it evaluates the options that may be schedules (``lr``, and
SGD's ``momentum``) at t, then hands every parameter that has a gradient to
the subclass's ``update``, which applies one rule in a few lines. Each
parameter keeps its own state (momentum buffer, running averages, …) in a
dict; ``state_dict`` flattens those into ``"{name}.{i}"`` arrays, with i the
parameter's position counting through all groups (PyTorch's numbering).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from minisgd import checks
from minisgd.backend import get_array_module, to_numpy
from minisgd.tensor import Tensor, mark_modified


class Optimizer:
    """Base class: subclasses set ``scheduled`` and ``state_names`` and define ``check`` and ``update``.

    Attributes:
        param_groups: list of dicts, ``{"params": [tensors], option: value, …}``.
        t: the number of updates done; update t uses ``lr(t)``.
        state: one dict per parameter (in group order) holding that parameter's
            arrays, and ``"step"``, its own update count, where the rule needs one.

    Subclasses define:
        scheduled: the options that may be a schedule (a callable t -> value).
        state_names: the keys a parameter's state may hold (for ``load_state_dict``).
        check(where, group): validate one group's options, storing the checked values.
        update(param, grad, state, **options): apply the rule to one parameter in place.
    """

    scheduled: tuple[str, ...] = ("lr",)
    state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], **defaults: Any) -> None:
        name = type(self).__name__
        self.param_groups = make_param_groups(name, params, defaults)
        for k, group in enumerate(self.param_groups):
            self.check(f"{name} param_groups[{k}]" if len(self.param_groups) > 1 else name, group)
        self.t = 0  # updates done so far: the next update uses lr(t)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def check(self, where: str, group: dict[str, Any]) -> None:
        raise NotImplementedError

    def update(self, param: Any, grad: Any, state: dict[str, Any], **options: Any) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------- the update
    @property
    def params(self) -> list[Any]:
        """Every parameter, group after group (the order of the state's index i)."""
        return [param for group in self.param_groups for param in group["params"]]

    def step(self) -> None:
        """Apply update t to every parameter that has a gradient, then count it (t ← t + 1).

        Each update writes a weight in place, so it bumps the weight's version
        counter, as in PyTorch: a graph recorded before the step that saved the
        weight (a forward pass whose backward has not run yet) then raises in
        ``backward()`` instead of giving the gradient at the new weights.
        """
        options_now = [self.options_at_t(group) for group in self.param_groups]  # all checked before any change
        i = 0
        for group, options in zip(self.param_groups, options_now):
            for param in group["params"]:
                if param.grad is not None:
                    self.update(param, param.grad, self.state[i], **options)
                    mark_modified(param, f"{type(self).__name__}.step()", None)
                i += 1
        self.t += 1

    def options_at_t(self, group: dict[str, Any]) -> dict[str, Any]:
        """The group's options for update t, with each schedule replaced by its value at t."""
        options = {key: value for key, value in group.items() if key != "params"}
        for key in self.scheduled:
            if callable(options[key]):
                options[key] = self._value_at(options[key], key)
        return options

    def _value_at(self, schedule: Callable[[int], float], name: str) -> float:
        returned = schedule(self.t)
        try:
            value = float(returned)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value) or value < 0:
            what = "learning rate" if name == "lr" else name
            raise ValueError(
                f"{type(self).__name__}: the {what} schedule returned {returned!r} at step "
                f"t={self.t}; {name} must be a finite number >= 0"
            )
        return value

    @property
    def lr(self) -> float:
        """α for the next update, lr(t), of the first group (the one to log)."""
        return self.options_at_t(self.param_groups[0])["lr"]

    @property
    def lr_schedule(self) -> Any:
        """The ``lr`` argument (a number or a schedule), when every group shares it."""
        rates = {id(group["lr"]) for group in self.param_groups}
        if len(rates) > 1:
            raise ValueError(
                f"{type(self).__name__}: the parameter groups have different lr; "
                f"read or set param_groups[i]['lr'] for each group"
            )
        return self.param_groups[0]["lr"]

    @lr_schedule.setter
    def lr_schedule(self, lr: Any) -> None:
        """Give every group the rate ``lr`` (a number or a schedule)."""
        lr = checks.schedule_or_number(type(self).__name__, "lr", lr)
        for group in self.param_groups:
            group["lr"] = lr

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``, PyTorch's default)."""
        for param in self.params:
            param.grad = None

    # ------------------------------------------------------- saving and loading
    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's changing state as NumPy arrays, ready for an ``.npz`` file.

        ``"t"`` is the number of updates done; ``"{name}.{i}"`` is the state
        array ``name`` (e.g. ``"buffer"``, ``"exp_avg"``, ``"step"``) of the
        i-th parameter, for those that have one. Schedules are pure functions
        of t, so t restores them; the options themselves are arguments, not state.
        """
        state = {"t": np.array(self.t, dtype=np.int64)}
        for i, own in enumerate(self.state):
            for name, value in own.items():
                state[f"{name}.{i}"] = np.array(to_numpy(value), copy=True)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, so training continues exactly where it stopped.

        ``{"t": 0}`` alone gives a fresh optimizer (no buffers, no averages).
        """
        name = type(self).__name__
        params = self.params
        expected = {"t"} | {f"{key}.{i}" for key in self.state_names for i in range(len(params))}
        unknown = sorted(set(state) - expected)
        if "t" not in state or unknown:
            keys = "".join(f", '{key}.0' … '{key}.{len(params) - 1}'" for key in self.state_names)
            raise ValueError(f"{name}.load_state_dict: expected keys 't'{keys}; got {sorted(state)}")
        loaded: list[dict[str, Any]] = [{} for _ in params]
        for key, value in state.items():
            if key == "t":
                continue
            state_name, index = key.rsplit(".", 1)
            i, param = int(index), params[int(index)]
            saved = np.asarray(to_numpy(value))
            if state_name == "step":  # a count, not an array like the parameter
                loaded[i]["step"] = checks.integer(f"{name}.load_state_dict", key, saved.item(), low=0)
                continue
            if tuple(saved.shape) != tuple(param.data.shape):
                raise ValueError(
                    f"{name}.load_state_dict: {key} has shape {tuple(saved.shape)} but "
                    f"parameter {i} has shape {tuple(param.data.shape)}"
                )
            xp = get_array_module(param.data)
            loaded[i][state_name] = xp.array(saved, dtype=param.data.dtype)  # a copy on the parameter's device
        self.t = checks.integer(f"{name}.load_state_dict", "t", np.asarray(state["t"]).item(), low=0)
        self.state = loaded

    def __repr__(self) -> str:
        groups = []
        for group in self.param_groups:
            options = ", ".join(f"{key}={value!r}" for key, value in group.items() if key != "params")
            groups.append(f"{len(group['params'])} parameters, {options}")
        inside = groups[0] if len(groups) == 1 else "[" + "; ".join(f"{{{g}}}" for g in groups) + "]"
        return f"{type(self).__name__}({inside}, t={self.t})"


def make_param_groups(where: str, params: Iterable[Any], defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """PyTorch's two forms of ``params`` as a list of groups, each with every option filled in.

    ``params`` is an iterable of tensors (one group) or of dicts, each with
    ``"params"`` (a tensor or an iterable of tensors) and any options that
    override ``defaults``. Anything else — an option the optimizer does not
    have, a dict without ``"params"``, tensors and dicts mixed, a parameter in
    two groups, no parameters at all — is a ValueError that says which.
    """
    if isinstance(params, (Tensor, dict)):
        checks.fail(where, "params", "an iterable of tensors or a list of dicts (parameter groups)",
                    type(params).__name__)
    entries = list(params)
    if not entries:
        raise ValueError(f"{where}: params is empty; give it the tensors to train")
    if all(isinstance(entry, dict) for entry in entries):
        raw_groups = entries
    elif any(isinstance(entry, dict) for entry in entries):
        raise ValueError(f"{where}: params mixes tensors and dicts; give a list of tensors or a list of dicts")
    else:
        raw_groups = [{"params": entries}]

    groups, seen = [], set()
    for k, raw in enumerate(raw_groups):
        if "params" not in raw:
            raise ValueError(f"{where}: param_groups[{k}] has no 'params' key; got keys {sorted(raw)}")
        unknown = sorted(set(raw) - {"params"} - set(defaults))
        if unknown:
            raise ValueError(
                f"{where}: param_groups[{k}] has unknown options {unknown}; "
                f"allowed: 'params', {', '.join(repr(key) for key in defaults)}"
            )
        tensors = [raw["params"]] if isinstance(raw["params"], Tensor) else list(raw["params"])
        for tensor in tensors:
            if not isinstance(tensor, Tensor):
                raise ValueError(
                    f"{where}: param_groups[{k}]['params'] must hold tensors; got a {type(tensor).__name__}"
                )
            if id(tensor) in seen:
                raise ValueError(f"{where}: a parameter appears in more than one group (or twice in one)")
            seen.add(id(tensor))
        groups.append({**defaults, **{key: value for key, value in raw.items() if key != "params"},
                       "params": tensors})
    if not seen:
        raise ValueError(f"{where}: params is empty; give it the tensors to train")
    return groups


def with_weight_decay(grad: Any, param: Any, weight_decay: float) -> Any:
    """Coupled weight decay (the L2 penalty ½λ‖W‖² in the loss): g + λ W, a new array (``.grad`` stays as it was)."""
    return grad + weight_decay * param.data if weight_decay != 0 else grad


def state_array(state: dict[str, Any], name: str, param: Any, fill: float = 0.0) -> Any:
    """``state[name]``; on first use an array shaped like the parameter, filled with ``fill``, on its device."""
    if name not in state:
        state[name] = get_array_module(param.data).full_like(param.data, fill)
    return state[name]


def no_decay_groups(model: Any) -> list[dict[str, Any]]:
    """Two parameter groups: weights with the optimizer's weight decay, and biases and BatchNorm's γ, β without.

    A common recipe (Goyal et al. 2017; timm's ``no_weight_decay``): decay pulls
    weights towards 0, which regularises multiplications, but a bias or a
    normalisation scale has no such role, and shrinking γ only rescales the
    layer's output. Use as ``SGD(no_decay_groups(model), lr=…, weight_decay=5e-4)``.
    A parameter belongs to the second group if its name ends in ``bias`` or it
    belongs to a layer with running statistics (BatchNorm). Empty groups are left out.
    """
    normalisation = {
        id(param)
        for module in model.modules()
        if "running_mean" in module._buffers
        for param in module._parameters.values()
    }
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or id(param) in normalisation else decay).append(param)
    groups = [{"params": decay}] if decay else []
    return groups + ([{"params": no_decay, "weight_decay": 0.0}] if no_decay else [])
