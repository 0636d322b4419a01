/* http_internal: what the HTTP/1.1 connection manager (http_conn.c) and the HTTP/2 codec
 * (http2.c) share: byte buffers, the stream and upstream connection types, and the calls each
 * makes into the other. Private to proxy/network. */
#ifndef SKIFF_PROXY_NETWORK_HTTP_INTERNAL_H
#define SKIFF_PROXY_NETWORK_HTTP_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ev.h>

#include "proxy/http/cors.h"
#include "proxy/http/h1_parser.h"
#include "proxy/http/retry.h"
#include "proxy/http/route_table.h"
#include "proxy/listener/listener.h"
#include "proxy/network/http_conn.h"
#include "proxy/upstream/cluster.h"
#include "xds/translate/hcm.h"

struct sk_h2_conn;
struct sk_h2_up;

/* ---------------------------------------------------------------------------------- */
/* buffers                                                                             */

struct buf {
	char *p;
	size_t off, len, cap; /* data is p[off..len) */
};

static inline size_t pending(const struct buf *b)
{
	return b->len - b->off;
}

/* Room for n more bytes at p + len: compacts, then grows. */
static inline int reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return 0;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline int append(struct buf *b, const void *d, size_t n)
{
	if (n == 0)
		return 0;
	if (reserve(b, n) < 0)
		return -ENOMEM;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static inline int appends(struct buf *b, const char *s)
{
	return append(b, s, strlen(s));
}

static inline int appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline int appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (reserve(b, 256) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= b->cap - b->len) {
		if (reserve(b, (size_t)n + 1) < 0)
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

static inline void consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

static inline void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}


struct upconn {
	int fd;
	struct sk_worker *w;
	ev_io rio, wio;
	ev_timer timer;                 /* connect timeout, then the pool's idle timeout */
	struct sk_cluster *cluster;     /* referenced */
	struct sk_host_set *hs;         /* referenced while host points into it */
	struct sk_host *host;           /* NULL for ORIGINAL_DST */
	struct sk_addr addr, local;
	struct sk_h1_parser *rp;
	struct buf in, out;
	struct sk_http_conn *hc;        /* the stream using it; NULL while pooled */
	bool connected, counted, reused;
	bool shut_wr;                   /* a tunnel's downstream ended: FIN once out is sent */
	/* TLS (the host's transport socket): tls_ctx referenced from up_open; tls from the TCP
	 * connect on (connected only once its handshake is done), kept while pooled */
	struct sk_tls_ctx *tls_ctx;
	struct sk_tls_conn *tls;
	/* the protocols the TLS client offers instead of its context's alpn_protocols, comma
	 * joined ("istio-h2,istio": istio.alpn's override for the upstream HTTP version); "":
	 * the context's. Connections are pooled (HTTP/1.1 and HTTP/2) per context and alpn. */
	char alpn[64];
	char *peer_san;                 /* the peer's URI SANs, read once at the handshake */
	bool tls_rd_wants_write;        /* a read returned WANT_WRITE: retried when writable */
	bool tls_wr_wants_read;         /* a write returned WANT_READ: retried when readable */
	double connected_at;
	struct upconn *prev, *next;     /* the worker's idle list */
	/* HTTP/2 upstream (http2_up.c): this upconn is one stream of h2, fd is -1. The request,
	 * written to out as HTTP/1.1 by http_conn, is re-framed by wp; the response is written
	 * to in as HTTP/1.1 (chunked unless it has a content-length) for rp. */
	struct sk_h2_up *h2;
	int32_t sid;
	struct sk_h1_parser *wp;
	struct buf body, rhead, rtrailers;
	struct buf req_trailers;        /* "name\0value\0"...: the request's, HEADERS after its body */
	size_t h2_held;                 /* response DATA bytes whose window is not yet returned */
	uint32_t status;
	bool req_eof, resp_head_done, resp_chunked, resp_end, trailers_expected;
	char clen[24];                  /* the response's content-length, kept aside */
	size_t clen_len;
	struct upconn *h2_prev, *h2_next;
};

enum down_framing { DOWN_NONE, DOWN_LENGTH, DOWN_CHUNKED, DOWN_CLOSE, DOWN_TUNNEL };

/* One HTTP stream: for HTTP/1.1 also the downstream connection it runs on (one stream at a
 * time, reset between requests); for HTTP/2 one stream of an sk_h2_conn (h2 set), whose
 * connection-level fields (din: the request body not yet forwarded, dout: the response body
 * not yet framed) are per stream. */
struct sk_http_conn {
	struct sk_conn *c;
	struct sk_h2_conn *h2;          /* NULL for HTTP/1.x */
	int32_t stream_id;
	bool h2_end_in;                 /* END_STREAM received (the request ends when din drains) */
	bool h2_resp_eof;               /* the response body is whole: dout is the rest */
	bool h2_submitted;              /* the response head went to nghttp2 */
	bool h2_closed;                 /* nghttp2 closed the stream */
	bool h2_too_large;              /* its headers overflowed the limits */
	bool h2_rx_rst, h2_rst;         /* RST_STREAM received / submitted */
	bool h2_headers_done;           /* fields point into head (before: offsets) */
	uint32_t h2_hdr_bytes;
	struct buf h2_trailers;         /* "name\0value\0"... response trailers, sent after the body */
	struct buf h2_req_trailers;     /* "name\0value\0"... request trailers (http2.c), forwarded
					 * after the body */
	struct sk_http_conn *h2_prev, *h2_next;
	struct sk_worker *w;
	const struct sk_hcm_config *cfg;
	const struct sk_http_stats *st;
	struct sk_h1_parser *parser;
	struct buf din, dout;
	ev_io wio;
	ev_timer rq_timer;              /* request_timeout, then the route timeout */
	ev_timer idle_timer;            /* connection idle, or the stream idle timeout */
	uint32_t limit;
	bool read_eof, close_after, must_close, in_callback;
	bool tls_rd_wants_write;        /* HTTP/1.1 over TLS (c->tls): a read waits for writability ... */
	bool tls_wr_wants_read;         /* ... or a write for readability */
	uint64_t n_requests;

	/* the stream */
	bool active, req_done, discard_body, resp_started, resp_done, down_close;
	bool keep_alive, expect_continue, forwarding, replayable, timer_is_route, up_keep_alive;
	bool up_paused;                 /* upstream reads stopped: dout is over the limit */
	bool upgrade;                   /* an upgrade request the HCM allows (websocket, ...) */
	bool ws_wait;                   /* its head is sent: the client's next bytes wait for a 101 */
	bool tunnel, tunnel_up;         /* the 101 came: bytes flow raw; its DONE was seen */
	char upgrade_proto[64];         /* the Upgrade token forwarded, lower-cased */
	int minor;
	enum sk_h1_method method_id;
	enum sk_h1_framing req_framing;
	enum down_framing down_framing;
	struct buf head;                /* a copy of the request head's bytes */
	struct sk_h1_field *fields;     /* the request's fields, pointing into head */
	size_t n_fields, cap_fields;
	struct sk_h1_slice method, path, authority;
	struct buf path_buf;            /* the path as forwarded (normalized, rewritten) */
	struct buf extra;               /* x-request-id, x-forwarded-for, ...: "name: value\r\n" */
	struct buf resp_head;           /* the response head sent downstream (access log) */
	struct buf scratch;             /* header formatting */
	struct buf up_head;             /* the request head as sent upstream (kept for a resend) */
	struct sk_http_header *rh;      /* the routing view of the fields */
	size_t cap_rh;
	bool req_term_written;
	const struct sk_route *route;
	const struct sk_route_weighted_cluster *wc;
	struct sk_snapshot *snap;       /* referenced while a request is routed: its routes
					 * (RDS) and clusters, the worker's newest when it began */
	const struct sk_rds_route *rds; /* the route configuration from RDS (in snap), or NULL */
	struct sk_cluster *cluster;     /* referenced */
	struct upconn *u;
	struct sk_addr up_addr, up_local;
	const char *up_tls_version;     /* the upstream connection's TLS, for the access log */
	const char *up_alpn;            /* istio.alpn's list for this request's upstream ("" none) */
	char *up_san;                   /* its peer's URI SANs (malloc'd) */
	const char *flags;
	unsigned code;
	double start, wall_start, up_start, service_ms;
	uint64_t rx_body, tx_body;
	bool upstream_rq_counted;

	/* retries (the route's retry_policy) and hash policies */
	const struct sk_retry_policy *rp; /* NULL: no retries; else &rr.policy */
	struct sk_retry_request rr;     /* the route's policy and timeout with the request's
					 * x-envoy-* headers (internal requests) merged in */
	bool internal;                  /* Envoy's internal request (x-envoy-* headers trusted) */
	bool try_sent;                  /* the current try wrote request bytes upstream */
	uint32_t retries;               /* retries started */
	bool body_ok;                   /* every body byte sent is in body_buf (replayable) */
	bool retry_exhausted, retry_held, retrying;
	double backoff;                 /* the next back-off interval's ceiling, seconds */
	struct buf body_buf;            /* the request body as sent upstream (framing included) */
	ev_timer retry_timer;           /* back-off before the next try */
	ev_timer try_timer;             /* per_try_timeout */
	size_t n_tried;
	struct sk_addr tried[8];        /* hosts tried (previous_hosts) */
	uint64_t hash;
	bool has_hash;

	/* envoy.filters.http.fault */
	struct sk_route_request rq;     /* the routing view, kept while a fault delay runs */
	bool fault_delaying;
	/* max_connections reached: the request waits (unread body included) for a connection of
	 * its cluster on this worker, within max_pending_requests */
	bool queued, dequeued;
	uint32_t q_gen;                 /* the last kick that tried it */
	struct sk_http_conn *q_prev, *q_next;
	ev_timer fault_timer;

	/* envoy.filters.http.cors */
	struct sk_cors cors;            /* the decision for this request (zero: none) */
};


/* The connection-specific fields of HTTP/1.1 (RFC 9110 7.6.1) that HTTP/2 forbids
 * (RFC 9113 8.2.2): never forwarded as they came. */
static inline bool sk_http_connection_specific(const char *n, size_t len)
{
	static const char *const names[] = { "connection", "keep-alive", "proxy-connection",
					      "transfer-encoding", "upgrade", "te" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == strlen(names[i]) && strncasecmp(n, names[i], len) == 0)
			return true;
	return false;
}

static inline bool sk_http_same_addr(const struct sk_addr *a, const struct sk_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* http_conn.c, for both upstream codecs: a non-blocking socket for a connection to addr
 * (TCP_NODELAY, the cluster's upstream_bind_config), not yet connected; -errno on failure.
 * The counts of a connection's life (upstream_cx_*, the cluster's and host's actives). */
int sk_http_up_socket(const struct sk_cluster_config *cc, const struct sk_addr *addr);
void sk_http_up_count_open(struct sk_worker *w, struct sk_cluster *cl, struct sk_host *host, bool http2);
void sk_http_up_count_close(struct sk_worker *w, struct sk_cluster *cl, struct sk_host *host,
			    double connected_at, bool local);

/* http_conn.c, for the HTTP/2 codec: the life of a stream. */
struct sk_http_conn *sk_http_stream_new(struct sk_conn *c, struct sk_h2_conn *h2, int32_t id, uint32_t limit);
/* One request header (lower-case name; pseudo-headers included); -1 when over the limits. */
int sk_http_stream_header(struct sk_http_conn *hc, const uint8_t *name, size_t nlen, const uint8_t *value,
			  size_t vlen);
/* The headers are whole: validate, route, forward. end: END_STREAM came with them. */
void sk_http_stream_request(struct sk_http_conn *hc, bool end);
void sk_http_stream_data(struct sk_http_conn *hc, const uint8_t *p, size_t n);
void sk_http_stream_end(struct sk_http_conn *hc);
/* The response body in dout fell below the limit: the upstream may be read again. */
void sk_http_stream_resume(struct sk_http_conn *hc);
/* nghttp2 closed the stream (sent whole, reset by either side, or the connection ended):
 * an unfinished exchange is logged as reset; hc is freed. */
void sk_http_stream_closed(struct sk_http_conn *hc, uint32_t error_code);
void sk_http_stream_timers_stop(struct sk_http_conn *hc);

/* http_conn.c, for the HTTP/2 upstream codec: events of an upconn that is an h2 stream. */
void sk_http_up_connected(struct upconn *u);
void sk_http_up_connect_failed(struct upconn *u, bool timeout, int err);
void sk_http_up_input(struct upconn *u);     /* more of the response is in u->in */
void sk_http_up_reset(struct upconn *u, int err); /* the stream ended before the response */

/* http2_up.c, for http_conn.c. */
/* The router took response bytes out of u->in (the downstream drained): the DATA they came
 * in returns its flow-control window, so the peer sends more. */
void sk_h2_up_consumed(struct upconn *u);
/* Binds u (a new upconn of hc) to a pooled HTTP/2 connection to u->addr, or a new one. */
int sk_h2_up_attach(struct upconn *u);
/* Frames what u->out holds (HTTP/1.1 text) as the stream's HEADERS and DATA. */
void sk_h2_up_write(struct upconn *u);
/* u is done: its stream is reset if still open; the connection stays pooled. */
void sk_h2_up_detach(struct upconn *u);
void sk_h2_up_close_all(struct sk_worker *w);
/* Closes the worker's idle HTTP/2 connections of clusters that snap no longer holds. */
void sk_h2_up_retire(struct sk_worker *w, const struct sk_snapshot *snap);

/* http2.c, for the streams. */
/* The listener drains: a graceful GOAWAY (NO_ERROR, the last stream taken) goes out with the
 * next frames; open streams finish, the peer opens new ones elsewhere. */
void sk_h2_drain(struct sk_h2_conn *h);
/* Submits the response head (hc->resp_head, HTTP/1.1 text built by http_conn) as HEADERS;
 * body: DATA follows from dout. */
void sk_h2_submit_head(struct sk_http_conn *hc, bool body);
/* dout grew, or the body (and trailers) ended: let nghttp2 frame it. */
void sk_h2_data_ready(struct sk_http_conn *hc);
/* Returns n bytes of flow-control credit after the request body moved on. */
void sk_h2_consumed(struct sk_http_conn *hc, size_t n);
/* After every event of a stream: resets it when it must close, writes what is ready. hc may
 * be freed on return. */
void sk_h2_stream_after(struct sk_http_conn *hc);
/* Starts HTTP/2 on c (prior knowledge: the preface may be in c->inspected). */
void sk_h2_conn_start(struct sk_conn *c);

#endif
