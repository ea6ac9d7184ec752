#pragma once
/* The test framework: TEST(name) { ... } defines a test case that registers itself at start-up;
 * DEFINE_TEST_MAIN() runs them all in source order, or only those named on the command line.
 *
 * A failed ASSERT_*() prints file:line, the expression and both values, kills every process the
 * harness (tests/lib/daemon.h) started, and ends the executable with exit status 1: the first
 * failure ends the run. SKIP() ends the current test as skipped; an executable whose every test
 * was skipped exits 77, which meson counts as SKIP. Otherwise the exit status is 0.
 *
 * The ASSERT_*() macros are statement expressions that evaluate each argument exactly once;
 * ASSERT_OK(), ASSERT_OK_ERRNO() and ASSERT_NOT_NULL() yield their argument's value:
 *         _cleanup_close_ int fd = ASSERT_OK_ERRNO(open(path, O_RDONLY | O_CLOEXEC));
 * Integers are compared by value across signedness (ASSERT_EQ(size, 3) with a size_t is fine). */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

typedef struct TestCase TestCase;
struct TestCase {
        const char *name;
        void (*func)(void);
        int line;
        TestCase *next;
};

/* Called from TEST()'s constructor; keeps the list sorted by line. */
void test_register(TestCase *t);
/* Runs the tests named in argv (all when none): "--list" prints the names. Returns the exit status. */
int test_main(int argc, char **argv);
/* The name of the test that is running, or NULL outside of one. */
const char *test_current(void);

#define TEST(tname)                                                                             \
        static void test_##tname(void);                                                         \
        __attribute__((constructor)) static void test_register_##tname(void) {                  \
                static TestCase t = { .name = #tname, .func = test_##tname, .line = __LINE__ }; \
                test_register(&t);                                                              \
        }                                                                                       \
        static void test_##tname(void)

#define DEFINE_TEST_MAIN()                    \
        int main(int argc, char **argv) {     \
                return test_main(argc, argv); \
        }

/* Ends the current test as skipped; use it in the TEST() body itself (it returns). */
#define SKIP(...)                                                   \
        do {                                                        \
                test_mark_skipped(__FILE__, __LINE__, __VA_ARGS__); \
                return;                                             \
        } while (0)
void test_mark_skipped(const char *file, int line, const char *fmt, ...) _printf_(3, 4);

/* Ends the run as failed: prints "file:line: <message>", runs the fail hooks, _exit(1). */
_noreturn_ void test_fail(const char *file, int line, const char *fmt, ...) _printf_(3, 4);

/* A fail hook runs when an assertion fails, before the process exits (newest first). The harness
 * uses it to kill and reap its children; tests rarely need it. @h must stay valid until removed. */
typedef struct TestFailHook TestFailHook;
struct TestFailHook {
        void (*func)(void *userdata);
        void *userdata;
        TestFailHook *prev, *next;
};
void test_fail_hook_add(TestFailHook *h, void (*func)(void *userdata), void *userdata);
void test_fail_hook_remove(TestFailHook *h);

/* Describes a return value: "-2 (ENOENT: No such file or directory)" for a negative errno. */
const char *test_errno_str(intmax_t r, char buf[static 128]);

/* An integer with its signedness, so that values of different types compare by value. */
typedef struct TestInt {
        uintmax_t bits;
        bool is_signed;
} TestInt;
int test_int_cmp(TestInt a, TestInt b);
const char *test_int_str(TestInt a, char buf[static 32]);

#define TEST_IS_SIGNED_(x)                                                               \
        _Generic((x), signed char : 1, short : 1, int : 1, long : 1, long long : 1, char \
                 : (char) -1 < 0, default : 0)
#define TEST_INT_(x) ((TestInt){ .bits = (uintmax_t) (x), .is_signed = TEST_IS_SIGNED_(x) })

