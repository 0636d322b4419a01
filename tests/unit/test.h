/* test.h: the tiny harness of skiff's unit tests. Each test program counts checks and ends
 * with "N passed, N failed" (the line tests/run_all.sh sums); it exits 1 on any failure. */
#ifndef SKIFF_TESTS_TEST_H
#define SKIFF_TESTS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sk_test_passed, sk_test_failed, sk_test_skipped;

/* A case that cannot run here (missing corpus): said and counted, never silently passed. */
#define SKIP(...) (printf("skip: " __VA_ARGS__), printf("\n"), sk_test_skipped++)

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (cond) {                                                             \
			sk_test_passed++;                                               \
		} else {                                                                \
			sk_test_failed++;                                               \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                       \
	} while (0)

#define CHECK_STR(got, want)                                                            \
	do {                                                                            \
		const char *g_ = (got), *w_ = (want);                                   \
		if (g_ != NULL && strcmp(g_, w_) == 0) {                                \
			sk_test_passed++;                                               \
		} else {                                                                \
			sk_test_failed++;                                               \
			fprintf(stderr, "FAIL %s:%d: %s\n  got:  %s\n  want: %s\n",     \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_);      \
		}                                                                       \
	} while (0)

/* Substring check: error messages must name what was wrong and where. */
#define CHECK_CONTAINS(got, needle)                                                     \
	do {                                                                            \
		const char *g_ = (got), *n_ = (needle);                                 \
		if (g_ != NULL && strstr(g_, n_) != NULL) {                             \
			sk_test_passed++;                                               \
		} else {                                                                \
			sk_test_failed++;                                               \
			fprintf(stderr, "FAIL %s:%d: %s\n  got:  %s\n  want substring: %s\n", \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)", n_);      \
		}                                                                       \
	} while (0)

/* Where ../shared/conformance is: $SKIFF_CONFORMANCE (set by tests/run_all.sh), else the
 * path seen from the source tree at build time. */
#ifdef SKIFF_CONFORMANCE_DIR
static inline const char *sk_test_conformance_dir(void)
{
	const char *env = getenv("SKIFF_CONFORMANCE");

	return env && *env ? env : SKIFF_CONFORMANCE_DIR;
}
#endif

#define TEST_SUMMARY()                                                                  \
	(printf("%d passed, %d failed, %d skipped\n", sk_test_passed, sk_test_failed,   \
		sk_test_skipped),                                                       \
	 sk_test_failed ? 1 : 0)

#endif
