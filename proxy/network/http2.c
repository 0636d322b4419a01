/* http2: the downstream HTTP/2 codec of the connection manager, on nghttp2.
 *
 * One sk_h2_conn per connection owns the nghttp2 server session and the socket; each
 * stream is an sk_http_conn (http_conn.c) that routes and forwards exactly as an HTTP/1.1
 * request does. The codec turns frames into stream calls (headers, data, end, close) and
 * the streams' responses back into frames: HEADERS from the HTTP/1.1 text head the stream
 * built, DATA pulled from the stream's dout by a data provider, trailers after the body.
 * Request trailers (HEADERS after DATA, with END_STREAM) are kept on the stream, without
 * pseudo-headers and connection-specific fields, and go upstream after the body (in the
 * last chunk of a chunked HTTP/1.1 body, or as HEADERS to an HTTP/2 upstream). A request
 * with a content-length is forwarded framed by it, which cannot carry trailers (the router
 * writes HTTP/1.1 text for both upstream codecs): its trailers are dropped.
 *
 * Flow control is manual: request bytes return their window (nghttp2_session_consume) only
 * when the stream has passed them on, so a peer can never make skiff buffer more than the
 * connection window. The frames nghttp2 produces are copied into out and written; while the
 * peer does not read, out stops growing and so does reading from it.
 *
 * Envoy's protections, with its option names and stats (http2.*): rapid reset
 * (CVE-2023-44487: after 500 streams, half of them reset by the peer before their response
 * ends the connection, downstream_rq_too_many_premature_resets; plus nghttp2's own reset
 * rate limit); CONTINUATION floods (CVE-2024-27919/30255: nghttp2's continuation limit and
 * the header size limits, checked as headers are decoded, which also stop HPACK bombs);
 * consecutive empty DATA/HEADERS frames; PRIORITY and WINDOW_UPDATE floods; outbound and
 * outbound control frame floods (a peer that sends PINGs or SETTINGS and never reads). A
 * flood ends the connection with GOAWAY (ENHANCE_YOUR_CALM) where it can still be written.
 *
 * Over TLS (c->tls: the listener finished the handshake) every byte goes through the TLS
 * connection, non-blocking both ways: a read may wait for writability and a write for
 * readability, and records already decrypted raise no readiness, so the read watcher is fed
 * for them. The byte counters count plaintext. The end sends close_notify (best effort);
 * the listener frees c->tls. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "proxy/log/log.h"
#include "proxy/network/http_internal.h"
#include "proxy/network/tls.h"
#include "proxy/server/workers.h"

#define READ_CHUNK 16384
/* Envoy's overload.premature_reset_total_stream_count. */
#define PREMATURE_RESET_STREAMS 500

struct sk_h2_conn {
	struct sk_conn *c;
	struct sk_worker *w;
	const struct sk_hcm_config *cfg;
	const struct sk_h2_options *o;
	const struct sk_http_stats *st;
	nghttp2_session *s;
	ev_io wio;
	ev_timer idle;
	struct buf out;                 /* frames not yet written */
	struct sk_http_conn *streams;   /* open streams */
	uint32_t limit;
	bool in_recv, in_flush, again, dead, goaway;
	bool tls_rd_wants_write;        /* a TLS read returned WANT_WRITE: read again when writable */
	bool tls_wr_wants_read;         /* a TLS write returned WANT_READ: write again when readable */
	/* flood accounting (Envoy's rules) */
	uint32_t empty_frames;          /* consecutive frames without payload */
	uint64_t priority_frames, window_updates, data_sent, streams_opened;
	uint64_t closed, premature;
	uint32_t out_frames, out_control; /* frames sitting in out */
	uint32_t trailer_fields;        /* of the trailers block being decoded */
};

static void h2_flush(struct sk_h2_conn *h);

