/* log: Envoy-style application logs: named loggers (components) with levels, spdlog-like
 * format patterns, written to stderr or --log-path. Process-wide; thread-safe writes. */
#ifndef SKIFF_PROXY_LOG_H
#define SKIFF_PROXY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum sk_log_level {
	SK_LOG_TRACE,
	SK_LOG_DEBUG,
	SK_LOG_INFO,
	SK_LOG_WARN,
	SK_LOG_ERROR,
	SK_LOG_CRITICAL,
	SK_LOG_OFF,
};

/* Envoy's logger ids that skiff uses; names are in sk_log_component_name(). */
enum sk_log_component {
	SK_LOG_ADMIN,
	SK_LOG_CONFIG,
	SK_LOG_CONNECTION,
	SK_LOG_CONN_HANDLER,
	SK_LOG_DNS,
	SK_LOG_FILE,
	SK_LOG_FILTER,
	SK_LOG_GRPC,
	SK_LOG_HC,
	SK_LOG_HTTP,
	SK_LOG_HTTP2,
	SK_LOG_INIT,
	SK_LOG_MAIN,
	SK_LOG_MISC,
	SK_LOG_POOL,
	SK_LOG_RBAC,
	SK_LOG_ROUTER,
	SK_LOG_RUNTIME,
	SK_LOG_SECRET,
	SK_LOG_STATS,
	SK_LOG_TRACING,
	SK_LOG_UPSTREAM,
	SK_LOG_WASM,
	SK_LOG_COMPONENTS
};

/* Default format: "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v". Returns -EINVAL on NULL. */
int sk_log_set_format(const char *pattern);
/* Opens path for appending (NULL: stderr). Returns 0 or -errno. */
int sk_log_set_path(const char *path);
void sk_log_set_level_all(enum sk_log_level level);
void sk_log_set_level(enum sk_log_component c, enum sk_log_level level);
enum sk_log_level sk_log_get_level(enum sk_log_component c);

/* "info" -> SK_LOG_INFO ("warn" and "warning" both accepted). -1 when unknown. */
int sk_log_level_parse(const char *name);
const char *sk_log_level_name(enum sk_log_level level);
const char *sk_log_component_name(enum sk_log_component c);
int sk_log_component_find(const char *name); /* -1 when unknown */

/* "upstream:debug,connection:trace" (--component-log-level). -EINVAL with err on error. */
int sk_log_set_component_levels(const char *spec, char *err, size_t errlen);

bool sk_log_enabled(enum sk_log_component c, enum sk_log_level level);
void sk_log_write(enum sk_log_component c, enum sk_log_level level, const char *file, int line,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define sk_log(c, lvl, ...)                                                             \
	do {                                                                            \
		if (sk_log_enabled((c), (lvl)))                                         \
			sk_log_write((c), (lvl), __FILE__, __LINE__, __VA_ARGS__);      \
	} while (0)
#define sk_log_debug(c, ...) sk_log((c), SK_LOG_DEBUG, __VA_ARGS__)
#define sk_log_info(c, ...) sk_log((c), SK_LOG_INFO, __VA_ARGS__)
#define sk_log_warn(c, ...) sk_log((c), SK_LOG_WARN, __VA_ARGS__)
#define sk_log_error(c, ...) sk_log((c), SK_LOG_ERROR, __VA_ARGS__)
#define sk_log_critical(c, ...) sk_log((c), SK_LOG_CRITICAL, __VA_ARGS__)

#endif
