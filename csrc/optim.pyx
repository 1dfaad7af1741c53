# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The optimizer steps, compiled: SGD and Adam over lists of parameters, in place (twin:
tinygrad_vg/kernels/reference/optim.py, same names, signatures, results, errors).
"""
import numpy as np

cimport numpy as cnp
from _arrays cimport NOGIL_MIN, _contiguous, _empty_like, _flat_order, _in_order, _order_of, _plain_type, _same_shape
from libc.math cimport pow, sqrt

from tinygrad_vg.kernels import _checks

cnp.import_array()

cdef extern from "optim_loops.h" nogil:
    void tg_sgd_f(float *p, const float *grad, float *buf, Py_ssize_t n, float lr, float momentum,
                  float damp, float weight_decay, int use_decay, int use_momentum, int nesterov,
                  int first)
    void tg_sgd_d(double *p, const double *grad, double *buf, Py_ssize_t n, double lr, double momentum,
                  double damp, double weight_decay, int use_decay, int use_momentum, int nesterov,
                  int first)
    void tg_adam_f(float *p, const float *grad, float *m, float *v, Py_ssize_t n, float step_size,
                   float beta1, float c1, float beta2, float c2, float bias2, float eps,
                   float weight_decay, int use_decay)
    void tg_adam_d(double *p, const double *grad, double *m, double *v, Py_ssize_t n, double step_size,
                   double beta1, double c1, double beta2, double c2, double bias2, double eps,
                   double weight_decay, int use_decay)

cdef int NPY_FLOAT = cnp.NPY_FLOAT


# One call updates every parameter of a list in place, in one pass each (see the loops
# in optim_loops.h for the equations). All arrays are checked before the first is
# touched, so a bad argument leaves every parameter as it was. A parameter, gradient
# or state array that is not contiguous and aligned is worked on through a contiguous
# copy that is written back.

cdef inline bint _state_ok(object s, cnp.ndarray p, int typenum, int order, bint writeable) noexcept:
    """s is a plain array of p's type and shape, contiguous in p's order (and writeable)"""
    cdef cnp.ndarray a
    if _plain_type(s) != typenum:
        return False
    a = <cnp.ndarray> s
    return (_in_order(a, order) and _same_shape(a, p)
            and (not writeable or cnp.PyArray_ISWRITEABLE(a)))


cdef inline bint _apart(object a, object b) noexcept:
    """contiguous arrays a and b occupy disjoint memory (by their byte ranges)"""
    cdef char *pa = <char *> cnp.PyArray_DATA(<cnp.ndarray> a)
    cdef char *pb = <char *> cnp.PyArray_DATA(<cnp.ndarray> b)
    return (pa + cnp.PyArray_NBYTES(<cnp.ndarray> a) <= pb or pb + cnp.PyArray_NBYTES(<cnp.ndarray> b) <= pa)


cdef inline bint _apart_or_same(object g, object p) noexcept:
    """g is p's memory exactly (same start; both contiguous of one shape and order) or apart from it"""
    return cnp.PyArray_DATA(<cnp.ndarray> g) == cnp.PyArray_DATA(<cnp.ndarray> p) or _apart(g, p)


cdef inline int _param_grad_order(object p, object g) noexcept:
    """p's flat order if p and its gradient g can take the fast path (see _param_order; g a
    plain array of p's type, shape and order, p itself or apart from it), else -1"""
    cdef int order = _param_order(p)
    if order < 0:
        return -1
    cdef cnp.ndarray a = <cnp.ndarray> p
    if not (_state_ok(g, a, cnp.PyArray_TYPE(a), order, False) and _apart_or_same(g, p)):
        return -1
    return order


cdef inline int _param_order(object p) noexcept:
    """p's flat order (0 C, 1 F) if p is a plain writeable contiguous array, else -1"""
    cdef cnp.ndarray a
    if _plain_type(p) < 0:
        return -1
    a = <cnp.ndarray> p
    if not cnp.PyArray_ISWRITEABLE(a):
        return -1
    return _flat_order(a)


cdef tuple _work_copies(list arrays):
    """Contiguous aligned stand-ins for arrays (the first is the parameter, None entries
    stay None), all in the parameter's order; the originals for the write-back."""
    order = _order_of(arrays[0])
    return tuple([None if a is None else _contiguous(a, order) for a in arrays])


