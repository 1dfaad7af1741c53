"""einsum: numpy's subscripts ("ij,jk->ik", "...ij,...jk", "ii->i", implicit output).

Design: the subscripts are first made explicit (each "..." replaced by letters of its own,
the implicit output written out as numpy defines it), so backward is one rule: the
gradient of operand i is the einsum of grad_out with the other operands, into operand i's
letters. Two cases need more than that rule: a letter only operand i has (summed away in
forward; its derivative is 1, so the gradient is broadcast along it), and a letter
repeated in operand i ("ii": a diagonal; the gradient lands on that diagonal, 0 elsewhere).
"""
from __future__ import annotations

import string

import numpy as np

from ..autograd import Function

__all__ = ["Einsum", "explicit_subscripts"]


def explicit_subscripts(subscripts: str, ndims: list) -> tuple[list, str]:
    """(one letter string per operand, the output's letters): no "...", no implicit output."""
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string like 'ij,jk->ik'; got {type(subscripts).__name__}")
    s = subscripts.replace(" ", "")
    inputs, arrow, out = s.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s); got {len(ndims)}")
    used = {c for c in s if c.isalpha()}
    for c in s:
        if not (c.isalpha() or c in ",.->"):
            raise ValueError(f"einsum: {c!r} in {subscripts!r} is not a letter; accepted: letters, ',', '...', '->'")
    ell = [nd - (len(t) - 3) if "..." in t else 0 for t, nd in zip(terms, ndims)]
    free = "".join(c for c in string.ascii_letters if c not in used)[:max(ell, default=0)]
    terms = [t.replace("...", free[len(free) - k:] if k else "") for t, k in zip(terms, ell)]
    for t, nd, orig in zip(terms, ndims, inputs.split(",")):
        if "." in t or len(t) != nd or min(ell) < 0:
            raise ValueError(f"einsum: subscripts {orig!r} do not fit an operand with {nd} dimension(s)")
    if arrow:
        out = out.replace("...", free)
        if "." in out or len(set(out)) != len(out) or not set(out) <= set("".join(terms)):
            raise ValueError(f"einsum: output {out!r} of {subscripts!r} must name distinct letters of the inputs")
    else:   # numpy's implicit output: the broadcast axes, then the letters used once, sorted
        joined = "".join(terms)
        out = free + "".join(sorted(c for c in set(joined) - set(free) if joined.count(c) == 1))
    return terms, out


class Einsum(Function):
    """y = einsum(subscripts, x_1, ..., x_k) (numpy's rules);
    grad_x_i = einsum(grad_out and the other operands -> x_i's subscripts), broadcast along
    letters only x_i has, and placed on the diagonal for a letter x_i repeats"""
    saves = ()   # the operands themselves are kept in `operands` (a tuple)

    def forward(self, *operands, subscripts):
        if not operands:
            raise ValueError("einsum: needs at least one operand")
        self.terms, self.out = explicit_subscripts(subscripts, [a.ndim for a in operands])
        spec = ",".join(self.terms) + "->" + self.out
        try:
            y = np.einsum(spec, *operands, optimize=len(operands) > 2)
        except ValueError as e:
            raise ValueError(f"einsum {subscripts!r} on shapes {[a.shape for a in operands]}: {e}") from None
        self.operands = operands if self.recorded else ()
        return np.asarray(y)

    def arrays_to_lock(self):
        return self.operands

    def backward(self, grad_out):
        return tuple(self._grad(i, grad_out) if needs else None for i, needs in enumerate(self.needs_grad))

    def _grad(self, i: int, grad_out: np.ndarray) -> np.ndarray:
        term, x = self.terms[i], self.operands[i]
        others = [t for j, t in enumerate(self.terms) if j != i]
        arrays = [a for j, a in enumerate(self.operands) if j != i]
        available = set(self.out).union(*others)
        unique = "".join(dict.fromkeys(term))
        target = "".join(c for c in unique if c in available)
        g = np.einsum(",".join([self.out, *others]) + "->" + target, grad_out, *arrays,
                      optimize=len(arrays) > 1)
        size = {c: n for c, n in zip(term, x.shape)}
        missing = [k for k, c in enumerate(unique) if c not in available]
        if missing:   # summed only in this operand: every element moved y with weight 1
            g = np.expand_dims(g, missing)
            g = np.broadcast_to(g, [size[c] if k in missing else g.shape[k] for k, c in enumerate(unique)])
        if len(unique) == len(term):
            return g
        grad = np.zeros(x.shape, dtype=g.dtype)   # a repeated letter: the gradient lives on its diagonal
        index = tuple(np.arange(n).reshape([-1 if k == unique.index(c) else 1 for k in range(len(unique))])
                      for c, n in zip(term, x.shape))
        grad[index] = g
        return grad
