/* h1_parser_test: the HTTP/1.x parser on messages of every shape, fed whole, split at every
 * point and byte by byte (same result), pipelined, and on the smuggling inputs it must refuse
 * with the status a client would see. */
#include "test.h"
#include "proxy/http/h1_parser.h"

#include <stdbool.h>
#include <stdint.h>

#define MAX_HEADS 8
#define MAX_COPY_FIELDS 128

/* What a caller would have seen of one input: the events in order (bodies are compared as
 * bytes, since how they are cut depends on how the input arrived). */
struct result {
	char log[512];
	char body[16384];
	size_t body_len;
	size_t consumed;
	int n_heads;
	struct sk_h1_head heads[MAX_HEADS];
	struct sk_h1_field fields[MAX_HEADS][MAX_COPY_FIELDS];
	struct sk_h1_field trailers[MAX_COPY_FIELDS];
	size_t n_trailers;
	int status;
	const char *reason;
	bool bad_slice; /* consumed past the input, or a slice outside what was given */
};

static struct result R, W; /* the last run, and a whole-input run to compare with */

static void logf_(struct result *r, const char *s)
{
	size_t n = strlen(r->log);

	snprintf(r->log + n, sizeof(r->log) - n, "%s", s);
}

static bool inside(const struct sk_h1_slice *s, const char *lo, const char *hi)
{
	return s->len == 0 || (s->p >= lo && s->p + s->len <= hi);
}

static void copy_head(struct result *r, const struct sk_h1_head *h)
{
	size_t n = h->n_fields < MAX_COPY_FIELDS ? h->n_fields : MAX_COPY_FIELDS;

	if (r->n_heads == MAX_HEADS)
		return;
	r->heads[r->n_heads] = *h;
	memcpy(r->fields[r->n_heads], h->fields, n * sizeof(h->fields[0]));
	r->heads[r->n_heads].fields = r->fields[r->n_heads];
	r->n_heads++;
}

/* Feeds in[0..len) to p: first `first` bytes, then `step` more each time the parser asks;
 * with eof, ends with sk_h1_parse_eof. Responses answer `method` (and upgrade). */
static void run_on(struct sk_h1_parser *p, const char *in, size_t len, size_t first, size_t step,
		   bool eof, enum sk_h1_method method, bool upgrade, struct result *r)
{
	size_t off = 0, avail = first < len ? first : len;
	int guard = 0;
	char tmp[64];

	memset(r, 0, sizeof(*r));
	sk_h1_parser_expect_response(p, method, upgrade);
	while (guard++ < 1000000) {
		struct sk_h1_event ev;
		enum sk_h1_event_type t = sk_h1_parse(p, in + off, avail - off, &ev);
		const char *lo = in + off, *hi = in + avail;

		if (ev.consumed > avail - off || t != ev.type)
			r->bad_slice = true;
		off += ev.consumed < avail - off ? ev.consumed : avail - off;
		switch (t) {
		case SK_H1_EV_NEED_MORE:
			if (avail == len)
				goto end;
			avail = len - avail < step ? len : avail + step;
			break;
		case SK_H1_EV_HEAD:
			if (!inside(&ev.head->method, lo, hi) || !inside(&ev.head->target, lo, hi) ||
			    !inside(&ev.head->reason, lo, hi))
				r->bad_slice = true;
			copy_head(r, ev.head);
			logf_(r, "H ");
			break;
		case SK_H1_EV_BODY:
			if (!inside(&ev.data, lo, hi) || ev.data.len == 0)
				r->bad_slice = true;
			if (r->body_len + ev.data.len <= sizeof(r->body)) {
				memcpy(r->body + r->body_len, ev.data.p, ev.data.len);
				r->body_len += ev.data.len;
			}
			break;
		case SK_H1_EV_TRAILERS:
			r->n_trailers = ev.n_trailers < MAX_COPY_FIELDS ? ev.n_trailers : MAX_COPY_FIELDS;
			memcpy(r->trailers, ev.trailers, r->n_trailers * sizeof(ev.trailers[0]));
			snprintf(tmp, sizeof(tmp), "T%zu ", ev.n_trailers);
			logf_(r, tmp);
			break;
		case SK_H1_EV_DONE:
			logf_(r, "D ");
			if (r->n_heads && (r->heads[r->n_heads - 1].status >= 200 ||
					   r->heads[r->n_heads - 1].status == 101))
				sk_h1_parser_expect_response(p, method, upgrade);
			break;
		case SK_H1_EV_ERROR:
			r->status = ev.status;
			r->reason = ev.reason;
			snprintf(tmp, sizeof(tmp), "E%d ", ev.status);
			logf_(r, tmp);
			r->consumed = off;
			return;
		}
	}
end:
	r->consumed = off;
	if (eof) {
		struct sk_h1_event ev;

		switch (sk_h1_parse_eof(p, &ev)) {
		case SK_H1_EV_DONE:
			logf_(r, "eofD ");
			break;
		case SK_H1_EV_NEED_MORE:
			logf_(r, "eofN ");
			break;
		default:
			r->status = ev.status;
			r->reason = ev.reason;
			snprintf(tmp, sizeof(tmp), "eofE%d ", ev.status);
			logf_(r, tmp);
			break;
		}
	}
}

