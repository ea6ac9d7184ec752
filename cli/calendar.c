/* durablectl calendar SPEC...: the normalized form of systemd calendar specs and their next
 * elapses, printed the way `systemd-analyze calendar` prints them. Needs no daemon. */

#include "common/calendar.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/output.h"
#include "cli/verbs.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MINUTE (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MINUTE)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)
#define USEC_PER_WEEK (7 * USEC_PER_DAY)
#define USEC_PER_MONTH (2629800 * USEC_PER_SEC)
#define USEC_PER_YEAR (31557600 * USEC_PER_SEC)

static const char *plural(uint64_t n, const char *one, const char *many) {
        return n == 1 ? one : many;
}

/* systemd's relative form ("1 day 23h left", "5min left"). */
static void format_left(char *buf, size_t size, uint64_t d) {
        if (d >= USEC_PER_YEAR)
                snprintf(buf, size, "%llu %s %llu %s left",
                         (unsigned long long) (d / USEC_PER_YEAR),
                         plural(d / USEC_PER_YEAR, "year", "years"),
                         (unsigned long long) (d % USEC_PER_YEAR / USEC_PER_MONTH),
                         plural(d % USEC_PER_YEAR / USEC_PER_MONTH, "month", "months"));
        else if (d >= USEC_PER_MONTH)
                snprintf(buf, size, "%llu %s %llu %s left",
                         (unsigned long long) (d / USEC_PER_MONTH),
                         plural(d / USEC_PER_MONTH, "month", "months"),
                         (unsigned long long) (d % USEC_PER_MONTH / USEC_PER_DAY),
                         plural(d % USEC_PER_MONTH / USEC_PER_DAY, "day", "days"));
        else if (d >= USEC_PER_WEEK)
                snprintf(buf, size, "%llu %s %llu %s left",
                         (unsigned long long) (d / USEC_PER_WEEK),
                         plural(d / USEC_PER_WEEK, "week", "weeks"),
                         (unsigned long long) (d % USEC_PER_WEEK / USEC_PER_DAY),
                         plural(d % USEC_PER_WEEK / USEC_PER_DAY, "day", "days"));
        else if (d >= 2 * USEC_PER_DAY)
                snprintf(buf, size, "%llu days left", (unsigned long long) (d / USEC_PER_DAY));
        else if (d >= 25 * USEC_PER_HOUR)
                snprintf(buf, size, "1 day %lluh left",
                         (unsigned long long) ((d - USEC_PER_DAY) / USEC_PER_HOUR));
        else if (d >= 6 * USEC_PER_HOUR)
                snprintf(buf, size, "%lluh left", (unsigned long long) (d / USEC_PER_HOUR));
        else if (d >= USEC_PER_HOUR)
                snprintf(buf, size, "%lluh %llumin left", (unsigned long long) (d / USEC_PER_HOUR),
                         (unsigned long long) (d % USEC_PER_HOUR / USEC_PER_MINUTE));
        else if (d >= 5 * USEC_PER_MINUTE)
                snprintf(buf, size, "%llumin left", (unsigned long long) (d / USEC_PER_MINUTE));
        else if (d >= USEC_PER_MINUTE)
                snprintf(buf, size, "%llumin %llus left",
                         (unsigned long long) (d / USEC_PER_MINUTE),
                         (unsigned long long) (d % USEC_PER_MINUTE / USEC_PER_SEC));
        else if (d >= USEC_PER_SEC)
                snprintf(buf, size, "%llus left", (unsigned long long) (d / USEC_PER_SEC));
        else if (d >= 1000)
                snprintf(buf, size, "%llums left", (unsigned long long) (d / 1000));
        else
                snprintf(buf, size, "%lluus left", (unsigned long long) d);
}

static void format_time(char *buf, size_t size, uint64_t usec, bool utc) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) ||
            strftime(buf, size, utc ? "%a %Y-%m-%d %H:%M:%S UTC" : "%a %Y-%m-%d %H:%M:%S %Z",
                     &tm) == 0)
                snprintf(buf, size, "@%llu", (unsigned long long) (usec / USEC_PER_SEC));
}

static bool local_is_utc(void) {
        tzset();
        return timezone == 0 && !daylight;
}

static json_t *iteration_json(uint64_t next) {
        char when[64];

        format_time(when, sizeof(when), next, true);
        return json_pack("{s:I, s:s}", "usec", (json_int_t) next, "utc", when);
}

static int calendar_one(const Ctx *ctx, const char *spec_text, uint64_t now, unsigned n) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        _cleanup_free_ char *normalized = NULL;
        json_t *j = NULL, *list = NULL;
        char err[512], when[64], left[64];
        uint64_t base = now, next;
        int r;

        r = calendar_spec_from_string(spec_text, &spec, err, sizeof(err));
        if (r == -ENOMEM)
                return ctl_error_errno(ENOMEM, "Out of memory");
        if (r < 0)
                return ctl_error_errno(-r, "invalid calendar spec: %s", err);
        r = calendar_spec_to_string(spec, &normalized);
        if (r < 0)
                return ctl_error_errno(-r, "Out of memory");
        if (ctx->json) {
                list = json_array();
                j = json_pack("{s:s, s:s, s:o}", "original", spec_text, "normalized", normalized,
                              "next", list);
        } else {
                if (!streq(normalized, spec_text))
                        printf("%16s %s\n", "Original form:", spec_text);
                printf("%16s %s\n", "Normalized form:", normalized);
        }
        for (unsigned i = 0; i < n; i++) {
                r = calendar_spec_next(spec, base, &next);
                if (r == -ENOENT) {
                        if (i == 0 && !ctx->json)
                                printf("%16s %s\n", "Next elapse:", "never");
                        break;
                }
                if (r < 0) {
                        json_decref(j);
                        return ctl_error_errno(-r, "cannot compute the next elapse of '%s': %m",
                                               spec_text);
                }
                if (ctx->json) {
                        (void) json_array_append_new(list, iteration_json(next));
                        base = next;
                        continue;
                }
                format_time(when, sizeof(when), next, false);
                if (i == 0)
                        printf("%16s %s\n", "Next elapse:", when);
                else {
                        char label[32];

                        snprintf(label, sizeof(label), "Iter. #%u:", i + 1);
                        printf("%16s %s\n", label, when);
                }
                if (!local_is_utc()) {
                        format_time(when, sizeof(when), next, true);
                        printf("%16s %s\n", "(in UTC):", when);
                }
                format_left(left, sizeof(left), next - now);
                printf("%16s %s\n", "From now:", left);
                base = next;
        }
        if (j) {
                (void) json_print(j);
                json_decref(j);
        }
        return 0;
}

int verb_calendar(const Ctx *ctx, const Args *a) {
        struct timespec ts;
        uint64_t now;
        int r = 0;

        if (a->has_base_time)
                now = a->base_time_usec;
        else {
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                now = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
        }
        for (size_t i = 0; i < a->n_pos; i++) {
                int k;

                if (i > 0 && !ctx->json)
                        printf("\n");
                k = calendar_one(ctx, a->pos[i], now,
                                 a->iterations > 0 ? (unsigned) a->iterations : 1);
                if (k < 0 && r == 0)
                        r = k;
        }
        return r;
}
