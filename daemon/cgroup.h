#pragma once
/* The daemon's cgroup v2 subtree (DESIGN.md §7). durabled finds its own cgroup from
 * /proc/self/cgroup and the cgroup2 mount in /proc/self/mountinfo, moves itself into the leaf
 * <own>/supervisor (a cgroup holding processes cannot enable controllers for its children) and runs
 * each activity attempt in <own>/activities/<attempt name>. It never writes to the attributes of
 * <own> itself but for cgroup.subtree_control, which delegation hands to it (systemd's
 * Delegate=yes). Only this module and activity.c touch /sys/fs/cgroup. */

#include <stdbool.h>
#include <stdint.h>

#include "common/cleanup.h"

typedef struct CgroupTree {
        char *own;        /* the delegated cgroup (a directory under the cgroup2 mount) */
        char *activities; /* own/activities */
} CgroupTree;

/* Sets up the tree: -EOPNOTSUPP without a cgroup2 mount, -EPERM when the daemon runs in the root
 * cgroup (it would take over the host's), other errors from the file system. @ret_error gets a
 * sentence (to free()) on failure. */
int cgroup_tree_setup(CgroupTree **ret, char **ret_error);
CgroupTree *cgroup_tree_free(CgroupTree *t);
DEFINE_CLEANUP(CgroupTree, cgroup_tree_free);

/* Creates activities/@name (EEXIST is fine) and returns its path (to free()) and an O_PATH|
 * O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP). */
int cgroup_attempt_create(CgroupTree *t, const char *name, char **ret_path, int *ret_fd);

typedef struct CgroupLimits {
        uint64_t memory_max;    /* UINT64_MAX: none */
        uint64_t tasks_max;     /* UINT64_MAX: none */
        uint64_t cpu_quota_pct; /* 0: none */
} CgroupLimits;

/* Writes the limits into cgroup directory @dir where the controller they need is listed in
 * @dir/cgroup.controllers; calls @warn with a sentence for each limit that cannot be enforced.
 * Returns the number of limits not enforced, or -errno when writing failed. */
int cgroup_write_limits(const char *dir,
                        const CgroupLimits *l,
                        void (*warn)(const char *msg, void *userdata),
                        void *userdata);

/* Kills every process of the cgroup at once (cgroup.kill); -ENOENT when it is gone. */
int cgroup_kill(const char *dir);
/* Freezes (cgroup.freeze 1) or thaws every process of the cgroup; the kernel finishes the freeze
 * asynchronously ("frozen 1" in cgroup.events). A frozen process still dies of SIGKILL
 * (cgroup.kill). -ENOENT when the cgroup is gone. */
int cgroup_freeze(const char *dir, bool frozen);
/* Sends @sig to every process in the cgroup (cgroup.procs). */
int cgroup_signal(const char *dir, int sig);
/* 1 when processes remain in the cgroup or below, 0 when empty, -errno. */
int cgroup_populated(const char *dir);
/* rmdir; -EBUSY while processes remain. */
int cgroup_remove(const char *dir);
/* Calls @cb with the name of each cgroup in activities/ (left over by an earlier life). */
int cgroup_foreach_attempt(CgroupTree *t,
                           int (*cb)(const char *name, void *userdata),
                           void *userdata);
