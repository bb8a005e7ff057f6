/*
 * minirt._seccomp: the few libseccomp calls that compile a seccomp profile into a BPF program.
 *
 * Runs in: the minirt parent, only when the compiled program is not in the cache
 * (minirt/seccomp/__init__.py); the container never loads libseccomp. Attaching the program
 * is one seccomp(2) call in minirt/_syscalls.c, which does not link libseccomp at all.
 *
 * Why a C extension (docs/security.md, "Seccomp"): Debian's python3-seccomp is built for
 * Python 3.11 only, PyPI's pyseccomp is a thin ctypes wrapper (ctypes alone costs ~4 ms to
 * import) that sees little upkeep, and minirt already builds a C extension. libseccomp 2.5.4
 * has no seccomp_export_bpf_mem (2.6), so the program is exported into a memfd and read back.
 *
 * Errors raise OSError(errno) with the step in the message, like the os module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    scmp_filter_ctx ctx;
} FilterObject;

/* libseccomp returns -errno: raise OSError(errno, "<step>: <strerror>") */
static PyObject *raise_rc(int rc, const char *what) {
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", -rc, what);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_OSError, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static int Filter_init(FilterObject *self, PyObject *args, PyObject *kwds) {
    unsigned int default_action;
    if (!PyArg_ParseTuple(args, "I", &default_action))
        return -1;
    if (self->ctx != NULL)
        seccomp_release(self->ctx);
    self->ctx = seccomp_init(default_action);
    if (self->ctx == NULL) {
        PyErr_Format(PyExc_OSError, "seccomp_init(0x%x): invalid default action", default_action);
        return -1;
    }
    return 0;
}

static void Filter_dealloc(FilterObject *self) {
    if (self->ctx != NULL)
        seccomp_release(self->ctx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* add_arch(token): the filter also matches syscalls of that ABI; the native one is already
 * there after seccomp_init (-EEXIST is success). */
static PyObject *Filter_add_arch(FilterObject *self, PyObject *args) {
    unsigned int token;
    int rc;
    if (!PyArg_ParseTuple(args, "I", &token))
        return NULL;
    rc = seccomp_arch_add(self->ctx, token);
    if (rc != 0 && rc != -EEXIST)
        return raise_rc(rc, "seccomp_arch_add");
    Py_RETURN_NONE;
}

/* set_attr(attr, value): seccomp_attr_set, e.g. SCMP_FLTATR_CTL_OPTIMIZE (8) = 2 for the
 * binary-tree layout (minirt/seccomp/compile.py says why). */
static PyObject *Filter_set_attr(FilterObject *self, PyObject *args) {
    unsigned int attr, value;
    int rc;
    if (!PyArg_ParseTuple(args, "II", &attr, &value))
        return NULL;
    rc = seccomp_attr_set(self->ctx, (enum scmp_filter_attr)attr, value);
    if (rc != 0)
        return raise_rc(rc, "seccomp_attr_set");
    Py_RETURN_NONE;
}

/* add_rule(action, syscall, conditions): conditions is a sequence of (arg, op, datum_a,
 * datum_b), all of which must hold (libseccomp ANDs the comparisons of one rule). */
static PyObject *Filter_add_rule(FilterObject *self, PyObject *args) {
    unsigned int action;
    int syscall_nr, rc;
    PyObject *conds, *seq;
    struct scmp_arg_cmp cmp[6];
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "IiO", &action, &syscall_nr, &conds))
        return NULL;
    seq = PySequence_Fast(conds, "conditions must be a sequence");
    if (seq == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > 6) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "at most 6 argument comparisons per rule, got %zd", n);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned int arg, op;
        unsigned long long a, b;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "IIKK", &arg, &op, &a, &b)) {
            Py_DECREF(seq);
            return NULL;
        }
        cmp[i].arg = arg;
        cmp[i].op = (enum scmp_compare)op;
        cmp[i].datum_a = a;
        cmp[i].datum_b = b;
    }
    Py_DECREF(seq);
    rc = seccomp_rule_add_array(self->ctx, action, syscall_nr, (unsigned int)n, cmp);
    if (rc != 0)
        return raise_rc(rc, "seccomp_rule_add");
    Py_RETURN_NONE;
}

/* export_bpf() -> bytes: the classic BPF program, struct sock_filter[] as the kernel takes it. */
static PyObject *Filter_export_bpf(FilterObject *self, PyObject *unused) {
    int fd, rc;
    off_t size;
    PyObject *out;
    fd = memfd_create("minirt-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    rc = seccomp_export_bpf(self->ctx, fd);
    if (rc != 0) {
        close(fd);
        return raise_rc(rc, "seccomp_export_bpf");
    }
    size = lseek(fd, 0, SEEK_END);
    if (size < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        close(fd);
        return NULL;
    }
    for (off_t done = 0; done < size;) {
        ssize_t r = read(fd, PyBytes_AS_STRING(out) + done, size - done);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            Py_DECREF(out);
            close(fd);
            return r < 0 ? PyErr_SetFromErrno(PyExc_OSError)
                         : PyErr_Format(PyExc_OSError, "seccomp_export_bpf: short read");
        }
        done += r;
    }
    close(fd);
    return out;
}

static PyMethodDef Filter_methods[] = {
    {"add_arch", (PyCFunction)Filter_add_arch, METH_VARARGS, "add_arch(token)"},
    {"set_attr", (PyCFunction)Filter_set_attr, METH_VARARGS, "set_attr(attr, value)"},
    {"add_rule", (PyCFunction)Filter_add_rule, METH_VARARGS, "add_rule(action, syscall, [(arg, op, a, b), ...])"},
    {"export_bpf", (PyCFunction)Filter_export_bpf, METH_NOARGS, "export_bpf() -> bytes"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FilterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "minirt._seccomp.Filter",
    .tp_basicsize = sizeof(FilterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Filter(default_action): a libseccomp filter context",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Filter_init,
    .tp_dealloc = (destructor)Filter_dealloc,
    .tp_methods = Filter_methods,
};

/* resolve_syscall(name) -> int or None: the native number (negative for a name libseccomp maps
 * only on other ABIs, which rule_add still takes), None when this libseccomp does not know it. */
static PyObject *mod_resolve_syscall(PyObject *self, PyObject *args) {
    const char *name;
    int nr;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        Py_RETURN_NONE;
    return PyLong_FromLong(nr);
}

/* resolve_arch(name) -> int: the audit token of "x86_64", "x86", "x32", ...; 0 if unknown. */
static PyObject *mod_resolve_arch(PyObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    return PyLong_FromUnsignedLong(seccomp_arch_resolve_name(name));
}

static PyObject *mod_version(PyObject *self, PyObject *unused) {
    const struct scmp_version *v = seccomp_version();
    return PyUnicode_FromFormat("%u.%u.%u", v->major, v->minor, v->micro);
}

static PyMethodDef methods[] = {
    {"resolve_syscall", mod_resolve_syscall, METH_VARARGS, "resolve_syscall(name) -> int | None"},
    {"resolve_arch", mod_resolve_arch, METH_VARARGS, "resolve_arch(name) -> audit arch token (0: unknown)"},
    {"version", mod_version, METH_NOARGS, "version() -> the loaded libseccomp's 'major.minor.micro'"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "minirt._seccomp", NULL, -1, methods};

PyMODINIT_FUNC PyInit__seccomp(void) {
    PyObject *m;
    if (PyType_Ready(&FilterType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FilterType);
    if (PyModule_AddObject(m, "Filter", (PyObject *)&FilterType) < 0) {
        Py_DECREF(&FilterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
