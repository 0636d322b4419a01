/* http2_up: HTTP/2 to upstream hosts (clusters whose HttpProtocolOptions say HTTP/2, or
 * follow an HTTP/2 downstream), on nghttp2 client sessions, in clear or over TLS (the host's
 * transport socket).
 *
 * A per-worker pool holds connections by (cluster, host address, TLS context, ALPN offered);
 * each carries up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS streams and a new one opens
 * when all are full. A TLS connection is "connected" once its handshake is done (within the
 * cluster's connect_timeout, as Envoy's); a failed handshake is a connect failure of every
 * stream waiting on it, so connect-failure retries apply.
 * A stream is an upconn of http_conn.c without a socket: the router writes its request as
 * HTTP/1.1 text into u->out and reads the response as HTTP/1.1 from u->in, so retries,
 * timeouts, header rules and stats are the HTTP/1.1 code, unchanged. This file translates:
 * u->out is parsed (our own, well-formed text) into HEADERS and DATA; HEADERS, DATA and
 * trailers from the peer become a status line, fields and a body — chunked, with the
 * trailers (gRPC's grpc-status) in the last chunk, unless a content-length frames it.
 * Request trailers (the last chunk of a chunked request) become a HEADERS frame with
 * END_STREAM after the body, without the connection-specific fields.
 *
 * Flow control is manual: a response's DATA returns its stream window only when the router
 * has taken the bytes out of u->in, which it stops doing while the downstream's buffer is
 * over its limit (up_paused; sk_h2_up_consumed when it drains). So a fast upstream and a
 * slow client make skiff hold at most about the stream window (the cluster's
 * initial_stream_window_size) per stream in u->in, as dout holds at most the listener's
 * buffer limit per stream. The connection window returns as DATA arrives: a few stalled
 * clients must not hold the whole connection window and stall every other stream on it. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "proxy/log/log.h"
#include "proxy/network/http_internal.h"
#include "proxy/network/tls.h"
#include "proxy/network/tls_stats.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/workers.h"

#define READ_CHUNK 16384
#define POOL_IDLE_TIMEOUT 3600.0

struct sk_h2_up {
	struct sk_worker *w;
	struct sk_cluster *cluster;     /* referenced */
	struct sk_host_set *hs;         /* referenced while host points into it */
	struct sk_host *host;
	struct sk_addr addr, local;
	int fd;
	ev_io rio, wio;                 /* while connecting, wio alone watches (on_connect) */
	ev_timer timer;                 /* connect timeout, then idle */
	/* TLS: tls_ctx referenced (NULL: clear); tls from the TCP connect on */
	struct sk_tls_ctx *tls_ctx;
	struct sk_tls_conn *tls;
	char alpn[64];                  /* the streams' u->alpn, copied: a pool key */
	bool tls_rd_wants_write;        /* a TLS read returned WANT_WRITE: read again when writable */
	bool tls_wr_wants_read;         /* a TLS write returned WANT_READ: write again when readable */
	nghttp2_session *s;
	struct buf out;
	struct upconn *streams;
	uint32_t n_streams;
	bool connected, dead, in_recv, in_flush, again;
	double connected_at;
	struct sk_h2_up *next;          /* the worker's pool */
};

static _Thread_local struct sk_h2_up *pool;

static void flush(struct sk_h2_up *h);
static void on_writable(struct ev_loop *loop, ev_io *io, int revents);
static void conn_destroy(struct sk_h2_up *h, bool local);

static void unlink_stream(struct upconn *u)
{
	struct sk_h2_up *h = u->h2;

	u->h2_held = 0; /* the stream is reset or closed: its window no longer matters */
	buf_free(&u->req_trailers);
	if (u->h2_prev)
		u->h2_prev->h2_next = u->h2_next;
	else
		h->streams = u->h2_next;
	if (u->h2_next)
		u->h2_next->h2_prev = u->h2_prev;
	u->h2_prev = u->h2_next = NULL;
	u->h2 = NULL;
	h->n_streams--;
	if (h->n_streams == 0 && h->connected && !h->dead) {
		ev_timer_stop(h->w->loop, &h->timer);
		ev_timer_set(&h->timer, POOL_IDLE_TIMEOUT, 0.);
		ev_timer_start(h->w->loop, &h->timer);
	}
}

