/* route_table: request -> virtual host -> route, and weighted cluster picks. See route_table.h.
 * The rules follow Envoy's RouteMatcher::findVirtualHost, RouteEntryImplBase::matchRoute and
 * the path matchers (source/common/router/config_impl.cc), HeaderUtility::matchHeaders
 * (source/common/http/header_utility.cc) and WeightedClusterSpecifierPlugin. */
#include "proxy/http/route_table.h"

#include <string.h>

#define JOIN_STACK 2048

static inline unsigned char lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

static bool eq_ci(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool eq(const char *a, const char *b, size_t n, bool icase)
{
	return icase ? eq_ci(a, b, n) : memcmp(a, b, n) == 0;
}

static bool contains(const char *s, size_t n, const char *needle, size_t m, bool icase)
{
	if (m == 0)
		return true;
	for (size_t i = 0; i + m <= n; i++)
		if (eq(s + i, needle, m, icase))
			return true;
	return false;
}

bool sk_string_matcher_match(const struct sk_string_matcher *m, const char *s, size_t n)
{
	switch (m->kind) {
	case SK_STRING_EXACT:
		return n == m->len && eq(s, m->value, n, m->ignore_case);
	case SK_STRING_PREFIX:
		return n >= m->len && eq(s, m->value, m->len, m->ignore_case);
	case SK_STRING_SUFFIX:
		return n >= m->len && eq(s + n - m->len, m->value, m->len, m->ignore_case);
	case SK_STRING_CONTAINS:
		return contains(s, n, m->value, m->len, m->ignore_case);
	case SK_STRING_REGEX:
		return sk_regex_match(m->re, s, n);
	}
	return false;
}

/* absl::SimpleAtoi: ASCII whitespace around, an optional sign, decimal digits, no overflow. */
static bool parse_int(const char *s, size_t n, bool is_signed, int64_t *sv, uint64_t *uv)
{
	const char *p = s, *end = s + n;
	bool neg = false;
	uint64_t v = 0, limit;

	while (p < end && (*p == ' ' || (*p >= '\t' && *p <= '\r')))
		p++;
	while (end > p && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
		end--;
	if (p < end && (*p == '+' || *p == '-')) {
		neg = *p == '-';
		if (neg && !is_signed)
			return false;
		p++;
	}
	if (p == end)
		return false;
	limit = !is_signed ? UINT64_MAX : neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (limit - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (is_signed)
		*sv = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	else
		*uv = v;
	return true;
}

/* The pseudo-header fields of the view, by name; NULL for a regular header. */
static const struct sk_slice *pseudo(const struct sk_route_request *req, const char *name, size_t len)
{
	if (len < 2 || name[0] != ':')
		return NULL;
	if (len == 10 && memcmp(name, ":authority", 10) == 0)
		return &req->authority;
	if (len == 5 && memcmp(name, ":path", 5) == 0)
		return &req->path;
	if (len == 7 && memcmp(name, ":method", 7) == 0)
		return &req->method;
	if (len == 7 && memcmp(name, ":scheme", 7) == 0)
		return &req->scheme;
	return NULL;
}

struct sk_slice sk_route_request_header(const struct sk_route_request *req, const char *name, size_t name_len)
{
	const struct sk_slice *ps = pseudo(req, name, name_len);
	struct sk_slice none = {NULL, 0};

	if (ps != NULL && ps->ptr != NULL)
		return *ps;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct sk_http_header *h = &req->headers[i];

		if (h->name.len == name_len && eq_ci(h->name.ptr, name, name_len))
			return h->value;
	}
	return none;
}

/* The header's value for matching: its only value, or all values joined with ',' in buf.
 * Returns 0 when missing, 1 when found, -1 when the join does not fit. */
static int header_value(const struct sk_route_request *req, const char *name, size_t len, char *buf,
			size_t buflen, struct sk_slice *out)
{
	const struct sk_slice *ps = pseudo(req, name, len);
	size_t count = 0, used = 0;

	if (ps != NULL && ps->ptr != NULL) {
		*out = *ps;
		return 1;
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct sk_http_header *h = &req->headers[i];

		if (h->name.len != len || !eq_ci(h->name.ptr, name, len))
			continue;
		if (count++ == 0) {
			*out = h->value;
			continue;
		}
		if (count == 2) { /* second value: start joining */
			if (out->len > buflen)
				return -1;
			memcpy(buf, out->ptr, out->len);
			used = out->len;
		}
		if (used + 1 + h->value.len > buflen)
			return -1;
		buf[used++] = ',';
		memcpy(buf + used, h->value.ptr, h->value.len);
		used += h->value.len;
		out->ptr = buf;
		out->len = used;
	}
	return count > 0;
}

static bool header_matcher_match(const struct sk_header_matcher *m, const struct sk_route_request *req)
{
	char stack[JOIN_STACK];
	char *buf = req->scratch && req->scratch_len > sizeof(stack) ? req->scratch : stack;
	size_t buflen = buf == stack ? sizeof(stack) : req->scratch_len;
	struct sk_slice v = {NULL, 0};
	int found = header_value(req, m->name, m->name_len, buf, buflen, &v);
	bool match;

	if (m->kind == SK_HEADER_PRESENT) /* presence only: treat_missing_as_empty plays no part */
		return m->invert ? m->present != (found != 0) : m->present == (found != 0);
	if (found == 0) {
		if (!m->treat_missing_as_empty)
			return false; /* absent: no value matcher holds, inverted or not */
		v.ptr = "";
		v.len = 0;
	}
	if (found < 0) {
		match = false; /* too long to join here: matches nothing */
	} else if (m->kind == SK_HEADER_RANGE) {
		int64_t n;

		match = parse_int(v.ptr, v.len, true, &n, NULL) && n >= m->range_start && n < m->range_end;
	} else {
		match = sk_string_matcher_match(&m->str, v.ptr, v.len);
	}
	return match != m->invert;
}

bool sk_header_matchers_match(const struct sk_header_matcher *m, size_t n, const struct sk_route_request *req)
{
	for (size_t i = 0; i < n; i++)
		if (!header_matcher_match(&m[i], req))
			return false;
	return true;
}

bool sk_fraction_hit(struct sk_fraction f, uint64_t random)
{
	return f.denominator != 0 && random % f.denominator < f.numerator;
}

bool sk_route_is_grpc_content_type(struct sk_slice ct)
{
	static const char grpc[] = "application/grpc";
	const size_t n = sizeof(grpc) - 1;

	return ct.ptr != NULL && ct.len >= n && memcmp(ct.ptr, grpc, n) == 0 && (ct.len == n || ct.ptr[n] == '+');
}

size_t sk_route_host_port_start(struct sk_slice host)
{
	size_t colon = SIZE_MAX;

	for (size_t i = host.len; i-- > 0;) {
		if (host.ptr[i] == ']')
			return SIZE_MAX; /* "[v6]" with no port after it */
		if (host.ptr[i] == ':') {
			colon = i;
			break;
		}
	}
	if (colon == SIZE_MAX)
		return SIZE_MAX;
	return colon;
}

struct sk_slice sk_route_host_strip_port(struct sk_slice host, uint32_t listener_port)
{
	size_t at = sk_route_host_port_start(host);
	uint64_t port;

	if (at == SIZE_MAX || !parse_int(host.ptr + at + 1, host.len - at - 1, false, NULL, &port) ||
	    port > UINT32_MAX || (listener_port != 0 && port != listener_port))
		return host;
	host.len = at;
	return host;
}

/* ---- virtual hosts ---------------------------------------------------------------------- */

/* Compares host (any case) with a lower-cased domain, in memcmp order of the lower-cased host. */
static int cmp_host(const char *host, size_t hlen, const char *text, size_t tlen)
{
	size_t n = hlen < tlen ? hlen : tlen;

	for (size_t i = 0; i < n; i++) {
		unsigned char a = lower((unsigned char)host[i]), b = (unsigned char)text[i];

		if (a != b)
			return a < b ? -1 : 1;
	}
	return (hlen > tlen) - (hlen < tlen);
}

const struct sk_virtual_host *sk_route_table_find_vhost(const struct sk_route_config *rc,
							 const struct sk_route_request *req)
{
	struct sk_slice host;
	size_t lo = 0, hi = rc->n_exact;

	if (rc->n_exact == 0 && rc->n_suffix == 0 && rc->n_prefix == 0)
		return rc->default_vhost;
	host = rc->vhost_header ? sk_route_request_header(req, rc->vhost_header, strlen(rc->vhost_header))
				: req->authority;
	if (host.ptr == NULL)
		return NULL;
	if (rc->ignore_port_in_host_matching) {
		size_t at = sk_route_host_port_start(host);

		if (at != SIZE_MAX)
			host.len = at;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = cmp_host(host.ptr, host.len, rc->exact[mid].text, rc->exact[mid].len);

		if (d == 0)
			return rc->exact[mid].vhost;
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	/* wildcards are sorted longest first; ">=" because "*.foo.com" must not match ".foo.com" */
	for (size_t i = 0; i < rc->n_suffix; i++) {
		const struct sk_domain_entry *e = &rc->suffix[i];

		if (e->len < host.len && cmp_host(host.ptr + host.len - e->len, e->len, e->text, e->len) == 0)
			return e->vhost;
	}
	for (size_t i = 0; i < rc->n_prefix; i++) {
		const struct sk_domain_entry *e = &rc->prefix[i];

		if (e->len < host.len && cmp_host(host.ptr, e->len, e->text, e->len) == 0)
			return e->vhost;
	}
	return rc->default_vhost;
}

/* ---- routes ----------------------------------------------------------------------------- */

/* The path routes match on: without query and fragment, and without ";params" when the config
 * says ignore_path_parameters_in_path_matching. */
static struct sk_slice match_path(const struct sk_route_config *rc, struct sk_slice path)
{
	for (size_t i = 0; i < path.len; i++) {
		char ch = path.ptr[i];

		if (ch == '?' || ch == '#' || (ch == ';' && rc->ignore_path_parameters)) {
			path.len = i;
			break;
		}
	}
	return path;
}

/* The first value of query parameter `name` in the path's query string (undecoded, as Envoy's
 * parseQueryString). Returns false when the parameter is absent. */
static bool query_param(struct sk_slice path, const char *name, size_t nlen, struct sk_slice *value)
{
	const char *q = memchr(path.ptr, '?', path.len), *end = path.ptr + path.len;

	if (q == NULL)
		return false;
	for (const char *p = q + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *pe = amp ? amp : end;
		const char *eqs = memchr(p, '=', (size_t)(pe - p));
		const char *ne = eqs ? eqs : pe;

		if ((size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0) {
			value->ptr = eqs ? eqs + 1 : pe;
			value->len = eqs ? (size_t)(pe - eqs - 1) : 0;
			return true;
		}
		p = pe + 1;
	}
	return false;
}

static bool path_matches(const struct sk_route *r, const struct sk_route_request *req)
{
	struct sk_slice p;
	bool icase = !r->case_sensitive;

	if (r->path_kind == SK_PATH_CONNECT)
		return req->method.len == 7 && memcmp(req->method.ptr, "CONNECT", 7) == 0;
	if (req->path.ptr == NULL)
		return false; /* only CONNECT routes take path-less requests */
	p = match_path(r->vhost->config, req->path);
	switch (r->path_kind) {
	case SK_PATH_PREFIX:
		return p.len >= r->path_len && eq(p.ptr, r->path, r->path_len, icase);
	case SK_PATH_EXACT:
		return p.len == r->path_len && eq(p.ptr, r->path, r->path_len, icase);
	case SK_PATH_SEPARATED_PREFIX:
		return p.len >= r->path_len && eq(p.ptr, r->path, r->path_len, icase) &&
		       (p.len == r->path_len || p.ptr[r->path_len] == '/');
	case SK_PATH_REGEX:
		return sk_regex_match(r->path_re, p.ptr, p.len);
	default:
		return false;
	}
}

bool sk_route_matches(const struct sk_route *r, const struct sk_route_request *req, uint64_t random)
{
	if (r->has_runtime_fraction && !sk_fraction_hit(r->runtime_fraction, random))
		return false;
	if (r->grpc && !req->is_grpc)
		return false;
	if (!sk_header_matchers_match(r->headers, r->n_headers, req))
		return false;
	for (size_t i = 0; i < r->n_query; i++) {
		const struct sk_query_matcher *q = &r->query[i];
		struct sk_slice v;

		if (req->path.ptr == NULL || !query_param(req->path, q->name, q->name_len, &v))
			return false;
		if (!q->present_only && !sk_string_matcher_match(&q->str, v.ptr, v.len))
			return false;
	}
	return path_matches(r, req);
}

const struct sk_route *sk_route_table_match(const struct sk_route_config *rc, const struct sk_route_request *req,
					    uint64_t random)
{
	const struct sk_virtual_host *v = sk_route_table_find_vhost(rc, req);

	for (size_t i = 0; v && i < v->n_routes; i++)
		if (sk_route_matches(&v->routes[i], req, random))
			return &v->routes[i];
	return NULL;
}

/* ---- weighted clusters ------------------------------------------------------------------ */

const struct sk_route_weighted_cluster *sk_route_pick_weighted(const struct sk_route_forward *f,
								const struct sk_route_request *req,
								uint64_t random)
{
	uint64_t value = random, begin = 0;

	if (f->cluster_kind != SK_ROUTE_CLUSTER_WEIGHTED || f->total_weight == 0)
		return NULL;
	if (f->random_value_header != NULL && req != NULL) {
		size_t len = strlen(f->random_value_header), count = 0;
		struct sk_slice one = {NULL, 0};
		uint64_t v;

		for (size_t i = 0; i < req->n_headers; i++) {
			if (req->headers[i].name.len == len && eq_ci(req->headers[i].name.ptr, f->random_value_header, len)) {
				one = req->headers[i].value;
				count++;
			}
		}
		/* a repeated header would make picks inconsistent: Envoy falls back to random */
		if (count == 1 && parse_int(one.ptr, one.len, false, NULL, &v))
			value = v;
	}
	value %= f->total_weight;
	for (size_t i = 0; i < f->n_weighted; i++) {
		uint64_t end = begin + f->weighted[i].weight;

		if (value >= begin && value < end)
			return &f->weighted[i];
		begin = end;
	}
	return NULL; /* unreachable: the weights sum to total_weight */
}
