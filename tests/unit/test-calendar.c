/* Tests of common/calendar.c: systemd.time(7) calendar specs, normalized exactly as
 * `systemd-analyze calendar` prints them, their next elapses (DST changes in two zones included)
 * and malformed specs with the sentence that names the problem. When systemd-analyze is
 * installed, a test compares both implementations on the whole table and on DST edges. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/calendar.h"
#include "tests/lib/test.h"

#define SEC 1000000ULL
#define SYSTEMD_ANALYZE "/usr/bin/systemd-analyze"
#define BASE 1767225600 /* 2026-01-01 00:00:00 UTC */

/* Generated from systemd-analyze 252 calendar --base-time=@1767225600 --iterations=5 (TZ=UTC). */
static const struct {
        const char *spec, *normalized;
        int64_t next[5]; /* seconds; 0 ends the list */
} good[] = {
        { "0..10/3:00",
          "*-*-* 00..09/3:00:00",
          { 1767236400, 1767247200, 1767258000, 1767312000, 1767322800 } },
        { "*:0..59/59",
          "*-*-* *:00..59/59:00",
          { 1767229140, 1767229200, 1767232740, 1767232800, 1767236340 } },
        { "*-*~1..7",
          "*-*~01..07 00:00:00",
          { 1769299200, 1769385600, 1769472000, 1769558400, 1769644800 } },
        { "*-*~05/2",
          "*-*~05/2 00:00:00",
          { 1769472000, 1769644800, 1769817600, 1771891200, 1772064000 } },
        { "2003-03-05 05:40", "2003-03-05 05:40:00", { 0 } },
        { "Sat,Thu,Mon..Wed,Sat..Sun",
          "Mon..Thu,Sat,Sun *-*-* 00:00:00",
          { 1767398400, 1767484800, 1767571200, 1767657600, 1767744000 } },
        { "*:2/3",
          "*-*-* *:02/3:00",
          { 1767225720, 1767225900, 1767226080, 1767226260, 1767226440 } },
        { "*-*-* *:*:1..5",
          "*-*-* *:*:01..05",
          { 1767225601, 1767225602, 1767225603, 1767225604, 1767225605 } },
        { "*:*:1.5..3",
          "*-*-* *:*:01.500000..02.500000",
          { 1767225601, 1767225602, 1767225661, 1767225662, 1767225721 } },
        { "*:*:0..1",
          "*-*-* *:*:00..01",
          { 1767225601, 1767225660, 1767225661, 1767225720, 1767225721 } },
        { "1-1-1", "2001-01-01 00:00:00", { 0 } },
        { "70-1-1", "1970-01-01 00:00:00", { 0 } },
        { "12-1-1", "2012-01-01 00:00:00", { 0 } },
        { "daily UTC",
          "*-*-* 00:00:00 UTC",
          { 1767312000, 1767398400, 1767484800, 1767571200, 1767657600 } },
        { "Mon,Mon 1,2,1,3:00",
          "Mon *-*-* 01,02,03:00:00",
          { 1767574800, 1767578400, 1767582000, 1768179600, 1768183200 } },
        { "@1395716396", "2014-03-25 02:59:56 UTC", { 0 } },
        { "Mon,",
          "Mon *-*-* 00:00:00",
          { 1767571200, 1768176000, 1768780800, 1769385600, 1769990400 } },
        { "Mon, *-*-*",
          "Mon *-*-* 00:00:00",
          { 1767571200, 1768176000, 1768780800, 1769385600, 1769990400 } },
        { "03-05 05:40",
          "*-03-05 05:40:00",
          { 1772689200, 1804225200, 1835847600, 1867383600, 1898919600 } },
        { "05:40",
          "*-*-* 05:40:00",
          { 1767246000, 1767332400, 1767418800, 1767505200, 1767591600 } },
        { "*:05:40.5",
          "*-*-* *:05:40.500000",
          { 1767225940, 1767229540, 1767233140, 1767236740, 1767240340 } },
        { "weekly",
          "Mon *-*-* 00:00:00",
          { 1767571200, 1768176000, 1768780800, 1769385600, 1769990400 } },
        { "quarterly",
          "*-01,04,07,10-01 00:00:00",
          { 1775001600, 1782864000, 1790812800, 1798761600, 1806537600 } },
        { "semiannually",
          "*-01,07-01 00:00:00",
          { 1782864000, 1798761600, 1814400000, 1830297600, 1846022400 } },
        { "anually",
          "*-01-01 00:00:00",
          { 1798761600, 1830297600, 1861920000, 1893456000, 1924992000 } },
        { "bi-annually",
          "*-01,07-01 00:00:00",
          { 1782864000, 1798761600, 1814400000, 1830297600, 1846022400 } },
        { "hourly",
          "*-*-* *:00:00",
          { 1767229200, 1767232800, 1767236400, 1767240000, 1767243600 } },
        { "*:0..5",
          "*-*-* *:00..05:00",
          { 1767225660, 1767225720, 1767225780, 1767225840, 1767225900 } },
        { "9..17/2:00",
          "*-*-* 09..17/2:00:00",
          { 1767258000, 1767265200, 1767272400, 1767279600, 1767286800 } },
        { "*-02-30", "*-02-30 00:00:00", { 0 } },
        { "2023..2025/2-1-1", "2023..2025/2-01-01 00:00:00", { 0 } },
        { "2015-10-25 01:00:00 Europe/Berlin", "2015-10-25 01:00:00 Europe/Berlin", { 0 } },
        { "daily Asia/Kolkata",
          "*-*-* 00:00:00 Asia/Kolkata",
          { 1767292200, 1767378600, 1767465000, 1767551400, 1767637800 } },
        { "daily utc",
          "*-*-* 00:00:00 UTC",
          { 1767312000, 1767398400, 1767484800, 1767571200, 1767657600 } },
        { "Sat,Sun 12-05 08:05:40",
          "Sat,Sun *-12-05 08:05:40",
          { 1796457940, 1827993940, 1985846740, 2143613140, 2175149140 } },
        { "Sat,Sun 08:05:40",
          "Sat,Sun *-*-* 08:05:40",
          { 1767427540, 1767513940, 1768032340, 1768118740, 1768637140 } },
        { "*-*-* 8:5:40",
          "*-*-* 08:05:40",
          { 1767254740, 1767341140, 1767427540, 1767513940, 1767600340 } },
        { "Mon..Wed,Sat 8:05",
          "Mon..Wed,Sat *-*-* 08:05:00",
          { 1767427500, 1767600300, 1767686700, 1767773100, 1768032300 } },
        { "Fri *-*-* 00:00:00",
          "Fri *-*-* 00:00:00",
          { 1767312000, 1767916800, 1768521600, 1769126400, 1769731200 } },
        { "Wed..Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03", { 0 } },
        { "Wed *-1",
          "Wed *-*-01 00:00:00",
          { 1775001600, 1782864000, 1819756800, 1827619200, 1835481600 } },
        { "Wed..Wed,Wed *-1",
          "Wed *-*-01 00:00:00",
          { 1775001600, 1782864000, 1819756800, 1827619200, 1835481600 } },
        { "Wed, 17:48",
          "Wed *-*-* 17:48:00",
          { 1767808080, 1768412880, 1769017680, 1769622480, 1770227280 } },
        { "Wed..Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03", { 0 } },
        { "*-*-7 0:0:0",
          "*-*-07 00:00:00",
          { 1767744000, 1770422400, 1772841600, 1775520000, 1778112000 } },
        { "10-15",
          "*-10-15 00:00:00",
          { 1792022400, 1823558400, 1855180800, 1886716800, 1918252800 } },
        { "monday *-12-* 17:00",
          "Mon *-12-* 17:00:00",
          { 1796662800, 1797267600, 1797872400, 1798477200, 1828112400 } },
        { "Mon,Fri *-*-3,1,2 *:30:45",
          "Mon,Fri *-*-01,02,03 *:30:45",
          { 1767313845, 1767317445, 1767321045, 1767324645, 1767328245 } },
        { "12,14,13,12:20,10,30",
          "*-*-* 12,13,14:10,20,30:00",
          { 1767269400, 1767270000, 1767270600, 1767273000, 1767273600 } },
        { "12..14:10,20,30",
          "*-*-* 12..14:10,20,30:00",
          { 1767269400, 1767270000, 1767270600, 1767273000, 1767273600 } },
        { "mon,fri *-1/2-1,3 *:30:45",
          "Mon,Fri *-01/2-01,03 *:30:45",
          { 1777595445, 1777599045, 1777602645, 1777606245, 1777609845 } },
        { "03-05 08:05:40",
          "*-03-05 08:05:40",
          { 1772697940, 1804233940, 1835856340, 1867392340, 1898928340 } },
        { "08:05:40",
          "*-*-* 08:05:40",
          { 1767254740, 1767341140, 1767427540, 1767513940, 1767600340 } },
        { "05:40",
          "*-*-* 05:40:00",
          { 1767246000, 1767332400, 1767418800, 1767505200, 1767591600 } },
        { "Sat,Sun 03-05",
          "Sat,Sun *-03-05 00:00:00",
          { 1835827200, 1993593600, 2025129600, 2182896000, 2340748800 } },
        { "Sat,Sun 08:05:40",
          "Sat,Sun *-*-* 08:05:40",
          { 1767427540, 1767513940, 1768032340, 1768118740, 1768637140 } },
        { "2003-03-05", "2003-03-05 00:00:00", { 0 } },
        { "*-*-01",
          "*-*-01 00:00:00",
          { 1769904000, 1772323200, 1775001600, 1777593600, 1780272000 } },
        { "*-*~01",
          "*-*~01 00:00:00",
          { 1769817600, 1772236800, 1774915200, 1777507200, 1780185600 } },
        { "*-*~03/1",
          "*-*~03/1 00:00:00",
          { 1769644800, 1769731200, 1769817600, 1772064000, 1772150400 } },
        { "*-*~01..03",
          "*-*~01..03 00:00:00",
          { 1769644800, 1769731200, 1769817600, 1772064000, 1772150400 } },
        { "Mon *-05~07/1",
          "Mon *-05~07/1 00:00:00",
          { 1779667200, 1811721600, 1843171200, 1874620800, 1906070400 } },
        { "*-*-* *:*:*",
          "*-*-* *:*:*",
          { 1767225601, 1767225602, 1767225603, 1767225604, 1767225605 } },
        { "*:*", "*-*-* *:*:00", { 1767225660, 1767225720, 1767225780, 1767225840, 1767225900 } },
        { "*:*:0/15",
          "*-*-* *:*:00/15",
          { 1767225615, 1767225630, 1767225645, 1767225660, 1767225675 } },
        { "minutely",
          "*-*-* *:*:00",
          { 1767225660, 1767225720, 1767225780, 1767225840, 1767225900 } },
        { "monthly",
          "*-*-01 00:00:00",
          { 1769904000, 1772323200, 1775001600, 1777593600, 1780272000 } },
        { "yearly",
          "*-01-01 00:00:00",
          { 1798761600, 1830297600, 1861920000, 1893456000, 1924992000 } },
        { "annually",
          "*-01-01 00:00:00",
          { 1798761600, 1830297600, 1861920000, 1893456000, 1924992000 } },
        { "Sun *-*-1..7 01:00",
          "Sun *-*-01..07 01:00:00",
          { 1767488400, 1769907600, 1772326800, 1775350800, 1777770000 } },
        { "*-*-* 02:30 Europe/Berlin",
          "*-*-* 02:30:00 Europe/Berlin",
          { 1767231000, 1767317400, 1767403800, 1767490200, 1767576600 } },
        { "*-*-* 02:30:00 America/New_York",
          "*-*-* 02:30:00 America/New_York",
          { 1767252600, 1767339000, 1767425400, 1767511800, 1767598200 } },
        { "*-03-* 02:*",
          "*-03-* 02:*:00",
          { 1772330400, 1772330460, 1772330520, 1772330580, 1772330640 } },
        { "2021-03-28 01:59:59 Europe/Berlin", "2021-03-28 01:59:59 Europe/Berlin", { 0 } },
        { "*-10-25,26,27 01..03:00 America/Sao_Paulo",
          "*-10-25,26,27 01..03:00:00 America/Sao_Paulo",
          { 1792900800, 1792904400, 1792908000, 1792987200, 1792990800 } },
        { "*:*:00.000001",
          "*-*-* *:*:00.000001",
          { 1767225600, 1767225660, 1767225720, 1767225780, 1767225840 } },
        { "*:*:0.5/1.25",
          "*-*-* *:*:00.500000/1.250000",
          { 1767225600, 1767225601, 1767225603, 1767225604, 1767225605 } },
        { "*-*-* *:*:59.999999",
          "*-*-* *:*:59.999999",
          { 1767225659, 1767225719, 1767225779, 1767225839, 1767225899 } },
        { "Mon..Fri 09:00",
          "Mon..Fri *-*-* 09:00:00",
          { 1767258000, 1767344400, 1767603600, 1767690000, 1767776400 } },
        { "*-*-01 03:00:00 Europe/Berlin",
          "*-*-01 03:00:00 Europe/Berlin",
          { 1767232800, 1769911200, 1772330400, 1775005200, 1777597200 } },
        { "Mon-Fri",
          "Mon..Fri *-*-* 00:00:00",
          { 1767312000, 1767571200, 1767657600, 1767744000, 1767830400 } },
        { "Sat..Sun,Mon..Fri 9:00",
          "*-*-* 09:00:00",
          { 1767258000, 1767344400, 1767430800, 1767517200, 1767603600 } },
        { "1999-12-31 23:59:59", "1999-12-31 23:59:59", { 0 } },
        { "2199-12-31 23:59:59", "2199-12-31 23:59:59", { 7258118399 } },
        { "2038-01-19 03:14:08", "2038-01-19 03:14:08", { 2147483648 } },
        { "*-*-29,30 0:0",
          "*-*-29,30 00:00:00",
          { 1769644800, 1769731200, 1774742400, 1774828800, 1777420800 } },
        { "*-02-29",
          "*-02-29 00:00:00",
          { 1835395200, 1961625600, 2087856000, 2214086400, 2340316800 } },
        { "Mon *-02-29",
          "Mon *-02-29 00:00:00",
          { 2340316800, 3223929600, 4486147200, 5369760000, 6253372800 } },
        { "*-*-* 00:00:00 Europe/Berlin",
          "*-*-* 00:00:00 Europe/Berlin",
          { 1767308400, 1767394800, 1767481200, 1767567600, 1767654000 } },
        { "*-*-* 00:00:00 UTC",
          "*-*-* 00:00:00 UTC",
          { 1767312000, 1767398400, 1767484800, 1767571200, 1767657600 } },
        { "daily Etc/GMT+5",
          "*-*-* 00:00:00 Etc/GMT+5",
          { 1767243600, 1767330000, 1767416400, 1767502800, 1767589200 } },
        { "daily America/Argentina/Buenos_Aires",
          "*-*-* 00:00:00 America/Argentina/Buenos_Aires",
          { 1767236400, 1767322800, 1767409200, 1767495600, 1767582000 } },
        { "1,2:3",
          "*-*-* 01,02:03:00",
          { 1767229380, 1767232980, 1767315780, 1767319380, 1767402180 } },
        { "*-*~*",
          "*-*-* 00:00:00",
          { 1767312000, 1767398400, 1767484800, 1767571200, 1767657600 } },
};