static struct sk_h1_options opts; /* zero: Envoy's defaults */

static void run(enum sk_h1_kind kind, const char *in, size_t len, size_t first, size_t step,
		bool eof, enum sk_h1_method method, bool upgrade, struct result *r)
{
	struct sk_h1_parser *p = sk_h1_parser_new(kind, &opts);

	run_on(p, in, len, first, step, eof, method, upgrade, r);
	sk_h1_parser_free(p);
}

static struct result *req_n(const char *s, size_t len)
{
	run(SK_H1_REQUEST, s, len, len, len, false, SK_H1_M_GET, false, &R);
	return &R;
}

static struct result *req(const char *s)
{
	return req_n(s, strlen(s));
}

static void req_eof(const char *s)
{
	size_t len = strlen(s);

	run(SK_H1_REQUEST, s, len, len, len, true, SK_H1_M_GET, false, &R);
}

static struct result *resp(const char *s, enum sk_h1_method method, bool upgrade, bool eof)
{
	size_t len = strlen(s);

	run(SK_H1_RESPONSE, s, len, len, len, eof, method, upgrade, &R);
	return &R;
}

static bool slice_eq(struct sk_h1_slice s, const char *want)
{
	return s.len == strlen(want) && (s.len == 0 || memcmp(s.p, want, s.len) == 0);
}

static bool body_eq(const struct result *r, const char *want)
{
	return r->body_len == strlen(want) && memcmp(r->body, want, r->body_len) == 0;
}

static bool same(const struct result *a, const struct result *b)
{
	return strcmp(a->log, b->log) == 0 && a->body_len == b->body_len &&
	       memcmp(a->body, b->body, a->body_len) == 0 && a->consumed == b->consumed &&
	       a->status == b->status &&
	       (a->reason == b->reason || (a->reason && b->reason && !strcmp(a->reason, b->reason))) &&
	       !a->bad_slice && !b->bad_slice;
}

/* Whole, split in two at every point, and byte by byte: the same events, bodies and errors. */
static void check_splits(enum sk_h1_kind kind, const char *s, size_t len, bool eof,
			 enum sk_h1_method method, bool upgrade)
{
	bool all_two = true;
	size_t k;

	run(kind, s, len, len, len, eof, method, upgrade, &W);
	for (k = 1; k < len; k++) {
		run(kind, s, len, k, len, eof, method, upgrade, &R);
		if (!same(&R, &W)) {
			if (all_two)
				fprintf(stderr, "split at %zu: \"%s\" vs whole \"%s\"\n", k, R.log, W.log);
			all_two = false;
		}
	}
	CHECK(all_two);
	run(kind, s, len, 1, 1, eof, method, upgrade, &R);
	if (!same(&R, &W))
		fprintf(stderr, "byte by byte: \"%s\" vs whole \"%s\"\n", R.log, W.log);
	CHECK(same(&R, &W));
	run(kind, s, len, 3, 7, eof, method, upgrade, &R);
	CHECK(same(&R, &W));
}

static void refuses_n(const char *s, size_t len, int status, const char *why)
{
	req_n(s, len);
	if (R.status != status)
		fprintf(stderr, "  input: %.*s\n  got %d %s\n", (int)(len > 200 ? 200 : len), s,
			R.status, R.reason ? R.reason : "(none)");
	CHECK(R.status == status);
	CHECK_CONTAINS(R.reason, why);
	/* One error, after at most the head of a message whose body was bad. */
	CHECK(R.log[0] == 'E' || strncmp(R.log, "H E", 3) == 0);
}

/* An error in the head: nothing of the request is ever passed on. */
static void refuses_head_n(const char *s, size_t len, int status, const char *why)
{
	refuses_n(s, len, status, why);
	CHECK(R.log[0] == 'E');
}

static void refuses(const char *s, int status, const char *why)
{
	refuses_n(s, strlen(s), status, why);
}

static void refuses_head(const char *s, int status, const char *why)
{
	refuses_head_n(s, strlen(s), status, why);
}

static void resp_refused(const char *s, enum sk_h1_method method, bool upgrade, const char *why)
{
	resp(s, method, upgrade, false);
	if (R.status != 502)
		fprintf(stderr, "  input: %s\n  got %d %s\n", s, R.status, R.reason ? R.reason : "(none)");
	CHECK(R.status == 502);
	CHECK_CONTAINS(R.reason, why);
}

/* "POST / HTTP/1.1\r\nHost: a\r\n<fields>\r\n<body>" */
static const char *post(const char *fields, const char *body)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n%s", fields, body);
	return buf;
}

