/* access_log: see access_log.h. */
#include "proxy/network/access_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/log/log.h"

#define MAX_FILES 64

static struct {
	pthread_mutex_t lock;
	size_t n;
	struct {
		char *path;
		int fd;
	} files[MAX_FILES];
} logs = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct out {
	char *buf;
	size_t len, n;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n + 1 >= o->len)
		return;
	if (n > o->len - 1 - o->n)
		n = o->len - 1 - o->n;
	memcpy(o->buf + o->n, s, n);
	o->n += n;
}

/* The value of one command operator: none (Envoy's nullopt: "-" in text, null in typed JSON),
 * a string (s[0..n), pointing into the entry or into tmp) or an unsigned number. */
struct val {
	enum { V_NONE, V_STR, V_NUM } kind;
	const char *s;
	size_t n;
	uint64_t num;
	char tmp[SK_ADDR_TEXT_MAX];          /* addresses, START_TIME */
};

static void val_str(struct val *v, const char *s)
{
	if (s == NULL || *s == '\0') {
		v->kind = V_NONE;
		return;
	}
	v->kind = V_STR;
	v->s = s;
	v->n = strlen(s);
}

static void val_num(struct val *v, uint64_t num)
{
	v->kind = V_NUM;
	v->num = num;
}

static void val_addr(struct val *v, const struct sk_addr *a, bool with_port)
{
	if (a == NULL || a->len == 0) {
		v->kind = V_NONE;
		return;
	}
	if (with_port || a->ss.ss_family == AF_UNIX) {
		sk_addr_format(a, v->tmp, sizeof(v->tmp));
	} else {
		const void *src = a->ss.ss_family == AF_INET
					  ? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
					  : (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;

		if (inet_ntop(a->ss.ss_family, src, v->tmp, sizeof(v->tmp)) == NULL) {
			v->kind = V_NONE;
			return;
		}
	}
	val_str(v, v->tmp);
}

/* START_TIME's default format: 2024-01-02T03:04:05.678Z */
static void val_time(struct val *v, double t)
{
	time_t secs = (time_t)t;
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(v->tmp, sizeof(v->tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)((t - (double)secs) * 1000) % 1000);
	val_str(v, v->tmp);
}

/* %REQ(X?Y):N% / %RESP(X?Y):N%: the first present of X and Y, at most N bytes. */
static void val_header(struct val *v, bool resp, const char *arg, size_t alen, size_t max,
		       const struct sk_access_log_entry *e)
{
	const char *q = memchr(arg, '?', alen);
	size_t n1 = q ? (size_t)(q - arg) : alen;
	const char *hv = NULL;
	size_t vlen = 0;

	v->kind = V_NONE;
	if (e->header == NULL)
		return;
	for (int pass = 0; pass < 2 && hv == NULL; pass++) {
		const char *a = pass == 0 ? arg : (q ? q + 1 : NULL);
		size_t n = pass == 0 ? n1 : (q ? alen - n1 - 1 : 0);
		char name[256];

		if (a == NULL || n == 0 || n >= sizeof(name))
			continue;
		for (size_t i = 0; i < n; i++)
			name[i] = (char)((a[i] >= 'A' && a[i] <= 'Z') ? a[i] + 32 : a[i]);
		name[n] = '\0';
		hv = e->header(e->header_ctx, resp, name, n, &vlen);
	}
	if (hv == NULL)
		return;
	v->kind = V_STR;
	v->s = hv;
	v->n = max && vlen > max ? max : vlen;
}

static void eval_operator(struct val *v, const char *op, size_t n, const char *arg, size_t alen, size_t max,
			  const struct sk_access_log_entry *e)
{
#define IS(name) (n == strlen(name) && memcmp(op, name, n) == 0)
	v->kind = V_NONE;
	if (IS("START_TIME"))
		val_time(v, e->start);
	else if (IS("DURATION"))
		val_num(v, e->duration_ms > 0 ? (uint64_t)e->duration_ms : 0);
	else if (IS("DOWNSTREAM_REMOTE_ADDRESS") || IS("DOWNSTREAM_DIRECT_REMOTE_ADDRESS"))
		val_addr(v, e->downstream_remote, true);
	else if (IS("DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT") || IS("DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT"))
		val_addr(v, e->downstream_remote, false);
	else if (IS("DOWNSTREAM_LOCAL_ADDRESS"))
		val_addr(v, e->downstream_local, true);
	else if (IS("DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT"))
		val_addr(v, e->downstream_local, false);
	else if (IS("UPSTREAM_HOST"))
		val_addr(v, e->upstream_host, true);
	else if (IS("UPSTREAM_LOCAL_ADDRESS"))
		val_addr(v, e->upstream_local, true);
	else if (IS("UPSTREAM_CLUSTER"))
		val_str(v, e->upstream_cluster);
	else if (IS("RESPONSE_FLAGS"))
		val_str(v, e->response_flags ? e->response_flags : "-"); /* Envoy: "-" is a value */
	else if (IS("REQUESTED_SERVER_NAME"))
		val_str(v, e->server_name);
	else if (IS("DOWNSTREAM_PEER_URI_SAN"))
		val_str(v, e->downstream_peer_uri_san);
	else if (IS("UPSTREAM_PEER_URI_SAN"))
		val_str(v, e->upstream_peer_uri_san);
	else if (IS("DOWNSTREAM_TLS_VERSION"))
		val_str(v, e->downstream_tls_version);
	else if (IS("UPSTREAM_TLS_VERSION"))
		val_str(v, e->upstream_tls_version);
	else if (IS("BYTES_RECEIVED"))
		val_num(v, e->bytes_received);
	else if (IS("BYTES_SENT"))
		val_num(v, e->bytes_sent);
	else if (IS("CONNECTION_ID"))
		val_num(v, e->connection_id);
	else if (IS("RESPONSE_CODE"))
		val_num(v, e->response_code);
	else if (IS("PROTOCOL"))
		val_str(v, e->protocol);
	else if (IS("ROUTE_NAME"))
		val_str(v, e->route_name);
	else if (IS("REQ") && arg)
		val_header(v, false, arg, alen, max, e);
	else if (IS("RESP") && arg)
		val_header(v, true, arg, alen, max, e);
	/* else: HTTP fields and the rest have no value, as Envoy's unset fields */
#undef IS
}

static void put_val(struct out *o, const struct val *v, bool omit_empty)
{
	char num[24];

	switch (v->kind) {
	case V_NONE:
		if (!omit_empty)
			put(o, "-", 1);
		break;
	case V_STR:
		put(o, v->s, v->n);
		break;
	case V_NUM:
		put(o, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, v->num));
		break;
	}
}