static const char *const malformed[] = {
        "*:0/60",
        "0/24:00",
        "*-*-31/40",
        "*-*~7..1",
        "*-*-* 00:00:00 Z",
        "Fri..Mon",
        "2200-1-1",
        "1969-1-1",
        "*:*:59.9999999",
        "Monday-",
        "*-*-* 24:00",
        "Mon 0..10/3 *",
        "daily Foo/Bar",
        "*-*-* 01:60",
        "00:00:00/5:00",
        "Mon-",
        "mon..",
        "Thursday..Tuesday",
        "UTC",
        "daily ../../etc/passwd",
        "*:*:*.5",
        "*-*-*-*",
        "*-*-* 1:2:3:4",
        "2/0:00",
        "0..70:00",
        "4294967296:00",
        "Mon,,Tue",
        "1..",
        "..1",
        "*/5:00",
};

static void utc_local_time(void) {
        ASSERT_OK_ERRNO(setenv("TZ", "UTC", 1));
        tzset();
}

/* The next @n elapses after @base, in seconds (0 after the last one). */
static void next_n(const CalendarSpec *spec, uint64_t base, int64_t *out, size_t n) {
        uint64_t t = base;

        for (size_t i = 0; i < n; i++)
                out[i] = 0;
        for (size_t i = 0; i < n; i++) {
                int r = calendar_spec_next(spec, t, &t);

                if (r == -ENOENT) {
                        out[i] = 0;
                        return;
                }
                ASSERT_OK(r);
                out[i] = (int64_t) (t / SEC);
        }
}