static void test_requests(void)
{
	const struct sk_h1_head *h;
	const struct sk_h1_field *f;

	req("GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\n"
	    "X-Empty:\r\nX-Pad: \t a  b \t\r\n\r\n");
	CHECK_STR(R.log, "H D ");
	h = &R.heads[0];
	CHECK(slice_eq(h->method, "GET") && h->method_id == SK_H1_M_GET);
	CHECK(slice_eq(h->target, "/a/b?c=d&e") && slice_eq(h->path, "/a/b?c=d&e"));
	CHECK(h->form == SK_H1_ORIGIN_FORM && h->minor == 1);
	CHECK(h->has_host && slice_eq(h->host, "example.com:8080"));
	CHECK(h->n_fields == 4 && slice_eq(h->fields[1].name, "User-Agent"));
	CHECK(slice_eq(h->fields[2].value, "") && slice_eq(h->fields[3].value, "a  b"));
	f = sk_h1_field_find(h->fields, h->n_fields, "user-agent");
	CHECK(f != NULL && slice_eq(f->value, "curl/8"));
	CHECK(sk_h1_field_find(h->fields, h->n_fields, "user-agen") == NULL);
	CHECK(h->framing == SK_H1_BODY_NONE && h->keep_alive && !h->tunnel && !h->upgrade);
	CHECK(!h->expect_continue && !h->has_content_length);
	CHECK(h->head_len == R.consumed);

	req(post("Content-Length: 5\r\n", "helloGET"));
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].framing == SK_H1_BODY_LENGTH && R.heads[0].content_length == 5);
	CHECK(R.heads[0].method_id == SK_H1_M_POST);
	CHECK(body_eq(&R, "hello") && R.consumed == strlen(post("Content-Length: 5\r\n", "hello")));

	req(post("Content-Length: 0\r\n", ""));
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].framing == SK_H1_BODY_NONE && R.heads[0].has_content_length);

	req(post("Transfer-Encoding: chunked\r\n",
		 "5;ext=1\r\nhello\r\n6 ; a = \"q\\\"x\" ; b\r\n world\r\n0\r\n"
		 "grpc-status: 0\r\nX-T:  v \r\n\r\n"));
	CHECK_STR(R.log, "H T2 D ");
	CHECK(R.heads[0].framing == SK_H1_BODY_CHUNKED && body_eq(&R, "hello world"));
	CHECK(R.n_trailers == 2 && slice_eq(R.trailers[0].name, "grpc-status"));
	CHECK(slice_eq(R.trailers[0].value, "0") && slice_eq(R.trailers[1].value, "v"));

	req(post("transfer-encoding: Chunked\r\n", "A\r\n0123456789\r\n000\r\n\r\n"));
	CHECK_STR(R.log, "H D ");
	CHECK(body_eq(&R, "0123456789"));

	req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].form == SK_H1_ASTERISK_FORM && slice_eq(R.heads[0].path, "*"));
	CHECK(R.heads[0].method_id == SK_H1_M_OPTIONS);

	req("GET http://Example.com:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
	CHECK_STR(R.log, "H D ");
	h = &R.heads[0];
	CHECK(h->form == SK_H1_ABSOLUTE_FORM && slice_eq(h->scheme, "http"));
	CHECK(slice_eq(h->authority, "Example.com:8080") && slice_eq(h->path, "/p?q=1"));
	req("GET https://[::1]:8443 HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(R.heads[0].form == SK_H1_ABSOLUTE_FORM && slice_eq(R.heads[0].authority, "[::1]:8443"));
	CHECK(slice_eq(R.heads[0].path, ""));

	/* CONNECT: authority-form, no body, then a tunnel whose bytes come as they are. */
	req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\n");
	CHECK_STR(R.log, "H D ");
	h = &R.heads[0];
	CHECK(h->method_id == SK_H1_M_CONNECT && h->form == SK_H1_AUTHORITY_FORM);
	CHECK(slice_eq(h->authority, "example.com:443") && h->tunnel && h->framing == SK_H1_BODY_NONE);
	CHECK(body_eq(&R, "\x16\x03\x01GET / HTTP/1.1\r\n"));
	req("CONNECT 10.0.0.1:8080 HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nContent-Length: 0\r\n\r\n");
	CHECK_STR(R.log, "H D ");

	/* HTTP/1.0: no Host needed, keep-alive only when asked, no upgrade, no 100-continue. */
	req("GET / HTTP/1.0\r\n\r\n");
	CHECK(R.heads[0].minor == 0 && !R.heads[0].keep_alive && !R.heads[0].has_host);
	req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	CHECK(R.heads[0].keep_alive);
	req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
	CHECK(!R.heads[0].keep_alive);
	req("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n");
	CHECK(!R.heads[0].upgrade && !R.heads[0].tunnel && !R.heads[0].expect_continue);
	req("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nok");
	CHECK(body_eq(&R, "ok") && R.heads[0].framing == SK_H1_BODY_LENGTH);

	req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	CHECK(!R.heads[0].keep_alive);
	req("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n");
	CHECK(!R.heads[0].keep_alive);

	/* A websocket upgrade: flagged, and after its head the bytes are the tunnel's. */
	req("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n\x81\x05hello");
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].upgrade && R.heads[0].tunnel && slice_eq(R.heads[0].upgrade_proto, "websocket"));
	CHECK(body_eq(&R, "\x81\x05hello"));
	req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
	CHECK(!R.heads[0].upgrade && !R.heads[0].tunnel); /* no Connection: upgrade */

	req(post("Expect: 100-Continue\r\nContent-Length: 3\r\n", "abc"));
	CHECK(R.heads[0].expect_continue && body_eq(&R, "abc"));

	/* Empty lines before a request line are skipped (RFC 9112 section 2.2). */
	req("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].head_len == R.consumed && slice_eq(R.heads[0].method, "GET"));

	req("PURGE /x HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\n\r\n");
	CHECK(R.heads[0].method_id == SK_H1_M_OTHER && slice_eq(R.heads[0].method, "PURGE"));
	CHECK(slice_eq(R.heads[0].fields[1].value, "caf\xe9"));

	/* The largest Content-Length accepted; one more overflows. */
	req(post("Content-Length: 18446744073709551615\r\n", ""));
	CHECK_STR(R.log, "H ");
	CHECK(R.heads[0].content_length == UINT64_MAX);

	/* A truncated request is an error at EOF; a close between requests is not. */
	req_eof("GET / HTTP/1.1\r\nHo");
	CHECK_STR(R.log, "eofE400 ");
	CHECK_CONTAINS(R.reason, "mid-message");
	req_eof("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc");
	CHECK_STR(R.log, "H eofE400 ");
	req_eof("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK_STR(R.log, "H D eofN ");
	req_eof("GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n");
	CHECK_STR(R.log, "H D eofN ");
	req_eof("");
	CHECK_STR(R.log, "eofN ");
}

static void test_responses(void)
{
	const struct sk_h1_head *h;

	resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", SK_H1_M_GET, false, false);
	CHECK_STR(R.log, "H D ");
	h = &R.heads[0];
	CHECK(h->status == 200 && slice_eq(h->reason, "OK") && h->minor == 1 && h->keep_alive);
	CHECK(h->framing == SK_H1_BODY_LENGTH && body_eq(&R, "hello"));

	resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/grpc\r\n\r\n"
	     "3\r\nabc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n",
	     SK_H1_M_POST, false, false);
	CHECK_STR(R.log, "H T2 D ");
	CHECK(body_eq(&R, "abc") && slice_eq(R.trailers[1].name, "grpc-message"));

	resp("HTTP/1.1 204 No Content\r\n\r\n", SK_H1_M_GET, false, false);
	CHECK_STR(R.log, "H D ");
	resp("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", SK_H1_M_GET, false, false);
	CHECK_STR(R.log, "H D ");
	resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", SK_H1_M_GET, false, false);
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].framing == SK_H1_BODY_NONE && R.heads[0].content_length == 100);
	resp("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", SK_H1_M_HEAD, false, false);
	CHECK_STR(R.log, "H D ");
	resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", SK_H1_M_HEAD, false, false);
	CHECK_STR(R.log, "H D ");

	/* 1xx are interim: the final response still answers the same (HEAD) request. */
	resp("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", SK_H1_M_HEAD, false, false);
	CHECK_STR(R.log, "H D H D H D ");
	CHECK(R.heads[0].status == 100 && R.heads[1].status == 103 && R.heads[2].status == 200);
	CHECK(R.heads[2].framing == SK_H1_BODY_NONE);

	/* No framing: the body runs to the close, and the connection cannot be reused. */
	resp("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this", SK_H1_M_GET, false, true);
	CHECK_STR(R.log, "H eofD ");
	CHECK(R.heads[0].framing == SK_H1_BODY_UNTIL_CLOSE && !R.heads[0].keep_alive);
	CHECK(body_eq(&R, "all of this"));
	resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", SK_H1_M_GET, false, false);
	CHECK(R.heads[0].status == 200 && R.heads[0].reason.len == 0);
	resp("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", SK_H1_M_GET, false, false);
	CHECK_STR(R.log, "H D ");
	resp("HTTP/1.1 500 Internal\tServer \xff Error\r\nContent-Length: 0\r\n\r\n", SK_H1_M_GET, false, false);
	CHECK(R.heads[0].status == 500 && slice_eq(R.heads[0].reason, "Internal\tServer \xff Error"));

	resp("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", SK_H1_M_GET, false, false);
	CHECK(R.heads[0].minor == 0 && !R.heads[0].keep_alive);
	resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", SK_H1_M_GET, false, false);
	CHECK(R.heads[0].keep_alive && body_eq(&R, "ok"));
	resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", SK_H1_M_GET, false, false);
	CHECK(!R.heads[0].keep_alive);

	resp("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x01",
	     SK_H1_M_GET, true, false);
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].tunnel && slice_eq(R.heads[0].upgrade_proto, "websocket"));
	CHECK(R.body_len == 2);
	resp("HTTP/1.1 200 Connection established\r\nContent-Length: 50\r\n\r\nraw", SK_H1_M_CONNECT, false, true);
	CHECK_STR(R.log, "H D eofD ");
	CHECK(R.heads[0].tunnel && body_eq(&R, "raw"));
	resp("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 1\r\n\r\nx", SK_H1_M_CONNECT, false, false);
	CHECK(!R.heads[0].tunnel && body_eq(&R, "x"));

	resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", SK_H1_M_GET, false, true);
	CHECK_STR(R.log, "H eofE502 ");

	/* Responses are parsed with the same care; every error is a 502 downstream. */
	resp_refused("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		     SK_H1_M_GET, false, "content-length with transfer-encoding");
	resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		     SK_H1_M_GET, false, "content-length with transfer-encoding");
	resp_refused("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", SK_H1_M_GET,
		     false, "duplicate content-length");
	resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", SK_H1_M_GET, false, "final");
	resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", SK_H1_M_GET, false,
		     "unsupported");
	resp_refused("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", SK_H1_M_GET, false, "HTTP/1.0");
	resp_refused("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", SK_H1_M_GET, false, "204");
	resp_refused("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", SK_H1_M_GET, false, "1xx");
	resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", SK_H1_M_CONNECT, false, "CONNECT");
	resp_refused("HTTP/1.1 101 Switching Protocols\r\n\r\n", SK_H1_M_GET, false, "unexpected 101");
	resp_refused("HTTP/1.1 20 OK\r\n\r\n", SK_H1_M_GET, false, "bad status");
	resp_refused("HTTP/1.1 099 Low\r\n\r\n", SK_H1_M_GET, false, "bad status code");
	resp_refused("HTTP/1.1 600 High\r\n\r\n", SK_H1_M_GET, false, "bad status code");
	resp_refused("HTTP/1.1 2x0 OK\r\n\r\n", SK_H1_M_GET, false, "bad status code");
	resp_refused("HTTP/1.1  200 OK\r\n\r\n", SK_H1_M_GET, false, "bad status");
	resp_refused("HTTP/1.1 200OK\r\n\r\n", SK_H1_M_GET, false, "bad status line");
	resp_refused("HTTP/2.0 200 OK\r\n\r\n", SK_H1_M_GET, false, "unsupported HTTP version");
	resp_refused("http/1.1 200 OK\r\n\r\n", SK_H1_M_GET, false, "bad status line");
	resp_refused("\r\nHTTP/1.1 200 OK\r\n\r\n", SK_H1_M_GET, false, "bad status line");
	resp_refused("HTTP/1.1 200 O\x01K\r\n\r\n", SK_H1_M_GET, false, "reason");
	resp_refused("HTTP/1.1 200 OK\r\nX: a\rz\r\n\r\n", SK_H1_M_GET, false, "bare CR");
	resp_refused("HTTP/1.1 200 OK\nContent-Length: 0\n\n", SK_H1_M_GET, false, "bare LF");
	resp_refused("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", SK_H1_M_GET, false, "obs-fold");
	resp_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", SK_H1_M_GET,
		     false, "missing CRLF");
}

