/* h1_parser: see h1_parser.h. Strict wherever a lenient reading lets two parsers disagree
 * about where a message ends (request smuggling, response splitting). The rules, and which
 * of them follow Envoy where RFC 9110/9112 leave a choice (Envoy's files:
 * source/common/http/http1/codec_impl.cc and balsa_parser.cc, with quiche's balsa_frame.cc
 * that they configure):
 *
 * - Lines end with CRLF. A bare LF anywhere in a head, trailer section or chunk line is an
 *   error (RFC 9112 section 2.2 allows accepting it; Balsa does; we do not), and so is a CR
 *   that is not followed by LF. Requests may start with empty lines (RFC 9112 section 2.2);
 *   they count towards the head size.
 * - A head (request line + fields, or status line + fields) longer than max_headers_kb is a
 *   431. We count raw bytes, a little stricter than Envoy, which counts the URL, names and
 *   values. More than max_headers_count fields is a 431, as in Envoy. Trailers have the same
 *   two limits, counted on their own (Envoy: "trailers size exceeds limit").
 * - Field names are tokens; whitespace before the colon, a line without a colon (Balsa's
 *   require_header_colon) and obs-fold (RFC 9112 section 5.2 allows unfolding; we reject)
 *   are 400s. Values may hold HTAB, SP, VCHAR and obs-text: NUL, CR, other controls and DEL
 *   are 400s (Balsa rejects invalid characters in requests and responses alike).
 * - Content-Length is 1*DIGIT that fits in 64 bits: "+5", "5, 5", "" or an overflow are
 *   400s (Balsa's ProcessContentLengthLine). A second Content-Length line is a 400 even
 *   when it repeats the first value: Envoy sets disallow_multiple_content_length, where RFC
 *   9110 section 8.6 would also allow folding identical values into one.
 * - Transfer-Encoding together with Content-Length is a 400 (Envoy's default, with
 *   allow_chunked_length off; RFC 9112 section 6.3 lets a server process it instead). In a
 *   response it is an error too: a smuggled response, never forwarded.
 * - Transfer-Encoding must end in exactly one "chunked": when chunked is not the final
 *   coding ("gzip", "xchunked", "chunked, gzip") RFC 9112 section 6.3 requires a 400;
 *   "chunked" twice is a 400 (RFC 9112 section 7: chunked is applied once); a list element
 *   that is empty or not a token is a 400. Envoy answers every TE that is not exactly
 *   "chunked" with 501; we keep that 501 for the one case the RFC leaves open, other codings
 *   before a final chunked ("gzip, chunked"), which neither of us decodes. Transfer-Encoding
 *   in HTTP/1.0 is a 400 (RFC 9112 section 6.1: the framing is faulty); on CONNECT a 501
 *   (Envoy). Every TE error is also an error in a response (Envoy rejects any TE other than
 *   chunked in both directions).
 * - CONNECT takes an authority-form target with a port and no body: Content-Length: 0 is
 *   accepted (Envoy removes it), a longer one is a 400 (Envoy: "unsupported content length").
 * - Asterisk-form is for OPTIONS only; absolute-form needs scheme "://" and a non-empty
 *   authority (Balsa's isUrlValid). Targets are 0x21-0x7e without '#': Envoy also allows
 *   HTAB and FF there and rejects fragments later in the HCM; we reject all three here.
 *   Userinfo ('@') in an authority or Host is a 400 (RFC 9110 section 4.2.4).
 * - HTTP/1.0 and HTTP/1.1 only: another well-formed HTTP/x.y is a 505, anything else a 400.
 * - HTTP/1.1 requests need exactly one Host (RFC 9112 section 3.2); a second Host is a 400
 *   for any version.
 * - Responses: 1xx, 204 and 304 have no body, nor any response to HEAD; 1xx and 204 with
 *   Transfer-Encoding, or with a Content-Length other than 0, are errors (Envoy's
 *   strict_1xx_and_204_response_headers); a 2xx to CONNECT starts a tunnel and must not be
 *   chunked (Envoy); a 101 is only valid after an upgrade request. A response with neither
 *   Content-Length nor Transfer-Encoding is delimited by the connection's close.
 * - Chunk sizes are 1*HEXDIG of at most 16 significant digits: "0x5", "-1", " 5", 17 'f's
 *   are 400s. Chunk extensions follow RFC 9112 section 7.1.1 exactly (BWS only around ';'
 *   and '='; token or quoted-string values; a lone CR is refused, as Envoy's
 *   http1_balsa_disallow_lone_cr_in_chunk_extension does) and a chunk line is at most
 *   SK_H1_MAX_CHUNK_LINE bytes. Chunk data must be followed by CRLF.
 *
 * Every error of a response parser answers 502: the status the codec gives downstream. */