static struct upconn *stream_of(struct sk_h2_up *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

/* Returns the stream window of the DATA bytes the router has taken out of u->in. What u->in
 * still holds (chunk framing included, so never too much) keeps its window. */
static void give_back(struct upconn *u)
{
	struct sk_h2_up *h = u->h2;
	size_t keep = pending(&u->in), n;

	if (h == NULL || h->s == NULL || u->h2_held <= keep)
		return;
	n = u->h2_held - keep;
	u->h2_held = keep;
	if (u->sid > 0) /* else the stream ended: its last bytes wait in u->in */
		nghttp2_session_consume_stream(h->s, u->sid, n);
}

/* ---------------------------------------------------------------------------------- */
/* the response, as HTTP/1.1                                                           */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct upconn *u = stream_of(ud, f->hd.stream_id);
	struct buf *b;

	(void)s;
	(void)flags;
	if (u == NULL)
		return 0;
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		u->status = 0;
		for (size_t i = 0; i < vlen && i < 3; i++)
			u->status = u->status * 10 + (uint32_t)(value[i] - '0');
		return 0;
	}
	if (nlen > 0 && name[0] == ':')
		return 0;
	b = u->resp_head_done ? &u->rtrailers : &u->rhead;
	if (!u->resp_head_done && nlen == 14 && memcmp(name, "content-length", 14) == 0) {
		/* kept aside: it frames the body unless trailers may follow (then chunked) */
		u->clen_len = vlen < sizeof(u->clen) ? vlen : sizeof(u->clen) - 1;
		memcpy(u->clen, value, u->clen_len);
		return 0;
	}
	if (!u->resp_head_done && ((nlen == 7 && memcmp(name, "trailer", 7) == 0) ||
				   (nlen == 12 && memcmp(name, "content-type", 12) == 0 && vlen >= 16 &&
				    memcmp(value, "application/grpc", 16) == 0)))
		u->trailers_expected = true;
	append(b, name, nlen);
	appends(b, ": ");
	append(b, value, vlen);
	appends(b, "\r\n");
	return 0;
}

