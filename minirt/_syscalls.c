/*
 * minirt._syscalls: mount(2), umount2(2), pivot_root(2) and statfs(2), which Python's os module lacks,
 * every signal's disposition back to SIG_DFL before execve (default_signals), attaching an
 * already compiled seccomp BPF program (seccomp_set_filter: no libseccomp needed for that), and
 * for user namespaces a fork-like clone3(2) and the new mount API (open_tree, mount_setattr,
 * move_mount).
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
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <time.h>
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

/* A detached thread that keeps writing "0" to a cgroup.procs file (the writer moves itself
 * into the cgroup it is already in) every 2 ms until told to stop, so the kernel's grace-period
 * wait in such a write is paid once, in this thread, while the interpreter goes on, and stays
 * paid until the container's init has been moved: see minirt/cgroups/__init__.py
 * warm_up_attach. A Python thread would need the GIL between its steps, which the importing
 * main thread holds. */
static char self_move_path[4096];

/* The thread calls no malloc/free: a thread that never allocates has no glibc arena or tcache
 * and takes no malloc lock, even at its exit; clone_fork below (no fork handlers) may then fork
 * while it runs without the child inheriting a held malloc lock. Hence a static buffer, and at
 * most one such thread at a time: a warm-up asked for while one is in flight is a no-op (the
 * window that one holds open serves both). */
static int self_move_busy, self_move_stop;

/* rcu_sync (kernel/rcu/sync.c) lets a writer skip the grace period while the previous writer's
 * exit is less than one grace period ago (GP_EXIT/GP_REPLAY): 2 ms is well inside the 5-35 ms
 * grace periods measured here. 100 rounds (~0.2 s plus the first wait) bound the thread when
 * nobody stops it (an error path): it only ever rewrites where this process already is. */
static void *self_move_thread(void *arg) {
    const struct timespec gap = {0, 2 * 1000 * 1000};
    int fd = open((char *)arg, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        for (int i = 0; i < 100 && !__atomic_load_n(&self_move_stop, __ATOMIC_ACQUIRE); i++) {
            if (write(fd, "0", 1) < 0)
                break; /* only an optimisation */
            nanosleep(&gap, NULL);
        }
        close(fd);
    }
    __atomic_store_n(&self_move_busy, 0, __ATOMIC_RELEASE);
    return NULL;
}