#include "proxy/http/h1_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum state {
	ST_HEAD,        /* scanning for the end of a head */
	ST_BODY_LENGTH, /* p->remaining bytes of a Content-Length body */
	ST_BODY_CLOSE,  /* a body delimited by the connection's close */
	ST_CHUNK_SIZE,  /* scanning for the end of a chunk-size line */
	ST_CHUNK_DATA,  /* p->remaining bytes of a chunk */
	ST_CHUNK_CRLF,  /* the CRLF after chunk data */
	ST_TRAILERS,    /* scanning for the end of the trailer section */
	ST_MSG_DONE,    /* the message is complete; the next call says DONE */
	ST_TUNNEL,      /* after CONNECT, an upgrade or a 101: bytes are not HTTP */
	ST_ERROR,       /* until sk_h1_parser_reset */
};

/* What the head's fields said that frames the message or the connection. */
struct facts {
	bool te;           /* a Transfer-Encoding line was seen */
	bool te_bad;       /* an element that is empty or not a token */
	bool te_last_chunked;
	bool te_other;     /* a coding other than chunked */
	unsigned te_chunked;
	unsigned n_host;
	bool conn_close, conn_keep_alive, conn_upgrade;
	bool has_upgrade;
	bool expect_continue;
};

struct sk_h1_parser {
	enum sk_h1_kind kind;
	enum state state;
	size_t max_section; /* bytes of a head or trailer section */
	size_t max_fields;
	uint64_t max_body;

	/* Scanning lines (a head, a trailer section, a chunk-size line); offsets count from the
	 * first byte the previous call did not consume. */
	size_t scan;    /* bytes already looked at */
	size_t line;    /* where the line being scanned starts */
	size_t start;   /* where the first non-empty line starts */
	bool seen_line; /* a non-empty line was seen */

	uint64_t remaining;  /* bytes of the body or chunk still to come */
	uint64_t body_total; /* chunked: decoded bytes so far */

	enum sk_h1_method req_method; /* responses: the request being answered */
	bool req_upgrade;

	struct facts f;
	int err_status;
	const char *err_reason;
	struct sk_h1_head head;
	size_t n_fields;
	struct sk_h1_field fields[];
};

static int fail(struct sk_h1_parser *p, int status, const char *reason)
{
	p->state = ST_ERROR;
	p->err_status = p->kind == SK_H1_RESPONSE ? 502 : status;
	p->err_reason = reason;
	return -1;
}

