/* log: see log.h. The pattern is interpreted per line; lines are assembled in a local
 * buffer and written with one write(2) so that threads never interleave inside a line. */
#include "proxy/log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATTERN "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v"

static const char *const component_names[SK_LOG_COMPONENTS] = {
	[SK_LOG_ADMIN] = "admin",           [SK_LOG_CONFIG] = "config",
	[SK_LOG_CONNECTION] = "connection", [SK_LOG_CONN_HANDLER] = "conn_handler",
	[SK_LOG_DNS] = "dns",               [SK_LOG_FILE] = "file",
	[SK_LOG_FILTER] = "filter",         [SK_LOG_GRPC] = "grpc",
	[SK_LOG_HC] = "hc",                 [SK_LOG_HTTP] = "http",
	[SK_LOG_HTTP2] = "http2",           [SK_LOG_INIT] = "init",
	[SK_LOG_MAIN] = "main",             [SK_LOG_MISC] = "misc",
	[SK_LOG_POOL] = "pool",             [SK_LOG_RBAC] = "rbac",
	[SK_LOG_ROUTER] = "router",         [SK_LOG_RUNTIME] = "runtime",
	[SK_LOG_SECRET] = "secret",         [SK_LOG_STATS] = "stats",
	[SK_LOG_TRACING] = "tracing",       [SK_LOG_UPSTREAM] = "upstream",
	[SK_LOG_WASM] = "wasm",
};

static const char *const level_names[] = {"trace", "debug", "info", "warning",
					  "error", "critical", "off"};
static const char level_letters[] = "TDIWECO";

static struct {
	unsigned char levels[SK_LOG_COMPONENTS];
	char pattern[512];
	int fd;
	bool initialized;
} logger;

static void init_once(void)
{
	int i;

	if (logger.initialized)
		return;
	for (i = 0; i < SK_LOG_COMPONENTS; i++)
		logger.levels[i] = SK_LOG_INFO;
	snprintf(logger.pattern, sizeof(logger.pattern), "%s", DEFAULT_PATTERN);
	logger.fd = STDERR_FILENO;
	logger.initialized = true;
}

int sk_log_set_format(const char *pattern)
{
	init_once();
	if (pattern == NULL)
		return -EINVAL;
	snprintf(logger.pattern, sizeof(logger.pattern), "%s", pattern);
	return 0;
}