TEST(table_matches_systemd) {
        utc_local_time();
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
                _cleanup_free_ char *s = NULL;
                char err[256];
                int64_t next[5];

                ASSERT_OK(calendar_spec_from_string(good[i].spec, &spec, err, sizeof(err)));
                ASSERT_OK(calendar_spec_to_string(spec, &s));
                ASSERT_STREQ(s, good[i].normalized);
                next_n(spec, BASE * SEC, next, 5);
                for (size_t k = 0; k < 5; k++) {
                        ASSERT_EQ(next[k], good[i].next[k]);
                        if (good[i].next[k] == 0)
                                break;
                }
        }
}

TEST(normalized_form_parses_to_itself) {
        utc_local_time();
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(calendar_spec_freep) CalendarSpec *a = NULL, *b = NULL;
                _cleanup_free_ char *s = NULL, *t = NULL;

                ASSERT_OK(calendar_spec_from_string(good[i].spec, &a, NULL, 0));
                ASSERT_OK(calendar_spec_to_string(a, &s));
                ASSERT_OK(calendar_spec_from_string(s, &b, NULL, 0));
                ASSERT_OK(calendar_spec_to_string(b, &t));
                ASSERT_STREQ(s, t);
        }
}

TEST(malformed_specs_are_refused_with_a_reason) {
        utc_local_time();
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                CalendarSpec *spec = NULL;
                char err[256] = "unset";
                int r = calendar_spec_from_string(malformed[i], &spec, err, sizeof(err));

                ASSERT_TRUE(r == -EINVAL || r == -ERANGE || r == -ENOBUFS);
                ASSERT_NULL(spec);
                ASSERT_TRUE(err[0] != 0 && !streq(err, "unset"));
        }
}

