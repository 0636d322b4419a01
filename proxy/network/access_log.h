/* access_log: Envoy's file access log for TCP connections and HTTP streams: a format string
 * with %OPERATOR% fields (START_TIME, DOWNSTREAM_REMOTE_ADDRESS, UPSTREAM_HOST,
 * BYTES_RECEIVED, REQ(X), RESP(X), PROTOCOL, RESPONSE_CODE, ROUTE_NAME, ...),
 * written one line per connection with a single write(2) to the configured path. Files are
 * opened once per path and shared by the workers. Fields skiff does not have print "-". */
#ifndef SKIFF_PROXY_NETWORK_ACCESS_LOG_H
#define SKIFF_PROXY_NETWORK_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "xds/translate/address.h"

struct sk_access_log_entry {
	double start;                    /* wall-clock seconds */
	double duration_ms;
	const struct sk_addr *downstream_remote, *downstream_local;
	const struct sk_addr *upstream_host, *upstream_local;
	const char *upstream_cluster;
	const char *response_flags;      /* "-" when none */
	const char *server_name;         /* SNI, may be NULL */
	uint64_t bytes_received, bytes_sent;
	uint64_t connection_id;
	/* HTTP streams (zero for TCP) */
	const char *protocol;            /* "HTTP/1.1" */
	uint32_t response_code;
	const char *route_name;
	double upstream_service_ms;      /* unused by the formatter; for callers */
	/* The value of request (resp false) or response header `name` (lower-case; ":method",
	 * ":path", ":authority", ":scheme" for requests), NULL when absent. NULL for TCP. */
	const char *(*header)(void *ctx, bool resp, const char *name, size_t n, size_t *vlen);
	void *header_ctx;
};

/* Formats e with format into buf (always NUL-terminated); returns the length. */
size_t sk_access_log_format(const char *format, const struct sk_access_log_entry *e, char *buf, size_t len);

/* Appends the formatted line to path. Errors are logged once per path, never fatal. */
void sk_access_log_write(const char *path, const char *format, const struct sk_access_log_entry *e);

/* Closes the files (process exit). */
void sk_access_log_close_all(void);

#endif