#define ASSERT_TRUE(expr)                                                                 \
        ({                                                                                \
                if (!(expr))                                                              \
                        test_fail(__FILE__, __LINE__,                                     \
                                  "Assertion failed: expected \"%s\" to be true", #expr); \
        })
#define ASSERT_FALSE(expr)                                                                 \
        ({                                                                                 \
                if ((expr))                                                                \
                        test_fail(__FILE__, __LINE__,                                      \
                                  "Assertion failed: expected \"%s\" to be false", #expr); \
        })

/* expr >= 0 (a negative errno return convention); yields the value. */
#define ASSERT_OK(expr)                                                                       \
        ({                                                                                    \
                __typeof__(expr) _ao = (expr);                                                \
                if (_ao < 0) {                                                                \
                        char _ao_buf[128];                                                    \
                        test_fail(__FILE__, __LINE__, "Assertion failed: \"%s\" returned %s", \
                                  #expr, test_errno_str(_ao, _ao_buf));                       \
                }                                                                             \
                _ao;                                                                          \
        })
/* expr >= 0 for calls that return -1 and set errno (syscalls); yields the value. */
#define ASSERT_OK_ERRNO(expr)                                                                \
        ({                                                                                   \
                __typeof__(expr) _aoe = (expr);                                              \
                if (_aoe < 0) {                                                              \
                        char _aoe_buf[128];                                                  \
                        test_fail(__FILE__, __LINE__, "Assertion failed: \"%s\" failed: %s", \
                                  #expr, test_errno_str(-errno, _aoe_buf));                  \
                }                                                                            \
                _aoe;                                                                        \
        })
/* expr returns exactly the negative errno @error, e.g. ASSERT_ERROR(f(), -EINVAL). */
#define ASSERT_ERROR(expr, error)                                                                 \
        ({                                                                                        \
                intmax_t _ae = (expr), _ae_want = (error);                                        \
                if (_ae != _ae_want) {                                                            \
                        char _ae_b1[128], _ae_b2[128];                                            \
                        test_fail(__FILE__, __LINE__,                                             \
                                  "Assertion failed: \"%s\" returned %s, expected %s", #expr,     \
                                  test_errno_str(_ae, _ae_b1), test_errno_str(_ae_want, _ae_b2)); \
                }                                                                                 \
        })

#define ASSERT_CMP_(a, op, b)                                                                         \
        ({                                                                                            \
                __typeof__(a) _ac_a = (a);                                                            \
                __typeof__(b) _ac_b = (b);                                                            \
                TestInt _ac_ia = TEST_INT_(_ac_a), _ac_ib = TEST_INT_(_ac_b);                         \
                if (!(test_int_cmp(_ac_ia, _ac_ib) op 0)) {                                           \
                        char _ac_sa[32], _ac_sb[32];                                                  \
                        test_fail(                                                                    \
                                __FILE__, __LINE__,                                                   \
                                "Assertion failed: expected \"%s %s %s\", but %s is %s and %s is %s", \
                                #a, #op, #b, #a, test_int_str(_ac_ia, _ac_sa), #b,                    \
                                test_int_str(_ac_ib, _ac_sb));                                        \
                }                                                                                     \
        })
/* Integer comparisons (also bool and enums); pointers use ASSERT_PTR_EQ(). */
#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)

#define ASSERT_PTR_EQ(a, b)                                                                        \
        ({                                                                                         \
                const void *_ap_a = (a), *_ap_b = (b);                                             \
                if (_ap_a != _ap_b)                                                                \
                        test_fail(__FILE__, __LINE__,                                              \
                                  "Assertion failed: expected \"%s == %s\", but %p != %p", #a, #b, \
                                  _ap_a, _ap_b);                                                   \
        })
#define ASSERT_NULL(expr) ASSERT_PTR_EQ(expr, NULL)
#define ASSERT_NOT_NULL(expr)                                                                     \
        ({                                                                                        \
                __typeof__(expr) _ann = (expr);                                                   \
                if (!_ann)                                                                        \
                        test_fail(__FILE__, __LINE__, "Assertion failed: \"%s\" is NULL", #expr); \
                _ann;                                                                             \
        })

/* String comparisons; NULL is allowed and equals only NULL. */
#define ASSERT_STREQ(a, b)                                                                         \
        ({                                                                                         \
                const char *_as_a = (a), *_as_b = (b);                                             \
                if (!test_str_eq(_as_a, _as_b))                                                    \
                        test_fail(__FILE__, __LINE__,                                              \
                                  "Assertion failed: expected \"%s == %s\", but \"%s\" != \"%s\"", \
                                  #a, #b, test_str_or_null(_as_a), test_str_or_null(_as_b));       \
        })
#define ASSERT_STRNE(a, b)                                                                        \
        ({                                                                                        \
                const char *_asn_a = (a), *_asn_b = (b);                                          \
                if (test_str_eq(_asn_a, _asn_b))                                                  \
                        test_fail(__FILE__, __LINE__,                                             \
                                  "Assertion failed: expected \"%s != %s\", but both are \"%s\"", \
                                  #a, #b, test_str_or_null(_asn_a));                              \
        })
/* @haystack contains @needle (for command output). */
#define ASSERT_STR_CONTAINS(haystack, needle)                                                      \
        ({                                                                                         \
                const char *_asc_h = (haystack), *_asc_n = (needle);                               \
                if (!_asc_h || !_asc_n || !strstr(_asc_h, _asc_n))                                 \
                        test_fail(                                                                 \
                                __FILE__, __LINE__,                                                \
                                "Assertion failed: expected \"%s\" to contain \"%s\", but \"%s\" " \
                                "does not contain \"%s\"",                                         \
                                #haystack, #needle, test_str_or_null(_asc_h),                      \
                                test_str_or_null(_asc_n));                                         \
        })

static inline bool test_str_eq(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}
static inline const char *test_str_or_null(const char *s) {
        return s ? s : "(null)";
}