static void assert_error(const char *spec, const char *needle) {
        CalendarSpec *c = NULL;
        char err[256];

        ASSERT_TRUE(calendar_spec_from_string(spec, &c, err, sizeof(err)) < 0);
        ASSERT_STR_CONTAINS(err, needle);
}

TEST(errors_name_the_problem) {
        utc_local_time();
        assert_error("*-*-* 24:00", "hour 24 is out of range 0..23");
        assert_error("*-*-* 01:60", "minute 60 is out of range 0..59");
        assert_error("*:*:59.9999999", "second 60 is out of range 0..59");
        assert_error("2200-01-01", "year 2200 is out of range 1970..2199");
        assert_error("*-13-01", "month 13 is out of range 1..12");
        assert_error("*-*-31/40", "repetition /40 of the day is too long");
        assert_error("Fri..Mon", "runs backwards");
        assert_error("*-*~7..1", "the day range 7..1 runs backwards");
        assert_error("daily Foo/Bar", "unknown time zone \"Foo/Bar\"");
        assert_error("Mon 09:00 Moon/Base", "unknown time zone \"Moon/Base\"");
        assert_error("dayly", "\"dayly\" is not a weekday, a shorthand");
        assert_error("2/0:00", "a repetition of 0");
        assert_error("4294967296:00", "number too large");
        assert_error("", "empty calendar specification");
        assert_error("*-*-* 1:2:3:4", "unexpected \":4\"");
        assert_error("Mon..", "open weekday range");
}