static void end_response(struct upconn *u)
{
	if (u->resp_chunked) {
		appends(&u->in, "0\r\n");
		append(&u->in, u->rtrailers.p, u->rtrailers.len);
		appends(&u->in, "\r\n");
	}
	u->resp_end = true;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct upconn *u;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)s;
	if (f->hd.stream_id == 0 || (u = stream_of(ud, f->hd.stream_id)) == NULL)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !u->resp_head_done) {
		if (u->status < 200) { /* an interim response: skiff does not forward them */
			u->rhead.off = u->rhead.len = 0;
			u->clen_len = 0;
			u->trailers_expected = false;
			return 0;
		}
		appendf(&u->in, "HTTP/1.1 %u \r\n", u->status);
		append(&u->in, u->rhead.p, u->rhead.len);
		u->resp_chunked = u->clen_len == 0 || u->trailers_expected;
		if (u->resp_chunked)
			appends(&u->in, "transfer-encoding: chunked\r\n");
		else
			appendf(&u->in, "content-length: %.*s\r\n", (int)u->clen_len, u->clen);
		appends(&u->in, "\r\n");
		u->resp_head_done = true;
	} else if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) {
		return 0;
	}
	if (end)
		end_response(u);
	sk_http_up_input(u); /* may free u: then its stream has no user data */
	if (stream_of(ud, f->hd.stream_id) == u)
		give_back(u);
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
			 void *ud)
{
	struct upconn *u = stream_of(ud, id);

	(void)flags;
	nghttp2_session_consume_connection(s, len);
	if (u == NULL || !u->resp_head_done) {
		nghttp2_session_consume_stream(s, id, len); /* nobody reads it */
		return 0;
	}
	u->h2_held += len;
	if (u->resp_chunked)
		appendf(&u->in, "%zx\r\n", len);
	append(&u->in, data, len);
	if (u->resp_chunked)
		appends(&u->in, "\r\n");
	return 0; /* handed to the router by on_frame_recv (DATA) */
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
	struct upconn *u = stream_of(ud, id);

	nghttp2_session_set_stream_user_data(s, id, NULL);
	if (u == NULL)
		return 0;
	u->sid = 0;
	if (u->resp_end)
		return 0;
	sk_log_debug(SK_LOG_HTTP, "http2 upstream: stream %d reset (%s)", id, nghttp2_http2_strerror(error_code));
	unlink_stream(u);
	sk_http_up_reset(u, error_code == NGHTTP2_REFUSED_STREAM ? ECONNREFUSED : ECONNRESET);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sk_h2_up *h = ud;

	(void)s;
	if (f->hd.type == NGHTTP2_RST_STREAM)
		sk_stat_inc(h->w->shard, h->cluster->st.upstream_rq_tx_reset);
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* the request, from HTTP/1.1 text                                                     */

/* The request trailers (u->req_trailers) as a HEADERS frame with END_STREAM, queued after
 * the last DATA: called from the data provider as it ends the body. */
static int submit_trailers(nghttp2_session *s, int32_t id, struct upconn *u)
{
	const char *p = u->req_trailers.p, *end = p + u->req_trailers.len;
	nghttp2_nv *nv;
	size_t k = 0, n = 0;
	int rv;

	for (const char *q = p; q < end; q += strlen(q) + 1)
		n++; /* names and values */
	if ((nv = calloc(n / 2 + 1, sizeof(*nv))) == NULL)
		return -1;
	while (p < end && k < n / 2) {
		size_t nl = strlen(p), vl = strlen(p + nl + 1);

		nv[k++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)p + nl + 1, nl, vl, NGHTTP2_NV_FLAG_NONE };
		p += nl + vl + 2;
	}
	rv = nghttp2_submit_trailer(s, id, nv, k); /* copies nv */
	free(nv);
	return rv == 0 ? 0 : -1;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct upconn *u = src->ptr;
	size_t n = pending(&u->body);

	(void)ud;
	if (n > length)
		n = length;
	if (n > 0) {
		memcpy(buf, u->body.p + u->body.off, n);
		consume(&u->body, n);
	}
	if (pending(&u->body) == 0 && u->req_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (u->req_trailers.len > 0 && submit_trailers(s, id, u) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers' HEADERS end it */
	} else if (n == 0) {
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

static bool skip_field(const struct sk_h1_field *f)
{
	return sk_http_connection_specific(f->name.p, f->name.len) ||
	       (f->name.len == 4 && strncasecmp(f->name.p, "host", 4) == 0); /* :authority carries it */
}

/* The chunked request's trailers, kept for submit_trailers: lower-cased, without the
 * connection-specific fields, framing or pseudo-headers (RFC 9113 8.1, 8.2.2). */
static void keep_trailers(struct upconn *u, const struct sk_h1_field *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct sk_h1_field *f = &t[i];
		size_t at = u->req_trailers.len;

		if (f->name.len == 0 || f->name.p[0] == ':' || skip_field(f) ||
		    (f->name.len == 14 && strncasecmp(f->name.p, "content-length", 14) == 0))
			continue;
		append(&u->req_trailers, f->name.p, f->name.len);
		for (size_t j = at; j < u->req_trailers.len; j++)
			if (u->req_trailers.p[j] >= 'A' && u->req_trailers.p[j] <= 'Z')
				u->req_trailers.p[j] = (char)(u->req_trailers.p[j] + 32);
		append(&u->req_trailers, "", 1);
		append(&u->req_trailers, f->value.p, f->value.len);
		append(&u->req_trailers, "", 1);
	}
}

static int submit_head(struct upconn *u, const struct sk_h1_head *hd)
{
	nghttp2_nv nv[160];
	size_t k = 0;
	bool grpc = false;
	nghttp2_data_provider prd = { .source.ptr = u, .read_callback = read_body };

#define NV(n, nl, v, vl) nv[k++] = (nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE }
	NV(":method", 7, hd->method.p, hd->method.len);
	if (u->h2->tls != NULL)
		NV(":scheme", 7, "https", 5);
	else
		NV(":scheme", 7, "http", 4);
	NV(":authority", 10, hd->host.p ? hd->host.p : "", hd->host.len);
	NV(":path", 5, hd->path.p, hd->path.len);
	for (size_t i = 0; i < hd->n_fields && k < sizeof(nv) / sizeof(nv[0]) - 1; i++) {
		const struct sk_h1_field *f = &hd->fields[i];
		char *name = (char *)f->name.p; /* our own buffer (u->out): lower-cased in place */

		if (skip_field(f))
			continue;
		for (size_t j = 0; j < f->name.len; j++)
			if (name[j] >= 'A' && name[j] <= 'Z')
				name[j] = (char)(name[j] + 32);
		if (f->name.len == 12 && memcmp(name, "content-type", 12) == 0 && f->value.len >= 16 &&
		    strncmp(f->value.p, "application/grpc", 16) == 0)
			grpc = true;
		NV(name, f->name.len, f->value.p, f->value.len);
	}
	if (grpc) /* gRPC servers require it; HTTP/1.1 could not carry it */
		NV("te", 2, "trailers", 8);
#undef NV
	u->sid = nghttp2_submit_request(u->h2->s, NULL, nv, k, hd->framing == SK_H1_BODY_NONE ? NULL : &prd, u);
	if (hd->framing == SK_H1_BODY_NONE)
		u->req_eof = true;
	return u->sid < 0 ? -1 : 0;
}

void sk_h2_up_write(struct upconn *u)
{
	struct sk_h2_up *h = u->h2;
	struct sk_h1_event ev;
	bool more = true;

	if (h == NULL || !h->connected)
		return; /* written once the connection is up */
	while (more) { /* until NEED_MORE: a message's DONE comes after its last byte */
		sk_h1_parse(u->wp, u->out.p ? u->out.p + u->out.off : "", pending(&u->out), &ev);
		switch (ev.type) {
		case SK_H1_EV_HEAD:
			if (submit_head(u, ev.head) < 0) {
				consume(&u->out, pending(&u->out));
				unlink_stream(u);
				sk_http_up_reset(u, ECONNRESET);
				return;
			}
			break;
		case SK_H1_EV_BODY:
			append(&u->body, ev.data.p, ev.data.len);
			break;
		case SK_H1_EV_DONE:
			u->req_eof = true;
			break;
		case SK_H1_EV_TRAILERS:
			keep_trailers(u, ev.trailers, ev.n_trailers); /* sent once the body is */
			break;
		case SK_H1_EV_NEED_MORE:
		case SK_H1_EV_ERROR:
			more = false;
			break;
		}
		consume(&u->out, ev.consumed);
	}
	if (u->sid > 0)
		nghttp2_session_resume_data(h->s, u->sid);
	flush(h);
}

/* ---------------------------------------------------------------------------------- */
/* connections                                                                         */

/* Every stream of h fails (connect failure, connection lost). */
static void fail_streams(struct sk_h2_up *h, bool connecting, bool timeout, int err)
{
	while (h->streams) {
		struct upconn *u = h->streams;

		if (u->sid > 0)
			nghttp2_session_set_stream_user_data(h->s, u->sid, NULL);
		u->sid = 0;
		unlink_stream(u);
		if (connecting)
			sk_http_up_connect_failed(u, timeout, err);
		else
			sk_http_up_reset(u, err);
	}
}

/* Writes what out holds, through TLS when the connection has it: the bytes taken, or -errno
 * (-EAGAIN: wait; a TLS write that must read first sets tls_wr_wants_read). A TLS retry
 * starts at the same bytes, as out moves only on success. */
static ssize_t conn_send(struct sk_h2_up *h)
{
	return sk_tls_io_write(h->tls, h->fd, h->out.p + h->out.off, pending(&h->out), &h->tls_wr_wants_read);
}

/* One read, through TLS when the connection has it: > 0 bytes, 0 at the peer's end, or -errno
 * (-EAGAIN: wait; a TLS read that must write first sets tls_rd_wants_write). */
static ssize_t conn_recv(struct sk_h2_up *h, void *b, size_t len)
{
	return sk_tls_io_read(h->tls, h->fd, b, len, &h->tls_rd_wants_write);
}

static void flush(struct sk_h2_up *h)
{
	if (!h->connected)
		return; /* nothing to write yet; wio waits for the connect */
	if (h->in_recv || h->in_flush) {
		h->again = true;
		return;
	}
	h->in_flush = true;
	do {
		h->again = false;
		while (!h->dead && h->s != NULL) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(h->s, &data);

			if (n < 0)
				h->dead = true;
			if (n <= 0)
				break;
			append(&h->out, data, (size_t)n);
		}
		h->tls_wr_wants_read = false;
		while (!h->dead && pending(&h->out) > 0) {
			ssize_t n = conn_send(h);

			if (n == -EAGAIN || n == -EINTR)
				break;
			if (n < 0) {
				h->dead = true;
				break;
			}
			sk_stat_add(h->w->shard, h->cluster->st.upstream_cx_tx_bytes_total, (uint64_t)n);
			consume(&h->out, (size_t)n);
		}
	} while (h->again && !h->dead);
	h->in_flush = false;
	if (h->dead || (h->s && !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s))) {
		h->dead = true;
		fail_streams(h, false, false, ECONNRESET);
		conn_destroy(h, true);
		return;
	}
	/* a write waiting for readability must not spin on writability; the read watcher runs
	 * for as long as the connection is up */
	if ((pending(&h->out) > 0 && !h->tls_wr_wants_read) || h->tls_rd_wants_write)
		ev_io_start(h->w->loop, &h->wio);
	else
		ev_io_stop(h->w->loop, &h->wio);
	/* bytes TLS already decrypted raise no readiness on the socket: come back for them */
	if (h->tls != NULL && ev_is_active(&h->rio) && sk_tls_pending(h->tls) > 0)
		ev_feed_event(h->w->loop, &h->rio, EV_READ);
}