static struct sk_http_conn *stream_of(struct sk_h2_conn *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

static void unlink_stream(struct sk_h2_conn *h, struct sk_http_conn *hc)
{
	if (hc->h2_prev)
		hc->h2_prev->h2_next = hc->h2_next;
	else
		h->streams = hc->h2_next;
	if (hc->h2_next)
		hc->h2_next->h2_prev = hc->h2_prev;
	hc->h2_prev = hc->h2_next = NULL;
	sk_stat_sub(h->w->shard, h->st->h2_streams_active, 1);
}

/* A flood or abuse: GOAWAY ENHANCE_YOUR_CALM, then the connection ends. */
static void flood(struct sk_h2_conn *h, sk_stat_id stat, const char *what)
{
	sk_log_debug(SK_LOG_HTTP, "[C%llu] http2: %s: closing the connection", (unsigned long long)h->c->id, what);
	sk_stat_inc(h->w->shard, stat);
	nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* ---------------------------------------------------------------------------------- */
/* nghttp2 callbacks                                                                   */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sk_h2_conn *h = ud;
	struct sk_http_conn *hc;

	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_HEADERS)
		h->trailer_fields = 0; /* blocks never interleave: one count per connection */
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	hc = sk_http_stream_new(h->c, h, f->hd.stream_id, h->limit);
	if (hc == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, hc);
	hc->h2_next = h->streams;
	if (h->streams)
		h->streams->h2_prev = hc;
	h->streams = hc;
	h->streams_opened++;
	sk_stat_add(h->w->shard, h->st->h2_streams_active, 1);
	ev_timer_stop(h->w->loop, &h->idle);
	return 0;
}

/* One field of a request's trailers, kept as "name\0value\0" in hc->h2_req_trailers. Over
 * the request header limits the stream is reset (as Envoy does). */