TEST(too_many_list_elements) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        CalendarSpec *c = NULL;

        ASSERT_NOT_NULL(f);
        fputs("*:*:", f);
        for (int i = 0; i < 300; i++)
                fprintf(f, "%s%d", i ? "," : "", i % 60);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_ERROR(calendar_spec_from_string(s, &c, NULL, 0), -ENOBUFS);
}

/* DST (Temporal's rule, and systemd's): a local time skipped by the change does not fire that
 * day; a local time that happens twice fires once, at its first occurrence. */
static void assert_next(const char *text, const char *base, const char *const *expected, size_t n) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        struct tm tm = {};
        uint64_t t;

        utc_local_time();
        ASSERT_OK(calendar_spec_from_string(text, &spec, NULL, 0));
        ASSERT_NOT_NULL(strptime(base, "%Y-%m-%d %H:%M:%S", &tm));
        t = (uint64_t) timegm(&tm) * SEC;
        for (size_t i = 0; i < n; i++) {
                struct tm e = {};

                ASSERT_OK(calendar_spec_next(spec, t, &t));
                ASSERT_NOT_NULL(strptime(expected[i], "%Y-%m-%d %H:%M:%S", &e));
                ASSERT_EQ(t / SEC, (uint64_t) timegm(&e));
        }
        /* The process's own zone is untouched by the computation in another zone. */
        ASSERT_STREQ(getenv("TZ"), "UTC");
}