/* One piece of a format string at p: a literal run (op == NULL; "%%" is one '%') or a
 * command operator ("%REQ(X):10%", "%START_TIME(fmt)%": the name is what precedes '(', the
 * argument runs to the matching ')'). Returns where the next piece starts. */
struct piece {
	const char *lit;
	size_t lit_len;
	const char *op, *arg;
	size_t op_len, arg_len, max;
};

static const char *next_piece(const char *p, struct piece *pc)
{
	const char *end, *paren, *close;

	memset(pc, 0, sizeof(*pc));
	if (*p != '%') {
		const char *q = strchr(p, '%');

		pc->lit = p;
		pc->lit_len = q ? (size_t)(q - p) : strlen(p);
		return p + pc->lit_len;
	}
	if (p[1] == '%') {
		pc->lit = p;
		pc->lit_len = 1;
		return p + 2;
	}
	end = strchr(p + 1, '%');
	if (end == NULL) { /* an unterminated '%': the rest is text */
		pc->lit = p;
		pc->lit_len = strlen(p);
		return p + pc->lit_len;
	}
	paren = memchr(p + 1, '(', (size_t)(end - p - 1));
	close = paren ? memchr(paren, ')', (size_t)(end - paren)) : NULL;
	pc->op = p + 1;
	pc->op_len = (size_t)((paren ? paren : end) - (p + 1));
	if (close) {
		pc->arg = paren + 1;
		pc->arg_len = (size_t)(close - paren - 1);
		if (close[1] == ':')
			pc->max = strtoul(close + 2, NULL, 10);
	}
	return end + 1;
}

