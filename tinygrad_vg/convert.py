"""Turning what a user passes into arrays and tensors the engine accepts, with errors that
say what is accepted."""
from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Function

__all__ = ["check_array", "as_tensors"]


def check_array(data: Any, dtype: Any) -> np.ndarray:
    array = np.asarray(data, dtype=dtype)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"Tensor holds float, integer or bool arrays; got dtype {array.dtype} "
                        f"(from {type(data).__name__}). Accepted float dtypes: float32, float64")
    if array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        raise TypeError(f"Tensor float dtype must be float32 or float64, got {array.dtype}")
    return array


def as_tensors(values: tuple, op_name: str) -> tuple:
    """Tensors pass through; arrays and numbers become constants. A Python number takes the
    float dtype of the tensors it meets, so `float32_tensor * 2.0` stays float32 (PyTorch)."""
    Tensor = Function.tensor_type
    for v in values:
        if not isinstance(v, Tensor):
            break
    else:   # all tensors (Parameters too): nothing to convert
        return values
    float_dtype = next((v._data.dtype for v in values if isinstance(v, Tensor) and v._data.dtype.kind == "f"), None)
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, (bool, int, float, np.number, np.bool_)):
            if float_dtype is not None and not isinstance(v, (bool, np.bool_)):
                out.append(Tensor._from_op(np.asarray(v, dtype=float_dtype)))
            else:
                out.append(Tensor(np.asarray(v)))
        elif isinstance(v, (np.ndarray, list, tuple)):
            out.append(Tensor(v))
        else:
            raise TypeError(f"{op_name} got an input of type {type(v).__name__}; accepted: "
                            "Tensor, numpy array, Python int/float")
    return tuple(out)
