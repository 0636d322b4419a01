/* options: Envoy-compatible command line (the flags pilot-agent passes and Envoy's other
 * common ones). Strings point into argv; the struct is owned by the caller. */
#ifndef SKIFF_PROXY_OPTIONS_H
#define SKIFF_PROXY_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sk_mode { SK_MODE_SERVE, SK_MODE_VALIDATE, SK_MODE_INIT_ONLY };

struct sk_options {
	const char *config_path;       /* -c, --config-path */
	const char *config_yaml;       /* --config-yaml */
	enum sk_mode mode;             /* --mode serve|validate|init_only */
	uint32_t drain_time_s;         /* --drain-time-s (600) */
	const char *drain_strategy;    /* --drain-strategy gradual|immediate */
	uint32_t parent_shutdown_time_s;
	const char *local_address_ip_version; /* v4|v6 */
	uint32_t file_flush_interval_msec;
	uint32_t file_flush_min_size_kb;
	bool disable_hot_restart;
	bool allow_unknown_static_fields;
	bool reject_unknown_dynamic_fields;
	bool ignore_unknown_dynamic_fields;
	const char *log_level;         /* -l, --log-level */
	const char *component_log_level;
	const char *log_format;
	const char *log_path;
	bool log_format_escaped;
	uint32_t concurrency;          /* --concurrency (0: number of CPUs) */
	bool skip_deprecated_logs;
	bool enable_core_dump;
	const char *service_node;
	const char *service_cluster;
	const char *service_zone;
	uint64_t base_id;
	bool use_dynamic_base_id;
	const char *base_id_path;
	uint32_t restart_epoch;
	bool enable_fine_grain_logging;
	const char *disable_extensions;
	bool cpuset_threads;
	const char *admin_address_path;
	const char *socket_path;
	uint32_t socket_mode;
	bool enable_mutex_tracing;
	bool version;                  /* --version */
	bool help;                     /* -h, --help */
	int argc;
	char **argv;
};

/* Parses argv into o (defaults first). Returns 0, or -EINVAL with a message in err naming
 * the offending flag. */
int sk_options_parse(struct sk_options *o, int argc, char **argv, char *err, size_t errlen);

/* The usage text (--help and after a bad flag). */
const char *sk_options_usage(void);

const char *sk_mode_name(enum sk_mode mode);

#endif