static void render_text(struct out *o, const char *format, const struct sk_access_log_entry *e, bool omit_empty)
{
	const char *p = format;

	while (*p) {
		struct piece pc;

		p = next_piece(p, &pc);
		if (pc.op == NULL) {
			put(o, pc.lit, pc.lit_len);
		} else {
			struct val v;

			eval_operator(&v, pc.op, pc.op_len, pc.arg, pc.arg_len, pc.max, e);
			put_val(o, &v, omit_empty);
		}
	}
}

size_t sk_access_log_format(const char *format, const struct sk_access_log_entry *e, char *buf, size_t len)
{
	struct out o = {buf, len, 0};

	render_text(&o, format, e, false);
	buf[o.n] = '\0';
	return o.n;
}

/* ---- JSON ---------------------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return k;
}

/* s as a JSON string: quotes, backslashes and control characters escaped; bytes that are not
 * UTF-8 (header values may hold anything) become \u00XX, so that the line stays valid JSON. */
static void put_json_string(struct out *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	put(o, "\"", 1);
	while (i < n) {
		size_t k = utf8_len(p + i, n - i);
		char esc[8];

		if (k > 1) {
			put(o, s + i, k);
			i += k;
			continue;
		}
		switch (p[i]) {
		case '"': put(o, "\\\"", 2); break;
		case '\\': put(o, "\\\\", 2); break;
		case '\n': put(o, "\\n", 2); break;
		case '\r': put(o, "\\r", 2); break;
		case '\t': put(o, "\\t", 2); break;
		case '\b': put(o, "\\b", 2); break;
		case '\f': put(o, "\\f", 2); break;
		default:
			if (p[i] < 0x20 || p[i] >= 0x7f || k == 0)
				put(o, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", p[i]));
			else
				put(o, s + i, 1);
		}
		i++;
	}
	put(o, "\"", 1);
}

/* A configured number as protobuf's JSON prints it: integers without a fraction, others with
 * the shortest precision that reads back the same. */
static void put_json_number(struct out *o, double d)
{
	char num[40];
	int n;

	if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
		put(o, "null", 4); /* NaN and infinities have no JSON form */
		return;
	}
	if (d == (double)(int64_t)d && d > -9.0e15 && d < 9.0e15) {
		n = snprintf(num, sizeof(num), "%" PRId64, (int64_t)d);
	} else {
		n = snprintf(num, sizeof(num), "%.15g", d);
		if (strtod(num, NULL) != d)
			n = snprintf(num, sizeof(num), "%.17g", d);
	}
	put(o, num, (size_t)n);
}

/* Whether format is exactly one command operator ("%RESPONSE_CODE%"): then its value keeps its
 * type in typed JSON. */
static bool single_operator(const char *format, struct piece *pc)
{
	const char *rest = next_piece(format, pc);

	return pc->op != NULL && *rest == '\0';
}

/* The value of a FORMAT item. Returns false when it is null and omit_empty_values leaves it
 * out (nothing was written). */
static bool put_json_format(struct out *o, const struct sk_log_format *f, const char *format,
			    const struct sk_access_log_entry *e)
{
	struct piece pc;
	struct val v;

	if (single_operator(format, &pc)) {
		eval_operator(&v, pc.op, pc.op_len, pc.arg, pc.arg_len, pc.max, e);
		if (v.kind == V_NONE) {
			if (f->omit_empty_values)
				return false;
			if (f->typed)
				put(o, "null", 4);
			else
				put_json_string(o, "-", 1);
		} else if (v.kind == V_NUM && f->typed) {
			put_val(o, &v, false);
		} else if (v.kind == V_NUM) {
			char num[24];

			put_json_string(o, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, v.num));
		} else {
			put_json_string(o, v.s, v.n);
		}
		return true;
	}
	/* literal text, or text and operators: a string, absent values "-" (or "") */
	{
		char text[4096];
		struct out t = {text, sizeof(text), 0};

		render_text(&t, format, e, f->omit_empty_values);
		put_json_string(o, text, t.n);
	}
	return true;
}

