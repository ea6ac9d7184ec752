/* The daemon's cgroup subtree and attempt cgroups; see cgroup.h. */

#include "daemon/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static int write_file(const char *dir, const char *file, const char *value) {
        char path[4096];
        _cleanup_close_ int fd = -EBADF;
        size_t n = strlen(value);

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (write(fd, value, n) != (ssize_t) n)
                return errno ? -errno : -EIO;
        return 0;
}

static int read_file(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return (int) n;
}

/* The cgroup2 mount point, from /proc/self/mountinfo ("... mountpoint ... - cgroup2 ..."). */
static int find_mount(char **ret) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL;
        size_t size = 0;
        int r = -EOPNOTSUPP;

        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0) {
                char mnt[4096];
                const char *sep = strstr(line, " - ");

                if (!sep || strncmp(sep, " - cgroup2 ", 11) != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                *ret = strdup(mnt);
                r = *ret ? 0 : -ENOMEM;
                break;
        }
        free(line);
        fclose(f);
        return r;
}

/* The unified-hierarchy path of this process, from its "0::/path" line. */
static int find_own_path(char **ret) {
        FILE *f = fopen("/proc/self/cgroup", "re");
        char *line = NULL;
        size_t size = 0;
        int r = -EOPNOTSUPP;

        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = 0;
                *ret = strdup(line + 3);
                r = *ret ? 0 : -ENOMEM;
                break;
        }
        free(line);
        fclose(f);
        return r;
}

static int make_dir(const char *dir, const char *name, char **ret) {
        if (asprintf(ret, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        if (mkdir(*ret, 0755) < 0 && errno != EEXIST) {
                int r = -errno;
                free(*ret);
                *ret = NULL;
                return r;
        }
        return 0;
}

/* Enables memory, pids and cpu below @dir where @dir has them; a failure only costs limits,
 * which cgroup_write_limits() then reports. */
static void enable_controllers(const char *dir) {
        static const char *const wanted[] = { "memory", "pids", "cpu" };
        char path[4096], avail[512];

        snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
        if (read_file(path, avail, sizeof(avail)) < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                char word[16];
                snprintf(word, sizeof(word), "+%s", wanted[i]);
                if (strstr(avail, wanted[i]))
                        (void) write_file(dir, "cgroup.subtree_control", word);
        }
}

int cgroup_tree_setup(CgroupTree **ret, char **ret_error) {
        _cleanup_(cgroup_tree_freep) CgroupTree *t = NULL;
        _cleanup_free_ char *mnt = NULL, *own = NULL, *sup = NULL;
        size_t n;
        int r;

        *ret_error = NULL;
        r = find_mount(&mnt);
        if (r >= 0)
                r = find_own_path(&own);
        if (r < 0)
                return asprintf(ret_error, "no cgroup v2 hierarchy found (%s)", strerror(-r)) < 0
                               ? -ENOMEM
                               : r;
        /* A daemon restarted inside its own leaf (not by systemd) is already in .../supervisor. */
        n = strlen(own);
        if (n >= 11 && streq(own + n - 11, "/supervisor"))
                own[n - 11] = 0;
        if (streq(own, "/") || !own[0])
                return asprintf(ret_error,
                                "durabled runs in the root cgroup of %s; process activities need "
                                "a cgroup of its own (Delegate=yes under systemd)",
                                mnt) < 0
                               ? -ENOMEM
                               : -EPERM;
        t = calloc(1, sizeof(*t));
        if (!t || asprintf(&t->own, "%s%s", mnt, own) < 0)
                return -ENOMEM;
        r = make_dir(t->own, "supervisor", &sup);
        if (r >= 0)
                r = write_file(sup, "cgroup.procs", "0");
        if (r >= 0)
                r = make_dir(t->own, "activities", &t->activities);
        if (r < 0)
                return asprintf(ret_error, "cannot set up cgroups below %s: %s", t->own,
                                strerror(-r)) < 0
                               ? -ENOMEM
                               : r;
        enable_controllers(t->own);
        enable_controllers(t->activities);
        *ret = TAKE_PTR(t);
        return 0;
}

CgroupTree *cgroup_tree_free(CgroupTree *t) {
        if (t) {
                free(t->own);
                free(t->activities);
                free(t);
        }
        return NULL;
}

int cgroup_attempt_create(CgroupTree *t, const char *name, char **ret_path, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        int r, fd;

        r = make_dir(t->activities, name, &path);
        if (r < 0)
                return r;
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int limit_one(const char *dir,
                     const char *avail,
                     const char *controller,
                     const char *key,
                     const char *file,
                     const char *value,
                     void (*warn)(const char *msg, void *userdata),
                     void *userdata) {
        char msg[256];
        int r;

        if (!strstr(avail, controller)) {
                snprintf(msg, sizeof(msg),
                         "%s= cannot be enforced: the %s controller is not available in %s", key,
                         controller, dir);
                warn(msg, userdata);
                return 1;
        }
        r = write_file(dir, file, value);
        return r < 0 ? r : 0;
}

int cgroup_write_limits(const char *dir,
                        const CgroupLimits *l,
                        void (*warn)(const char *msg, void *userdata),
                        void *userdata) {
        char path[4096], avail[512] = "", v[64];
        int r, missing = 0;

        snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
        (void) read_file(path, avail, sizeof(avail));
        if (l->memory_max != UINT64_MAX) {
                snprintf(v, sizeof(v), "%llu", (unsigned long long) l->memory_max);
                r = limit_one(dir, avail, "memory", "MemoryMax", "memory.max", v, warn, userdata);
                if (r < 0)
                        return r;
                missing += r;
        }
        if (l->tasks_max != UINT64_MAX) {
                snprintf(v, sizeof(v), "%llu", (unsigned long long) l->tasks_max);
                r = limit_one(dir, avail, "pids", "TasksMax", "pids.max", v, warn, userdata);
                if (r < 0)
                        return r;
                missing += r;
        }
        if (l->cpu_quota_pct) {
                /* systemd's CPUQuota=: a quota per 100 ms period. */
                snprintf(v, sizeof(v), "%llu 100000", (unsigned long long) l->cpu_quota_pct * 1000);
                r = limit_one(dir, avail, "cpu", "CPUQuota", "cpu.max", v, warn, userdata);
                if (r < 0)
                        return r;
                missing += r;
        }
        return missing;
}

int cgroup_kill(const char *dir) {
        return write_file(dir, "cgroup.kill", "1");
}

int cgroup_freeze(const char *dir, bool frozen) {
        return write_file(dir, "cgroup.freeze", frozen ? "1" : "0");
}

int cgroup_signal(const char *dir, int sig) {
        char path[4096];
        FILE *f;
        int pid, r = 0;

        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fscanf(f, "%d", &pid) == 1)
                if (pid > 0 && kill(pid, sig) < 0 && errno != ESRCH)
                        r = -errno;
        fclose(f);
        return r;
}

int cgroup_populated(const char *dir) {
        char path[4096], buf[256];
        const char *p;
        int r;

        snprintf(path, sizeof(path), "%s/cgroup.events", dir);
        r = read_file(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        p = strstr(buf, "populated ");
        return p && p[10] == '1';
}

int cgroup_remove(const char *dir) {
        return rmdir(dir) < 0 ? -errno : 0;
}

int cgroup_foreach_attempt(CgroupTree *t,
                           int (*cb)(const char *name, void *userdata),
                           void *userdata) {
        DIR *d = opendir(t->activities);
        struct dirent *de;
        int r = 0;

        if (!d)
                return -errno;
        while (r >= 0 && (de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        r = cb(de->d_name, userdata);
        closedir(d);
        return r;
}
