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

static void puts_or_dash(struct out *o, const char *s)
{
	if (s == NULL || *s == '\0')
		put(o, "-", 1);
	else
		put(o, s, strlen(s));
}

static void put_addr(struct out *o, const struct sk_addr *a, bool with_port)
{
	char text[SK_ADDR_TEXT_MAX];

	if (a == NULL || a->len == 0) {
		put(o, "-", 1);
		return;
	}
	if (with_port || a->ss.ss_family == AF_UNIX) {
		sk_addr_format(a, text, sizeof(text));
	} else {
		const void *src = a->ss.ss_family == AF_INET
					  ? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
					  : (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;

		if (inet_ntop(a->ss.ss_family, src, text, sizeof(text)) == NULL)
			snprintf(text, sizeof(text), "-");
	}
	put(o, text, strlen(text));
}

static void put_u64(struct out *o, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	put(o, num, (size_t)n);
}

/* START_TIME's default format: 2024-01-02T03:04:05.678Z */
static void put_time(struct out *o, double t)
{
	time_t secs = (time_t)t;
	struct tm tm;
	char text[64];
	int n;

	gmtime_r(&secs, &tm);
	n = snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (int)((t - (double)secs) * 1000) % 1000);
	put(o, text, (size_t)n);
}

/* %REQ(X?Y):N% / %RESP(X?Y):N%: the first present of X and Y, at most N bytes. */
static void put_header(struct out *o, bool resp, const char *arg, size_t alen, size_t max,
		       const struct sk_access_log_entry *e)
{
	const char *q = memchr(arg, '?', alen);
	size_t n1 = q ? (size_t)(q - arg) : alen;
	const char *v = NULL;
	size_t vlen = 0;

	if (e->header != NULL) {
		char name[256];

		for (int pass = 0; pass < 2 && v == NULL; pass++) {
			const char *a = pass == 0 ? arg : (q ? q + 1 : NULL);
			size_t n = pass == 0 ? n1 : (q ? alen - n1 - 1 : 0);

			if (a == NULL || n == 0 || n >= sizeof(name))
				continue;
			for (size_t i = 0; i < n; i++)
				name[i] = (char)((a[i] >= 'A' && a[i] <= 'Z') ? a[i] + 32 : a[i]);
			name[n] = '\0';
			v = e->header(e->header_ctx, resp, name, n, &vlen);
		}
	}
	if (v == NULL) {
		put(o, "-", 1);
		return;
	}
	put(o, v, max && vlen > max ? max : vlen);
}

static void put_operator(struct out *o, const char *op, size_t n, const char *arg, size_t alen, size_t max,
			 const struct sk_access_log_entry *e)
{
#define IS(name) (n == strlen(name) && memcmp(op, name, n) == 0)
	if (IS("START_TIME"))
		put_time(o, e->start);
	else if (IS("DURATION"))
		put_u64(o, e->duration_ms > 0 ? (uint64_t)e->duration_ms : 0);
	else if (IS("DOWNSTREAM_REMOTE_ADDRESS") || IS("DOWNSTREAM_DIRECT_REMOTE_ADDRESS"))
		put_addr(o, e->downstream_remote, true);
	else if (IS("DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT") || IS("DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT"))
		put_addr(o, e->downstream_remote, false);
	else if (IS("DOWNSTREAM_LOCAL_ADDRESS"))
		put_addr(o, e->downstream_local, true);
	else if (IS("DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT"))
		put_addr(o, e->downstream_local, false);
	else if (IS("UPSTREAM_HOST"))
		put_addr(o, e->upstream_host, true);
	else if (IS("UPSTREAM_LOCAL_ADDRESS"))
		put_addr(o, e->upstream_local, true);
	else if (IS("UPSTREAM_CLUSTER"))
		puts_or_dash(o, e->upstream_cluster);
	else if (IS("RESPONSE_FLAGS"))
		puts_or_dash(o, e->response_flags);
	else if (IS("REQUESTED_SERVER_NAME"))
		puts_or_dash(o, e->server_name);
	else if (IS("BYTES_RECEIVED"))
		put_u64(o, e->bytes_received);
	else if (IS("BYTES_SENT"))
		put_u64(o, e->bytes_sent);
	else if (IS("CONNECTION_ID"))
		put_u64(o, e->connection_id);
	else if (IS("RESPONSE_CODE"))
		put_u64(o, e->response_code);
	else if (IS("PROTOCOL"))
		puts_or_dash(o, e->protocol);
	else if (IS("ROUTE_NAME"))
		puts_or_dash(o, e->route_name);
	else if (IS("REQ") && arg)
		put_header(o, false, arg, alen, max, e);
	else if (IS("RESP") && arg)
		put_header(o, true, arg, alen, max, e);
	else
		put(o, "-", 1); /* HTTP fields and the rest: Envoy prints "-" when unset */
#undef IS
}

size_t sk_access_log_format(const char *format, const struct sk_access_log_entry *e, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	const char *p = format;

	while (*p) {
		const char *end;

		if (*p != '%') {
			put(&o, p++, 1);
			continue;
		}
		if (p[1] == '%') {
			put(&o, "%", 1);
			p += 2;
			continue;
		}
		end = strchr(p + 1, '%');
		if (end == NULL) {
			put(&o, p, strlen(p));
			break;
		}
		{
			/* "%REQ(X)%", "%REQ(X):10%" and "%START_TIME(fmt)%": the name is what precedes
			 * '('; the argument runs to the matching ')' */
			const char *paren = memchr(p + 1, '(', (size_t)(end - p - 1));
			size_t n = (size_t)((paren ? paren : end) - (p + 1));
			const char *close = paren ? memchr(paren, ')', (size_t)(end - paren)) : NULL;
			size_t max = 0;

			if (close && close[1] == ':')
				max = strtoul(close + 2, NULL, 10);
			put_operator(&o, p + 1, n, close ? paren + 1 : NULL, close ? (size_t)(close - paren - 1) : 0,
				     max, e);
		}
		p = end + 1;
	}
	buf[o.n] = '\0';
	return o.n;
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

void sk_access_log_write(const char *path, const char *format, const struct sk_access_log_entry *e)
{
	char line[4096];
	size_t n = sk_access_log_format(format, e, line, sizeof(line));
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
