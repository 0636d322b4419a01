/* log_test: levels per component, --component-log-level parsing, the line format. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "proxy/log/log.h"

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[8192];
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(void)
{
	char err[256], path[] = "/tmp/skiff-log-test-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	CHECK(sk_log_level_parse("warning") == SK_LOG_WARN);
	CHECK(sk_log_level_parse("warn") == SK_LOG_WARN);
	CHECK(sk_log_level_parse("trace") == SK_LOG_TRACE);
	CHECK(sk_log_level_parse("loud") == -1);
	CHECK(sk_log_component_find("upstream") == SK_LOG_UPSTREAM);
	CHECK(sk_log_component_find("nope") == -1);

	sk_log_set_level_all(SK_LOG_WARN);
	CHECK(sk_log_set_component_levels("misc:error,upstream:debug", err, sizeof(err)) == 0);
	CHECK(sk_log_get_level(SK_LOG_MISC) == SK_LOG_ERROR);
	CHECK(sk_log_get_level(SK_LOG_UPSTREAM) == SK_LOG_DEBUG);
	CHECK(sk_log_get_level(SK_LOG_MAIN) == SK_LOG_WARN);
	CHECK(sk_log_set_component_levels("misc", err, sizeof(err)) < 0);
	CHECK_CONTAINS(err, "not <component>:<level>");
	CHECK(sk_log_set_component_levels("nope:info", err, sizeof(err)) < 0);
	CHECK_CONTAINS(err, "unknown component");
	CHECK(sk_log_set_component_levels("misc:loud", err, sizeof(err)) < 0);
	CHECK_CONTAINS(err, "unknown level");
	CHECK(!sk_log_enabled(SK_LOG_MISC, SK_LOG_WARN));
	CHECK(sk_log_enabled(SK_LOG_UPSTREAM, SK_LOG_DEBUG));

	CHECK(sk_log_set_path(path) == 0);
	sk_log_set_format("%l|%L|%n|%v|%%|%j");
	sk_log_warn(SK_LOG_MAIN, "hello \"%s\"", "world");
	sk_log_info(SK_LOG_MAIN, "filtered out");
	sk_log_set_format("[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v");
	sk_log_error(SK_LOG_CONFIG, "second");
	sk_log_set_path(NULL);
	{
		char *got = read_all(path);

		CHECK_CONTAINS(got, "warning|W|main|hello \"world\"|%|hello \\\"world\\\"\n");
		CHECK(got && strstr(got, "filtered out") == NULL);
		CHECK_CONTAINS(got, "][error][config] [tests/unit/proxy/log/log_test.c:");
		CHECK_CONTAINS(got, "] second\n");
	}
	unlink(path);
	return TEST_SUMMARY();
}
