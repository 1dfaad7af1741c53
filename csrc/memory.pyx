# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Memory locking, compiled: the flag flips and lock counts of tinygrad_vg/locking.py
(twin: tinygrad_vg/kernels/reference/memory.py, same names, signatures, results).

They run once per recorded node and once per release, so their cost is per-op overhead:
numpy's flags.writeable setter costs about a microsecond, the C flag flip nanoseconds.
Atomic under the GIL: nothing here calls back into Python code that could switch threads.
"""
cimport numpy as cnp

cnp.import_array()


def lock_arrays(arrays, who, dict held):
    """Make each array, and each array it is a view of, read-only, counting the locks in
    `held` (id -> entry [array, count, who, views waiting for it]); arrays read-only already
    and not in `held` are left alone. Returns the entries this call counted, bases first."""
    cdef list chain = [], locked = []
    cdef Py_ssize_t i
    cdef cnp.ndarray arr
    cdef cnp.PyObject *base
    cdef object entry, key
    for a in arrays:
        if not cnp.PyArray_Check(a):
            continue
        arr = <cnp.ndarray> a
        while True:   # the array, then what it is a view of (LockedArray views too)
            chain.append(arr)
            base = <cnp.PyObject *> cnp.PyArray_BASE(arr)
            if base == NULL or not cnp.PyArray_Check(<object> base):
                break
            arr = <cnp.ndarray> base
    for i in range(len(chain) - 1, -1, -1):
        arr = <cnp.ndarray> chain[i]
        key = <Py_ssize_t> <void *> arr
        entry = held.get(key)
        if entry is not None:
            (<list> entry)[1] += 1
        elif cnp.PyArray_ISWRITEABLE(arr):
            cnp.PyArray_CLEARFLAGS(arr, cnp.NPY_ARRAY_WRITEABLE)
            entry = [arr, 1, who, None]
            held[key] = entry
        else:
            continue
        locked.append(entry)
    return locked


def release_arrays(list entries, dict held):
    """Undo lock_arrays (given what it returned): count each lock down; at zero the array is
    writeable again, or, if an array it is a view of is still locked, once that one is
    released (numpy makes a view writeable only while what it views is)."""
    cdef list entry
    for e in entries:
        entry = <list> e
        entry[1] -= 1
        if not entry[1]:
            del held[<Py_ssize_t> <void *> entry[0]]
            _reopen(entry[0], entry[3], held)


cdef void _reopen(object a, object waiting, dict held) except *:
    """a writeable again, then the views that waited for it; or a waits for a locked base."""
    cdef object base = a.base
    cdef object entry
    while cnp.PyArray_Check(base):
        entry = held.get(<Py_ssize_t> <void *> base)
        if entry is not None:
            if entry[3] is None:
                entry[3] = []
            entry[3].append(a)
            return
        if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> base):
            return   # read-only, and not by us: a stays read-only too
        base = base.base
    cnp.PyArray_ENABLEFLAGS(<cnp.ndarray> a, cnp.NPY_ARRAY_WRITEABLE)
    if waiting is not None:
        for view in waiting:
            _reopen(view, None, held)