static int request_trailer(struct sk_h2_conn *h, struct sk_http_conn *hc, const uint8_t *name, size_t nlen,
			   const uint8_t *value, size_t vlen)
{
	struct buf *b = &hc->h2_req_trailers;

	if (nlen == 0 || name[0] == ':' || sk_http_connection_specific((const char *)name, nlen))
		return 0; /* nghttp2 already refuses them in trailers: never forwarded */
	if (++h->trailer_fields > h->cfg->max_headers_count ||
	    b->len + nlen + vlen + 2 > h->cfg->max_request_headers_kb * 1024u) {
		sk_stat_inc(h->w->shard, h->st->h2_header_overflow);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (append(b, name, nlen) < 0 || append(b, "", 1) < 0 || append(b, value, vlen) < 0 || append(b, "", 1) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct sk_h2_conn *h = ud;
	struct sk_http_conn *hc = stream_of(h, f->hd.stream_id);

	(void)s;
	(void)flags;
	if (hc == NULL) {
		sk_stat_inc(h->w->shard, h->st->h2_headers_cb_no_stream);
		return 0;
	}
	if (f->headers.cat == NGHTTP2_HCAT_HEADERS)
		return request_trailer(h, hc, name, nlen, value, vlen);
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (sk_http_stream_header(hc, name, nlen, value, vlen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

/* Envoy's frame-level limits on what the peer sends. */
static void count_frame(struct sk_h2_conn *h, const nghttp2_frame *f)
{
	const struct sk_h2_options *o = h->o;
	const struct sk_http_stats *st = h->st;

	switch (f->hd.type) {
	case NGHTTP2_DATA:
	case NGHTTP2_HEADERS:
		if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			if (++h->empty_frames > o->max_consecutive_inbound_frames_with_empty_payload)
				flood(h, st->h2_inbound_empty_frames_flood, "too many consecutive empty frames");
		} else {
			h->empty_frames = 0;
		}
		break;
	case NGHTTP2_PRIORITY:
		if (++h->priority_frames > (uint64_t)o->max_inbound_priority_frames_per_stream * (1 + h->streams_opened))
			flood(h, st->h2_inbound_priority_frames_flood, "PRIORITY flood");
		break;
	case NGHTTP2_WINDOW_UPDATE:
		if (++h->window_updates > 5 + 2 * (h->streams_opened +
			(uint64_t)o->max_inbound_window_update_frames_per_data_frame_sent * h->data_sent))
			flood(h, st->h2_inbound_window_update_frames_flood, "WINDOW_UPDATE flood");
		break;
	default:
		break;
	}
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sk_h2_conn *h = ud;
	struct sk_http_conn *hc;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)s;
	count_frame(h, f);
	hc = f->hd.stream_id ? stream_of(h, f->hd.stream_id) : NULL;
	if (hc == NULL)
		return 0;
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
			sk_http_stream_request(hc, end);
		else if (end)
			sk_http_stream_end(hc);
		break;
	case NGHTTP2_DATA:
		if (end)
			sk_http_stream_end(hc);
		break;
	case NGHTTP2_RST_STREAM:
		hc->h2_rx_rst = true;
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
			 void *ud)
{
	struct sk_h2_conn *h = ud;
	struct sk_http_conn *hc = stream_of(h, id);

	(void)flags;
	if (hc == NULL) {
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	sk_http_stream_data(hc, data, len);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
	struct sk_h2_conn *h = ud;
	struct sk_http_conn *hc = stream_of(h, id);

	if (hc == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	unlink_stream(h, hc);
	hc->h2_closed = true;
	h->closed++;
	if (hc->h2_rx_rst) {
		sk_stat_inc(h->w->shard, h->st->h2_rx_reset);
		if (!hc->h2_resp_eof)
			h->premature++;
	}
	sk_http_stream_closed(hc, error_code);
	if (h->closed >= PREMATURE_RESET_STREAMS && h->premature * 2 >= h->closed) {
		sk_stat_inc(h->w->shard, h->st->downstream_rq_too_many_premature_resets);
		flood(h, h->st->h2_rx_reset, "too many streams reset by the peer (rapid reset)");
		h->premature = 0; /* count once */
	}
	if (h->streams == NULL && h->cfg->idle_timeout > 0) {
		ev_timer_set(&h->idle, h->cfg->idle_timeout, 0.);
		ev_timer_start(h->w->loop, &h->idle);
	}
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sk_h2_conn *h = ud;
	struct sk_http_conn *hc;

	h->out_frames++;
	switch (f->hd.type) {
	case NGHTTP2_DATA:
		h->data_sent++;
		break;
	case NGHTTP2_RST_STREAM:
		sk_stat_inc(h->w->shard, h->st->h2_tx_reset);
		h->out_control++;
		break;
	case NGHTTP2_GOAWAY:
		sk_stat_inc(h->w->shard, h->st->h2_goaway_sent);
		h->out_control++;
		break;
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
	case NGHTTP2_WINDOW_UPDATE:
		h->out_control++;
		break;
	default:
		break;
	}
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (hc = stream_of(h, f->hd.stream_id)) != NULL && !hc->h2_end_in) {
		/* the response is whole while the request is not: stop the peer sending it */
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	}
	return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int lib_error, void *ud)
{
	struct sk_h2_conn *h = ud;

	(void)s;
	(void)f;
	if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING)
		sk_stat_inc(h->w->shard, h->st->h2_rx_messaging_error);
	return 0;
}

/* DATA for a response: what dout holds; the end (and the trailers) once the stream says so. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct sk_http_conn *hc = src->ptr;
	size_t n = pending(&hc->dout);

	(void)ud;
	if (n > length)
		n = length;
	if (n > 0) {
		memcpy(buf, hc->dout.p + hc->dout.off, n);
		consume(&hc->dout, n);
	}
	if (pending(&hc->dout) == 0 && hc->h2_resp_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (hc->h2_trailers.len > 0) {
			nghttp2_nv nv[64];
			size_t k = 0;
			const char *p = hc->h2_trailers.p, *end = p + hc->h2_trailers.len;

			while (p < end && k < sizeof(nv) / sizeof(nv[0])) {
				size_t nl = strlen(p), vl = strlen(p + nl + 1);

				nv[k++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)p + nl + 1, nl, vl, NGHTTP2_NV_FLAG_NONE };
				p += nl + vl + 2;
			}
			if (nghttp2_submit_trailer(s, id, nv, k) == 0) {
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
				sk_stat_inc(hc->w->shard, hc->st->h2_trailers);
			}
		}
	} else if (n == 0) {
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* ---------------------------------------------------------------------------------- */
/* what the streams call                                                               */

void sk_h2_drain(struct sk_h2_conn *h)
{
	if (h->goaway)
		return;
	h->goaway = true;
	nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
			      NGHTTP2_NO_ERROR, NULL, 0);
}

void sk_h2_conn_drain(struct sk_conn *c)
{
	if (c->h2 == NULL || c->h2->dead)
		return;
	sk_h2_drain(c->h2);
	h2_flush(c->h2);
}

void sk_h2_submit_head(struct sk_http_conn *hc, bool body)
{
	struct sk_h2_conn *h = hc->h2;
	char *p = hc->resp_head.p, *end = p + hc->resp_head.len, *eol;
	char status[4] = "500";
	nghttp2_nv nv[128];
	size_t k = 1;
	nghttp2_data_provider prd = { .source.ptr = hc, .read_callback = read_body };

	if (hc->h2_closed || hc->h2_submitted)
		return;
	/* "HTTP/1.1 200 OK\r\n" then "name: value\r\n"... then "\r\n" */
	if (hc->resp_head.len > 12)
		memcpy(status, p + 9, 3);
	nv[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE };
	p = memchr(p, '\n', (size_t)(end - p));
	while (p && ++p < end && k < sizeof(nv) / sizeof(nv[0])) {
		char *colon, *v;

		eol = memchr(p, '\r', (size_t)(end - p));
		if (eol == NULL || eol == p)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL)
			break;
		for (char *q = p; q < colon; q++) /* HTTP/2 field names are lower-case */
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q + 32);
		v = colon + 1;
		while (v < eol && *v == ' ')
			v++;
		if (!sk_http_connection_specific(p, (size_t)(colon - p)))
			nv[k++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)v, (size_t)(colon - p), (size_t)(eol - v),
					       NGHTTP2_NV_FLAG_NONE };
		p = memchr(eol, '\n', (size_t)(end - eol));
	}
	hc->h2_submitted = true;
	if (nghttp2_submit_response(h->s, hc->stream_id, nv, k, body ? &prd : NULL) != 0)
		hc->must_close = true;
	if (!body)
		hc->h2_resp_eof = true;
	h->again = true;
}

