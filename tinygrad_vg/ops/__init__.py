"""The ops: one class per operation, forward and backward side by side.

Modules by family: elementwise (arithmetic), math (trigonometry, erf, logs, sign,
maximum/minimum), activation, reduce, shape, index (gather, sort, arg-ops, one_hot),
einsum, linalg, loss, conv (convolution, pooling, batch norm over channels). Shape letters used
in docstrings: N batch, C classes, D features.
"""
from .activation import (
    Dropout, Elu, Gelu, Hardtanh, LeakyRelu, Mish, Relu, Selu, Sigmoid, Silu, Softplus, Tanh,
)
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv1d, Conv2d, MaxPool2d
from .einsum import Einsum
from .elementwise import Abs, Add, Cast, Clip, Div, Exp, Log, Mul, Neg, Pow, Sqrt, Sub
from .index import ArgMax, ArgMin, ArgSort, OneHot, Sort, TakeAlongAxis
from .linalg import Linear, LinearAct, LinearActStack, MatMul
from .loss import (
    BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, LogSoftmax, MSELoss, NllLoss, Softmax,
)
from .math import Cos, Erf, Expm1, Log1p, Log2, Log10, Maximum, Minimum, Sign, Sin, Tan
from .recurrent import GRUSequence, GRUStep, LSTMSequence, LSTMStep, RNNSequence
from .reduce import Cumsum, LogSumExp, Max, Mean, Min, Prod, Std, Sum, Var
from .shape import (
    BroadcastTo, Concatenate, ExpandDims, Flip, GetItem, Pad, Repeat, Reshape, Roll, Squeeze, Stack,
    Tile, Transpose, Tril, Triu, Where,
)

__all__ = [
    "Abs", "Add", "ArgMax", "ArgMin", "ArgSort", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits",
    "BroadcastTo", "Cast", "Clip", "Concatenate", "Cos", "CrossEntropy", "Cumsum", "Div",
    "Dropout", "Einsum", "Elu", "Erf", "Exp", "ExpandDims", "Expm1", "Flip", "Gelu", "GetItem",
    "GRUSequence", "GRUStep", "Hardtanh", "LeakyRelu", "Linear", "LinearAct", "LinearActStack",
    "LSTMSequence", "LSTMStep", "Log", "Log10", "Log1p", "Log2", "LogSoftmax", "LogSumExp", "MSELoss",
    "MatMul", "Max", "Maximum", "Mean", "Min", "Minimum", "Mish", "Mul", "Neg", "NllLoss", "OneHot",
    "Pad", "Pow", "Prod", "Relu", "Repeat", "Reshape", "Roll", "RNNSequence", "Selu", "Sigmoid", "Sign",
    "Silu", "Sin", "Softmax", "Softplus", "Sort", "Sqrt", "Squeeze", "Stack", "Std", "Sub", "Sum", "Tan",
    "Tanh", "TakeAlongAxis", "Tile", "Transpose", "Tril", "Triu", "Var", "Where",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d", "MaxPool2d",
]