cdef void _sgd_loop(int typenum, void *p, void *g, void *buf, Py_ssize_t n, double lr, double momentum,
                    double damp, double weight_decay, bint use_momentum, bint nesterov,
                    bint first) noexcept nogil:
    cdef bint use_decay = weight_decay != 0
    if typenum == NPY_FLOAT:
        tg_sgd_f(<float *> p, <float *> g, <float *> buf, n, <float> lr, <float> momentum, <float> damp,
                 <float> weight_decay, use_decay, use_momentum, nesterov, first)
    else:
        tg_sgd_d(<double *> p, <double *> g, <double *> buf, n, lr, momentum, damp, weight_decay,
                 use_decay, use_momentum, nesterov, first)


cdef void _sgd_one(cnp.ndarray p, cnp.ndarray g, cnp.ndarray buf, bint first, double lr,
                   double momentum, double damp, double weight_decay, bint use_momentum,
                   bint nesterov) noexcept:
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef int typenum = cnp.PyArray_TYPE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *pg = cnp.PyArray_DATA(g)
    cdef void *pbuf = NULL if buf is None else cnp.PyArray_DATA(buf)
    if n >= NOGIL_MIN:
        with nogil:
            _sgd_loop(typenum, pp, pg, pbuf, n, lr, momentum, damp, weight_decay, use_momentum,
                      nesterov, first)
    else:
        _sgd_loop(typenum, pp, pg, pbuf, n, lr, momentum, damp, weight_decay, use_momentum, nesterov,
                  first)


