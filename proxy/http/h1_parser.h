/* h1_parser: the HTTP/1.x message parser of skiff's codec (RFC 9110/9112), for requests
 * from downstream and responses from upstream. A push parser with no I/O: the caller owns
 * the bytes and the parser returns slices into them; its one allocation is made by
 * sk_h1_parser_new (the field table), never per message or per header. */
#ifndef SKIFF_PROXY_HTTP_H1_PARSER_H
#define SKIFF_PROXY_HTTP_H1_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Envoy's defaults: max_request_headers_kb and common_http_protocol_options.max_headers_count. */
#define SK_H1_DEFAULT_MAX_HEADERS_KB 60
#define SK_H1_DEFAULT_MAX_HEADERS_COUNT 100
/* A chunk-size line (size, extensions, CRLF) longer than this is refused: extensions are
 * allowed but bounded, so a peer cannot make us buffer an endless chunk header. */
#define SK_H1_MAX_CHUNK_LINE 4096

enum sk_h1_kind { SK_H1_REQUEST, SK_H1_RESPONSE };

/* Bytes inside the caller's buffer; not NUL-terminated. */
struct sk_h1_slice {
	const char *p;
	size_t len;
};

struct sk_h1_field {
	struct sk_h1_slice name;  /* a token, case as received */
	struct sk_h1_slice value; /* OWS trimmed */
};

enum sk_h1_method {
	SK_H1_M_OTHER, /* any other token; see head.method */
	SK_H1_M_GET,
	SK_H1_M_HEAD,
	SK_H1_M_POST,
	SK_H1_M_PUT,
	SK_H1_M_DELETE,
	SK_H1_M_CONNECT,
	SK_H1_M_OPTIONS,
	SK_H1_M_TRACE,
	SK_H1_M_PATCH,
};

enum sk_h1_target_form {
	SK_H1_ORIGIN_FORM,    /* /path?query */
	SK_H1_ABSOLUTE_FORM,  /* scheme://authority/path?query */
	SK_H1_AUTHORITY_FORM, /* host:port, CONNECT only */
	SK_H1_ASTERISK_FORM,  /* *, OPTIONS only */
};

enum sk_h1_framing {
	SK_H1_BODY_NONE,        /* the message ends with its head */
	SK_H1_BODY_LENGTH,      /* content_length (> 0) bytes */
	SK_H1_BODY_CHUNKED,     /* chunked; BODY events carry the decoded data */
	SK_H1_BODY_UNTIL_CLOSE, /* responses only: the body ends when the connection does */
};

/* One message head. Slices point into the buffer given to the sk_h1_parse call that returned
 * the HEAD event; the whole head is valid until the next sk_h1_parse call. */
struct sk_h1_head {
	int minor; /* HTTP/1.<minor>: 0 or 1 */

	/* Requests. */
	struct sk_h1_slice method;
	enum sk_h1_method method_id;
	struct sk_h1_slice target; /* the request-target as received */
	enum sk_h1_target_form form;
	struct sk_h1_slice scheme;    /* absolute-form only */
	struct sk_h1_slice authority; /* absolute-form and authority-form */
	struct sk_h1_slice path;      /* origin-form: the target; absolute-form: from the first
	                                 '/' or '?' after the authority (may be empty); '*' */
	struct sk_h1_slice host;      /* the Host field's value (has_host) */
	bool has_host;

	/* Responses. */
	int status; /* 100..599 */
	struct sk_h1_slice reason;

	/* Both. */
	const struct sk_h1_field *fields;
	size_t n_fields;
	enum sk_h1_framing framing;
	uint64_t content_length; /* when a Content-Length was received (also for HEAD/304) */
	bool has_content_length;
	bool keep_alive;      /* the connection may carry another message after this one */
	bool expect_continue; /* request: HTTP/1.1 with Expect: 100-continue */
	bool upgrade;         /* request: Upgrade + Connection: upgrade in HTTP/1.1 */
	struct sk_h1_slice upgrade_proto; /* the Upgrade field's value, when upgrade or 101 */
	bool tunnel;          /* after this message the bytes are not HTTP: CONNECT, an upgrade
	                         request, a 101, or a 2xx to CONNECT (see sk_h1_parse) */
	size_t head_len;      /* bytes of the head, leading empty lines and final CRLF included */
};

