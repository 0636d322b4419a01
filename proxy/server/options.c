/* options: a table of flags, each with a kind and a slot; `--flag value` and `--flag=value`
 * both work, as with Envoy's TCLAP. */
#include "proxy/server/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { FLAG_BOOL, FLAG_STRING, FLAG_U32, FLAG_U64, FLAG_MODE };

struct flag {
	const char *name;    /* long name without the dashes */
	char short_name;
	enum kind kind;
	size_t offset;
};

#define F(name, s, kind, member) {name, s, kind, offsetof(struct sk_options, member)}

static const struct flag flags[] = {
	F("config-path", 'c', FLAG_STRING, config_path),
	F("config-yaml", 0, FLAG_STRING, config_yaml),
	F("mode", 0, FLAG_MODE, mode),
	F("drain-time-s", 0, FLAG_U32, drain_time_s),
	F("drain-strategy", 0, FLAG_STRING, drain_strategy),
	F("parent-shutdown-time-s", 0, FLAG_U32, parent_shutdown_time_s),
	F("local-address-ip-version", 0, FLAG_STRING, local_address_ip_version),
	F("file-flush-interval-msec", 0, FLAG_U32, file_flush_interval_msec),
	F("file-flush-min-size-kb", 0, FLAG_U32, file_flush_min_size_kb),
	F("disable-hot-restart", 0, FLAG_BOOL, disable_hot_restart),
	F("allow-unknown-static-fields", 0, FLAG_BOOL, allow_unknown_static_fields),
	F("allow-unknown-fields", 0, FLAG_BOOL, allow_unknown_static_fields),
	F("reject-unknown-dynamic-fields", 0, FLAG_BOOL, reject_unknown_dynamic_fields),
	F("ignore-unknown-dynamic-fields", 0, FLAG_BOOL, ignore_unknown_dynamic_fields),
	F("log-level", 'l', FLAG_STRING, log_level),
	F("component-log-level", 0, FLAG_STRING, component_log_level),
	F("log-format", 0, FLAG_STRING, log_format),
	F("log-path", 0, FLAG_STRING, log_path),
	F("log-format-escaped", 0, FLAG_BOOL, log_format_escaped),
	F("concurrency", 0, FLAG_U32, concurrency),
	F("skip-deprecated-logs", 0, FLAG_BOOL, skip_deprecated_logs),
	F("enable-core-dump", 0, FLAG_BOOL, enable_core_dump),
	F("service-node", 0, FLAG_STRING, service_node),
	F("service-cluster", 0, FLAG_STRING, service_cluster),
	F("service-zone", 0, FLAG_STRING, service_zone),
	F("base-id", 0, FLAG_U64, base_id),
	F("use-dynamic-base-id", 0, FLAG_BOOL, use_dynamic_base_id),
	F("base-id-path", 0, FLAG_STRING, base_id_path),
	F("restart-epoch", 0, FLAG_U32, restart_epoch),
	F("enable-fine-grain-logging", 0, FLAG_BOOL, enable_fine_grain_logging),
	F("disable-extensions", 0, FLAG_STRING, disable_extensions),
	F("cpuset-threads", 0, FLAG_BOOL, cpuset_threads),
	F("admin-address-path", 0, FLAG_STRING, admin_address_path),
	F("socket-path", 0, FLAG_STRING, socket_path),
	F("socket-mode", 0, FLAG_U32, socket_mode),
	F("enable-mutex-tracing", 0, FLAG_BOOL, enable_mutex_tracing),
	F("version", 0, FLAG_BOOL, version),
	F("help", 'h', FLAG_BOOL, help),
};

const char *sk_options_usage(void)
{
	return "USAGE: skiff [-c <path>] [--config-yaml <yaml>] [--mode <serve|validate|init_only>]\n"
	       "             [--allow-unknown-static-fields] [-l <level>] [--component-log-level <c:l,...>]\n"
	       "             [--log-format <format>] [--log-path <path>] [--concurrency <n>]\n"
	       "             [--drain-time-s <s>] [--drain-strategy <gradual|immediate>]\n"
	       "             [--local-address-ip-version <v4|v6>] [--file-flush-interval-msec <ms>]\n"
	       "             [--disable-hot-restart] [--service-node <id>] [--service-cluster <name>]\n"
	       "             [--service-zone <zone>] [--base-id <n>] [--version] [-h]\n"
	       "Envoy-compatible flags; see README.md for the full list.\n";
}

