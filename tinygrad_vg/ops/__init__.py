"""The ops: one class per operation, forward and backward side by side.

Modules by family: elementwise (arithmetic and math), activation, reduce, shape,
linalg, loss, conv (convolution, pooling, batch norm over channels). Shape letters used in docstrings: N batch, C classes, D features.
"""
from .activation import Elu, Gelu, LeakyRelu, Relu, Sigmoid, Softplus, Tanh
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv1d, Conv2d, MaxPool2d
from .elementwise import Abs, Add, Cast, Clip, Div, Exp, Log, Mul, Neg, Pow, Sqrt, Sub
from .linalg import Linear, LinearAct, LinearActStack, MatMul
from .loss import CrossEntropy, LogSoftmax, MSELoss, Softmax
from .recurrent import GRUSequence, GRUStep, LSTMSequence, LSTMStep, RNNSequence
from .reduce import LogSumExp, Max, Mean, Min, Sum, Var
from .shape import Concatenate, GetItem, Reshape, Stack, Transpose, Where

__all__ = [
    "Abs", "Add", "Cast", "Clip", "Concatenate", "CrossEntropy", "Div", "Elu", "Exp", "Gelu",
    "GetItem", "GRUSequence", "GRUStep", "LeakyRelu", "Linear", "LinearAct", "LinearActStack",
    "LSTMSequence", "LSTMStep", "Log", "LogSoftmax", "LogSumExp", "MSELoss", "MatMul", "Max",
    "Mean", "Min", "Mul", "Neg", "Pow", "Relu", "Reshape", "RNNSequence", "Sigmoid", "Softmax",
    "Softplus", "Sqrt", "Stack", "Sub", "Sum", "Tanh", "Transpose", "Var", "Where",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d", "MaxPool2d",
]