TEST(dst_europe_berlin) {
        /* 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day. */
        assert_next("*-*-* 02:30 Europe/Berlin", "2026-03-28 12:00:00",
                    (const char *const[]){ "2026-03-30 00:30:00", "2026-03-31 00:30:00" }, 2);
        /* 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, fires once. */
        assert_next("*-*-* 02:30 Europe/Berlin", "2026-10-24 12:00:00",
                    (const char *const[]){ "2026-10-25 00:30:00", "2026-10-26 01:30:00" }, 2);
        assert_next("*:0/30 Europe/Berlin", "2026-10-25 00:15:00",
                    (const char *const[]){ "2026-10-25 00:30:00", "2026-10-25 02:00:00",
                                           "2026-10-25 02:30:00" },
                    3);
}

TEST(dst_america_new_york) {
        /* 2026-03-08: 02:00 EST becomes 03:00 EDT. */
        assert_next("*-*-* 02:30 America/New_York", "2026-03-07 12:00:00",
                    (const char *const[]){ "2026-03-09 06:30:00", "2026-03-10 06:30:00" }, 2);
        /* 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 fires once, in EDT. */
        assert_next("*-*-* 01:30 America/New_York", "2026-10-31 12:00:00",
                    (const char *const[]){ "2026-11-01 05:30:00", "2026-11-02 06:30:00" }, 2);
        /* The same spec in local time, with the process's zone set to New York. */
        {
                _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
                uint64_t t;

                ASSERT_OK_ERRNO(setenv("TZ", "America/New_York", 1));
                tzset();
                ASSERT_OK(calendar_spec_from_string("*-*-* 02:30", &spec, NULL, 0));
                ASSERT_OK(calendar_spec_next(spec, UINT64_C(1772884800) * SEC, &t));
                ASSERT_EQ(t / SEC, UINT64_C(1773037800)); /* 2026-03-09 06:30 UTC */
                utc_local_time();
        }
}

TEST(fractions_and_ends_of_months) {
        _cleanup_(calendar_spec_freep) CalendarSpec *a = NULL, *b = NULL;
        uint64_t t;

        utc_local_time();
        ASSERT_OK(calendar_spec_from_string("*:*:0/10.5", &a, NULL, 0));
        ASSERT_OK(calendar_spec_next(a, BASE * SEC, &t));
        ASSERT_EQ(t, (BASE + 10) * SEC + 500000);
        /* The last day of February in a leap year. */
        ASSERT_OK(calendar_spec_from_string("*-02~01", &b, NULL, 0));
        ASSERT_OK(calendar_spec_next(b, UINT64_C(1767225600) * SEC, &t));
        ASSERT_EQ(t / SEC, UINT64_C(1772236800)); /* 2026-02-28 */
        ASSERT_OK(calendar_spec_next(b, t, &t));
        ASSERT_EQ(t / SEC, UINT64_C(1803772800)); /* 2027-02-28 */
        ASSERT_OK(calendar_spec_next(b, t, &t));
        ASSERT_EQ(t / SEC, UINT64_C(1835395200)); /* 2028-02-29 */
}

/* ---- against the real systemd-analyze ---- */

/* Runs systemd-analyze calendar; fills the normalized form and the elapses in seconds (read from
 * the "(in UTC)" lines when the local zone is not UTC). Returns its exit status. */