const char *sk_mode_name(enum sk_mode mode)
{
	return mode == SK_MODE_VALIDATE ? "Validate" : mode == SK_MODE_INIT_ONLY ? "InitOnly" : "Serve";
}

static const struct flag *find(const char *arg, size_t len, bool is_long)
{
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (is_long ? strlen(flags[i].name) == len && strncmp(flags[i].name, arg, len) == 0
			    : len == 1 && flags[i].short_name == arg[0])
			return &flags[i];
	}
	return NULL;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno == ERANGE || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int set_value(struct sk_options *o, const struct flag *f, const char *value, char *err,
		     size_t errlen)
{
	void *slot = (char *)o + f->offset;
	uint64_t v;

	switch (f->kind) {
	case FLAG_BOOL:
		*(bool *)slot = true;
		return 0;
	case FLAG_STRING:
		*(const char **)slot = value;
		return 0;
	case FLAG_U32:
	case FLAG_U64:
		if (parse_uint(value, f->kind == FLAG_U32 ? UINT32_MAX : UINT64_MAX, &v) < 0) {
			snprintf(err, errlen, "--%s: '%s' is not a valid number", f->name, value);
			return -EINVAL;
		}
		if (f->kind == FLAG_U32)
			*(uint32_t *)slot = (uint32_t)v;
		else
			*(uint64_t *)slot = v;
		return 0;
	case FLAG_MODE:
		if (strcmp(value, "serve") == 0)
			o->mode = SK_MODE_SERVE;
		else if (strcmp(value, "validate") == 0)
			o->mode = SK_MODE_VALIDATE;
		else if (strcmp(value, "init_only") == 0)
			o->mode = SK_MODE_INIT_ONLY;
		else {
			snprintf(err, errlen, "--mode: '%s' is not one of serve, validate, init_only",
				 value);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

int sk_options_parse(struct sk_options *o, int argc, char **argv, char *err, size_t errlen)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->mode = SK_MODE_SERVE;
	o->drain_time_s = 600;
	o->parent_shutdown_time_s = 900;
	o->drain_strategy = "gradual";
	o->local_address_ip_version = "v4";
	o->file_flush_interval_msec = 10000;
	o->file_flush_min_size_kb = 64;
	o->log_level = "info";
	o->socket_mode = 0600;
	o->argc = argc;
	o->argv = argv;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *value = NULL;
		const struct flag *f;
		bool is_long;
		size_t len;

		if (arg[0] != '-' || arg[1] == '\0') {
			snprintf(err, errlen, "unexpected argument '%s'", arg);
			return -EINVAL;
		}
		is_long = arg[1] == '-';
		name = arg + (is_long ? 2 : 1);
		eq = is_long ? strchr(name, '=') : NULL;
		len = eq ? (size_t)(eq - name) : strlen(name);
		f = find(name, len, is_long);
		if (f == NULL) {
			snprintf(err, errlen, "unknown flag '%s'", arg);
			return -EINVAL;
		}
		if (f->kind != FLAG_BOOL) {
			if (eq)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				snprintf(err, errlen, "flag '%s' needs a value", arg);
				return -EINVAL;
			}
		} else if (eq) {
			snprintf(err, errlen, "flag '--%s' takes no value", f->name);
			return -EINVAL;
		}
		if (set_value(o, f, value, err, errlen) < 0)
			return -EINVAL;
	}
	if (strcmp(o->drain_strategy, "gradual") != 0 && strcmp(o->drain_strategy, "immediate") != 0) {
		snprintf(err, errlen, "--drain-strategy: '%s' is not one of gradual, immediate",
			 o->drain_strategy);
		return -EINVAL;
	}
	if (strcmp(o->local_address_ip_version, "v4") != 0 &&
	    strcmp(o->local_address_ip_version, "v6") != 0) {
		snprintf(err, errlen, "--local-address-ip-version: '%s' is not one of v4, v6",
			 o->local_address_ip_version);
		return -EINVAL;
	}
	return 0;
}