void sk_h2_data_ready(struct sk_http_conn *hc)
{
	struct sk_h2_conn *h = hc->h2;

	if (hc->h2_submitted && !hc->h2_closed)
		nghttp2_session_resume_data(h->s, hc->stream_id);
	h->again = true;
}

void sk_h2_consumed(struct sk_http_conn *hc, size_t n)
{
	struct sk_h2_conn *h = hc->h2;

	if (n == 0)
		return;
	if (hc->h2_closed)
		nghttp2_session_consume_connection(h->s, n);
	else
		nghttp2_session_consume(h->s, hc->stream_id, n);
	h->again = true;
}

void sk_h2_stream_after(struct sk_http_conn *hc)
{
	struct sk_h2_conn *h = hc->h2;

	if (hc->must_close && !hc->h2_closed && !hc->h2_rst) {
		/* the exchange broke (an upstream reset mid-response, a protocol error) */
		hc->h2_rst = true;
		nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, hc->stream_id, NGHTTP2_INTERNAL_ERROR);
	}
	h2_flush(h);
}

/* ---------------------------------------------------------------------------------- */
/* the connection                                                                      */

/* Whether the peer's bytes are wanted now (not while out is over the limit). */
static bool reading(struct sk_h2_conn *h)
{
	return nghttp2_session_want_read(h->s) && pending(&h->out) < h->limit;
}

static void update_io(struct sk_h2_conn *h)
{
	struct ev_loop *loop = h->w->loop;
	bool want_read = reading(h) || h->tls_wr_wants_read;
	/* a TLS write waiting for readability must not spin on writability */
	bool want_write = (pending(&h->out) > 0 && !h->tls_wr_wants_read) || h->tls_rd_wants_write;

	if (want_read && !ev_is_active(&h->c->io))
		ev_io_start(loop, &h->c->io);
	else if (!want_read && ev_is_active(&h->c->io))
		ev_io_stop(loop, &h->c->io);
	if (want_write && !ev_is_active(&h->wio))
		ev_io_start(loop, &h->wio);
	else if (!want_write && ev_is_active(&h->wio))
		ev_io_stop(loop, &h->wio);
	/* bytes TLS already decrypted raise no readiness on the socket: come back for them */
	if (h->c->tls != NULL && reading(h) && ev_is_active(&h->c->io) && sk_tls_pending(h->c->tls) > 0)
		ev_feed_event(loop, &h->c->io, EV_READ);
}

/* Writes what out holds, through TLS when the connection has it: the bytes taken, or -errno
 * (-EAGAIN: wait; a TLS write that must read first sets tls_wr_wants_read). A TLS retry
 * starts at the same bytes, as out moves only on success. */
static ssize_t conn_send(struct sk_h2_conn *h)
{
	return sk_tls_io_write(h->c->tls, h->c->fd, h->out.p + h->out.off, pending(&h->out), &h->tls_wr_wants_read);
}

/* One read, through TLS when the connection has it: > 0 bytes, 0 at the peer's end (FIN or
 * close_notify), or -errno (-EAGAIN: wait; a TLS read that must write first sets
 * tls_rd_wants_write). */