def sgd_step(params, grads, momentum_buffers, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    """SGD (torch.optim.SGD) in place over lists of parameters and their gradients:
    d = grad + weight_decay * p; buf = d (first step) or momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf (nesterov) or buf; p -= lr * d. A None momentum buffer is a
    parameter's first step: the new buffer is stored in the list."""
    cdef double c_lr = lr, c_momentum = momentum, c_decay = weight_decay
    cdef double damp = 1.0 - <double> dampening   # (1 - dampening) in double, as the Python formula
    cdef bint use_momentum = c_momentum != 0, c_nesterov = nesterov, fast = True, first
    cdef Py_ssize_t i, count
    cdef int order, typenum
    cdef cnp.ndarray p, buf
    cdef list bufs = momentum_buffers if use_momentum and type(momentum_buffers) is list else None
    if type(params) is list and type(grads) is list and len(grads) == len(params) and (
            not use_momentum or (bufs is not None and len(bufs) == len(params))):
        for i in range(len(params)):
            order = _param_grad_order(params[i], grads[i])
            if order < 0:
                fast = False
                break
            p = <cnp.ndarray> params[i]
            typenum = cnp.PyArray_TYPE(p)
            if (use_momentum and bufs[i] is not None and not (
                        _state_ok(bufs[i], p, typenum, order, True) and _apart(bufs[i], p)
                        and _apart(bufs[i], grads[i]))):
                fast = False   # the slow path checks again, exactly, and raises what is wrong
                break
    else:
        fast = False
    if not fast:
        params, grads, bufs = _checks.sgd_args(params, grads, momentum_buffers, momentum)
    count = len(params)
    for i in range(count):
        buf = None if not use_momentum else bufs[i]
        first = use_momentum and buf is None
        if fast:
            p = <cnp.ndarray> params[i]
            if first:
                buf = _empty_like(p, _flat_order(p))
                bufs[i] = buf
            _sgd_one(p, <cnp.ndarray> grads[i], buf, first, c_lr, c_momentum, damp, c_decay,
                     use_momentum, c_nesterov)
            continue
        work_p, work_g, work_buf = _work_copies([params[i], grads[i], buf])
        if first:
            work_buf = np.empty_like(work_p)
            bufs[i] = work_buf
        _sgd_one(work_p, work_g, work_buf, first, c_lr, c_momentum, damp, c_decay, use_momentum,
                 c_nesterov)
        if work_p is not params[i]:
            params[i][...] = work_p
        if not first and buf is not None and work_buf is not buf:
            buf[...] = work_buf


cdef void _adam_loop(int typenum, void *p, void *g, void *m, void *v, Py_ssize_t n, double step_size,
                     double beta1, double c1, double beta2, double c2, double bias2, double eps,
                     double weight_decay) noexcept nogil:
    cdef bint use_decay = weight_decay != 0
    if typenum == NPY_FLOAT:
        tg_adam_f(<float *> p, <float *> g, <float *> m, <float *> v, n, <float> step_size, <float> beta1,
                  <float> c1, <float> beta2, <float> c2, <float> bias2, <float> eps, <float> weight_decay,
                  use_decay)
    else:
        tg_adam_d(<double *> p, <double *> g, <double *> m, <double *> v, n, step_size, beta1, c1, beta2,
                  c2, bias2, eps, weight_decay, use_decay)


cdef void _adam_one(cnp.ndarray p, cnp.ndarray g, cnp.ndarray m, cnp.ndarray v, long long t, double lr,
                    double beta1, double beta2, double eps, double weight_decay) noexcept:
    # the scalars as the Python formulas compute them, in double (pow is what Python's ** calls)
    cdef double step_size = lr / (1.0 - pow(beta1, <double> t))
    cdef double bias2 = sqrt(1.0 - pow(beta2, <double> t))
    cdef double c1 = 1.0 - beta1, c2 = 1.0 - beta2
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef int typenum = cnp.PyArray_TYPE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *pg = cnp.PyArray_DATA(g)
    cdef void *pm = cnp.PyArray_DATA(m)
    cdef void *pv = cnp.PyArray_DATA(v)
    if n >= NOGIL_MIN:
        with nogil:
            _adam_loop(typenum, pp, pg, pm, pv, n, step_size, beta1, c1, beta2, c2, bias2, eps,
                       weight_decay)
    else:
        _adam_loop(typenum, pp, pg, pm, pv, n, step_size, beta1, c1, beta2, c2, bias2, eps, weight_decay)


cdef object MAX_STEP = _checks.MAX_STEP


def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay=0.0):
    """Adam (torch.optim.Adam, L2 weight decay) in place over lists of parameters, gradients
    and moments; steps[i] is parameter i's step count t including this step:
    d = grad + weight_decay * p; m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
    cdef double c_lr = lr, c_beta1 = beta1, c_beta2 = beta2, c_eps = eps, c_decay = weight_decay
    cdef bint fast = True
    cdef Py_ssize_t i, count
    cdef int order, typenum
    cdef cnp.ndarray p
    if (type(params) is list and type(grads) is list and type(exp_avgs) is list
            and type(exp_avg_sqs) is list and type(steps) is list and len(grads) == len(params)
            and len(exp_avgs) == len(params) and len(exp_avg_sqs) == len(params)
            and len(steps) == len(params)):
        for i in range(len(params)):
            order = _param_grad_order(params[i], grads[i])
            if order < 0:
                fast = False
                break
            p = <cnp.ndarray> params[i]
            typenum = cnp.PyArray_TYPE(p)
            t = steps[i]
            if (not _state_ok(exp_avgs[i], p, typenum, order, True)
                    or not _state_ok(exp_avg_sqs[i], p, typenum, order, True)
                    or not (_apart(exp_avgs[i], p) and _apart(exp_avgs[i], grads[i])
                            and _apart(exp_avg_sqs[i], p) and _apart(exp_avg_sqs[i], grads[i])
                            and _apart(exp_avgs[i], exp_avg_sqs[i]))
                    or type(t) is not int or t < 1 or t > MAX_STEP):
                fast = False
                break
    else:
        fast = False
    if not fast:
        params, grads, exp_avgs, exp_avg_sqs, steps = _checks.adam_args(
            params, grads, exp_avgs, exp_avg_sqs, steps)
    count = len(params)
    for i in range(count):
        if fast:
            _adam_one(<cnp.ndarray> params[i], <cnp.ndarray> grads[i], <cnp.ndarray> exp_avgs[i],
                      <cnp.ndarray> exp_avg_sqs[i], steps[i], c_lr, c_beta1, c_beta2, c_eps, c_decay)
            continue
        arrays = [params[i], grads[i], exp_avgs[i], exp_avg_sqs[i]]
        work = _work_copies(arrays)
        _adam_one(work[0], work[1], work[2], work[3], steps[i], c_lr, c_beta1, c_beta2, c_eps, c_decay)
        for k in (0, 2, 3):
            if work[k] is not arrays[k]:
                arrays[k][...] = work[k]