/* One read of the established connection, then a flush (which retries a TLS write that
 * waited for readability). May destroy h. */
static void conn_read(struct sk_h2_up *h)
{
	uint8_t b[READ_CHUNK];
	ssize_t n = conn_recv(h, b, sizeof(b));

	if (n == -EAGAIN || n == -EINTR) {
		if (h->tls_wr_wants_read || h->tls_rd_wants_write)
			flush(h);
		return;
	}
	if (n <= 0) {
		if (n == -EPROTO)
			sk_log_debug(SK_LOG_HTTP, "http2 upstream: cluster '%s': TLS: %s", h->cluster->config->name,
				     sk_tls_failure_reason(h->tls));
		h->dead = true;
		fail_streams(h, false, false, n == 0 ? ECONNRESET : (int)-n);
		conn_destroy(h, false);
		return;
	}
	sk_stat_add(h->w->shard, h->cluster->st.upstream_cx_rx_bytes_total, (uint64_t)n);
	h->in_recv = true;
	if (nghttp2_session_mem_recv(h->s, b, (size_t)n) < 0) {
		sk_stat_inc(h->w->shard, h->cluster->st.upstream_cx_protocol_error);
		h->dead = true;
	}
	h->in_recv = false;
	flush(h);
}

static void on_read(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	conn_read(io->data);
}

