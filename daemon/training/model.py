"""The network: a small MLP over standardized features, its fitting, its calibration.

torch is imported inside the functions (the `ml` extra), so importing this module costs
nothing. Everything runs on the CPU, in one thread: a few thousand vectors of a few
hundred values train in seconds, and for matrices this small more threads only wait on
each other (13x slower in bench/bench_train.py on a busy 2-core machine). Fitting is
deterministic for a seed (its own RNG state, forked from the global one, so it neither
disturbs nor depends on other code's use of torch's RNG).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelUnavailable
from .card import Architecture, ModelCard

if TYPE_CHECKING:
    import numpy as np

# A held-out set the model separates perfectly drives the NLL-optimal temperature towards 0
# without end (probabilities of exactly 1): such a fit says nothing, so sharpening stops
# at 4x. Softening stops at 20x.
TEMPERATURE_BOUNDS = (0.25, 20.0)


@dataclass(frozen=True)
class FitSettings:
    epochs: int
    patience: int
    learning_rate: float
    weight_decay: float
    batch_size: int
    seed: int


@dataclass(frozen=True)
class Fitted:
    """A fitted network's weights (with the standardization), and how fitting went."""

    state: dict[str, Any]  # the state_dict: tensors only
    epochs: int  # run
    best_epoch: int  # whose weights were kept (validation loss), 1-based
    class_weights: tuple[float, ...]


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the duration (put back after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_network(arch: Architecture) -> Any:
    """Standardize → [Linear → ReLU → Dropout] per hidden width → Linear (logits).

    The first layer holds the training set's mean and scale as buffers, so they travel
    with the weights in the state_dict."""
    import torch
    from torch import nn

    class Standardize(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(width))
            self.register_buffer("scale", torch.ones(width))

        mean: torch.Tensor  # registered buffers
        scale: torch.Tensor

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x - self.mean) / self.scale

    layers: list[nn.Module] = [Standardize(arch.inputs)]
    width = arch.inputs
    for hidden in arch.hidden:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(arch.dropout)]
        width = hidden
    layers.append(nn.Linear(width, arch.classes))
    return nn.Sequential(*layers)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (k · count): every class weighs the same in the loss, whatever its size."""
    import numpy as np

    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def fit(
    arch: Architecture,
    settings: FitSettings,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    on_epoch: Callable[[int, float | None], None] | None = None,
) -> Fitted:
    """Fit on `train` (features, class indices, sample weights) with AdamW and class
    weights; stop when the validation loss has not improved for `patience` epochs and
    keep the best epoch's weights. Without a validation part, all `epochs` run."""
    import numpy as np
    import torch

    x, y, w = train
    weights = class_weights(y, arch.classes)
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = build_network(arch)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[~(scale > 1e-8)] = 1.0  # constant features: leave them centred, not blown up
        net[0].mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        net[0].scale.copy_(torch.from_numpy(scale.astype(np.float32)))
        tx, ty = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
        tw = torch.from_numpy((w * weights[y]).astype(np.float32))
        cw = torch.from_numpy(weights.astype(np.float32))
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        shuffler = torch.Generator().manual_seed(settings.seed)
        best = (float("inf"), 0, _copy_state(net))
        epoch = 0
        for epoch in range(1, settings.epochs + 1):
            net.train()
            order = torch.randperm(len(tx), generator=shuffler)
            for start in range(0, len(tx), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                losses = torch.nn.functional.cross_entropy(
                    net(tx[batch]), ty[batch], reduction="none"
                )
                loss = (losses * tw[batch]).sum() / tw[batch].sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            val_loss = _validation_loss(net, validation, cw) if validation is not None else None
            if on_epoch is not None:
                on_epoch(epoch, val_loss)
            if val_loss is None:
                continue
            if val_loss < best[0] - 1e-6:
                best = (val_loss, epoch, _copy_state(net))
            elif epoch - best[1] >= settings.patience:
                break
        if validation is None:
            best = (float("nan"), epoch, _copy_state(net))
    return Fitted(best[2], epoch, best[1], tuple(float(v) for v in weights))


def _copy_state(net: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _validation_loss(net: Any, validation: tuple[np.ndarray, np.ndarray], cw: Any) -> float:
    """Class-weighted cross-entropy, the quantity training minimizes, on held-apart data."""
    import numpy as np
    import torch

    x, y = validation
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(x.astype(np.float32)))
        loss = torch.nn.functional.cross_entropy(
            logits, torch.from_numpy(y.astype(np.int64)), weight=cw
        )
    return float(loss)


def network_logits(arch: Architecture, state: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Logits of `x` (n × inputs) by the network with these weights, in eval mode."""
    import numpy as np
    import torch

    net = build_network(arch)
    net.load_state_dict(state)
    net.eval()
    with one_thread(), torch.no_grad():
        return net(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy().astype(np.float64)


class TrainedModel:
    """A stored model, ready to predict: calibrated probabilities per class."""

    def __init__(self, card: ModelCard, state: dict[str, Any]) -> None:
        self.card = card
        self._net = build_network(card.architecture)
        self._net.load_state_dict(state)
        self._net.eval()

    @property
    def version(self) -> str:
        return self.card.version

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """softmax(logits / T) per row of `x` (columns: the card's features, in order)."""
        import numpy as np
        import torch

        with one_thread(), torch.no_grad():
            logits = self._net(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
        return softmax(logits, self.card.temperature)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    import numpy as np

    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimizing the NLL of softmax(logits / T) (LBFGS over log T, so
    T stays positive), within TEMPERATURE_BOUNDS."""
    import math

    import numpy as np
    import torch

    if len(logits) == 0:
        return 1.0
    tl = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    ty = torch.from_numpy(np.asarray(y, dtype=np.int64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(tl / torch.exp(log_t), ty)
        loss.backward()
        return loss

    with one_thread():
        optimizer.step(closure)
    value = math.exp(float(log_t.detach()))
    if not math.isfinite(value):
        return 1.0
    low, high = TEMPERATURE_BOUNDS
    return min(max(value, low), high)


# --------------------------------------------------------------------------- files


def state_to_bytes(state: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_state(path: Path, arch: Architecture) -> dict[str, Any]:
    """The weights at `path`, checked against the architecture. torch.load runs with
    weights_only (a model file is untrusted input: no pickled code runs)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        build_network(arch).load_state_dict(state)
    except FileNotFoundError:
        raise ModelUnavailable(f"model weights {path} are missing: run `genred train`") from None
    except Exception as exc:  # a damaged or foreign file: torch raises many kinds
        raise ModelUnavailable(
            f"model weights {path} cannot be loaded ({type(exc).__name__}: {exc}); "
            "run `genred train` to train a new model"
        ) from None
    return state