static int analyze(const char *spec,
                   const char *tz,
                   int64_t base,
                   char *norm,
                   size_t normlen,
                   int64_t *next,
                   size_t n) {
        char cmd[1024], line[512], basearg[64];
        int fds[2], status;
        size_t k = 0;
        pid_t pid;
        FILE *f;

        snprintf(basearg, sizeof(basearg), "--base-time=@%lld", (long long) base);
        snprintf(cmd, sizeof(cmd), "--iterations=%zu", n);
        ASSERT_OK_ERRNO(pipe2(fds, O_CLOEXEC));
        pid = fork();
        ASSERT_OK_ERRNO(pid);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                (void) dup2(fds[1], 1);
                (void) dup2(null, 2);
                (void) setenv("TZ", tz, 1);
                (void) setenv("SYSTEMD_COLORS", "0", 1);
                execl(SYSTEMD_ANALYZE, "systemd-analyze", "calendar", basearg, cmd, spec, NULL);
                _exit(127);
        }
        (void) close(fds[1]);
        f = fdopen(fds[0], "r");
        ASSERT_NOT_NULL(f);
        *norm = 0;
        for (size_t i = 0; i < n; i++)
                next[i] = 0;
        while (fgets(line, sizeof(line), f)) {
                char *p = line + strspn(line, " "), *colon = strstr(p, ": ");
                struct tm tm = {};

                line[strcspn(line, "\n")] = 0;
                if (!colon)
                        continue;
                if (strncmp(p, "Normalized form:", 16) == 0)
                        snprintf(norm, normlen, "%s", colon + 2);
                else if ((strncmp(p, "(in UTC):", 9) == 0 || streq(tz, "UTC")) &&
                         (strncmp(p, "Next", 4) == 0 || strncmp(p, "Iter", 4) == 0 ||
                          strncmp(p, "(in UTC)", 8) == 0) &&
                         strptime(colon + 2, "%a %Y-%m-%d %H:%M:%S", &tm) && k < n)
                        next[k++] = (int64_t) timegm(&tm);
        }
        fclose(f);
        ASSERT_OK_ERRNO(waitpid(pid, &status, 0));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void compare_with_systemd(const char *spec, const char *tz, int64_t base) {
        _cleanup_(calendar_spec_freep) CalendarSpec *c = NULL;
        _cleanup_free_ char *s = NULL;
        char norm[256];
        int64_t theirs[5], ours[5];
        int status, r;

        status = analyze(spec, tz, base, norm, sizeof(norm), theirs, 5);
        ASSERT_OK_ERRNO(setenv("TZ", tz, 1));
        tzset();
        r = calendar_spec_from_string(spec, &c, NULL, 0);
        if (status != 0) {
                if (r >= 0)
                        fprintf(stderr, "systemd refuses '%s', we accept it\n", spec);
                ASSERT_TRUE(r < 0);
                return;
        }
        if (r < 0)
                fprintf(stderr, "systemd accepts '%s', we refuse it\n", spec);
        ASSERT_OK(r);
        ASSERT_OK(calendar_spec_to_string(c, &s));
        ASSERT_STREQ(s, norm);
        next_n(c, (uint64_t) base * SEC, ours, 5);
        for (size_t k = 0; k < 5; k++)
                ASSERT_EQ(ours[k], theirs[k]);
        utc_local_time();
}

TEST(systemd_analyze_agrees) {
        static const char *const dst_specs[] = {
                "*-*-* 02:30",
                "*-*-* 01:30",
                "*:30",
                "*:0/20 Europe/Berlin",
                "*:15 America/New_York",
                "*-*-* 02:30 Europe/Berlin",
                "*-*-* 01:30:00 America/New_York",
        };
        static const int64_t dst_bases[] = { 1774699200, 1792843200, 1772884800, 1793361600 };

        if (access(SYSTEMD_ANALYZE, X_OK) < 0)
                SKIP("%s is not installed", SYSTEMD_ANALYZE);
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                compare_with_systemd(good[i].spec, "UTC", BASE);
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                compare_with_systemd(malformed[i], "UTC", BASE);
        for (size_t b = 0; b < ELEMENTSOF(dst_bases); b++)
                for (size_t i = 0; i < ELEMENTSOF(dst_specs); i++) {
                        compare_with_systemd(dst_specs[i], "Europe/Berlin", dst_bases[b]);
                        compare_with_systemd(dst_specs[i], "America/New_York", dst_bases[b]);
                }
}

DEFINE_TEST_MAIN();