static ssize_t conn_recv(struct sk_h2_conn *h, void *b, size_t len)
{
	ssize_t n = sk_tls_io_read(h->c->tls, h->c->fd, b, len, &h->tls_rd_wants_write);

	if (n == -EPROTO && h->c->tls != NULL)
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http2: TLS: %s", (unsigned long long)h->c->id,
			     sk_tls_failure_reason(h->c->tls));
	return n;
}

/* Frames out of nghttp2 into out, out to the socket, streams whose response buffer drained
 * read their upstream again; repeated while any of that made more work. May close the
 * connection (h is then freed). */
static void h2_flush(struct sk_h2_conn *h)
{
	if (h->in_recv || h->in_flush) {
		h->again = true;
		return;
	}
	h->in_flush = true;
	do {
		h->again = false;
		while (!h->dead && pending(&h->out) < h->limit) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(h->s, &data);

			if (n < 0) {
				sk_log_debug(SK_LOG_HTTP, "[C%llu] http2: %s", (unsigned long long)h->c->id,
					     nghttp2_strerror((int)n));
				h->dead = true;
			}
			if (n <= 0)
				break;
			append(&h->out, data, (size_t)n);
		}
		if (h->out_frames > h->o->max_outbound_frames) {
			flood(h, h->st->h2_outbound_flood, "too many frames queued for a peer that does not read");
			h->dead = true;
		} else if (h->out_control > h->o->max_outbound_control_frames) {
			flood(h, h->st->h2_outbound_control_flood, "too many control frames queued");
			h->dead = true;
		}
		h->tls_wr_wants_read = false;
		while (!h->dead && pending(&h->out) > 0) {
			ssize_t n = conn_send(h);

			if (n < 0) {
				if (n != -EAGAIN && n != -EINTR)
					h->dead = true;
				break;
			}
			sk_stat_add(h->w->shard, h->st->downstream_cx_tx_bytes_total, (uint64_t)n);
			consume(&h->out, (size_t)n);
		}
		if (pending(&h->out) == 0)
			h->out_frames = h->out_control = 0;
		for (struct sk_http_conn *hc = h->streams; hc != NULL && !h->dead; hc = hc->h2_next) {
			if (hc->up_paused && pending(&hc->dout) <= hc->limit) {
				hc->in_callback = true;
				sk_http_stream_resume(hc);
				if (hc->must_close && !hc->h2_rst) {
					hc->h2_rst = true;
					nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, hc->stream_id,
								  NGHTTP2_INTERNAL_ERROR);
					h->again = true;
				}
			}
		}
	} while (h->again && !h->dead);
	h->in_flush = false;
	if (h->dead || (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) &&
			pending(&h->out) == 0)) {
		sk_conn_close(h->c); /* frees h */
		return;
	}
	update_io(h);
}

/* One read, then h2_flush (which also retries a TLS write that waited for readability).
 * May close the connection. */
static void h2_read(struct sk_h2_conn *h)
{
	uint8_t b[READ_CHUNK];
	ssize_t n, rv;

	if (!reading(h)) {
		/* only a TLS write waiting for readability armed a watcher (or a TLS read that
		 * waited for writability, no longer wanted: it is tried again when it is) */
		h->tls_rd_wants_write = false;
		h2_flush(h);
		return;
	}
	n = conn_recv(h, b, sizeof(b));
	if (n == -EAGAIN || n == -EINTR) {
		if (h->tls_wr_wants_read || h->tls_rd_wants_write)
			h2_flush(h);
		return;
	}
	if (n <= 0) {
		sk_conn_close(h->c); /* open streams are reset (DC) */
		return;
	}
	sk_stat_add(h->w->shard, h->st->downstream_cx_rx_bytes_total, (uint64_t)n);
	h->in_recv = true;
	rv = nghttp2_session_mem_recv(h->s, b, (size_t)n);
	h->in_recv = false;
	if (rv < 0) {
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http2: %s", (unsigned long long)h->c->id, nghttp2_strerror((int)rv));
		sk_stat_inc(h->w->shard, h->st->downstream_cx_protocol_error);
		if (rv == NGHTTP2_ERR_FLOODED)
			sk_stat_inc(h->w->shard, h->st->h2_outbound_control_flood);
		h->dead = true;
	}
	h2_flush(h);
}

static void on_read(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	h2_read(io->data);
}

static void on_write(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_h2_conn *h = io->data;

	(void)loop;
	(void)revents;
	if (h->tls_rd_wants_write)
		h2_read(h); /* a TLS read waited for writability; it flushes after */
	else
		h2_flush(h);
}

