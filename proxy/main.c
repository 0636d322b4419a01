/* skiff: an Envoy-compatible sidecar proxy. main() parses Envoy's command line, loads the
 * bootstrap, and either validates it (--mode validate) or serves. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log/log.h"
#include "proxy/server/listener_manager.h"
#include "proxy/server/options.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/server.h"
#include "xds/bootstrap.h"

static void on_unknown_field(void *ctx, const char *path, const char *what)
{
	const char *source = ctx;

	sk_log_warn(SK_LOG_CONFIG, "%s: %s: %s (ignored: --allow-unknown-static-fields)", source,
		    path, what);
}

static int setup_logging(const struct sk_options *o, char *err, size_t errlen)
{
	int level = sk_log_level_parse(o->log_level);

	if (level < 0) {
		snprintf(err, errlen, "-l/--log-level: '%s' is not a log level (trace, debug, info, "
			 "warning, error, critical, off)", o->log_level);
		return -EINVAL;
	}
	sk_log_set_level_all((enum sk_log_level)level);
	if (o->component_log_level &&
	    sk_log_set_component_levels(o->component_log_level, err, errlen) < 0)
		return -EINVAL;
	if (o->log_format)
		sk_log_set_format(o->log_format);
	if (o->log_path && sk_log_set_path(o->log_path) < 0) {
		snprintf(err, errlen, "--log-path: cannot open '%s': %s", o->log_path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sk_options opts;
	struct sk_bootstrap_load_opts lo = {0};
	struct sk_server server;
	sk_bootstrap_pb *bootstrap;
	unsigned unknown = 0;
	char err[2048];

	if (sk_options_parse(&opts, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "PARSE ERROR: %s\n\n%s", err, sk_options_usage());
		return 1;
	}
	if (opts.help) {
		fputs(sk_options_usage(), stdout);
		return 0;
	}
	if (opts.version) {
		printf("\nskiff  version: skiff/%s/Clean/RELEASE/OpenSSL\n\n", SKIFF_VERSION);
		return 0;
	}
	/* A peer that resets mid-write must not kill the process (splice has no MSG_NOSIGNAL). */
	signal(SIGPIPE, SIG_IGN);
	if (setup_logging(&opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}

	lo.path = opts.config_path;
	lo.config_yaml = opts.config_yaml;
	lo.allow_unknown = opts.allow_unknown_static_fields;
	lo.warn = on_unknown_field;
	lo.warn_ctx = (void *)(opts.config_path ? opts.config_path : "--config-yaml");
	if (sk_bootstrap_load(&lo, &bootstrap, &unknown, err, sizeof(err)) < 0) {
		if (opts.mode == SK_MODE_VALIDATE)
			fprintf(stderr, "error initializing configuration '%s': %s\n",
				opts.config_path ? opts.config_path : "", err);
		else
			sk_log_critical(SK_LOG_MAIN, "error initializing configuration '%s': %s",
					opts.config_path ? opts.config_path : "", err);
		return 1;
	}
	if (opts.mode == SK_MODE_VALIDATE) {
		/* What the server would build from the bootstrap is checked too. */
		struct sk_stats_store *store = sk_server_stats_store_new(bootstrap, err, sizeof(err));
		struct sk_snapshot *snap = store ? sk_lm_build(bootstrap, store, sk_stats_main_shard(store),
							       NULL, NULL, 1, false, err, sizeof(err))
					       : NULL;

		sk_snapshot_unref(snap);
		sk_bootstrap_free(bootstrap);
		if (snap == NULL) {
			sk_stats_store_free(store);
			fprintf(stderr, "error initializing configuration '%s': %s\n",
				opts.config_path ? opts.config_path : "", err);
			return 1;
		}
		sk_stats_store_free(store);
		printf("configuration '%s' OK\n", opts.config_path ? opts.config_path : "");
		return 0;
	}

	sk_log_info(SK_LOG_MAIN, "initializing skiff %s", SKIFF_VERSION);
	if (sk_server_init(&server, &opts, bootstrap, unknown, err, sizeof(err)) < 0) {
		sk_log_critical(SK_LOG_MAIN, "error initializing server: %s", err);
		sk_server_destroy(&server);
		return 1;
	}
	if (opts.mode == SK_MODE_SERVE)
		sk_server_run(&server);
	sk_log_info(SK_LOG_MAIN, "exiting");
	sk_server_destroy(&server);
	ev_loop_destroy(EV_DEFAULT);
	return 0;
}
