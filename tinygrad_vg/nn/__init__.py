"""The layer zoo: Module and friends, layers with torch.nn's names, deep nets, initializers."""
from . import init, utils
from .. import functional
from .activation import ACTIVATIONS, ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh, make_activation
from .dropout import Dropout, Flatten
from .activation import Maxout, MaxoutPool, maxout
from .deep import KINDS, DeepMLP, DenseBlock, HighwayBlock, PlainBlock, ResidualBlock, deep_mlp
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv1d, Conv2d, MaxPool2d
from .convnet import CONV_KINDS, SHORTCUTS, BasicBlock, ConvNet, Shortcut, conv_net, resnet_depths
from .linear import BatchNorm1d, LayerNorm, Linear
from .module import Module, ModuleList, Parameter, Sequential
from .narx import NARX, NARXCell
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "init", "functional", "ACTIVATIONS", "ELU", "GELU", "Identity", "LeakyReLU", "ReLU", "Sigmoid",
    "Softplus", "Tanh", "make_activation", "KINDS", "DeepMLP", "HighwayBlock", "PlainBlock",
    "ResidualBlock", "deep_mlp", "BatchNorm1d", "LayerNorm", "Linear", "Module", "ModuleList",
    "Parameter", "Sequential", "RNNCell", "GRUCell", "LSTMCell", "RNN", "GRU", "LSTM", "Dropout", "Flatten",
    # issue 18: the seeds' other architectures
    "utils", "Maxout", "MaxoutPool", "maxout", "DenseBlock", "NARX", "NARXCell",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Conv1d", "Conv2d", "MaxPool2d",
    "CONV_KINDS", "SHORTCUTS", "BasicBlock", "ConvNet", "Shortcut", "conv_net", "resnet_depths",
]
