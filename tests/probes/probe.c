/*
 * probe: make one system call inside a container and print how it went, for the seccomp tests
 * (tests/integration/test_seccomp.py) and the escape corpus. Output: one line, "OK" or the
 * errno's name (EPERM, ENOSYS, ...); exit status 0 either way, 2 for a usage error.
 *
 * Every probe is harmless if the call succeeds: keys go to a new session keyring that dies
 * with the process, bpf() only asks for a tiny array map, perf_event_open counts our own task,
 * sockets are closed at once, the clock is set to the value it has, reboot gets a wrong magic
 * number (EINVAL when allowed), a module is loaded from /dev/null (an empty image: ENOEXEC),
 * the personality is put back, ptrace targets a process that is not ours to trace, a tmpfs is
 * mounted in the container's own mount namespace and unmounted at once, a sysctl gets back the
 * value just read from it (kernel.domainname is per UTS namespace besides), a block device node
 * is only ever opened read-only and at most 16 bytes are read, files are only read, and the
 * clock probe passes no time at all (settimeofday(NULL, NULL) makes the capability check and
 * changes nothing).
 *
 * Built static (glibc's libc.a, libc6-dev) by `make probes`, so it runs in the busybox rootfs
 * bind-mounted with -v. Raw syscall(2) throughout: the libc wrappers of clone3 and friends
 * differ between versions, and the raw call is what a seccomp filter sees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERRNAME(e) case e: return #e
static const char *errname(int e) {
    switch (e) {
        ERRNAME(EPERM); ERRNAME(ENOENT); ERRNAME(ESRCH); ERRNAME(EINTR); ERRNAME(EIO); ERRNAME(E2BIG);
        ERRNAME(ENOEXEC); ERRNAME(EBADF); ERRNAME(ECHILD); ERRNAME(EAGAIN); ERRNAME(ENOMEM); ERRNAME(EACCES);
        ERRNAME(EFAULT); ERRNAME(EBUSY); ERRNAME(EEXIST); ERRNAME(ENODEV); ERRNAME(EINVAL); ERRNAME(ENFILE);
        ERRNAME(EMFILE); ERRNAME(ENOSPC); ERRNAME(EROFS); ERRNAME(ENOSYS); ERRNAME(EOPNOTSUPP);
        ERRNAME(EAFNOSUPPORT); ERRNAME(EPROTONOSUPPORT); ERRNAME(ESOCKTNOSUPPORT); ERRNAME(EDQUOT);
        ERRNAME(ENOKEY); ERRNAME(EKEYREJECTED); ERRNAME(EUSERS); ERRNAME(ENXIO); ERRNAME(ENOTTY);
    }
    static char buf[32];
    snprintf(buf, sizeof buf, "errno %d", e);
    return buf;
}

static int report(long rc) {
    puts(rc < 0 ? errname(errno) : "OK");
    return 0;
}

static long probe_socket(int argc, char **argv) {
    int family = argc > 2 ? (int)strtol(argv[2], NULL, 0) : AF_UNIX;
    int type = argc > 3 ? (int)strtol(argv[3], NULL, 0) : SOCK_STREAM;
    int proto = argc > 4 ? (int)strtol(argv[4], NULL, 0) : 0;
    long fd = syscall(SYS_socket, family, type, proto);
    if (fd >= 0)
        close((int)fd);
    return fd;
}

static long probe_bpf(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd >= 0)
        close((int)fd);
    return fd;
}

static long probe_perf_event_open(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd >= 0)
        close((int)fd);
    return fd;
}

/* clone3 with an empty (size-checked) argument: EINVAL from the kernel when allowed; Docker's
 * profile answers ENOSYS without CAP_SYS_ADMIN so that libcs fall back to clone. */
static long probe_clone3(void) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    return pid;
}

static long probe_personality(const char *value) {
    unsigned long want = strtoul(value, NULL, 0);
    long old = syscall(SYS_personality, 0xffffffffUL); /* query: allowed by Docker's profile */
    long rc = syscall(SYS_personality, want);
    if (rc >= 0 && old >= 0)
        syscall(SYS_personality, (unsigned long)old);
    return rc;
}

static long probe_unshare(const char *what) {
    int flag = !strcmp(what, "user") ? CLONE_NEWUSER : !strcmp(what, "net") ? CLONE_NEWNET
             : !strcmp(what, "mount") ? CLONE_NEWNS : !strcmp(what, "pid") ? CLONE_NEWPID
             : !strcmp(what, "ipc") ? CLONE_NEWIPC : !strcmp(what, "uts") ? CLONE_NEWUTS : -1;
    if (flag < 0) {
        fprintf(stderr, "probe unshare: user, net, mount, pid, ipc or uts\n");
        exit(2);
    }
    return syscall(SYS_unshare, flag); /* only this short-lived process is moved */
}

static long probe_settimeofday_same(void) {
    struct timeval tv;
    if (gettimeofday(&tv, NULL) != 0)
        return -1;
    return syscall(SYS_settimeofday, &tv, NULL);
}

/* mount(2) of a tmpfs on TARGET (default /mnt), unmounted at once if it worked: only the
 * container's own mount namespace ever sees it. */
static long probe_mount(const char *target) {
    long rc = syscall(SYS_mount, "none", target, "tmpfs", 0UL, "size=64k");
    if (rc == 0)
        syscall(SYS_umount2, target, 0L);
    return rc;
}

/* Write a /proc/sys file's current value back to it: the open for writing is what a read-only
 * /proc/sys refuses (EROFS); the write changes nothing. */
