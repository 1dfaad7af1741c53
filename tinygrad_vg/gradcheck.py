"""Check backward against central finite differences.

    >>> import numpy as np, tinygrad_vg as tg
    >>> x = tg.Tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True, name="x")
    >>> tg.gradcheck(lambda t: t.tanh() * 3.0, [x])
    True

Design:
- The numeric derivative along a direction d is the central difference
  (f(x + eps d) - f(x - eps d)) / (2 eps), whose error is O(eps^2). With eps = 1e-6
  this needs float64: float32 keeps about 7 digits, so f(x + eps d) - f(x - eps d)
  would be mostly rounding noise.
- A non-scalar output is reduced with a random upstream gradient v: the check
  compares v^T J (what one backward computes) with v . (column of J) per element.
  An all-ones v would hide bugs that permute or mis-sum the gradient.
- fast=True is the random-projection check of HIPS autograd: for each checked
  input a random unit direction u; compare v . (J u), from two evaluations of fn,
  with (J^T v) . u, from backward. One number per input instead of one per element,
  so it scales to big layers and whole unrolled sequences.
- fn receives fresh tensors holding copies of the inputs, so the caller's tensors
  (their data and .grad) are never touched. The .grad of other leaves fn uses
  (weights in a closure) is saved before backward and restored after.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .autograd import tape
from .grad_mode import enable_grad, no_grad
from .tensor import Tensor

__all__ = ["gradcheck", "jacobians", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences; the message says where."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """True if backward through fn(*inputs) agrees with central differences.

    Checked inputs are tensors with requires_grad=True and numpy float arrays (or
    numpy float scalars); they must be float64. Anything else (tensors without
    requires_grad, integer arrays, Python numbers) is passed to fn unchanged as a
    constant. fn returns one float64 Tensor of any shape. An element passes when
    |analytic - numeric| <= atol + rtol * |numeric|. On failure raises GradcheckError
    naming the input, the worst element and both values (or returns False when
    raise_exception=False). Runs under grad mode even inside no_grad. fast=True
    compares one random projection per input instead of every element.
    """
    args, checked = _prepare(inputs)
    rng = np.random.default_rng(seed)
    out_shape = _evaluate(fn, args).shape
    # a scalar output needs no projection; otherwise a random v (an all-ones v hides bugs)
    v = np.ones(out_shape) if math.prod(out_shape) == 1 else rng.standard_normal(out_shape)
    grads = _vjps(fn, args, checked, [v])[0]

    worst, errors = None, []   # worst failing element: (|difference|, input position, element, analytic, numeric)
    for k, i in enumerate(checked):
        x = args[i].data
        if fast:
            u = rng.standard_normal(x.shape)
            u /= np.linalg.norm(u) or 1.0
            numeric = np.asarray(np.vdot(v, _directional(fn, args, i, u, eps)))
            analytic = np.asarray(np.vdot(grads[k], u))
        else:
            numeric = np.array([np.vdot(v, col) for col in _columns(fn, args, i, eps)]).reshape(x.shape)
            analytic = grads[k]
        error = np.nan_to_num(np.abs(analytic - numeric), nan=np.inf)
        errors.append(error.max(initial=0.0))
        failing = ~(error <= atol + rtol * np.abs(numeric))   # a NaN fails too
        if failing.any():
            j = int(np.argmax(np.where(failing, error, -1.0)))
            if worst is None or error.flat[j] > worst[0]:
                element = None if fast else tuple(int(n) for n in np.unravel_index(j, x.shape))
                worst = (error.flat[j], i, element, analytic.flat[j], numeric.flat[j])
    if worst is None:
        return True
    if not raise_exception:
        return False
    raise GradcheckError(_message(worst, args, max(errors), fast, atol, rtol, eps, seed))


def jacobians(fn: Callable[..., Tensor], inputs: Sequence[Any],
              eps: float = 1e-6) -> list[tuple[np.ndarray, np.ndarray]]:
    """(numeric, analytic) Jacobians of fn, one pair per checked input (as in gradcheck).

    Each is a 2-D array of shape (output.size, input.size): entry [r, c] is
    d output.flat[r] / d input.flat[c]. Numeric columns come from central
    differences, analytic rows from backward with one-hot upstream gradients.
    """
    args, checked = _prepare(inputs)
    out_shape = _evaluate(fn, args).shape
    out_size = math.prod(out_shape)
    one_hots = np.eye(out_size).reshape(out_size, *out_shape)
    rows = _vjps(fn, args, checked, list(one_hots))   # rows[r][k] = d out.flat[r] / d input k
    pairs = []
    for k, i in enumerate(checked):
        in_size = args[i].data.size
        numeric = np.zeros((out_size, in_size))
        for c, col in enumerate(_columns(fn, args, i, eps)):
            numeric[:, c] = col.ravel()
        analytic = np.array([row[k].ravel() for row in rows]).reshape(out_size, in_size)
        pairs.append((numeric, analytic))
    return pairs


# so `tg.gradcheck.jacobians` works once the package exports the function as `tg.gradcheck`
gradcheck.jacobians = jacobians            # type: ignore[attr-defined]
gradcheck.GradcheckError = GradcheckError  # type: ignore[attr-defined]


# ----- helpers ---------------------------------------------------------------------------
def _prepare(inputs: Sequence[Any]) -> tuple[list, list[int]]:
    """The arguments fn will get (checked ones as constant float64 copies) and the checked positions."""
    if isinstance(inputs, (Tensor, np.ndarray)):   # one input given bare; don't iterate its rows
        inputs = [inputs]
    args, checked = [], []
    for i, value in enumerate(inputs):
        if isinstance(value, (np.ndarray, np.floating)) and np.asarray(value).dtype.kind == "f":
            value = Tensor(value, requires_grad=True)   # numpy floats are checked; Python floats are not
        if isinstance(value, Tensor) and value.requires_grad:
            if value.dtype != np.float64:
                raise TypeError(
                    f"gradcheck needs float64 inputs, but {_label(i, value)} is {value.dtype}: central "
                    f"differences divide by 2*eps, and float32's ~7 significant digits turn that into "
                    f"rounding noise. Use a float64 tensor, e.g. tg.Tensor(x.numpy().astype(np.float64), "
                    f"requires_grad=True) (or wrap a float32 constant in a Tensor without requires_grad)")
            value = Tensor(value.data.copy(), name=value.name)
            checked.append(i)
        args.append(value)
    if not checked:
        raise ValueError("gradcheck: no input to check; pass float64 tensors with "
                         "requires_grad=True (or float64 numpy arrays)")
    return args, checked


def _evaluate(fn: Callable[..., Tensor], args: list) -> Tensor:
    """fn(*args) with no tape (numeric evaluations need only the values)."""
    with no_grad():
        return _check_output(fn(*args))


def _check_output(out: Any) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return one Tensor, got {type(out).__name__} "
                        "(for several outputs, check each, or return their weighted sum)")
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned a {out.dtype} tensor; keep the whole "
                        "computation in float64 so the finite differences are accurate")
    return out


def _directional(fn: Callable[..., Tensor], args: list, i: int, direction: np.ndarray,
                 eps: float) -> np.ndarray:
    """(f(x + eps d) - f(x - eps d)) / (2 eps), x = args[i]: the derivative of fn along d."""
    x = args[i].data
    plus, minus = list(args), list(args)
    plus[i] = Tensor(x + eps * direction, name=args[i].name)
    minus[i] = Tensor(x - eps * direction, name=args[i].name)
    return (_evaluate(fn, plus).data - _evaluate(fn, minus).data) / (2 * eps)


def _columns(fn: Callable[..., Tensor], args: list, i: int, eps: float) -> Iterator[np.ndarray]:
    """The columns of the numeric Jacobian of fn w.r.t. args[i], one element at a time."""
    x = args[i].data
    for c in range(x.size):
        one_hot = np.zeros(x.size)
        one_hot[c] = 1.0
        yield _directional(fn, args, i, one_hot.reshape(x.shape), eps)


def _vjps(fn: Callable[..., Tensor], args: list, checked: list[int],
          upstreams: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Analytic v^T J for each upstream v: one recorded forward, one backward per v.

    Returns, per v, the gradient of each checked input (zeros where backward gives none).
    """
    args = list(args)
    for i in checked:
        args[i] = Tensor(args[i].data, requires_grad=True, name=args[i].name)
    leaves = [args[i] for i in checked]
    zeros = [np.zeros_like(t.data) for t in leaves]
    with enable_grad():
        out = _check_output(fn(*args))
    if not out.requires_grad:   # fn uses none of the checked inputs
        return [zeros for _ in upstreams]
    # leaves fn closes over (e.g. weights): their .grad is restored afterwards
    others = {id(t): t for node in tape(out) for t in node.inputs
              if t.node is None and t.requires_grad and all(t is not leaf for leaf in leaves)}
    saved = {key: t.grad for key, t in others.items()}
    results = []
    try:
        for v in upstreams:
            for t in leaves:
                t.grad = None
            out.backward(v, retain_graph=True)
            results.append([z if t.grad is None else t.grad for t, z in zip(leaves, zeros)])
    finally:
        for key, t in others.items():
            t.grad = saved[key]
    return results