int sk_log_set_path(const char *path)
{
	int fd;

	init_once();
	if (path == NULL) {
		logger.fd = STDERR_FILENO;
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (logger.fd != STDERR_FILENO)
		close(logger.fd);
	logger.fd = fd;
	return 0;
}

void sk_log_set_level_all(enum sk_log_level level)
{
	int i;

	init_once();
	for (i = 0; i < SK_LOG_COMPONENTS; i++)
		logger.levels[i] = (unsigned char)level;
}

void sk_log_set_level(enum sk_log_component c, enum sk_log_level level)
{
	init_once();
	logger.levels[c] = (unsigned char)level;
}

enum sk_log_level sk_log_get_level(enum sk_log_component c)
{
	init_once();
	return (enum sk_log_level)logger.levels[c];
}

int sk_log_level_parse(const char *name)
{
	int i;

	if (strcmp(name, "warn") == 0)
		return SK_LOG_WARN;
	if (strcmp(name, "err") == 0)
		return SK_LOG_ERROR;
	for (i = 0; i <= SK_LOG_OFF; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *sk_log_level_name(enum sk_log_level level)
{
	return level_names[level];
}

const char *sk_log_component_name(enum sk_log_component c)
{
	return component_names[c];
}

int sk_log_component_find(const char *name)
{
	int i;

	for (i = 0; i < SK_LOG_COMPONENTS; i++)
		if (strcmp(name, component_names[i]) == 0)
			return i;
	return -1;
}

int sk_log_set_component_levels(const char *spec, char *err, size_t errlen)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		int c, l;

		if (colon == NULL) {
			snprintf(err, errlen, "component log level '%s' is not <component>:<level>", tok);
			rc = -EINVAL;
			break;
		}
		*colon = '\0';
		c = sk_log_component_find(tok);
		l = sk_log_level_parse(colon + 1);
		if (c < 0 || l < 0) {
			snprintf(err, errlen, "invalid component log level '%s:%s' (%s)", tok,
				 colon + 1, c < 0 ? "unknown component" : "unknown level");
			rc = -EINVAL;
			break;
		}
		sk_log_set_level((enum sk_log_component)c, (enum sk_log_level)l);
	}
	free(copy);
	return rc;
}

bool sk_log_enabled(enum sk_log_component c, enum sk_log_level level)
{
	init_once();
	return level != SK_LOG_OFF && level >= logger.levels[c];
}

struct out {
	char buf[8192];
	size_t n;
};

static void put(struct out *o, const char *s, size_t len)
{
	if (len > sizeof(o->buf) - 2 - o->n)
		len = sizeof(o->buf) - 2 - o->n;
	memcpy(o->buf + o->n, s, len);
	o->n += len;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->n, sizeof(o->buf) - 2 - o->n, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->n += (size_t)n < sizeof(o->buf) - 2 - o->n ? (size_t)n : sizeof(o->buf) - 2 - o->n;
}

void sk_log_write(enum sk_log_component c, enum sk_log_level level, const char *file, int line,
		  const char *fmt, ...)
{
	struct out o = {.n = 0};
	struct timeval tv;
	struct tm tm;
	const char *p, *base = strrchr(file, '/');
	char msg[4096];
	va_list ap;

	while (strncmp(file, "../", 3) == 0)
		file += 3; /* meson builds out of tree: show paths from the source root */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	for (p = logger.pattern; *p; p++) {
		if (*p != '%' || p[1] == '\0') {
			put(&o, p, 1);
			continue;
		}
		switch (*++p) {
		case 'Y': putf(&o, "%04d", tm.tm_year + 1900); break;
		case 'm': putf(&o, "%02d", tm.tm_mon + 1); break;
		case 'd': putf(&o, "%02d", tm.tm_mday); break;
		case 'H': putf(&o, "%02d", tm.tm_hour); break;
		case 'M': putf(&o, "%02d", tm.tm_min); break;
		case 'S': putf(&o, "%02d", tm.tm_sec); break;
		case 'T': putf(&o, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec); break;
		case 'e': putf(&o, "%03ld", (long)tv.tv_usec / 1000); break;
		case 'f': putf(&o, "%06ld", (long)tv.tv_usec); break;
		case 'F': putf(&o, "%09ld", (long)tv.tv_usec * 1000); break;
		case 'z': put(&o, "+00:00", 6); break;
		case 't': putf(&o, "%ld", (long)syscall(SYS_gettid)); break;
		case 'P': putf(&o, "%ld", (long)getpid()); break;
		case 'l': putf(&o, "%s", level_names[level]); break;
		case 'L': put(&o, &level_letters[level], 1); break;
		case 'n': putf(&o, "%s", component_names[c]); break;
		case 'g': putf(&o, "%s", file); break;
		case 's': putf(&o, "%s", base ? base + 1 : file); break;
		case '@': putf(&o, "%s:%d", base ? base + 1 : file, line); break;
		case '#': putf(&o, "%d", line); break;
		case 'v': putf(&o, "%s", msg); break;
		case '_': break; /* Envoy's "escape newlines" flag: messages are one line already */
		case 'j': { /* JSON-escaped message */
			const char *m;

			for (m = msg; *m; m++) {
				if (*m == '"' || *m == '\\')
					putf(&o, "\\%c", *m);
				else if ((unsigned char)*m < 0x20)
					putf(&o, "\\u%04x", *m);
				else
					put(&o, m, 1);
			}
			break;
		}
		case '%': put(&o, "%", 1); break;
		default: put(&o, p - 1, 2); break;
		}
	}
	o.buf[o.n++] = '\n';
	if (write(logger.fd, o.buf, o.n) < 0) {
		/* nowhere left to report it */
	}
}