static long probe_sysctl_same(const char *path) {
    char buf[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0)
        return -1;
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long rc = write(fd, buf, (size_t)n);
    int e = errno;
    close(fd);
    errno = e;
    return rc < 0 ? -1 : 0;
}

/* Read at most 16 bytes of a file: "OK" when some came, "EMPTY" at once at end of file (a path
 * masked with /dev/null reads so), else the errno of open or read. */
static int probe_read(const char *path) {
    char buf[16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report(-1);
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    errno = e;
    if (n == 0) {
        puts("EMPTY");
        return 0;
    }
    return report(n < 0 ? -1 : 0);
}

/* mknod a block device node MAJ:MIN at PATH, then open it read-only (never for writing) and
 * read a little. Prints two words: mknod's result, then open+read's ("OK EPERM": the node
 * could be made, the devices cgroup refused the open). */
static int probe_mknod_read(const char *path, const char *maj, const char *min) {
    dev_t dev = makedev((unsigned)strtoul(maj, NULL, 0), (unsigned)strtoul(min, NULL, 0));
    long rc = syscall(SYS_mknod, path, (long)(S_IFBLK | 0600), (long)dev);
    const char *made = rc < 0 ? errname(errno) : "OK";
    if (rc < 0) {
        printf("%s -\n", made);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *opened = "OK";
    if (fd < 0) {
        opened = errname(errno);
    } else {
        char buf[16];
        if (read(fd, buf, sizeof buf) < 0)
            opened = errname(errno);
        close(fd);
    }
    unlink(path);
    printf("%s %s\n", made, opened);
    return 0;
}

/* PTRACE_ATTACH to PID (default 1); detached at once if it worked. */
static long probe_ptrace(const char *pid_s) {
    long pid = pid_s ? strtol(pid_s, NULL, 0) : 1;
    long rc = syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0L, 0L);
    if (rc == 0) {
        waitpid((pid_t)pid, NULL, __WALL);
        syscall(SYS_ptrace, PTRACE_DETACH, pid, 0L, 0L);
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe NAME [ARGS...] | probe syscall NR [ARGS...]\n"
                        "names: keyctl add_key bpf perf_event_open socket FAMILY [TYPE [PROTO]] personality VALUE\n"
                        "  clone3 ptrace [PID] unshare user|net|mount|pid|ipc|uts settimeofday-same settime-noop\n"
                        "  reboot init_module [FILE] mount [TARGET] sysctl-same [PATH] read PATH\n"
                        "  mknod-read PATH MAJOR MINOR mkdir PATH\n");
        return 2;
    }
    const char *p = argv[1];
    if (!strcmp(p, "syscall") && argc > 2) {
        long a[6] = {0};
        for (int i = 0; i < 6 && i + 3 < argc; i++)
            a[i] = strtol(argv[i + 3], NULL, 0);
        return report(syscall(strtol(argv[2], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]));
    }
    if (!strcmp(p, "keyctl")) /* KEYCTL_JOIN_SESSION_KEYRING(NULL): a new anonymous session keyring */
        return report(syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0L));
    if (!strcmp(p, "add_key")) /* into our own process keyring, gone when we exit */
        return report(syscall(SYS_add_key, "user", "minirt-probe", "x", 1L, -2 /* KEY_SPEC_PROCESS_KEYRING */));
    if (!strcmp(p, "bpf"))
        return report(probe_bpf());
    if (!strcmp(p, "perf_event_open"))
        return report(probe_perf_event_open());
    if (!strcmp(p, "socket"))
        return report(probe_socket(argc, argv));
    if (!strcmp(p, "personality") && argc > 2)
        return report(probe_personality(argv[2]));
    if (!strcmp(p, "clone3"))
        return report(probe_clone3());
    if (!strcmp(p, "ptrace")) /* PTRACE_ATTACH to a PID of the container's own namespace (1 unless told) */
        return report(probe_ptrace(argc > 2 ? argv[2] : NULL));
    if (!strcmp(p, "unshare") && argc > 2)
        return report(probe_unshare(argv[2]));
    if (!strcmp(p, "settimeofday-same"))
        return report(probe_settimeofday_same());
    if (!strcmp(p, "reboot")) /* a wrong LINUX_REBOOT_MAGIC1: EINVAL if the call is allowed at all */
        return report(syscall(SYS_reboot, 0x12345678L, 0x28121969L, 0x01234567L, 0L));
    if (!strcmp(p, "init_module")) { /* an empty image from /dev/null: ENOEXEC if allowed */
        int fd = open(argc > 2 ? argv[2] : "/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return report(-1);
        return report(syscall(SYS_finit_module, fd, "", 0));
    }
    if (!strcmp(p, "settime-noop")) /* tv and tz NULL: the CAP_SYS_TIME check, then nothing to set */
        return report(syscall(SYS_settimeofday, NULL, NULL));
    if (!strcmp(p, "mount"))
        return report(probe_mount(argc > 2 ? argv[2] : "/mnt"));
    if (!strcmp(p, "sysctl-same"))
        return report(probe_sysctl_same(argc > 2 ? argv[2] : "/proc/sys/kernel/domainname"));
    if (!strcmp(p, "read") && argc > 2)
        return probe_read(argv[2]);
    if (!strcmp(p, "mknod-read") && argc > 4)
        return probe_mknod_read(argv[2], argv[3], argv[4]);
    if (!strcmp(p, "mkdir") && argc > 2)
        return report(syscall(SYS_mkdir, argv[2], 0700));
    fprintf(stderr, "probe: unknown probe %s\n", p);
    return 2;
}