def _label(i: int, t: Any) -> str:
    name = getattr(t, "name", None)
    return f"input {i}" + (f" ({name!r})" if name else "")


def _message(worst: tuple, args: list, max_error: float, fast: bool, atol: float, rtol: float,
             eps: float, seed: int) -> str:
    _, i, element, analytic, numeric = worst
    tolerance = atol + rtol * abs(numeric)
    where = _label(i, args[i]) + f" of shape {args[i].data.shape}"
    if fast:
        return (f"gradcheck (fast, random projection) failed for {where}: (J^T v).u from backward "
                f"= {analytic:.10g}, v.(J u) from central differences = {numeric:.10g}; |difference| "
                f"{abs(analytic - numeric):.3g} > atol + rtol*|numeric| = {tolerance:.3g}. Max abs "
                f"error over all inputs: {max_error:.3g} (eps={eps}, seed={seed}). "
                f"Run with fast=False to find the element.")
    return (f"gradcheck failed for {where}, element {element}: backward gives {analytic:.10g}, "
            f"central differences give {numeric:.10g}; |difference| {abs(analytic - numeric):.3g} > "
            f"atol + rtol*|numeric| = {tolerance:.3g}. Max abs error over all checked inputs: "
            f"{max_error:.3g}. (Compared v^T J with a random upstream gradient v, eps={eps}, seed={seed}.)")