/* NUL is in the middle of some inputs, so they carry their length. */
#define REFUSES_LIT(lit, status, why) refuses_n(lit, sizeof(lit) - 1, status, why)
#define REFUSES_HEAD_LIT(lit, status, why) refuses_head_n(lit, sizeof(lit) - 1, status, why)

static void test_smuggling(void)
{
	char big[70000];
	char many[8192];
	size_t n, i;

	/* Content-Length with Transfer-Encoding, in either order. */
	refuses_head(post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400,
		"content-length with transfer-encoding");
	refuses_head(post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", "0\r\n\r\n"), 400,
		"content-length with transfer-encoding");
	refuses_head(post("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n"), 400,
		"content-length with transfer-encoding");

	/* Transfer-Encoding variants. */
	refuses_head(post("Transfer-Encoding: gzip, chunked\r\n", ""), 501, "unsupported transfer-coding");
	refuses_head(post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", ""), 501, "unsupported");
	refuses_head(post("Transfer-Encoding: gzip\r\n", ""), 400, "chunked is not the final");
	refuses_head(post("Transfer-Encoding: identity\r\n", ""), 400, "chunked is not the final");
	refuses_head(post("Transfer-Encoding: chunked, gzip\r\n", ""), 400, "chunked is not the final");
	refuses_head(post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", ""), 400, "final");
	refuses_head(post("Transfer-Encoding: xchunked\r\n", ""), 400, "chunked is not the final");
	refuses_head(post("Transfer-Encoding: chunkedx\r\n", ""), 400, "chunked is not the final");
	refuses_head(post("Transfer-Encoding: chunked, chunked\r\n", ""), 400, "repeated chunked");
	refuses_head(post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", ""), 400, "repeated chunked");
	refuses_head(post("Transfer-Encoding: chunked,\r\n", ""), 400, "bad transfer-encoding");
	refuses_head(post("Transfer-Encoding: ,chunked\r\n", ""), 400, "bad transfer-encoding");
	refuses_head(post("Transfer-Encoding:\r\n", ""), 400, "bad transfer-encoding");
	refuses_head(post("Transfer-Encoding: \"chunked\"\r\n", ""), 400, "bad transfer-encoding");
	refuses_head(post("Transfer-Encoding: chunked;q=1\r\n", ""), 400, "bad transfer-encoding");
	refuses_head(post("Transfer-Encoding: ch unked\r\n", ""), 400, "bad transfer-encoding");
	refuses_head(post("Transfer-Encoding:\r\n chunked\r\n", ""), 400, "obs-fold");
	refuses_head(post("Transfer-Encoding: gzip\r\n\tchunked\r\n", ""), 400, "obs-fold");
	refuses_head(post(" Transfer-Encoding: chunked\r\n", ""), 400, "obs-fold");
	refuses_head("POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n", 400,
		"whitespace before first field");
	refuses_head(post("Transfer-Encoding : chunked\r\n", ""), 400, "whitespace before colon");
	refuses_head(post("Transfer-Encoding\t: chunked\r\n", ""), 400, "whitespace before colon");
	refuses_head(post("Transfer_Encoding: chunked\r\nTransfer-Encoding : chunked\r\n", ""), 400,
		"whitespace before colon");
	refuses_head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
		"transfer-encoding in HTTP/1.0");
	refuses_head("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
		"transfer-encoding on CONNECT");

	/* Content-Length: digits only; a second line is refused even when equal (Envoy). */
	refuses_head(post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"), 400, "duplicate content-length");
	refuses_head(post("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"), 400, "duplicate content-length");
	refuses_head(post("Content-Length: +5\r\n", "hello"), 400, "bad content-length");
	refuses_head(post("Content-Length: -1\r\n", ""), 400, "bad content-length");
	refuses_head(post("Content-Length: 5, 5\r\n", "hello"), 400, "bad content-length");
	refuses_head(post("Content-Length: 5,5\r\n", "hello"), 400, "bad content-length");
	refuses_head(post("Content-Length: 0x5\r\n", "hello"), 400, "bad content-length");
	refuses_head(post("Content-Length: 5 5\r\n", "hello"), 400, "bad content-length");
	refuses_head(post("Content-Length:\r\n", ""), 400, "bad content-length");
	refuses_head(post("Content-Length: 18446744073709551616\r\n", ""), 400, "bad content-length");
	refuses_head(post("Content-Length: 99999999999999999999999\r\n", ""), 400, "bad content-length");
	refuses_head("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello", 400,
		"body on CONNECT");

	/* Bytes that must never be in a field. */
	REFUSES_HEAD_LIT("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, "NUL in field value");
	REFUSES_HEAD_LIT("GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n", 400, "NUL in field value");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare CR");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", 400, "bare CR");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400, "invalid field value");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n", 400, "invalid field value");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nX\x01: a\r\n\r\n", 400, "invalid field name");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n", 400, "invalid field name");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\n\"X\": a\r\n\r\n", 400, "invalid field name");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "missing colon");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n", 400, "empty field name");

	/* Line endings: CRLF only. */
	refuses_head("GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF");
	refuses_head("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF");
	refuses_head("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF");
	refuses_head("GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "bad request line");
	refuses(post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n"), 400, "bare LF");
	refuses(post("Transfer-Encoding: chunked\r\n", "5\r\nhello\n0\r\n\r\n"), 400, "missing CRLF after chunk data");
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\n\n"), 400, "bare LF");

	/* Request line and target. */
	refuses_head("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line");
	refuses_head("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad request line");
	refuses_head("GET /\r\n\r\n", 400, "bad request line");
	refuses_head("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad request line");
	refuses_head("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "bad request line");
	refuses_head("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version");
	refuses_head("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version");
	refuses_head("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method");
	refuses_head(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method");
	refuses_head("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target");
	refuses_head("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target");
	refuses_head("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target");
	refuses_head("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target");
	refuses_head("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target");
	refuses_head("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad authority");
	refuses_head("GET http://u@h/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad authority");
	refuses_head("GET 1http://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target");
	refuses_head("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad CONNECT target");
	refuses_head("CONNECT example.com:0 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad CONNECT target");
	refuses_head("CONNECT example.com:65536 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad CONNECT target");
	refuses_head("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad CONNECT target");
	refuses_head("CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad CONNECT target");

	/* Host: exactly one in HTTP/1.1, well formed. */
	refuses_head("GET / HTTP/1.1\r\n\r\n", 400, "missing host");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate host");
	refuses_head("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "duplicate host");
	refuses_head("GET / HTTP/1.1\r\nHost: evil@a\r\n\r\n", 400, "bad host");
	refuses_head("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad host");
	refuses_head("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400, "bad host");

	/* Limits: 60 KiB of head and 100 fields (431), and the same for trailers. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
	refuses_head_n(big, sizeof(big), 431, "headers too large");
	n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 1; i < 100; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "X-%zu: v\r\n", i);
	snprintf(many + n, sizeof(many) - n, "\r\n");
	req(many);
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].n_fields == 100);
	n += (size_t)snprintf(many + n, sizeof(many) - n, "X-100: v\r\n\r\n");
	refuses_head(many, 431, "too many headers");
	n = (size_t)snprintf(many, sizeof(many), "%s", post("Transfer-Encoding: chunked\r\n", "0\r\n"));
	for (i = 0; i < 101; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "T-%zu: v\r\n", i);
	snprintf(many + n, sizeof(many) - n, "\r\n");
	req(many);
	CHECK(R.status == 431);
	CHECK_CONTAINS(R.reason, "too many trailers");
	n = (size_t)snprintf(big, sizeof(big), "%s", post("Transfer-Encoding: chunked\r\n", "0\r\nT: "));
	memset(big + n, 'b', sizeof(big) - n);
	req_n(big, sizeof(big));
	CHECK(R.status == 431);
	CHECK_CONTAINS(R.reason, "trailers too large");

	/* Chunk sizes. */
	refuses(post("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", "-1\r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", "+5\r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", " 5\r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", "5 \r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", "\r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", "5g\r\n"), 400, "bad chunk size");
	refuses(post("Transfer-Encoding: chunked\r\n", "fffffffffffffffff\r\n"), 400, "chunk size overflow");
	refuses(post("Transfer-Encoding: chunked\r\n", "10000000000000000\r\n"), 400, "chunk size overflow");
	refuses(post("Transfer-Encoding: chunked\r\n", "5\r\nhelloXX"), 400, "missing CRLF after chunk data");
	refuses(post("Transfer-Encoding: chunked\r\n", "5\r\nhello\rX"), 400, "missing CRLF after chunk data");
	refuses(post("Transfer-Encoding: chunked\r\n", "5\r\nhello0\r\n\r\n"), 400, "missing CRLF after chunk data");
	/* Two chunks that add up past 2^64 cannot be counted. */
	refuses(post("Transfer-Encoding: chunked\r\n", "1\r\nx\r\nffffffffffffffff\r\n"), 400, "chunk size overflow");
	req(post("Transfer-Encoding: chunked\r\n", "0000000000000000000001\r\nx\r\n0\r\n\r\n"));
	CHECK_STR(R.log, "H D ");
	CHECK(body_eq(&R, "x"));
	req(post("Transfer-Encoding: chunked\r\n", "ffffffffffffffff\r\nabc"));
	CHECK_STR(R.log, "H ");
	CHECK(body_eq(&R, "abc"));

	/* Chunk extensions: RFC 9112's grammar, and bounded. */
	refuses(post("Transfer-Encoding: chunked\r\n", "5;\r\n"), 400, "bad chunk extension");
	refuses(post("Transfer-Encoding: chunked\r\n", "5;a=\r\n"), 400, "bad chunk extension");
	refuses(post("Transfer-Encoding: chunked\r\n", "5;a=\"x\r\n"), 400, "bad chunk extension");
	refuses(post("Transfer-Encoding: chunked\r\n", "5;a\rb\r\n"), 400, "bad chunk extension");
	refuses(post("Transfer-Encoding: chunked\r\n", "5;a=b c\r\n"), 400, "bad chunk extension");
	refuses(post("Transfer-Encoding: chunked\r\n", "5;a=\"\x01\"\r\n"), 400, "bad chunk extension");
	refuses(post("Transfer-Encoding: chunked\r\n", "5;a=b \r\n"), 400, "bad chunk extension");
	REFUSES_LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\0\r\n", 400,
		    "bad chunk extension");
	n = (size_t)snprintf(big, sizeof(big), "%s", post("Transfer-Encoding: chunked\r\n", "5;a="));
	memset(big + n, 'x', 5000);
	memcpy(big + n + 5000, "\r\nhello\r\n0\r\n\r\n", 15);
	refuses_n(big, n + 5015, 400, "chunk line too long");

	/* Trailers follow the field rules. */
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\nX: a\x01b\r\n\r\n"), 400, "invalid field value");
	REFUSES_LIT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\0\r\n\r\n",
		    400, "NUL in field value");
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\nX: a\r\n b\r\n\r\n"), 400, "obs-fold");
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\nX : a\r\n\r\n"), 400, "whitespace before colon");
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\nno colon\r\n\r\n"), 400, "missing colon");
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\nX: a\rb\r\n\r\n"), 400, "bare CR");
	refuses(post("Transfer-Encoding: chunked\r\n", "0\r\nX: a\nY: b\r\n\r\n"), 400, "bare LF");
}

static void test_limits_and_options(void)
{
	struct sk_h1_options saved = opts;
	char head[2048];
	size_t n;

	/* max_headers_kb counts the head's bytes: exactly the limit passes, one more is a 431. */
	opts.max_headers_kb = 1;
	n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(head + n, 'v', 1024 - n - 4);
	memcpy(head + 1024 - 4, "\r\n\r\n", 4);
	req_n(head, 1024);
	CHECK_STR(R.log, "H D ");
	CHECK(R.heads[0].head_len == 1024);
	memmove(head + n + 1, head + n, 1024 - n);
	req_n(head, 1025);
	CHECK(R.status == 431);
	check_splits(SK_H1_REQUEST, head, 1025, false, SK_H1_M_GET, false);
	/* Leading empty lines count too. */
	memset(head, 0, sizeof(head));
	for (n = 0; n + 2 <= 1100; n += 2)
		memcpy(head + n, "\r\n", 2);
	req_n(head, n);
	CHECK(R.status == 431);

	opts.max_headers_kb = 0;
	opts.max_headers_count = 3;
	req("GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n");
	CHECK_STR(R.log, "H D ");
	req("GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n");
	CHECK(R.status == 431);

	opts.max_headers_count = 0;
	opts.max_body_bytes = 10;
	req(post("Content-Length: 10\r\n", "0123456789"));
	CHECK_STR(R.log, "H D ");
	req(post("Content-Length: 11\r\n", "0123456789a"));
	CHECK(R.status == 413);
	CHECK_CONTAINS(R.reason, "body too large");
	req(post("Transfer-Encoding: chunked\r\n", "5\r\n01234\r\n6\r\n012345\r\n0\r\n\r\n"));
	CHECK_STR(R.log, "H E413 ");
	CHECK(body_eq(&R, "01234"));
	opts = saved;
}

static void test_pipelining(void)
{
	static const char three[] =
		"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
		"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
		"PUT /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n";
	struct sk_h1_parser *p = sk_h1_parser_new(SK_H1_REQUEST, NULL);
	struct sk_h1_event ev;
	size_t off = 0;

	req_n(three, sizeof(three) - 1);
	CHECK_STR(R.log, "H D H D H D ");
	CHECK(R.n_heads == 3 && R.consumed == sizeof(three) - 1);
	CHECK(slice_eq(R.heads[0].target, "/one") && slice_eq(R.heads[1].target, "/two"));
	CHECK(slice_eq(R.heads[2].target, "/three") && R.heads[2].method_id == SK_H1_M_PUT);
	CHECK(body_eq(&R, "abcde"));
	check_splits(SK_H1_REQUEST, three, sizeof(three) - 1, true, SK_H1_M_GET, false);

	/* Each DONE leaves the next request's first byte right after what was consumed. */
	CHECK(sk_h1_parse(p, three, sizeof(three) - 1, &ev) == SK_H1_EV_HEAD);
	off += ev.consumed;
	CHECK(sk_h1_parse(p, three + off, sizeof(three) - 1 - off, &ev) == SK_H1_EV_DONE);
	CHECK(ev.consumed == 0 && strncmp(three + off, "POST /two", 9) == 0);
	sk_h1_parser_free(p);

	/* A refused upgrade: reset, and the bytes after the head are HTTP again. */
	p = sk_h1_parser_new(SK_H1_REQUEST, NULL);
	{
		static const char up[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
					 "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
		CHECK(sk_h1_parse(p, up, sizeof(up) - 1, &ev) == SK_H1_EV_HEAD && ev.head->tunnel);
		off = ev.consumed;
		CHECK(sk_h1_parse(p, up + off, sizeof(up) - 1 - off, &ev) == SK_H1_EV_DONE);
		CHECK(sk_h1_parse(p, up + off, sizeof(up) - 1 - off, &ev) == SK_H1_EV_BODY);
		sk_h1_parser_reset(p);
		CHECK(sk_h1_parse(p, up + off, sizeof(up) - 1 - off, &ev) == SK_H1_EV_HEAD);
		CHECK(slice_eq(ev.head->target, "/next"));
	}
	/* Errors stick until reset. */
	CHECK(sk_h1_parse(p, "x\n", 2, &ev) == SK_H1_EV_DONE);
	CHECK(sk_h1_parse(p, "x\n", 2, &ev) == SK_H1_EV_ERROR && ev.status == 400);
	CHECK(sk_h1_parse(p, "GET / HTTP/1.1\r\n", 16, &ev) == SK_H1_EV_ERROR);
	sk_h1_parser_reset(p);
	CHECK(sk_h1_parse(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &ev) == SK_H1_EV_HEAD);
	sk_h1_parser_free(p);
	sk_h1_parser_free(NULL);
}

static void test_splits(void)
{
	static const char chunked_req[] =
		"\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX:  v \r\n\r\n"
		"5;n=\"q\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT1: x\r\nT2: y\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char chunked_resp[] =
		"HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyz"
		"HTTP/1.0 200 OK\r\n\r\nuntil close";
	static const char smuggled[] =
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
		"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char bad_chunk[] =
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5;x\r\nhelloX";
	static const char bare_lf[] = "GET / HTTP/1.1\r\nHost: a\r\nX: y\nZ: w\r\n\r\n";
	static const char upgrade[] =
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi";

	check_splits(SK_H1_REQUEST, chunked_req, sizeof(chunked_req) - 1, true, SK_H1_M_GET, false);
	CHECK_STR(W.log, "H T2 D H D eofN ");
	check_splits(SK_H1_RESPONSE, chunked_resp, sizeof(chunked_resp) - 1, true, SK_H1_M_GET, false);
	CHECK_STR(W.log, "H D H D H D H eofD ");
	CHECK(W.body_len == 3 + 4 + 11);
	check_splits(SK_H1_REQUEST, smuggled, sizeof(smuggled) - 1, false, SK_H1_M_GET, false);
	CHECK_STR(W.log, "E400 ");
	check_splits(SK_H1_REQUEST, bad_chunk, sizeof(bad_chunk) - 1, false, SK_H1_M_GET, false);
	CHECK_STR(W.log, "H E400 ");
	CHECK_CONTAINS(W.reason, "missing CRLF");
	check_splits(SK_H1_REQUEST, bare_lf, sizeof(bare_lf) - 1, false, SK_H1_M_GET, false);
	CHECK_STR(W.log, "E400 ");
	check_splits(SK_H1_RESPONSE, upgrade, sizeof(upgrade) - 1, true, SK_H1_M_GET, true);
	CHECK_STR(W.log, "H D eofD ");
}

int main(void)
{
	test_requests();
	test_responses();
	test_smuggling();
	test_limits_and_options();
	test_pipelining();
	test_splits();
	return TEST_SUMMARY();
}
