/* options_test: Envoy's command line as pilot-agent passes it, and the errors. */
#include "test.h"
#include "proxy/server/options.h"

#define ARGV(...) ((char *[]){"skiff", __VA_ARGS__, NULL})

static char err[512];

static int parse(struct sk_options *o, char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	return sk_options_parse(o, argc, argv, err, sizeof(err));
}

int main(void)
{
	struct sk_options o;
	char **pilot = ARGV("-c", "./etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45",
			    "--drain-strategy", "immediate", "--local-address-ip-version", "v4",
			    "--file-flush-interval-msec", "1000", "--disable-hot-restart",
			    "--allow-unknown-static-fields", "-l", "warning", "--component-log-level",
			    "misc:error", "--concurrency", "2", "--config-yaml", "{}",
			    "--file-flush-min-size-kb", "64", "--skip-deprecated-logs", "--enable-core-dump");
	CHECK(parse(&o, pilot) == 0);
	CHECK_STR(o.config_path, "./etc/istio/proxy/envoy-rev.json");
	CHECK(o.drain_time_s == 45);
	CHECK_STR(o.drain_strategy, "immediate");
	CHECK(o.file_flush_interval_msec == 1000);
	CHECK(o.disable_hot_restart && o.allow_unknown_static_fields);
	CHECK_STR(o.log_level, "warning");
	CHECK_STR(o.component_log_level, "misc:error");
	CHECK(o.concurrency == 2);
	CHECK_STR(o.config_yaml, "{}");
	CHECK(o.file_flush_min_size_kb == 64 && o.skip_deprecated_logs && o.enable_core_dump);
	CHECK(o.mode == SK_MODE_SERVE);

	/* defaults */
	{
		char **v = ARGV("--version");

		CHECK(parse(&o, v) == 0);
		CHECK(o.version && o.drain_time_s == 600 && o.concurrency == 0);
		CHECK_STR(o.log_level, "info");
	}
	{
		char **v = ARGV("--mode=validate", "--config-path=/x.yaml", "--service-node", "n",
				"--service-cluster", "c", "--base-id", "18446744073709551615");

		CHECK(parse(&o, v) == 0);
		CHECK(o.mode == SK_MODE_VALIDATE);
		CHECK_STR(o.config_path, "/x.yaml");
		CHECK_STR(o.service_node, "n");
		CHECK(o.base_id == UINT64_MAX);
	}
	{
		char **v = ARGV("--bogus");

		CHECK(parse(&o, v) < 0);
		CHECK_CONTAINS(err, "unknown flag '--bogus'");
	}
	{
		char **v = ARGV("-c");

		CHECK(parse(&o, v) < 0);
		CHECK_CONTAINS(err, "needs a value");
	}
	{
		char **v = ARGV("--mode", "fly");

		CHECK(parse(&o, v) < 0);
		CHECK_CONTAINS(err, "--mode: 'fly'");
	}
	{
		char **v = ARGV("--concurrency", "two");

		CHECK(parse(&o, v) < 0);
		CHECK_CONTAINS(err, "--concurrency: 'two' is not a valid number");
	}
	{
		char **v = ARGV("--concurrency", "4294967296");

		CHECK(parse(&o, v) < 0);
	}
	{
		char **v = ARGV("--drain-strategy", "slow");

		CHECK(parse(&o, v) < 0);
	}
	{
		char **v = ARGV("--local-address-ip-version", "v5");

		CHECK(parse(&o, v) < 0);
	}
	{
		char **v = ARGV("--disable-hot-restart=yes");

		CHECK(parse(&o, v) < 0);
		CHECK_CONTAINS(err, "takes no value");
	}
	{
		char **v = ARGV("config.json");

		CHECK(parse(&o, v) < 0);
		CHECK_CONTAINS(err, "unexpected argument");
	}
	CHECK(strstr(sk_options_usage(), "USAGE") != NULL);
	return TEST_SUMMARY();
}