enum sk_h1_event_type {
	SK_H1_EV_NEED_MORE, /* everything usable was used; call again with more bytes */
	SK_H1_EV_HEAD,      /* ev.head */
	SK_H1_EV_BODY,      /* ev.data: body bytes (chunked bodies come decoded) */
	SK_H1_EV_TRAILERS,  /* ev.trailers, ev.n_trailers (only when there is at least one) */
	SK_H1_EV_DONE,      /* the message is complete; the next bytes start the next one */
	SK_H1_EV_ERROR,     /* ev.status, ev.reason; the parser stays in error until reset */
};

struct sk_h1_event {
	enum sk_h1_event_type type;
	size_t consumed; /* bytes of buf this call used; the next call starts after them */
	const struct sk_h1_head *head;
	struct sk_h1_slice data;
	const struct sk_h1_field *trailers;
	size_t n_trailers;
	int status;         /* to answer with: 400, 413, 431, 501 or 505 for requests; 502 for
	                       every response error (a bad response is never forwarded) */
	const char *reason; /* static text: "bad content-length", "obs-fold", ... */
};

struct sk_h1_options {
	uint32_t max_headers_kb;    /* 0: 60. Bytes of a head (or trailer section) => 431 */
	uint32_t max_headers_count; /* 0: 100. Fields of a head (or trailer section) => 431 */
	uint64_t max_body_bytes;    /* 0: unlimited. A longer declared or chunked body => 413 */
};

struct sk_h1_parser;

/* A parser of requests or responses; opts may be NULL for the defaults. NULL on no memory. */
struct sk_h1_parser *sk_h1_parser_new(enum sk_h1_kind kind, const struct sk_h1_options *opts);
void sk_h1_parser_free(struct sk_h1_parser *p);

/* Forgets the current message, any error and any tunnel: the next bytes start a message. Used
 * when an upgrade was refused (the request had tunnel set but the answer was not a 101). */
void sk_h1_parser_reset(struct sk_h1_parser *p);

/* Response parsers: what the request being answered was, since HEAD and CONNECT change the
 * framing and a 101 is only valid after an upgrade request. Holds until a final (non-1xx,
 * or 101) response is complete; then it falls back to "GET, no upgrade". */
void sk_h1_parser_expect_response(struct sk_h1_parser *p, enum sk_h1_method method, bool upgrade);

/* Parses buf[0..len) and returns one event (also in ev->type). The bytes must be the ones the
 * previous call did not consume, followed by any new ones: after each call the caller drops
 * ev->consumed bytes (when it is done with the event's slices) and appends what it reads.
 * Unconsumed bytes are remembered as scanned, so feeding one byte at a time costs no rescans.
 * After DONE the next call parses the next message (pipelining); after the DONE of a message
 * with head.tunnel, every call returns the bytes as BODY until sk_h1_parser_reset. */
enum sk_h1_event_type sk_h1_parse(struct sk_h1_parser *p, const char *buf, size_t len,
				  struct sk_h1_event *ev);

/* The peer closed the connection (after every byte was given to sk_h1_parse): DONE ends a
 * close-delimited body or a tunnel; NEED_MORE means a clean close between messages; ERROR
 * means a message was cut short. The parser accepts nothing afterwards until reset. */
enum sk_h1_event_type sk_h1_parse_eof(struct sk_h1_parser *p, struct sk_h1_event *ev);

/* A method token's id (SK_H1_M_OTHER for any other token); HTTP/2 requests use it too. */
enum sk_h1_method sk_h1_method_id(const char *s, size_t n);

/* The first field named name (case-insensitive), or NULL. */
const struct sk_h1_field *sk_h1_field_find(const struct sk_h1_field *fields, size_t n,
					   const char *name);

#endif