static bool is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_tchar(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

/* RFC 3986 reg-name: unreserved, pct-encoded (not checked further) and sub-delims. */
static bool is_reg_name_char(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	switch (c) {
	case '-': case '.': case '_': case '~': case '%': case '!': case '$': case '&':
	case '\'': case '(': case ')': case '*': case '+': case ',': case ';': case '=':
		return true;
	default:
		return false;
	}
}

/* Request-target bytes: visible ASCII; '#' starts a fragment, which a target cannot have. */
static bool is_target_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '#';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static unsigned hex_value(unsigned char c)
{
	return is_digit(c) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static bool slice_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static bool all_tchars(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return n > 0;
}

/* The next element of a comma-separated list in [*s, end), OWS trimmed (possibly empty);
 * false when the list is exhausted (*s is then NULL). */
static bool next_element(const char **s, const char *end, struct sk_h1_slice *e)
{
	const char *c, *a, *z;

	if (*s == NULL)
		return false;
	c = memchr(*s, ',', (size_t)(end - *s));
	z = c ? c : end;
	for (a = *s; a < z && is_ows(*a); a++)
		;
	while (z > a && is_ows(z[-1]))
		z--;
	e->p = a;
	e->len = (size_t)(z - a);
	*s = c ? c + 1 : NULL;
	return true;
}

/* host [":" port]: a bracketed IP literal or a reg-name (IPv4 included), no userinfo. A CONNECT
 * target needs a port in 1..65535; elsewhere the port may be absent or empty. */
static bool valid_authority(const char *a, size_t n, bool need_port)
{
	size_t i = 0, port_len;
	unsigned long port = 0;

	if (n == 0)
		return false;
	if (a[0] == '[') {
		for (i = 1; i < n && a[i] != ']'; i++)
			if (!is_hex((unsigned char)a[i]) && a[i] != ':' && a[i] != '.')
				return false;
		if (i == n || i == 1)
			return false;
		i++;
	} else {
		for (; i < n && a[i] != ':'; i++)
			if (!is_reg_name_char((unsigned char)a[i]))
				return false;
		if (i == 0)
			return false;
	}
	if (i == n)
		return !need_port;
	if (a[i] != ':')
		return false;
	port_len = n - i - 1;
	if (port_len > 5)
		return false;
	for (i++; i < n; i++) {
		if (!is_digit((unsigned char)a[i]))
			return false;
		port = port * 10 + (unsigned long)(a[i] - '0');
	}
	return need_port ? port_len > 0 && port >= 1 && port <= 65535 : port <= 65535;
}

/* Looks for the empty line that ends a section of CRLF-terminated lines, from where the last
 * call stopped. 1: found, *end is the section's length; 0: more bytes needed; -1: error. The
 * limit applies to the bytes before the end of the section, so where the input is split never
 * changes the outcome. */
static int scan_section(struct sk_h1_parser *p, const char *b, size_t n, bool skip_empty,
			const char *too_large, size_t *end)
{
	size_t stop = n < p->max_section ? n : p->max_section;

	while (p->scan < stop) {
		const char *lf = memchr(b + p->scan, '\n', stop - p->scan);
		size_t i;

		if (lf == NULL) {
			p->scan = stop;
			break;
		}
		i = (size_t)(lf - b);
		if (i == p->line || b[i - 1] != '\r')
			return fail(p, 400, "bare LF");
		if (i - 1 == p->line) {
			if (!skip_empty || p->seen_line) {
				*end = i + 1;
				return 1;
			}
			p->start = i + 1;
		} else {
			p->seen_line = true;
		}
		p->line = p->scan = i + 1;
	}
	if (n >= p->max_section)
		return fail(p, 431, too_large);
	return 0;
}

static void scan_reset(struct sk_h1_parser *p)
{
	p->scan = p->line = p->start = 0;
	p->seen_line = false;
}

static const struct {
	const char *name;
	enum sk_h1_method id;
} methods[] = {
	{ "GET", SK_H1_M_GET },         { "HEAD", SK_H1_M_HEAD },       { "POST", SK_H1_M_POST },
	{ "PUT", SK_H1_M_PUT },         { "DELETE", SK_H1_M_DELETE },   { "CONNECT", SK_H1_M_CONNECT },
	{ "OPTIONS", SK_H1_M_OPTIONS }, { "TRACE", SK_H1_M_TRACE },     { "PATCH", SK_H1_M_PATCH },
};

enum sk_h1_method sk_h1_method_id(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i].name) == n && memcmp(methods[i].name, s, n) == 0)
			return methods[i].id;
	return SK_H1_M_OTHER;
}

/* "HTTP/1.0" or "HTTP/1.1" sets the minor version; 1 if it is well formed but another
 * version; -1 if it is not a version at all. */
static int parse_version(const char *v, size_t n, int *minor)
{
	if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit((unsigned char)v[5]) || v[6] != '.' ||
	    !is_digit((unsigned char)v[7]))
		return -1;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return 1;
	*minor = v[7] - '0';
	return 0;
}

static int parse_target(struct sk_h1_parser *p, struct sk_h1_head *h)
{
	const char *t = h->target.p;
	size_t n = h->target.len, i, a;

	if (h->method_id == SK_H1_M_CONNECT) {
		if (!valid_authority(t, n, true))
			return fail(p, 400, "bad CONNECT target");
		h->form = SK_H1_AUTHORITY_FORM;
		h->authority = h->target;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (h->method_id != SK_H1_M_OPTIONS)
			return fail(p, 400, "bad request target");
		h->form = SK_H1_ASTERISK_FORM;
		h->path = h->target;
		return 0;
	}
	if (t[0] == '/') {
		i = 0;
	} else {
		/* absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ] */
		if (!is_alpha((unsigned char)t[0]))
			return fail(p, 400, "bad request target");
		for (i = 1; i < n && (is_alpha((unsigned char)t[i]) || is_digit((unsigned char)t[i]) ||
				      t[i] == '+' || t[i] == '-' || t[i] == '.');
		     i++)
			;
		if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
			return fail(p, 400, "bad request target");
		h->scheme.p = t;
		h->scheme.len = i;
		for (a = i += 3; i < n && t[i] != '/' && t[i] != '?'; i++)
			;
		if (!valid_authority(t + a, i - a, false))
			return fail(p, 400, "bad authority in request target");
		h->authority.p = t + a;
		h->authority.len = i - a;
		h->form = SK_H1_ABSOLUTE_FORM;
	}
	h->path.p = t + i;
	h->path.len = n - i;
	for (; i < n; i++)
		if (!is_target_char((unsigned char)t[i]))
			return fail(p, 400, "bad request target");
	return 0;
}

