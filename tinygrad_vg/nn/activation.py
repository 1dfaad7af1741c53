"""Activation modules, one per activation the engine has, and the name table that
deep_mlp and the lab use (`make_activation("tanh")`)."""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["Identity", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "ELU", "Softplus", "GELU",
           "ACTIVATIONS", "make_activation"]


class Identity(Module):
    """y = x (the "linear" activation of a deep linear net)."""
    def forward(self, x: Any) -> Any:
        return x


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)


class GELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


ACTIVATIONS = {"linear": Identity, "identity": Identity, "tanh": Tanh, "sigmoid": Sigmoid,
               "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "softplus": Softplus, "gelu": GELU}


def make_activation(name: str) -> Module:
    """The activation module for a name in ACTIVATIONS."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; accepted: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