static _Thread_local nghttp2_session_callbacks *cb;

void sk_h2_up_thread_cleanup(void)
{
	nghttp2_session_callbacks_del(cb);
	cb = NULL;
}

static nghttp2_session_callbacks *callbacks(void)
{
	if (cb == NULL && nghttp2_session_callbacks_new(&cb) == 0) {
		nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
		nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
		nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	}
	return cb;
}

/* Every stream waiting for h fails as a connect failure (so connect-failure retries apply);
 * h is destroyed. */
static void connect_failed(struct sk_h2_up *h, bool timeout, int err)
{
	h->dead = true;
	fail_streams(h, true, timeout, err);
	conn_destroy(h, true);
}

/* While connecting, wio alone waits, for what the TCP connect or the TLS handshake needs. */
static void connect_wait(struct sk_h2_up *h, int events)
{
	if (ev_is_active(&h->wio) && (h->wio.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(h->w->loop, &h->wio);
	ev_io_set(&h->wio, h->fd, events);
	ev_io_start(h->w->loop, &h->wio);
}

/* The TLS client over the connected socket, offering the streams' ALPN override, else the
 * context's alpn_protocols, else "h2" (Envoy's fallback for an HTTP/2 connection pool: a
 * TLS server speaks HTTP/2 only when ALPN says so). 0 or -errno. */
static int tls_start(struct sk_h2_up *h)
{
	const struct sk_cluster_config *cc = h->cluster->config;
	const struct sk_tls_context_config *tc = h->host && h->host->tls_istio ? cc->tls_istio_ctx : cc->tls_default_ctx;
	char list[sizeof(h->alpn)];
	const char *protos[16];
	size_t n = 0;

	h->tls = sk_tls_conn_new(h->tls_ctx, h->fd, false, NULL);
	if (h->tls == NULL)
		return -ENOMEM;
	if (h->alpn[0] != '\0') {
		char *save = NULL;

		memcpy(list, h->alpn, sizeof(list));
		for (char *p = strtok_r(list, ",", &save); p != NULL && n < sizeof(protos) / sizeof(protos[0]);
		     p = strtok_r(NULL, ",", &save))
			protos[n++] = p;
	} else if (tc == NULL || tc->n_alpn == 0) {
		protos[n++] = "h2";
	}
	if (n > 0 && sk_tls_conn_set_alpn(h->tls, protos, n) < 0)
		return -EINVAL;
	return 0;
}

/* Advances the TLS handshake (connect_timeout still runs: it covers the handshake). true
 * once established; false while it waits for the socket, or after failing every waiting
 * stream as a connect failure (h is then destroyed). */
static bool tls_handshake(struct sk_h2_up *h)
{
	struct sk_worker *w = h->w;
	char up[SK_ADDR_TEXT_MAX];

	switch (sk_tls_handshake(h->tls)) {
	case SK_TLS_DONE:
		sk_tls_stats_count(w->shard, &h->cluster->tls_st, h->tls, true);
		return true;
	case SK_TLS_WANT_READ:
		connect_wait(h, EV_READ);
		return false;
	case SK_TLS_WANT_WRITE:
		connect_wait(h, EV_WRITE);
		return false;
	default:
		break;
	}
	sk_tls_stats_count(w->shard, &h->cluster->tls_st, h->tls, false);
	sk_addr_format(&h->addr, up, sizeof(up));
	sk_log_debug(SK_LOG_UPSTREAM, "http2 upstream: TLS handshake with %s (cluster '%s') failed: %s", up,
		     h->cluster->config->name, sk_tls_failure_reason(h->tls));
	connect_failed(h, false, EPROTO);
	return false;
}

/* The connection is up (TCP, and TLS when it has it): start the session, let the waiting
 * streams write. */
static void session_start(struct sk_h2_up *h)
{
	const struct sk_h2_options *o = &h->cluster->config->h2;
	nghttp2_settings_entry set[2];
	nghttp2_option *opt = NULL;
	int rv = -1;

	ev_io_stop(h->w->loop, &h->wio);
	ev_timer_stop(h->w->loop, &h->timer);
	if (callbacks() != NULL && nghttp2_option_new(&opt) == 0) {
		nghttp2_option_set_no_auto_window_update(opt, 1); /* give_back returns the windows */
		rv = nghttp2_session_client_new2(&h->s, callbacks(), h, opt);
		nghttp2_option_del(opt);
	}
	if (rv != 0) {
		connect_failed(h, false, ENOMEM);
		return;
	}
	h->connected = true;
	set[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_stream_window_size };
	set[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 };
	nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, set, 2);
	nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, (int32_t)o->initial_connection_window_size);
	ev_io_init(&h->wio, on_writable, h->fd, EV_WRITE);
	h->wio.data = h;
	ev_io_init(&h->rio, on_read, h->fd, EV_READ);
	h->rio.data = h;
	ev_io_start(h->w->loop, &h->rio);
	h->in_flush = true; /* streams write; one flush after */
	for (struct upconn *u = h->streams, *next; u != NULL; u = next) {
		next = u->h2_next;
		u->local = h->local;
		sk_http_up_connected(u);
	}
	h->in_flush = false;
	if (h->n_streams == 0) { /* they all left while it connected: pooled, idle */
		ev_timer_set(&h->timer, POOL_IDLE_TIMEOUT, 0.);
		ev_timer_start(h->w->loop, &h->timer);
	}
	flush(h);
}