/* The container's init has been moved: let the warm-up thread end at its next round. */
static PyObject *sys_self_move_stop(PyObject *self, PyObject *unused) {
    __atomic_store_n(&self_move_stop, 1, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

static PyObject *sys_self_move_async(PyObject *self, PyObject *args) {
    const char *path;
    pthread_t thread;
    pthread_attr_t attr;
    if (!PyArg_ParseTuple(args, "s", &path))
        return NULL;
    if (__atomic_load_n(&self_move_busy, __ATOMIC_ACQUIRE) || strlen(path) >= sizeof self_move_path)
        Py_RETURN_NONE; /* one in flight; an over-long path only loses the optimisation */
    strcpy(self_move_path, path);
    __atomic_store_n(&self_move_stop, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&self_move_busy, 1, __ATOMIC_RELEASE);
    /* The thread starts with every signal blocked (it inherits this thread's mask): a signal
     * sent to the process must reach the main thread, which may be waiting for it in
     * sigtimedwait (process/signals.py: SIGCHLD of a child exec'd while the thread runs). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, self_move_thread, self_move_path) != 0)
        __atomic_store_n(&self_move_busy, 0, __ATOMIC_RELEASE);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
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


/* ---- user namespaces ------------------------------------------------------------------------ */

/* linux/sched.h's struct clone_args (CLONE_ARGS_SIZE_VER0..2); spelt out here because
 * linux/sched.h and glibc's sched.h disagree on some macros across versions. */
struct minirt_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};

/* clone_fork(flags) -> (pid, pidfd) in the parent, (0, -1) in the child.
 *
 * os.fork() with namespace flags: the child is created directly in new namespaces, which
 * unshare(2) cannot do for CLONE_NEWUSER|CLONE_NEWPID at once (unshare(CLONE_NEWPID) only
 * affects the caller's children, and a pid namespace is owned by the user namespace its
 * creator was in at that moment). runc's nsexec clones with CLONE_NEWUSER|CLONE_NEWPID for the
 * same reason: then the pid namespace is owned by the new user namespace, which lets the child
 * mount /proc in it (proc_fill_super checks the pidns owner, fs/proc/root.c).
 *
 * clone3 with stack = 0 and no CLONE_VM behaves as fork(2): the child continues on a copy of
 * our stack. The PyOS_*Fork calls are what os.fork() does around fork(2) (import lock, the
 * GIL, the threading module's state). glibc's fork() handlers (malloc arena locks, the cached
 * tid) are not run: minirt forks from its single Python thread, the child never starts a
 * thread, and the only C thread minirt may run (self_move_async) never touches malloc. */
static PyObject *sys_clone_fork(PyObject *self, PyObject *args) {
    unsigned long long flags;
    int pidfd = -1, cgroup_fd = -1;
    struct minirt_clone_args ca;
    size_t size = 64; /* CLONE_ARGS_SIZE_VER0 */
    long pid;
    if (!PyArg_ParseTuple(args, "K|i", &flags, &cgroup_fd))
        return NULL;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags | CLONE_PIDFD;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    if (cgroup_fd >= 0) {
        /* CLONE_INTO_CGROUP (Linux 5.7): the child is born in this cgroup2 directory, with no
         * write to cgroup.procs, so without the global cgroup_threadgroup_rwsem's grace-period
         * wait (cgroups/__init__.py) */
        ca.flags |= 0x200000000ULL; /* CLONE_INTO_CGROUP */
        ca.cgroup = (uint64_t)cgroup_fd;
        size = 88; /* CLONE_ARGS_SIZE_VER2 */
    }
    PyOS_BeforeFork();
    pid = syscall(SYS_clone3, &ca, size);
    if (pid == 0) {
        PyOS_AfterFork_Child();
        return Py_BuildValue("(ii)", 0, -1);
    }
    int saved = errno;
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* CLONE_PIDFD's fd is close-on-exec already (clone(2)) */
    return Py_BuildValue("(li)", pid, pidfd);
}

/* open_tree(dirfd=AT_FDCWD, path, flags) -> fd. OPEN_TREE_CLONE gives a detached copy of the
 * mount at path (a bind mount not attached anywhere yet), close-on-exec. */
static PyObject *sys_open_tree(PyObject *self, PyObject *args) {
    const char *path;
    unsigned int flags;
    int fd;
    if (!PyArg_ParseTuple(args, "sI", &path, &flags))
        return NULL;
    fd = syscall(SYS_open_tree, AT_FDCWD, path, flags | O_CLOEXEC);
    if (fd < 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    return PyLong_FromLong(fd);
}

/* mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr_set, userns_fd): with
 * MOUNT_ATTR_IDMAP and a user namespace fd, the detached mount fd becomes an idmapped mount:
 * file owners are shown through that namespace's maps (mount_setattr(2)). */
static PyObject *sys_mount_setattr(PyObject *self, PyObject *args) {
    int fd, userns_fd = -1;
    unsigned long long attr_set;
    unsigned int flags = 0;
    struct mount_attr attr;
    if (!PyArg_ParseTuple(args, "iK|iI", &fd, &attr_set, &userns_fd, &flags))
        return NULL;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = attr_set;
    attr.userns_fd = userns_fd < 0 ? 0 : (uint64_t)userns_fd;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | flags, &attr, sizeof attr) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH): attach a detached mount. */
static PyObject *sys_move_mount(PyObject *self, PyObject *args) {
    int fd;
    const char *target;
    if (!PyArg_ParseTuple(args, "is", &fd, &target))
        return NULL;
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

/* ---- seccomp ------------------------------------------------------------------------------- */

/* seccomp(SECCOMP_SET_MODE_FILTER, 0, prog) with a classic BPF program (struct sock_filter[],
 * as libseccomp's seccomp_export_bpf writes it). The caller has set no_new_privs first: without
 * CAP_SYS_ADMIN the kernel refuses a filter otherwise (seccomp(2), EACCES). No prctl fallback:
 * seccomp(2) is in every kernel minirt runs on (3.17+). */
static PyObject *sys_seccomp_set_filter(PyObject *self, PyObject *args) {
    Py_buffer prog;
    struct sock_fprog fprog;
    unsigned int flags = 0; /* SECCOMP_FILTER_FLAG_*: minirt-oci passes an OCI profile's `flags` */
    long rc;
    if (!PyArg_ParseTuple(args, "y*|I", &prog, &flags))
        return NULL;
    if (prog.len == 0 || prog.len % sizeof(struct sock_filter) != 0
        || prog.len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        PyBuffer_Release(&prog);
        return PyErr_Format(PyExc_ValueError, "seccomp program of %zd bytes: not 1..%d instructions of 8 bytes",
                            prog.len, BPF_MAXINSNS);
    }
    fprog.len = (unsigned short)(prog.len / sizeof(struct sock_filter));
    fprog.filter = (struct sock_filter *)prog.buf;
    rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    PyBuffer_Release(&prog);
    if (rc != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* ---- capabilities (minirt-oci) -------------------------------------------------------------- */

/* capset(2) with version 3 (64-bit sets): the OCI process's effective, permitted and
 * inheritable sets at once, as runc's ApplyCaps does (python-prctl only lowers a set). */
static PyObject *sys_capset(PyObject *self, PyObject *args) {
    unsigned long long eff, perm, inh;
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    if (!PyArg_ParseTuple(args, "KKK", &eff, &perm, &inh))
        return NULL;
    memset(&hdr, 0, sizeof hdr);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    data[0].effective = (uint32_t)eff;
    data[1].effective = (uint32_t)(eff >> 32);
    data[0].permitted = (uint32_t)perm;
    data[1].permitted = (uint32_t)(perm >> 32);
    data[0].inheritable = (uint32_t)inh;
    data[1].inheritable = (uint32_t)(inh >> 32);
    if (syscall(SYS_capset, &hdr, data) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* prctl(option, a2, a3, a4, a5) -> int: the options python-prctl does not know (PR_CAP_AMBIENT,
 * PR_SET_KEEPCAPS with the exact arguments runc uses). */
static PyObject *sys_prctl(PyObject *self, PyObject *args) {
    int option, rc;
    unsigned long a2 = 0, a3 = 0, a4 = 0, a5 = 0;
    if (!PyArg_ParseTuple(args, "i|kkkk", &option, &a2, &a3, &a4, &a5))
        return NULL;
    rc = prctl(option, a2, a3, a4, a5);
    if (rc < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(rc);
}

/* SHA-256 (FIPS 180-4) of a buffer, as 64 hex digits: the key of the seccomp program cache
 * (minirt/seccomp/__init__.py). hashlib's _sha2 is a separate extension whose load costs
 * ~0.7 ms here on the start-up path; this module is loaded anyway. Written from the standard's
 * pseudo-code and checked against hashlib in tests/unit/test_seccomp_cache.py. */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, hh;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static PyObject *sys_sha256_hex(PyObject *self, PyObject *args) {
    Py_buffer buf;
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char tail[128] = {0};
    char hex[65];
    const unsigned char *p;
    Py_ssize_t n, full, rest, tail_len;
    uint64_t bits;
    if (!PyArg_ParseTuple(args, "y*", &buf))
        return NULL;
    p = buf.buf;
    n = buf.len;
    full = n / 64 * 64;
    for (Py_ssize_t off = 0; off < full; off += 64)
        sha256_block(h, p + off);
    /* padding: 0x80, zeros, the length in bits as a big-endian 64-bit number */
    rest = n - full;
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    PyBuffer_Release(&buf);
    for (Py_ssize_t off = 0; off < tail_len; off += 64)
        sha256_block(h, tail + off);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
    return PyUnicode_FromStringAndSize(hex, 64);
}

static PyMethodDef methods[] = {
    {"default_signals", sys_default_signals, METH_NOARGS, "default_signals(): every signal to SIG_DFL"},
    {"mount", sys_mount, METH_VARARGS, "mount(source, target, fstype=None, flags=0, data=None)"},
    {"umount2", sys_umount2, METH_VARARGS, "umount2(target, flags=0)"},
    {"self_move_async", sys_self_move_async, METH_VARARGS, "self_move_async(cgroup_procs_path)"},
    {"self_move_stop", sys_self_move_stop, METH_NOARGS, "self_move_stop()"},
    {"statfs_type", sys_statfs_type, METH_VARARGS, "statfs_type(path): statfs(2) f_type"},
    {"clone_fork", sys_clone_fork, METH_VARARGS,
     "clone_fork(flags[, cgroup_fd]) -> (pid, pidfd); (0, -1) in the child"},
    {"open_tree", sys_open_tree, METH_VARARGS, "open_tree(path, flags) -> fd"},
    {"mount_setattr", sys_mount_setattr, METH_VARARGS, "mount_setattr(fd, attr_set, userns_fd=-1, flags=0)"},
    {"move_mount", sys_move_mount, METH_VARARGS, "move_mount(fd, target)"},
    {"pivot_root", sys_pivot_root, METH_VARARGS, "pivot_root(new_root, put_old)"},
    {"sha256_hex", sys_sha256_hex, METH_VARARGS, "sha256_hex(data) -> 64 hex digits"},
    {"seccomp_set_filter", sys_seccomp_set_filter, METH_VARARGS,
     "seccomp_set_filter(bpf, flags=0): attach a BPF program"},
    {"capset", sys_capset, METH_VARARGS, "capset(effective, permitted, inheritable): 64-bit masks"},
    {"prctl", sys_prctl, METH_VARARGS, "prctl(option, a2=0, a3=0, a4=0, a5=0) -> int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "minirt._syscalls", NULL, -1, methods};

PyMODINIT_FUNC PyInit__syscalls(void) { return PyModule_Create(&module); }