static bool put_json(struct out *o, const struct sk_log_format *f, const struct sk_log_json *j,
		     const struct sk_access_log_entry *e)
{
	bool first = true;

	switch (j->kind) {
	case SK_LOG_JSON_FORMAT:
		return put_json_format(o, f, j->format, e);
	case SK_LOG_JSON_NUMBER:
		put_json_number(o, j->number);
		return true;
	case SK_LOG_JSON_OBJECT:
	case SK_LOG_JSON_LIST:
		put(o, j->kind == SK_LOG_JSON_OBJECT ? "{" : "[", 1);
		for (size_t i = 0; i < j->n; i++) {
			size_t mark = o->n;

			if (!first)
				put(o, ",", 1);
			if (j->kind == SK_LOG_JSON_OBJECT) {
				put_json_string(o, j->items[i].key, strlen(j->items[i].key));
				put(o, ":", 1);
			}
			if (put_json(o, f, &j->items[i], e))
				first = false;
			else
				o->n = mark; /* omitted: the key and comma go too */
		}
		put(o, j->kind == SK_LOG_JSON_OBJECT ? "}" : "]", 1);
		return true;
	}
	return true;
}

size_t sk_log_format_render(const struct sk_log_format *f, const struct sk_access_log_entry *e, char *buf,
			    size_t len)
{
	struct out o = {buf, len, 0};

	if (f->json != NULL && len >= 2) {
		o.len = len - 1; /* a line too long for buf is cut, but still ends with its newline */
		put_json(&o, f, f->json, e);
		buf[o.n++] = '\n';
	} else if (f->text != NULL) {
		render_text(&o, f->text, e, f->omit_empty_values);
	}
	buf[o.n] = '\0';
	return o.n;
}

struct sk_log_format *sk_log_format_text(const char *text, bool omit_empty_values)
{
	struct sk_log_format *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->text = strdup(text)) == NULL) {
		free(f);
		return NULL;
	}
	f->omit_empty_values = omit_empty_values;
	return f;
}

void sk_log_json_free(struct sk_log_json *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->n; i++)
		sk_log_json_free(&j->items[i]);
	free(j->items);
	free(j->key);
	free(j->format);
}

void sk_log_format_free(struct sk_log_format *f)
{
	if (f == NULL)
		return;
	free(f->text);
	sk_log_json_free(f->json);
	free(f->json);
	free(f);
}

static int file_for(const char *path)
{
	size_t i;
	int fd = -1;

	pthread_mutex_lock(&logs.lock);
	for (i = 0; i < logs.n; i++) {
		if (strcmp(logs.files[i].path, path) == 0) {
			fd = logs.files[i].fd;
			goto out;
		}
	}
	if (logs.n < MAX_FILES) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			sk_log_error(SK_LOG_FILE, "access log '%s': %s", path, strerror(errno));
		logs.files[logs.n].path = strdup(path);
		logs.files[logs.n].fd = fd;
		logs.n++;
	}
out:
	pthread_mutex_unlock(&logs.lock);
	return fd;
}

void sk_access_log_write(const char *path, const struct sk_log_format *format, const struct sk_access_log_entry *e)
{
	char line[16384];
	size_t n = sk_log_format_render(format, e, line, sizeof(line));
	int fd = file_for(path);

	if (fd >= 0 && write(fd, line, n) < 0) {
		/* a full disk must not take the proxy down */
	}
}

void sk_access_log_close_all(void)
{
	size_t i;

	pthread_mutex_lock(&logs.lock);
	for (i = 0; i < logs.n; i++) {
		if (logs.files[i].fd >= 0)
			close(logs.files[i].fd);
		free(logs.files[i].path);
	}
	logs.n = 0;
	pthread_mutex_unlock(&logs.lock);
}