/* While connecting: the TCP connect finished (or failed), or the TLS handshake can go on. */
static void on_connect(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_h2_up *h = io->data;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	(void)revents;
	if (h->tls == NULL) {
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS)
			return;
		if (err != 0) {
			connect_failed(h, false, err);
			return;
		}
		h->connected_at = ev_now(h->w->loop);
		len = sizeof(h->local.ss);
		getsockname(h->fd, (struct sockaddr *)&h->local.ss, &len);
		h->local.len = len;
		if (h->tls_ctx != NULL && (err = tls_start(h)) < 0) {
			connect_failed(h, false, -err);
			return;
		}
	}
	if (h->tls != NULL && !tls_handshake(h))
		return;
	session_start(h);
}

static void on_writable(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_h2_up *h = io->data;

	(void)loop;
	(void)revents;
	if (h->tls_rd_wants_write)
		conn_read(h); /* a TLS read waited for writability; it flushes after */
	else
		flush(h);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_h2_up *h = t->data;

	(void)loop;
	(void)revents;
	if (!h->connected) {
		connect_failed(h, true, ETIMEDOUT);
	} else if (h->streams == NULL) {
		sk_stat_inc(h->w->shard, h->cluster->st.upstream_cx_idle_timeout);
		h->dead = true;
		conn_destroy(h, true);
	}
}

