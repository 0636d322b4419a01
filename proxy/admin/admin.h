/* admin: Envoy's admin API on the bootstrap's admin.address (TCP or unix socket), a small
 * HTTP/1.1 server on the main loop. Owned by the server. */
#ifndef SKIFF_PROXY_ADMIN_H
#define SKIFF_PROXY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "skiff_protos.h"

struct sk_server;
struct sk_admin;

/* Binds and listens. Returns NULL with err set ("admin.address: bind 127.0.0.1:15000: ..."). */
struct sk_admin *sk_admin_new(struct sk_server *server, const Envoy__Config__Core__V3__Address *addr,
			      char *err, size_t errlen);
void sk_admin_free(struct sk_admin *admin);

/* --- for the handlers (handlers.c, config_dump.c) --- */

struct sk_admin_request {
	const char *method;       /* "GET", "POST", ... */
	const char *path;         /* decoded path without the query */
	char *query;              /* raw query string (after '?'), may be "" */
	struct sk_server *server;
};

struct sk_admin_response {
	int status;
	const char *content_type;
	char *body;               /* malloc'd, owned by the response */
	size_t len;
};

/* Query parameter lookup with percent-decoding: returns true when present; *value is a
 * malloc'd decoded value ("" for a bare key) when value is not NULL. */
bool sk_admin_query_param(const struct sk_admin_request *req, const char *key, char **value);

/* Sets the body from a printf format / a malloc'd string. */
void sk_admin_respond(struct sk_admin_response *resp, int status, const char *content_type,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void sk_admin_respond_owned(struct sk_admin_response *resp, int status, const char *content_type,
			    char *body);
/* Serializes a JSON value (pretty, 2 spaces, as Envoy prints) and takes the reference. */
struct json_t;
void sk_admin_respond_json(struct sk_admin_response *resp, int status, struct json_t *json);

#define SK_CT_TEXT "text/plain; charset=UTF-8"
#define SK_CT_JSON "application/json"

/* Handlers, in handlers.c and config_dump.c. */
typedef void (*sk_admin_handler)(const struct sk_admin_request *req, struct sk_admin_response *resp);
struct sk_admin_endpoint {
	const char *path;
	const char *help;
	sk_admin_handler handler;
	bool mutates;             /* POST only, as Envoy's state-changing endpoints */
};
extern const struct sk_admin_endpoint sk_admin_endpoints[];
extern const size_t sk_admin_endpoint_count;

void sk_admin_config_dump(const struct sk_admin_request *req, struct sk_admin_response *resp);

#endif