static int parse_request_line(struct sk_h1_parser *p, const char *l, size_t n)
{
	struct sk_h1_head *h = &p->head;
	const char *sp1 = memchr(l, ' ', n), *sp2, *v;
	int rc;

	if (sp1 == NULL)
		return fail(p, 400, "bad request line");
	h->method.p = l;
	h->method.len = (size_t)(sp1 - l);
	if (!all_tchars(l, h->method.len))
		return fail(p, 400, "bad method");
	h->method_id = sk_h1_method_id(l, h->method.len);
	sp2 = memchr(sp1 + 1, ' ', (size_t)(l + n - sp1 - 1));
	if (sp2 == NULL || sp2 == sp1 + 1)
		return fail(p, 400, "bad request line");
	v = sp2 + 1;
	rc = parse_version(v, (size_t)(l + n - v), &h->minor);
	if (rc < 0)
		return fail(p, 400, "bad request line");
	if (rc > 0)
		return fail(p, 505, "unsupported HTTP version");
	h->target.p = sp1 + 1;
	h->target.len = (size_t)(sp2 - sp1 - 1);
	return parse_target(p, h);
}

static int parse_status_line(struct sk_h1_parser *p, const char *l, size_t n)
{
	struct sk_h1_head *h = &p->head;
	size_t i;
	int rc;

	if (n < 12 || l[8] != ' ')
		return fail(p, 502, "bad status line");
	rc = parse_version(l, 8, &h->minor);
	if (rc != 0)
		return fail(p, 502, rc < 0 ? "bad status line" : "unsupported HTTP version");
	if (!is_digit((unsigned char)l[9]) || !is_digit((unsigned char)l[10]) ||
	    !is_digit((unsigned char)l[11]))
		return fail(p, 502, "bad status code");
	h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	if (h->status < 100 || h->status > 599)
		return fail(p, 502, "bad status code");
	/* RFC 9112 section 4 asks for the SP before an empty reason; many servers omit it. */
	if (n > 12) {
		if (l[12] != ' ')
			return fail(p, 502, "bad status line");
		h->reason.p = l + 13;
		h->reason.len = n - 13;
		for (i = 13; i < n; i++) {
			unsigned char c = (unsigned char)l[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(p, 502, "bad reason phrase");
		}
	}
	return 0;
}

static int parse_content_length(struct sk_h1_parser *p, const struct sk_h1_slice *v)
{
	uint64_t value = 0;
	size_t i;

	if (p->head.has_content_length)
		return fail(p, 400, "duplicate content-length");
	if (v->len == 0)
		return fail(p, 400, "bad content-length");
	for (i = 0; i < v->len; i++) {
		unsigned d = (unsigned)((unsigned char)v->p[i] - '0');

		if (d > 9)
			return fail(p, 400, "bad content-length");
		if (value > (UINT64_MAX - d) / 10)
			return fail(p, 400, "bad content-length");
		value = value * 10 + d;
	}
	p->head.has_content_length = true;
	p->head.content_length = value;
	return 0;
}

static void note_transfer_encoding(struct facts *f, const struct sk_h1_slice *v)
{
	const char *s = v->p, *end = v->p + v->len;
	struct sk_h1_slice e;

	f->te = true;
	while (next_element(&s, end, &e)) {
		if (!all_tchars(e.p, e.len)) {
			f->te_bad = true;
		} else if (slice_is(e.p, e.len, "chunked")) {
			f->te_chunked++;
			f->te_last_chunked = true;
		} else {
			f->te_other = true;
			f->te_last_chunked = false;
		}
	}
}

static void note_connection(struct facts *f, const struct sk_h1_slice *v)
{
	const char *s = v->p, *end = v->p + v->len;
	struct sk_h1_slice e;

	while (next_element(&s, end, &e)) {
		if (slice_is(e.p, e.len, "close"))
			f->conn_close = true;
		else if (slice_is(e.p, e.len, "keep-alive"))
			f->conn_keep_alive = true;
		else if (slice_is(e.p, e.len, "upgrade"))
			f->conn_upgrade = true;
	}
}

/* The head fields that frame the message or the connection. */
static int note_field(struct sk_h1_parser *p, const struct sk_h1_field *fl)
{
	const char *n = fl->name.p;
	size_t len = fl->name.len;

	if (slice_is(n, len, "content-length"))
		return parse_content_length(p, &fl->value);
	if (slice_is(n, len, "transfer-encoding"))
		note_transfer_encoding(&p->f, &fl->value);
	else if (slice_is(n, len, "connection"))
		note_connection(&p->f, &fl->value);
	else if (slice_is(n, len, "upgrade")) {
		if (!p->f.has_upgrade)
			p->head.upgrade_proto = fl->value;
		p->f.has_upgrade = true;
	} else if (slice_is(n, len, "expect")) {
		if (slice_is(fl->value.p, fl->value.len, "100-continue"))
			p->f.expect_continue = true;
	} else if (p->kind == SK_H1_REQUEST && slice_is(n, len, "host")) {
		if (fl->value.len > 0 && !valid_authority(fl->value.p, fl->value.len, false))
			return fail(p, 400, "bad host");
		if (p->f.n_host++ == 0) {
			p->head.host = fl->value;
			p->head.has_host = true;
		}
	}
	return 0;
}

static int parse_field_line(struct sk_h1_parser *p, const char *l, size_t n, bool first,
			    struct sk_h1_field *fl)
{
	const char *colon, *v, *z;
	size_t i;

	if (is_ows(l[0]))
		return fail(p, 400, first ? "whitespace before first field" : "obs-fold");
	colon = memchr(l, ':', n);
	if (colon == NULL)
		return fail(p, 400, "missing colon in field line");
	if (colon == l)
		return fail(p, 400, "empty field name");
	if (is_ows(colon[-1]))
		return fail(p, 400, "whitespace before colon");
	fl->name.p = l;
	fl->name.len = (size_t)(colon - l);
	if (!all_tchars(l, fl->name.len))
		return fail(p, 400, "invalid field name");
	for (v = colon + 1, z = l + n; v < z && is_ows(*v); v++)
		;
	while (z > v && is_ows(z[-1]))
		z--;
	fl->value.p = v;
	fl->value.len = (size_t)(z - v);
	for (i = 0; i < fl->value.len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\0')
			return fail(p, 400, "NUL in field value");
		if (c == '\r')
			return fail(p, 400, "bare CR in field value");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(p, 400, "invalid field value");
	}
	return 0;
}

/* The field lines from s up to the empty line that ends at end (the scan made sure every
 * line ends in CRLF), into p->fields. */
static int parse_fields(struct sk_h1_parser *p, const char *s, const char *end, bool trailers)
{
	size_t count = 0;

	for (;;) {
		const char *lf = memchr(s, '\n', (size_t)(end - s));
		size_t n = (size_t)(lf - 1 - s);

		if (n == 0)
			break;
		if (count == p->max_fields)
			return fail(p, 431, trailers ? "too many trailers" : "too many headers");
		if (parse_field_line(p, s, n, count == 0, &p->fields[count]) < 0)
			return -1;
		if (!trailers && note_field(p, &p->fields[count]) < 0)
			return -1;
		count++;
		s = lf + 1;
	}
	p->n_fields = count;
	return 0;
}

static int check_transfer_encoding(struct sk_h1_parser *p)
{
	const struct facts *f = &p->f;

	if (p->head.has_content_length)
		return fail(p, 400, "content-length with transfer-encoding");
	if (p->head.minor == 0)
		return fail(p, 400, "transfer-encoding in HTTP/1.0");
	if (p->kind == SK_H1_REQUEST && p->head.method_id == SK_H1_M_CONNECT)
		return fail(p, 501, "transfer-encoding on CONNECT");
	if (f->te_bad)
		return fail(p, 400, "bad transfer-encoding");
	if (f->te_chunked > 1)
		return fail(p, 400, "repeated chunked");
	if (!f->te_last_chunked)
		return fail(p, 400, "chunked is not the final transfer-coding");
	if (f->te_other)
		return fail(p, 501, "unsupported transfer-coding");
	return 0;
}

static int finish_request(struct sk_h1_parser *p)
{
	struct sk_h1_head *h = &p->head;
	const struct facts *f = &p->f;

	if (f->te && check_transfer_encoding(p) < 0)
		return -1;
	if (h->method_id == SK_H1_M_CONNECT && h->content_length > 0)
		return fail(p, 400, "body on CONNECT");
	if (f->n_host > 1)
		return fail(p, 400, "duplicate host");
	if (h->minor == 1 && f->n_host == 0)
		return fail(p, 400, "missing host");
	if (p->max_body && h->content_length > p->max_body)
		return fail(p, 413, "body too large");
	if (f->te)
		h->framing = SK_H1_BODY_CHUNKED;
	else
		h->framing = h->content_length > 0 ? SK_H1_BODY_LENGTH : SK_H1_BODY_NONE;
	h->keep_alive = !f->conn_close && (h->minor == 1 || f->conn_keep_alive);
	/* RFC 9110 section 7.8 and 10.1.1: HTTP/1.0 requests have neither. */
	h->upgrade = h->minor == 1 && f->has_upgrade && f->conn_upgrade;
	h->expect_continue = h->minor == 1 && f->expect_continue;
	h->tunnel = h->method_id == SK_H1_M_CONNECT || h->upgrade;
	if (!h->upgrade)
		h->upgrade_proto = (struct sk_h1_slice){ NULL, 0 };
	return 0;
}

static int finish_response(struct sk_h1_parser *p)
{
	struct sk_h1_head *h = &p->head;
	const struct facts *f = &p->f;
	bool no_content = h->status < 200 || h->status == 204;

	if (f->te && check_transfer_encoding(p) < 0)
		return -1;
	if (no_content && f->te)
		return fail(p, 502, "transfer-encoding in 1xx or 204");
	if (no_content && h->content_length > 0)
		return fail(p, 502, "content-length in 1xx or 204");
	if (h->status == 101) {
		if (!p->req_upgrade)
			return fail(p, 502, "unexpected 101");
		h->tunnel = true;
	} else if (p->req_method == SK_H1_M_CONNECT && h->status / 100 == 2) {
		/* RFC 9110 section 9.3.6: a client ignores Content-Length here. */
		if (f->te)
			return fail(p, 502, "transfer-encoding in 2xx to CONNECT");
		h->tunnel = true;
	}
	if (h->tunnel || no_content || h->status == 304 || p->req_method == SK_H1_M_HEAD)
		h->framing = SK_H1_BODY_NONE;
	else if (f->te)
		h->framing = SK_H1_BODY_CHUNKED;
	else if (h->has_content_length)
		h->framing = h->content_length > 0 ? SK_H1_BODY_LENGTH : SK_H1_BODY_NONE;
	else
		h->framing = SK_H1_BODY_UNTIL_CLOSE;
	if (h->framing == SK_H1_BODY_LENGTH && p->max_body && h->content_length > p->max_body)
		return fail(p, 413, "body too large");
	h->keep_alive = !f->conn_close && (h->minor == 1 || f->conn_keep_alive) &&
			h->framing != SK_H1_BODY_UNTIL_CLOSE && !h->tunnel;
	if (h->status != 101)
		h->upgrade_proto = (struct sk_h1_slice){ NULL, 0 };
	return 0;
}

/* The complete head in b[0..end): the start line from p->start, then the fields. */
static int parse_head(struct sk_h1_parser *p, const char *b, size_t end)
{
	const char *l = b + p->start, *lf = memchr(l, '\n', end - p->start);
	size_t n = (size_t)(lf - 1 - l);

	memset(&p->head, 0, sizeof(p->head));
	memset(&p->f, 0, sizeof(p->f));
	if (p->kind == SK_H1_REQUEST ? parse_request_line(p, l, n) : parse_status_line(p, l, n))
		return -1;
	if (parse_fields(p, lf + 1, b + end, false) < 0)
		return -1;
	p->head.fields = p->fields;
	p->head.n_fields = p->n_fields;
	p->head.head_len = end;
	if (p->kind == SK_H1_REQUEST ? finish_request(p) : finish_response(p))
		return -1;
	switch (p->head.framing) {
	case SK_H1_BODY_NONE:
		p->state = ST_MSG_DONE;
		break;
	case SK_H1_BODY_LENGTH:
		p->remaining = p->head.content_length;
		p->state = ST_BODY_LENGTH;
		break;
	case SK_H1_BODY_CHUNKED:
		p->body_total = 0;
		scan_reset(p);
		p->state = ST_CHUNK_SIZE;
		break;
	case SK_H1_BODY_UNTIL_CLOSE:
		p->state = ST_BODY_CLOSE;
		break;
	}
	return 0;
}

static bool is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static size_t skip_ows(const char *l, size_t i, size_t n)
{
	while (i < n && is_ows(l[i]))
		i++;
	return i;
}

/* chunk-size [ chunk-ext ], the line without its CRLF (RFC 9112 section 7.1):
 * chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ) */
static int parse_chunk_line(struct sk_h1_parser *p, const char *l, size_t n, uint64_t *size)
{
	const char *why = "bad chunk size";
	size_t i, digits = 0, k;
	uint64_t v = 0;

	for (i = 0; i < n && is_hex((unsigned char)l[i]); i++) {
		if (v == 0 && l[i] == '0')
			continue;
		if (++digits > 16)
			return fail(p, 400, "chunk size overflow");
		v = v << 4 | hex_value((unsigned char)l[i]);
	}
	if (i == 0)
		return fail(p, 400, "bad chunk size");
	while (i < n) {
		k = skip_ows(l, i, n);
		if (k == n || l[k] != ';')
			return fail(p, 400, why);
		why = "bad chunk extension";
		i = skip_ows(l, k + 1, n);
		for (k = i; i < n && is_tchar((unsigned char)l[i]); i++)
			;
		if (i == k)
			return fail(p, 400, "bad chunk extension");
		k = skip_ows(l, i, n);
		if (k == n || l[k] != '=')
			continue;
		i = skip_ows(l, k + 1, n);
		if (i < n && l[i] == '"') {
			for (i++;; i++) {
				if (i == n)
					return fail(p, 400, "bad chunk extension");
				if (l[i] == '"')
					break;
				if (l[i] == '\\' && i + 1 < n &&
				    (l[i + 1] == '\t' || (unsigned char)l[i + 1] >= 0x20) && l[i + 1] != 0x7f)
					i++;
				else if (!is_qdtext((unsigned char)l[i]))
					return fail(p, 400, "bad chunk extension");
			}
			i++;
		} else {
			for (k = i; i < n && is_tchar((unsigned char)l[i]); i++)
				;
			if (i == k)
				return fail(p, 400, "bad chunk extension");
		}
	}
	*size = v;
	return 0;
}

/* Looks for a whole chunk-size line from where the last call stopped: 1 with *lf set, 0 for
 * more bytes, -1 on error. */
static int scan_chunk_line(struct sk_h1_parser *p, const char *b, size_t n, size_t *lf)
{
	size_t stop = n < SK_H1_MAX_CHUNK_LINE ? n : SK_H1_MAX_CHUNK_LINE;
	const char *c = p->scan < stop ? memchr(b + p->scan, '\n', stop - p->scan) : NULL;

	if (c == NULL) {
		p->scan = stop;
		return n >= SK_H1_MAX_CHUNK_LINE ? fail(p, 400, "chunk line too long") : 0;
	}
	*lf = (size_t)(c - b);
	if (*lf == 0 || b[*lf - 1] != '\r')
		return fail(p, 400, "bare LF");
	return 1;
}

static enum sk_h1_event_type emit(struct sk_h1_event *ev, enum sk_h1_event_type type,
				  size_t consumed)
{
	ev->type = type;
	ev->consumed = consumed;
	return type;
}

static enum sk_h1_event_type emit_error(struct sk_h1_parser *p, struct sk_h1_event *ev,
					size_t consumed)
{
	ev->status = p->err_status;
	ev->reason = p->err_reason;
	return emit(ev, SK_H1_EV_ERROR, consumed);
}

static enum sk_h1_event_type emit_data(struct sk_h1_event *ev, const char *b, size_t n,
				       size_t off)
{
	ev->data.p = b;
	ev->data.len = n;
	return emit(ev, SK_H1_EV_BODY, off + n);
}

/* The end of a message: forget it, and say DONE. */
static enum sk_h1_event_type message_done(struct sk_h1_parser *p, struct sk_h1_event *ev,
					  size_t off)
{
	bool tunnel = p->head.tunnel;

	if (p->kind == SK_H1_RESPONSE && (p->head.status >= 200 || p->head.status == 101)) {
		p->req_method = SK_H1_M_GET;
		p->req_upgrade = false;
	}
	memset(&p->head, 0, sizeof(p->head));
	memset(&p->f, 0, sizeof(p->f));
	p->n_fields = 0;
	p->remaining = p->body_total = 0;
	scan_reset(p);
	p->state = tunnel ? ST_TUNNEL : ST_HEAD;
	return emit(ev, SK_H1_EV_DONE, off);
}

enum sk_h1_event_type sk_h1_parse(struct sk_h1_parser *p, const char *buf, size_t len,
				  struct sk_h1_event *ev)
{
	size_t off = 0, end = 0, take;
	uint64_t size = 0;
	int rc;

	memset(ev, 0, sizeof(*ev));
	for (;;) {
		const char *b = buf + off;
		size_t n = len - off;

		switch (p->state) {
		case ST_HEAD:
			rc = scan_section(p, b, n, p->kind == SK_H1_REQUEST, "headers too large", &end);
			if (rc == 0)
				return emit(ev, SK_H1_EV_NEED_MORE, off);
			if (rc < 0 || parse_head(p, b, end) < 0)
				return emit_error(p, ev, off);
			ev->head = &p->head;
			return emit(ev, SK_H1_EV_HEAD, off + end);

		case ST_BODY_LENGTH:
		case ST_CHUNK_DATA:
			if (p->remaining == 0) {
				p->state = p->state == ST_CHUNK_DATA ? ST_CHUNK_CRLF : ST_MSG_DONE;
				continue;
			}
			if (n == 0)
				return emit(ev, SK_H1_EV_NEED_MORE, off);
			take = n < p->remaining ? n : (size_t)p->remaining;
			p->remaining -= take;
			return emit_data(ev, b, take, off);

		case ST_BODY_CLOSE:
		case ST_TUNNEL:
			if (n == 0)
				return emit(ev, SK_H1_EV_NEED_MORE, off);
			return emit_data(ev, b, n, off);

		case ST_CHUNK_SIZE:
			rc = scan_chunk_line(p, b, n, &end);
			if (rc == 0)
				return emit(ev, SK_H1_EV_NEED_MORE, off);
			if (rc < 0 || parse_chunk_line(p, b, end - 1, &size) < 0)
				return emit_error(p, ev, off);
			if (size > UINT64_MAX - p->body_total) {
				fail(p, 400, "chunk size overflow");
				return emit_error(p, ev, off);
			}
			p->body_total += size;
			if (p->max_body && p->body_total > p->max_body) {
				fail(p, 413, "body too large");
				return emit_error(p, ev, off);
			}
			off += end + 1;
			scan_reset(p);
			p->remaining = size;
			p->state = size ? ST_CHUNK_DATA : ST_TRAILERS;
			continue;

		case ST_CHUNK_CRLF:
			if ((n >= 1 && b[0] != '\r') || (n >= 2 && b[1] != '\n')) {
				fail(p, 400, "missing CRLF after chunk data");
				return emit_error(p, ev, off);
			}
			if (n < 2)
				return emit(ev, SK_H1_EV_NEED_MORE, off);
			off += 2;
			p->state = ST_CHUNK_SIZE;
			continue;

		case ST_TRAILERS:
			rc = scan_section(p, b, n, false, "trailers too large", &end);
			if (rc == 0)
				return emit(ev, SK_H1_EV_NEED_MORE, off);
			if (rc < 0 || parse_fields(p, b, b + end, true) < 0)
				return emit_error(p, ev, off);
			off += end;
			p->state = ST_MSG_DONE;
			if (p->n_fields == 0)
				continue;
			ev->trailers = p->fields;
			ev->n_trailers = p->n_fields;
			return emit(ev, SK_H1_EV_TRAILERS, off);

		case ST_MSG_DONE:
			return message_done(p, ev, off);

		case ST_ERROR:
			return emit_error(p, ev, off);
		}
	}
}

enum sk_h1_event_type sk_h1_parse_eof(struct sk_h1_parser *p, struct sk_h1_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	switch (p->state) {
	case ST_HEAD:
		if (!p->seen_line && p->scan == p->start) {
			fail(p, 400, "connection closed");
			return emit(ev, SK_H1_EV_NEED_MORE, 0);
		}
		break;
	case ST_BODY_CLOSE:
	case ST_TUNNEL:
	case ST_MSG_DONE:
		message_done(p, ev, 0);
		fail(p, 400, "connection closed");
		return ev->type;
	case ST_ERROR:
		return emit_error(p, ev, 0);
	default:
		break;
	}
	fail(p, 400, "connection closed mid-message");
	return emit_error(p, ev, 0);
}

void sk_h1_parser_reset(struct sk_h1_parser *p)
{
	memset(&p->head, 0, sizeof(p->head));
	memset(&p->f, 0, sizeof(p->f));
	p->n_fields = 0;
	p->remaining = p->body_total = 0;
	p->err_status = 0;
	p->err_reason = NULL;
	p->req_method = SK_H1_M_GET;
	p->req_upgrade = false;
	scan_reset(p);
	p->state = ST_HEAD;
}

void sk_h1_parser_expect_response(struct sk_h1_parser *p, enum sk_h1_method method, bool upgrade)
{
	p->req_method = method;
	p->req_upgrade = upgrade;
}

struct sk_h1_parser *sk_h1_parser_new(enum sk_h1_kind kind, const struct sk_h1_options *opts)
{
	struct sk_h1_options o = opts ? *opts : (struct sk_h1_options){ 0 };
	size_t max_section, max_fields;
	struct sk_h1_parser *p;

	if (o.max_headers_kb == 0)
		o.max_headers_kb = SK_H1_DEFAULT_MAX_HEADERS_KB;
	if (o.max_headers_count == 0)
		o.max_headers_count = SK_H1_DEFAULT_MAX_HEADERS_COUNT;
	max_section = (size_t)o.max_headers_kb * 1024;
	/* A field line takes at least four bytes ("a:" CRLF): no head can hold more. */
	max_fields = o.max_headers_count;
	if (max_fields > max_section / 4)
		max_fields = max_section / 4;
	p = calloc(1, sizeof(*p) + max_fields * sizeof(p->fields[0]));
	if (p == NULL)
		return NULL;
	p->kind = kind;
	p->max_section = max_section;
	p->max_fields = max_fields;
	p->max_body = o.max_body_bytes;
	sk_h1_parser_reset(p);
	return p;
}

void sk_h1_parser_free(struct sk_h1_parser *p)
{
	free(p);
}

const struct sk_h1_field *sk_h1_field_find(const struct sk_h1_field *fields, size_t n,
					   const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (slice_is(fields[i].name.p, fields[i].name.len, name))
			return &fields[i];
	return NULL;
}