static void conn_destroy(struct sk_h2_up *h, bool local)
{
	struct sk_worker *w = h->w;

	for (struct sk_h2_up **p = &pool; *p != NULL; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	ev_io_stop(w->loop, &h->rio);
	ev_io_stop(w->loop, &h->wio);
	ev_timer_stop(w->loop, &h->timer);
	if (h->tls != NULL) {
		/* close_notify on our own close of an established connection (best effort: a
		 * full socket is not waited for) */
		if (local && h->connected)
			(void)sk_tls_shutdown(h->tls);
		sk_tls_conn_free(h->tls);
	}
	sk_tls_ctx_unref(h->tls_ctx);
	close(h->fd);
	sk_http_up_count_close(w, h->cluster, h->host, h->connected_at, local);
	nghttp2_session_del(h->s);
	buf_free(&h->out);
	sk_host_set_unref(h->hs);
	sk_cluster_unref(h->cluster);
	free(h);
}

/* A new connection to u's host; -errno, or -EBUSY when the circuit breaker is full. */
static struct sk_h2_up *conn_open(struct upconn *u, int *rc)
{
	const struct sk_cluster_config *cc = u->cluster->config;
	struct sk_worker *w = u->w;
	struct sk_h2_up *h;
	int fd;

	if (atomic_load(&u->cluster->active_cx) >= cc->cb[0].max_connections) {
		*rc = -EBUSY;
		return NULL;
	}
	if ((fd = sk_http_up_socket(cc, &u->addr)) < 0) {
		*rc = fd;
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		close(fd);
		*rc = -ENOMEM;
		return NULL;
	}
	h->w = w;
	h->fd = fd;
	h->cluster = sk_cluster_ref(u->cluster);
	h->hs = u->hs ? sk_host_set_ref(u->hs) : NULL;
	h->host = u->host;
	h->addr = u->addr;
	h->tls_ctx = u->tls_ctx ? sk_tls_ctx_ref(u->tls_ctx) : NULL;
	memcpy(h->alpn, u->alpn, sizeof(h->alpn));
	h->alpn[sizeof(h->alpn) - 1] = '\0';
	ev_init(&h->rio, on_read);
	ev_io_init(&h->wio, on_connect, fd, EV_WRITE);
	ev_init(&h->timer, on_timer);
	h->rio.data = h->wio.data = h->timer.data = h;
	sk_http_up_count_open(w, h->cluster, h->host, true);
	h->next = pool;
	pool = h;
	if (connect(fd, (const struct sockaddr *)&u->addr.ss, u->addr.len) < 0 && errno != EINPROGRESS) {
		*rc = -errno;
		conn_destroy(h, true);
		return NULL;
	}
	ev_io_start(w->loop, &h->wio);
	ev_timer_set(&h->timer, cc->connect_timeout, 0.);
	ev_timer_start(w->loop, &h->timer);
	return h;
}

int sk_h2_up_attach(struct upconn *u)
{
	struct sk_h2_up *h;
	int rc = 0;

	for (h = pool; h != NULL; h = h->next) {
		uint32_t max = h->connected ? nghttp2_session_get_remote_settings(h->s,
						NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) : 100;

		if (h->cluster == u->cluster && !h->dead && sk_http_same_addr(&h->addr, &u->addr) && h->n_streams < max &&
		    h->tls_ctx == u->tls_ctx && strncmp(h->alpn, u->alpn, sizeof(h->alpn)) == 0 &&
		    (h->s == NULL || nghttp2_session_check_request_allowed(h->s)))
			break;
	}
	if (h == NULL && (h = conn_open(u, &rc)) == NULL)
		return rc;
	if (h->connected && h->n_streams == 0)
		ev_timer_stop(h->w->loop, &h->timer); /* the idle timer */
	u->h2 = h;
	u->h2_next = h->streams;
	if (h->streams)
		h->streams->h2_prev = u;
	h->streams = u;
	h->n_streams++;
	u->connected = h->connected;
	u->local = h->local;
	u->resp_chunked = true;
	return 0;
}

void sk_h2_up_consumed(struct upconn *u)
{
	struct sk_h2_up *h = u->h2;

	if (h == NULL || !h->connected || h->dead)
		return;
	give_back(u);
	if (h->in_recv || h->in_flush)
		h->again = true;
	else /* the WINDOW_UPDATE goes out from the loop: the caller is inside a stream's event */
		ev_io_start(h->w->loop, &h->wio);
}

void sk_h2_up_detach(struct upconn *u)
{
	struct sk_h2_up *h = u->h2;

	if (h == NULL)
		return;
	if (u->sid > 0) {
		nghttp2_session_set_stream_user_data(h->s, u->sid, NULL);
		if (!u->resp_end || !u->req_eof)
			nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, u->sid, NGHTTP2_CANCEL);
		u->sid = 0;
	}
	unlink_stream(u);
	flush(h);
}

void sk_h2_up_retire(struct sk_worker *w, const struct sk_snapshot *snap)
{
	struct sk_h2_up *h = pool, *next;

	for (; h != NULL; h = next) {
		next = h->next;
		if (h->w != w || h->n_streams > 0 || sk_snapshot_cluster(snap, h->cluster->config->name) == h->cluster)
			continue;
		h->dead = true;
		conn_destroy(h, true);
	}
}

void sk_h2_up_close_all(struct sk_worker *w)
{
	struct sk_h2_up *h = pool, *next;

	for (; h != NULL; h = next) {
		next = h->next;
		if (h->w != w)
			continue;
		h->dead = true;
		fail_streams(h, !h->connected, false, ECONNABORTED);
		conn_destroy(h, true);
	}
}
