/*
 * minirt._syscalls: mount(2), umount2(2), pivot_root(2) and statfs(2), which Python's os module lacks,
 * every signal's disposition back to SIG_DFL before execve (default_signals), and attaching an
 * already compiled seccomp BPF program (seccomp_set_filter: no libseccomp needed for that).
 *
 * Runs in: the container init before execve. ctypes would do the same but costs ~4 ms to
 * import on our machines, about a tenth of the start-up budget; this module imports in
 * ~0.1 ms. Errors raise OSError(errno, strerror, path) exactly like the os module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

static PyObject *sys_mount(PyObject *self, PyObject *args) {
    const char *source, *target, *fstype = NULL, *data = NULL;
    unsigned long flags = 0;
    int rc;
    if (!PyArg_ParseTuple(args, "ss|zkz", &source, &target, &fstype, &flags, &data))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = mount(source, target, fstype, flags, data);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

static PyObject *sys_umount2(PyObject *self, PyObject *args) {
    const char *target;
    int flags = 0, rc;
    if (!PyArg_ParseTuple(args, "s|i", &target, &flags))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = umount2(target, flags);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

static PyObject *sys_pivot_root(PyObject *self, PyObject *args) {
    const char *new_root, *put_old;
    if (!PyArg_ParseTuple(args, "ss", &new_root, &put_old))
        return NULL;
    /* glibc has no wrapper; SYS_pivot_root is per-architecture, the header knows it. */
    if (syscall(SYS_pivot_root, new_root, put_old) != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, new_root);
    Py_RETURN_NONE;
}

/* statfs(2)'s f_type: which filesystem is mounted at a path (runc detects the cgroup mode by
 * it: CGROUP2_SUPER_MAGIC at /sys/fs/cgroup or /sys/fs/cgroup/unified). os.statvfs lacks it. */
static PyObject *sys_statfs_type(PyObject *self, PyObject *args) {
    const char *path;
    struct statfs st;
    if (!PyArg_ParseTuple(args, "s", &path))
        return NULL;
    if (statfs(path, &st) != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    return PyLong_FromUnsignedLong((unsigned long)st.f_type);
}

/* A detached thread that writes "0" to a cgroup.procs file (the writer moves itself into the
 * cgroup it is already in) and exits, so the kernel's grace-period wait in that write overlaps
 * whatever the interpreter does meanwhile: see minirt/cgroups/__init__.py warm_up_attach. A
 * Python thread would need the GIL between its steps, which the importing main thread holds. */
static void *self_move_thread(void *arg) {
    int fd = open((char *)arg, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "0", 1) < 0) { /* only an optimisation */ }
        close(fd);
    }
    free(arg);
    return NULL;
}

static PyObject *sys_self_move_async(PyObject *self, PyObject *args) {
    const char *path;
    pthread_t thread;
    pthread_attr_t attr;
    char *copy;
    if (!PyArg_ParseTuple(args, "s", &path))
        return NULL;
    copy = strdup(path);
    if (copy == NULL)
        return PyErr_NoMemory();
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, self_move_thread, copy) != 0)
        free(copy);
    pthread_attr_destroy(&attr);
    Py_RETURN_NONE;
}

/* rt_sigaction(2) straight to the kernel for signals 1..64: glibc's sigaction refuses the two
 * real-time signals it reserves (32, 33), yet an ignored one survives execve like any other.
 * An all-zero kernel sigaction is SIG_DFL, no flags, empty mask, whatever the architecture's
 * field order. */
static PyObject *sys_default_signals(PyObject *self, PyObject *unused) {
    unsigned long act[8] = {0};
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        syscall(SYS_rt_sigaction, sig, act, NULL, 8);
    }
    Py_RETURN_NONE;
}

/* seccomp(SECCOMP_SET_MODE_FILTER, 0, prog) with a classic BPF program (struct sock_filter[],
 * as libseccomp's seccomp_export_bpf writes it). The caller has set no_new_privs first: without
 * CAP_SYS_ADMIN the kernel refuses a filter otherwise (seccomp(2), EACCES). No prctl fallback:
 * seccomp(2) is in every kernel minirt runs on (3.17+). */
static PyObject *sys_seccomp_set_filter(PyObject *self, PyObject *args) {
    Py_buffer prog;
    struct sock_fprog fprog;
    long rc;
    if (!PyArg_ParseTuple(args, "y*", &prog))
        return NULL;
    if (prog.len == 0 || prog.len % sizeof(struct sock_filter) != 0
        || prog.len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        PyBuffer_Release(&prog);
        return PyErr_Format(PyExc_ValueError, "seccomp program of %zd bytes: not 1..%d instructions of 8 bytes",
                            prog.len, BPF_MAXINSNS);
    }
    fprog.len = (unsigned short)(prog.len / sizeof(struct sock_filter));
    fprog.filter = (struct sock_filter *)prog.buf;
    rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
    PyBuffer_Release(&prog);
    if (rc != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"default_signals", sys_default_signals, METH_NOARGS, "default_signals(): every signal to SIG_DFL"},
    {"mount", sys_mount, METH_VARARGS, "mount(source, target, fstype=None, flags=0, data=None)"},
    {"umount2", sys_umount2, METH_VARARGS, "umount2(target, flags=0)"},
    {"self_move_async", sys_self_move_async, METH_VARARGS, "self_move_async(cgroup_procs_path)"},
    {"statfs_type", sys_statfs_type, METH_VARARGS, "statfs_type(path): statfs(2) f_type"},
    {"pivot_root", sys_pivot_root, METH_VARARGS, "pivot_root(new_root, put_old)"},
    {"seccomp_set_filter", sys_seccomp_set_filter, METH_VARARGS, "seccomp_set_filter(bpf): attach a BPF program"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "minirt._syscalls", NULL, -1, methods};

PyMODINIT_FUNC PyInit__syscalls(void) { return PyModule_Create(&module); }
