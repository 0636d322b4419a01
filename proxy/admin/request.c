/* request: see request.h. Strict where a lenient reading could be abused: a method of
 * letters, an origin-form target without control bytes, HTTP/1.0 or HTTP/1.1, header names
 * that are tokens, no obs-fold, a decimal Content-Length (repeated ones must agree), and no
 * Transfer-Encoding (admin takes no chunked bodies). */
#include "proxy/admin/request.h"

#include <string.h>
#include <strings.h>

static int fail(struct sk_admin_head *h, int status, const char *why)
{
	h->status = status;
	h->error = why;
	return SK_ADMIN_HEAD_ERROR;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

static int parse_request_line(const char *p, size_t n, struct sk_admin_head *h)
{
	const char *sp1 = memchr(p, ' ', n), *sp2, *version;
	size_t i, mlen;

	if (sp1 == NULL)
		return fail(h, 400, "bad request line");
	mlen = (size_t)(sp1 - p);
	if (mlen == 0 || mlen >= sizeof(h->method))
		return fail(h, 400, "bad method");
	for (i = 0; i < mlen; i++)
		if (p[i] < 'A' || p[i] > 'Z')
			return fail(h, 400, "bad method");
	memcpy(h->method, p, mlen);
	h->method[mlen] = '\0';
	sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
	if (sp2 == NULL || sp1[1] != '/')
		return fail(h, 400, "bad request target");
	h->target = sp1 + 1;
	h->target_len = (size_t)(sp2 - h->target);
	for (i = 0; i < h->target_len; i++)
		if ((unsigned char)h->target[i] <= 0x20 || h->target[i] == 0x7f)
			return fail(h, 400, "bad request target");
	version = sp2 + 1;
	if ((size_t)(p + n - version) != 8 || strncmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1'))
		return fail(h, 400, "unsupported HTTP version");
	h->http10 = version[7] == '0';
	h->keep_alive = !h->http10;
	return SK_ADMIN_HEAD_DONE;
}

static int parse_content_length(const char *v, size_t n, struct sk_admin_head *h, bool *seen)
{
	uint64_t value = 0;
	size_t i;

	if (n == 0 || n > 19)
		return fail(h, 400, "bad content-length");
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(h, 400, "bad content-length");
		value = value * 10 + (uint64_t)(v[i] - '0');
	}
	if (*seen && value != h->content_length)
		return fail(h, 400, "conflicting content-length");
	*seen = true;
	h->content_length = value;
	return SK_ADMIN_HEAD_DONE;
}

int sk_admin_parse_head(const char *buf, size_t len, size_t max_head, struct sk_admin_head *h)
{
	const char *end, *p, *eol;
	bool close_req = false, seen_length = false;

	memset(h, 0, sizeof(*h));
	end = memmem(buf, len < max_head ? len : max_head, "\r\n\r\n", 4);
	if (end == NULL)
		return len >= max_head ? fail(h, 431, "request headers too large") : SK_ADMIN_HEAD_PARTIAL;
	h->head_len = (size_t)(end - buf) + 4;

	eol = memchr(buf, '\r', h->head_len);
	if (eol[1] != '\n' || parse_request_line(buf, (size_t)(eol - buf), h) != SK_ADMIN_HEAD_DONE)
		return h->error ? SK_ADMIN_HEAD_ERROR : fail(h, 400, "bad request line");

	for (p = eol + 2; p < end + 2; p = eol + 2) {
		const char *colon, *v;
		size_t nlen, vlen, i;

		eol = memchr(p, '\r', (size_t)(end + 2 - p));
		if (eol == NULL || eol[1] != '\n')
			return fail(h, 400, "bad header line");
		if (*p == ' ' || *p == '\t')
			return fail(h, 400, "obsolete header folding");
		colon = memchr(p, ':', (size_t)(eol - p));
		nlen = colon ? (size_t)(colon - p) : 0;
		if (nlen == 0)
			return fail(h, 400, "bad header line");
		for (i = 0; i < nlen; i++)
			if (!is_tchar((unsigned char)p[i]))
				return fail(h, 400, "bad header name");
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		vlen = (size_t)(eol - v);
		while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		for (i = 0; i < vlen; i++)
			if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
				return fail(h, 400, "bad header value");
		if (name_is(p, nlen, "content-length")) {
			if (parse_content_length(v, vlen, h, &seen_length) != SK_ADMIN_HEAD_DONE)
				return SK_ADMIN_HEAD_ERROR;
		} else if (name_is(p, nlen, "transfer-encoding")) {
			return fail(h, 400, "chunked bodies are not accepted by admin");
		} else if (name_is(p, nlen, "connection")) {
			if (name_is(v, vlen, "close"))
				close_req = true;
			else if (name_is(v, vlen, "keep-alive"))
				h->keep_alive = true;
		}
	}
	if (h->content_length > SK_ADMIN_MAX_BODY_BYTES)
		return fail(h, 413, "request body too large");
	if (close_req)
		h->keep_alive = false;
	return SK_ADMIN_HEAD_DONE;
}
