/* access_log: Envoy's file access log for TCP connections and HTTP streams: a format string
 * with %OPERATOR% fields (START_TIME, DOWNSTREAM_REMOTE_ADDRESS, UPSTREAM_HOST,
 * BYTES_RECEIVED, REQ(X), RESP(X), PROTOCOL, RESPONSE_CODE, ROUTE_NAME, ...), or a JSON
 * object of such strings (json_format), written one line per connection or stream with a
 * single write(2) to the configured path. Files are opened once per path and shared by the
 * workers. Fields skiff does not have print "-" (null in typed JSON). */
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
	/* TLS: the verified peers' URI SANs (SPIFFE ids) and versions; NULL when not TLS */
	const char *downstream_peer_uri_san, *upstream_peer_uri_san;
	const char *downstream_tls_version, *upstream_tls_version;
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

/* One value of a JSON log format (a google.protobuf.Struct), compiled: a format string whose
 * command operators are expanded per entry, a number, or a nested object or list. */
enum sk_log_json_kind { SK_LOG_JSON_FORMAT, SK_LOG_JSON_NUMBER, SK_LOG_JSON_OBJECT, SK_LOG_JSON_LIST };

struct sk_log_json {
	enum sk_log_json_kind kind;
	char *key;                       /* member name in an object; NULL in a list and at the root */
	char *format;                    /* FORMAT */
	double number;                   /* NUMBER */
	size_t n;                        /* OBJECT, LIST: the items, in the configured order */
	struct sk_log_json *items;
};

/* A log line's format (FileAccessLog): Envoy's text format string, or a JSON object written as
 * one line. Immutable; owned by the config that holds it (sk_log_format_free). */
struct sk_log_format {
	char *text;                      /* text formats; NULL with json */
	struct sk_log_json *json;        /* the root object (kind OBJECT) */
	bool typed;                      /* json: a value that is one command operator keeps its type
					  * (number, string, null when it has no value), as Envoy's
					  * log_format.json_format and typed_json_format; false: every
					  * value a string, "-" when empty (the deprecated json_format) */
	bool omit_empty_values;          /* text: an empty operator prints ""; json: null members and
					  * list items are left out */
};

/* Renders e with f into buf (always NUL-terminated): the text line, or the JSON object and a
 * newline. Returns the length. */
size_t sk_log_format_render(const struct sk_log_format *f, const struct sk_access_log_entry *e, char *buf,
			    size_t len);

/* A text format, or NULL on allocation failure. */
struct sk_log_format *sk_log_format_text(const char *text, bool omit_empty_values);
void sk_log_format_free(struct sk_log_format *f);
void sk_log_json_free(struct sk_log_json *j);     /* frees j's contents, not j */

/* Appends the formatted line to path. Errors are logged once per path, never fatal. */
void sk_access_log_write(const char *path, const struct sk_log_format *format, const struct sk_access_log_entry *e);

/* Closes the files (process exit). */
void sk_access_log_close_all(void);

#endif
