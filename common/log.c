/* Log target selection and formatting; see log.h. */

#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;
static const char *program = "durabled";
static enum {
        TARGET_STDERR,
        TARGET_TTY,
        TARGET_JOURNAL
} target = TARGET_STDERR;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_program(const char *name) {
        program = name;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = { "emerg",   "alert",  "crit", "err",
                                             "warning", "notice", "info", "debug" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

/* $JOURNAL_STREAM is "dev:ino" of the stream systemd connected stderr to; it is only ours when it
 * matches stderr itself (a child of a journal-connected parent may inherit the variable). */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_open(void) {
        const char *l = getenv("DURABLED_LOG_LEVEL");

        if (!l || log_level_from_string(l) < 0)
                l = getenv("SYSTEMD_LOG_LEVEL"); /* as systemd's own tools honour it */
        if (l && log_level_from_string(l) >= 0)
                max_level = log_level_from_string(l);
        if (stderr_is_journal())
                target = TARGET_JOURNAL;
        else if (isatty(STDERR_FILENO))
                target = TARGET_TTY;
        else
                target = TARGET_STDERR;
}

/* NAME=value for the journal, when @value is set. */
static void add_field(
        struct iovec *iov, size_t *n, char *buf, size_t size, const char *name, const char *value) {
        if (!value)
                return;
        (void) snprintf(buf, size, "%s=%s", name, value);
        iov[(*n)++] = (struct iovec){ .iov_base = buf, .iov_len = strlen(buf) };
}

static void log_emit(int level, int error, const LogFields *f, const char *msg) {
        if (target == TARGET_JOURNAL) {
                char message[2100], priority[16], ident[80], errnum[24];
                char wid[1024], run[64], type[1024], act[1024];
                struct iovec iov[8];
                size_t n = 0;

                add_field(iov, &n, message, sizeof(message), "MESSAGE", msg);
                (void) snprintf(priority, sizeof(priority), "PRIORITY=%i", level);
                iov[n++] = (struct iovec){ .iov_base = priority, .iov_len = strlen(priority) };
                add_field(iov, &n, ident, sizeof(ident), "SYSLOG_IDENTIFIER", program);
                if (error > 0) {
                        (void) snprintf(errnum, sizeof(errnum), "ERRNO=%i", error);
                        iov[n++] = (struct iovec){ .iov_base = errnum, .iov_len = strlen(errnum) };
                }
                add_field(iov, &n, wid, sizeof(wid), "WORKFLOW_ID", f ? f->workflow_id : NULL);
                add_field(iov, &n, run, sizeof(run), "RUN_ID", f ? f->run_id : NULL);
                add_field(iov, &n, type, sizeof(type), "WORKFLOW_TYPE",
                          f ? f->workflow_type : NULL);
                add_field(iov, &n, act, sizeof(act), "ACTIVITY_ID", f ? f->activity_id : NULL);
                (void) sd_journal_sendv(iov, (int) n);
                return;
        }
        if (target == TARGET_TTY)
                fprintf(stderr, "%s: %s\n", program, msg);
        else
                fprintf(stderr, "<%i>%s\n", level, msg);
}

_printf_(4, 0) static int log_vformat(
        int level, int error, const LogFields *f, const char *fmt, va_list ap) {
        char buf[2048];
        int saved = errno;

        error = abs(error);
        errno = error; /* for %m */
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        log_emit(level, error, f, buf);
        errno = saved;
        return -error;
}

int log_internal(
        int level, int error, const char *file, int line, const char *func, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_vformat(level, error, NULL, fmt, ap);
        va_end(ap);
        return r;
}

void log_activity_line(int level,
                       const char *wid,
                       const char *run_id,
                       const char *activity_id,
                       unsigned attempt,
                       const char *msg) {
        if (level > max_level)
                return;
        if (target == TARGET_JOURNAL) {
                (void) sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level,
                                       "SYSLOG_IDENTIFIER=%s", program, "WORKFLOW_ID=%s", wid,
                                       "RUN_ID=%s", run_id, "ACTIVITY_ID=%s", activity_id,
                                       "ATTEMPT=%u", attempt, NULL);
                return;
        }
        if (target == TARGET_TTY)
                fprintf(stderr, "%s: %s/%s#%u: %s\n", program, wid, activity_id, attempt, msg);
        else
                fprintf(stderr, "<%i>%s/%s#%u: %s\n", level, wid, activity_id, attempt, msg);
}

int log_wf_internal(
        int level, int error, const char *wid, const char *run_id, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_vformat(level, error, &(LogFields){ .workflow_id = wid, .run_id = run_id }, fmt,
                        ap);
        va_end(ap);
        return r;
}

int log_fields_internal(int level, int error, const LogFields *f, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_vformat(level, error, f, fmt, ap);
        va_end(ap);
        return r;
}