static void on_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_h2_conn *h = t->data;

	(void)loop;
	(void)revents;
	if (h->streams != NULL)
		return;
	sk_stat_inc(h->w->shard, h->st->downstream_cx_idle_timeout);
	nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
	h2_flush(h);
}

static _Thread_local nghttp2_session_callbacks *cb;

void sk_h2_thread_cleanup(void)
{
	nghttp2_session_callbacks_del(cb);
	cb = NULL;
}

static nghttp2_session_callbacks *callbacks(void)
{
	if (cb == NULL && nghttp2_session_callbacks_new(&cb) == 0) {
		nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
		nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
		nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
		nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
		nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
	}
	return cb;
}

void sk_h2_conn_start(struct sk_conn *c)
{
	struct sk_h2_conn *h = calloc(1, sizeof(*h));
	struct sk_worker *w = c->w;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry set[3];
	int rv;

	if (h == NULL || callbacks() == NULL || nghttp2_option_new(&opt) != 0) {
		free(h);
		sk_conn_close(c);
		return;
	}
	h->c = c;
	h->w = w;
	h->cfg = c->chain->hcm;
	h->o = &h->cfg->h2;
	h->st = c->hst;
	h->limit = c->l->cfg->buffer_limit < 16384 ? 16384 : c->l->cfg->buffer_limit;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, h->o->max_outbound_control_frames);
	nghttp2_option_set_max_continuations(opt, 8);
	rv = nghttp2_session_server_new2(&h->s, callbacks(), h, opt);
	nghttp2_option_del(opt);
	if (rv != 0) {
		free(h);
		sk_conn_close(c);
		return;
	}
	c->h2 = h;
	sk_stat_inc(w->shard, h->st->downstream_cx_total);
	sk_stat_add(w->shard, h->st->downstream_cx_active, 1);
	sk_stat_inc(w->shard, h->st->downstream_cx_http2_total);
	sk_stat_add(w->shard, h->st->downstream_cx_http2_active, 1);
	sk_stat_set(w->shard, h->st->filters_accepted_without_effect, h->cfg->observe_only);
	set[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->o->max_concurrent_streams };
	set[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h->o->initial_stream_window_size };
	set[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, h->o->hpack_table_size };
	nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, set, 3);
	nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, (int32_t)h->o->initial_connection_window_size);
	ev_io_init(&c->io, on_read, c->fd, EV_READ);
	c->io.data = h;
	ev_io_init(&h->wio, on_write, c->fd, EV_WRITE);
	h->wio.data = h;
	ev_init(&h->idle, on_idle);
	h->idle.data = h;
	if (h->cfg->idle_timeout > 0) {
		ev_timer_set(&h->idle, h->cfg->idle_timeout, 0.);
		ev_timer_start(w->loop, &h->idle);
	}
	if (c->n_inspected > 0) {
		/* the preface (and maybe more) was read to choose the codec: by the inspectors on
		 * cleartext, through TLS when ALPN did not say h2 (the listener gave what the
		 * tls_inspector read to OpenSSL) */
		ssize_t n;

		sk_stat_add(w->shard, h->st->downstream_cx_rx_bytes_total, c->n_inspected);
		h->in_recv = true;
		n = nghttp2_session_mem_recv(h->s, c->inspected, c->n_inspected);
		h->in_recv = false;
		if (n < 0)
			h->dead = true;
	}
	h2_flush(h);
}

void sk_h2_conn_free(struct sk_h2_conn *h)
{
	struct sk_worker *w = h->w;

	while (h->streams) {
		struct sk_http_conn *hc = h->streams;

		unlink_stream(h, hc);
		hc->h2_closed = true;
		sk_http_stream_closed(hc, NGHTTP2_CANCEL);
	}
	ev_io_stop(w->loop, &h->wio);
	ev_timer_stop(w->loop, &h->idle);
	/* close_notify, best effort (a full socket is not waited for; after a TLS error it is
	 * not sent); sk_conn_close frees c->tls */
	if (h->c->tls != NULL)
		(void)sk_tls_shutdown(h->c->tls);
	nghttp2_session_del(h->s);
	sk_stat_sub(w->shard, h->st->downstream_cx_active, 1);
	sk_stat_sub(w->shard, h->st->downstream_cx_http2_active, 1);
	sk_stat_inc(w->shard, h->st->downstream_cx_destroy);
	buf_free(&h->out);
	free(h);
}
