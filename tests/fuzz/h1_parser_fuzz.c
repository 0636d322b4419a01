/* h1_parser_fuzz: the HTTP/1.x parser on arbitrary bytes, as requests and then as responses.
 * Whatever it reports must lie inside the bytes it was given, it must never consume more than
 * it was given, and feeding the input in pieces must give the same events, bodies and errors
 * as feeding it whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http/h1_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
	uint64_t events; /* the sequence of events, bodies left out */
	uint64_t body;   /* the body bytes, however they were cut */
	size_t consumed;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ULL;
}

static void check_slice(const struct sk_h1_slice *s, const char *lo, const char *hi)
{
	if (s->len && (s->p < lo || s->p + s->len > hi))
		abort();
}

static void check_fields(const struct sk_h1_field *f, size_t n, const char *lo, const char *hi)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (f[i].name.len == 0)
			abort();
		check_slice(&f[i].name, lo, hi);
		check_slice(&f[i].value, lo, hi);
	}
}

static void check_head(const struct sk_h1_head *h, const char *lo, const char *hi)
{
	check_slice(&h->method, lo, hi);
	check_slice(&h->target, lo, hi);
	check_slice(&h->scheme, lo, hi);
	check_slice(&h->authority, lo, hi);
	check_slice(&h->path, lo, hi);
	check_slice(&h->host, lo, hi);
	check_slice(&h->reason, lo, hi);
	check_slice(&h->upgrade_proto, lo, hi);
	check_fields(h->fields, h->n_fields, lo, hi);
	if (h->head_len > (size_t)(hi - lo) || (h->minor != 0 && h->minor != 1))
		abort();
}

/* Feeds buf[0..size) first `first` bytes, then `step` more whenever the parser asks. */
static struct digest feed(enum sk_h1_kind kind, const char *buf, size_t size, size_t first,
			  size_t step, enum sk_h1_method method, bool upgrade)
{
	struct sk_h1_parser *p = sk_h1_parser_new(kind, NULL);
	struct digest d = { 0xcbf29ce484222325ULL, 0xcbf29ce484222325ULL, 0 };
	size_t off = 0, avail = first < size ? first : size, calls = 0, i;
	struct sk_h1_event ev;

	if (p == NULL)
		abort();
	sk_h1_parser_expect_response(p, method, upgrade);
	for (;;) {
		enum sk_h1_event_type t = sk_h1_parse(p, buf + off, avail - off, &ev);
		const char *lo = buf + off, *hi = buf + avail;

		if (++calls > 4 * size + 64 || t != ev.type || ev.consumed > avail - off)
			abort();
		off += ev.consumed;
		if (t != SK_H1_EV_BODY && t != SK_H1_EV_NEED_MORE)
			d.events = mix(d.events, (uint64_t)t);
		switch (t) {
		case SK_H1_EV_NEED_MORE:
			if (avail == size)
				goto end;
			avail = size - avail < step ? size : avail + step;
			break;
		case SK_H1_EV_HEAD:
			check_head(ev.head, lo, hi);
			d.events = mix(d.events, ev.head->n_fields);
			d.events = mix(d.events, (uint64_t)ev.head->status);
			d.events = mix(d.events, ev.head->head_len);
			d.events = mix(d.events, (uint64_t)ev.head->framing);
			if (ev.head->status >= 200 || ev.head->status == 101)
				sk_h1_parser_expect_response(p, method, upgrade);
			break;
		case SK_H1_EV_BODY:
			check_slice(&ev.data, lo, hi);
			if (ev.data.len == 0)
				abort();
			for (i = 0; i < ev.data.len; i++)
				d.body = mix(d.body, (uint8_t)ev.data.p[i]);
			break;
		case SK_H1_EV_TRAILERS:
			check_fields(ev.trailers, ev.n_trailers, lo, hi);
			d.events = mix(d.events, ev.n_trailers);
			break;
		case SK_H1_EV_DONE:
			break;
		case SK_H1_EV_ERROR:
			if (ev.reason == NULL || ev.status < 400 || ev.status > 505)
				abort();
			d.events = mix(d.events, (uint64_t)ev.status);
			d.events = mix(d.events, (uint64_t)(uintptr_t)ev.reason);
			goto end;
		}
	}
end:
	d.consumed = off;
	{
		enum sk_h1_event_type t = sk_h1_parse_eof(p, &ev);

		d.events = mix(d.events, 100 + (uint64_t)t);
	}
	sk_h1_parser_free(p);
	return d;
}

static void both_ways(enum sk_h1_kind kind, const char *buf, size_t size, size_t step,
		      enum sk_h1_method method, bool upgrade)
{
	struct digest whole = feed(kind, buf, size, size, size, method, upgrade);
	struct digest parts = feed(kind, buf, size, step, step, method, upgrade);

	if (whole.events != parts.events || whole.body != parts.body ||
	    whole.consumed != parts.consumed)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	static const enum sk_h1_method methods[] = { SK_H1_M_GET, SK_H1_M_HEAD, SK_H1_M_CONNECT };
	size_t step = size ? 1 + data[0] % 13 : 1;
	enum sk_h1_method method = methods[size ? data[size - 1] % 3 : 0];
	bool upgrade = size && (data[size / 2] & 1);

	memcpy(copy, data, size);
	both_ways(SK_H1_REQUEST, copy, size, step, SK_H1_M_GET, false);
	both_ways(SK_H1_RESPONSE, copy, size, step, method, upgrade);
	free(copy);
	return 0;
}
