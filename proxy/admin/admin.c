/* admin: the listener and the HTTP/1.1 connections of the admin API.
 *
 * Requests are read into a bounded buffer until the end of the headers; a Content-Length
 * body (POST) is read and ignored; pipelined requests are answered in order. Connections
 * are closed after the response when the client asks (or speaks HTTP/1.0), on a bad
 * request, or after ADMIN_IDLE_SECONDS of silence. */
#include "proxy/admin/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "proxy/admin/request.h"
#include "proxy/log/log.h"
#include "proxy/server/server.h"

#define ADMIN_MAX_HEADER_BYTES (64 * 1024)
#define ADMIN_IDLE_SECONDS 300.0
#define ADMIN_MAX_CONNECTIONS 256
#define ADMIN_ACCEPT_PAUSE 0.1

struct admin_conn {
	struct sk_admin *admin;
	int fd;
	ev_io rio, wio;
	ev_timer idle;
	char in[ADMIN_MAX_HEADER_BYTES];
	size_t in_len;
	size_t body_left;            /* bytes of a request body still to discard */
	char *out;
	size_t out_len, out_off;
	bool close_after_write;
	struct admin_conn *next;
};

struct sk_admin {
	struct sk_server *server;
	int fd;
	ev_io accept_io;
	ev_timer accept_pause;       /* resumes accepting after descriptors ran out */
	char *unix_path;             /* unlinked on free */
	struct admin_conn *conns;
	unsigned n_conns;
};

static void conn_free(struct admin_conn *c)
{
	struct sk_admin *a = c->admin;
	struct admin_conn **pp;
	struct ev_loop *loop = a->server->loop;

	for (pp = &a->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	a->n_conns--;
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->idle);
	close(c->fd);
	free(c->out);
	free(c);
}

/* ---------------------------------------------------------------------------------- */
/* responses                                                                           */

void sk_admin_respond_owned(struct sk_admin_response *resp, int status, const char *content_type,
			    char *body)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->len = body ? strlen(body) : 0;
}

void sk_admin_respond(struct sk_admin_response *resp, int status, const char *content_type,
		      const char *fmt, ...)
{
	char *body = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	sk_admin_respond_owned(resp, status, content_type, body);
}

void sk_admin_respond_json(struct sk_admin_response *resp, int status, struct json_t *json)
{
	char *body = json ? json_dumps(json, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	size_t n;

	json_decref(json);
	if (body == NULL) {
		sk_admin_respond(resp, 500, SK_CT_TEXT, "out of memory\n");
		return;
	}
	n = strlen(body);
	body = realloc(body, n + 2);
	body[n] = '\n';
	body[n + 1] = '\0';
	sk_admin_respond_owned(resp, status, SK_CT_JSON, body);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

static void queue_response(struct admin_conn *c, const struct sk_admin_response *r, bool head)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\n"
			 "content-type: %s\r\n"
			 "cache-control: no-cache, max-age=0\r\n"
			 "x-content-type-options: nosniff\r\n"
			 "content-length: %zu\r\n"
			 "%s"
			 "\r\n",
			 r->status, reason(r->status), r->content_type ? r->content_type : SK_CT_TEXT,
			 r->len, c->close_after_write ? "connection: close\r\n" : "");
	size_t body = head ? 0 : r->len;
	char *grown = realloc(c->out, c->out_len + (size_t)n + body);

	if (grown == NULL) {
		c->close_after_write = true;
		return;
	}
	c->out = grown;
	memcpy(c->out + c->out_len, hdr, (size_t)n);
	if (body)
		memcpy(c->out + c->out_len + n, r->body, body);
	c->out_len += (size_t)n + body;
	ev_io_start(c->admin->server->loop, &c->wio);
}

static void reply_error(struct admin_conn *c, int status, const char *msg)
{
	struct sk_admin_response r = {0};

	c->close_after_write = true;
	sk_admin_respond(&r, status, SK_CT_TEXT, "%s\n", msg);
	queue_response(c, &r, false);
	free(r.body);
}

/* ---------------------------------------------------------------------------------- */
/* requests                                                                            */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes n bytes of s into a new string ('+' is kept: regexes use it). */
static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

bool sk_admin_query_param(const struct sk_admin_request *req, const char *key, char **value)
{
	const char *p = req->query;
	size_t klen = strlen(key);

	while (p && *p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *kend = eq ? eq : end;
		char *k = decode(p, (size_t)(kend - p));
		bool match = k && strlen(k) == klen && memcmp(k, key, klen) == 0;

		free(k);
		if (match) {
			if (value)
				*value = eq ? decode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
			return true;
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

static const struct sk_admin_endpoint *find_endpoint(const char *path)
{
	size_t i;

	for (i = 0; i < sk_admin_endpoint_count; i++)
		if (strcmp(sk_admin_endpoints[i].path, path) == 0)
			return &sk_admin_endpoints[i];
	return NULL;
}

static void dispatch(struct admin_conn *c, const char *method, const char *raw_target,
		     size_t target_len)
{
	char *target = strndup(raw_target, target_len);
	struct sk_admin_request req = {.method = method, .server = c->admin->server};
	struct sk_admin_response resp = {.status = 200, .content_type = SK_CT_TEXT};
	const struct sk_admin_endpoint *ep;
	char *q = target ? strchr(target, '?') : NULL, *path;
	bool head = strcmp(method, "HEAD") == 0;

	if (q)
		*q++ = '\0';
	req.query = q ? q : "";
	path = target ? decode(target, strlen(target)) : NULL;
	req.path = path ? path : "";
	ep = find_endpoint(req.path);
	if (target == NULL) {
		sk_admin_respond(&resp, 500, SK_CT_TEXT, "out of memory\n");
	} else if (ep == NULL) {
		/* Envoy answers an unknown path with a 404 and the help text. */
		struct sk_admin_response help = {0};

		find_endpoint("/help")->handler(&req, &help);
		sk_admin_respond(&resp, 404, SK_CT_TEXT, "invalid path. %s", help.body ? help.body : "");
		free(help.body);
	} else if (ep->mutates && strcmp(method, "POST") != 0) {
		sk_admin_respond(&resp, 405, SK_CT_TEXT, "This endpoint requires POST\n");
	} else if (!ep->mutates && strcmp(method, "GET") != 0 && !head &&
		   strcmp(method, "POST") != 0) {
		sk_admin_respond(&resp, 405, SK_CT_TEXT, "Method not allowed\n");
	} else {
		ep->handler(&req, &resp);
	}
	sk_log_debug(SK_LOG_ADMIN, "admin %s %s -> %d", method, req.path, resp.status);
	queue_response(c, &resp, head);
	free(resp.body);
	free(path);
	free(target);
}

/* Consumes whatever complete requests the buffer holds. */
static void process_input(struct admin_conn *c)
{
	for (;;) {
		struct sk_admin_head h;
		size_t take;
		int rc;

		if (c->body_left) {
			take = c->body_left < c->in_len ? c->body_left : c->in_len;
			memmove(c->in, c->in + take, c->in_len - take);
			c->in_len -= take;
			c->body_left -= take;
			if (c->body_left)
				return;
		}
		rc = sk_admin_parse_head(c->in, c->in_len, sizeof(c->in), &h);
		if (rc == SK_ADMIN_HEAD_PARTIAL)
			return;
		if (rc == SK_ADMIN_HEAD_ERROR) {
			sk_log_debug(SK_LOG_ADMIN, "admin connection fd=%d: %d %s", c->fd, h.status, h.error);
			reply_error(c, h.status, h.error);
			/* Stop reading: a read into a full buffer returns 0, which would be taken
			 * for EOF and drop the connection before the error is written. */
			ev_io_stop(c->admin->server->loop, &c->rio);
			return;
		}
		c->body_left = h.content_length;
		c->close_after_write = !h.keep_alive;
		dispatch(c, h.method, h.target, h.target_len);
		memmove(c->in, c->in + h.head_len, c->in_len - h.head_len);
		c->in_len -= h.head_len;
		if (c->close_after_write) {
			ev_io_stop(c->admin->server->loop, &c->rio);
			return;
		}
	}
}

/* Closes after the last response: half-close first and discard what the client has already
 * sent (a rejected request's unread bytes), so that close() does not answer with a RST that
 * can destroy the response before the client reads it. */
static void conn_close_after_response(struct admin_conn *c)
{
	char buf[4096];
	int i;

	shutdown(c->fd, SHUT_WR);
	for (i = 0; i < 64 && read(c->fd, buf, sizeof(buf)) > 0; i++)
		;
	conn_free(c);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_conn *c = w->data;
	ssize_t n;

	(void)revents;
	n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_free(c);
		return;
	}
	if (n < 0)
		return;
	c->in_len += (size_t)n;
	ev_timer_again(loop, &c->idle);
	process_input(c);
	if (c->close_after_write && c->out_len == c->out_off)
		conn_free(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_conn *c = w->data;

	(void)revents;
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_free(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	ev_io_stop(loop, w);
	if (c->close_after_write) {
		conn_close_after_response(c);
		return;
	}
	/* Requests that arrived behind this one wait no longer. */
	process_input(c);
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_free(w->data);
}

static void on_accept_pause(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_admin *a = t->data;

	(void)revents;
	ev_io_start(loop, &a->accept_io);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sk_admin *a = w->data;

	(void)revents;
	for (;;) {
		int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: the pending connection would wake us at once,
				 * forever; pause accepting for a moment instead of spinning */
				sk_log_warn(SK_LOG_ADMIN, "admin: accept: %s; not accepting for %.0f ms",
					    strerror(errno), ADMIN_ACCEPT_PAUSE * 1000);
				ev_io_stop(loop, &a->accept_io);
				ev_timer_start(loop, &a->accept_pause);
			}
			return;
		}
		if (a->n_conns >= ADMIN_MAX_CONNECTIONS || (c = calloc(1, sizeof(*c))) == NULL) {
			sk_log_warn(SK_LOG_ADMIN, "admin: connection refused (limit %d reached)",
				    ADMIN_MAX_CONNECTIONS);
			close(fd);
			continue;
		}
		c->admin = a;
		c->fd = fd;
		ev_io_init(&c->rio, on_read, fd, EV_READ);
		ev_io_init(&c->wio, on_write, fd, EV_WRITE);
		ev_init(&c->idle, on_idle);
		c->idle.repeat = ADMIN_IDLE_SECONDS;
		c->rio.data = c->wio.data = c->idle.data = c;
		ev_io_start(loop, &c->rio);
		ev_timer_again(loop, &c->idle);
		c->next = a->conns;
		a->conns = c;
		a->n_conns++;
	}
}

/* ---------------------------------------------------------------------------------- */
/* listener                                                                            */

static int bind_address(struct sk_admin *a, const Envoy__Config__Core__V3__Address *addr,
			char *err, size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t slen;
	char what[160];
	int one = 1, fd;

	if (addr->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", addr->pipe->path);
		slen = sizeof(*un);
		snprintf(what, sizeof(what), "%s", addr->pipe->path);
		unlink(addr->pipe->path);
		a->unix_path = strdup(addr->pipe->path);
	} else if (addr->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
		const Envoy__Config__Core__V3__SocketAddress *sa = addr->socket_address;
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		snprintf(what, sizeof(what), "%s:%u", sa->address, sa->port_value);
		if (inet_pton(AF_INET, sa->address, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)sa->port_value);
			slen = sizeof(*in4);
		} else if (inet_pton(AF_INET6, sa->address, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)sa->port_value);
			slen = sizeof(*in6);
		} else {
			snprintf(err, errlen, "admin.address: '%s' is not an IP address", sa->address);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "admin.address: unsupported address type");
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "admin.address: socket: %s", strerror(errno));
		return -errno;
	}
	if (ss.ss_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 128) < 0) {
		int e = errno;

		snprintf(err, errlen, "admin.address: cannot listen on %s: %s", what, strerror(e));
		close(fd);
		return -e;
	}
	a->fd = fd;
	sk_log_info(SK_LOG_MAIN, "admin address: %s", what);
	return 0;
}

struct sk_admin *sk_admin_new(struct sk_server *server, const Envoy__Config__Core__V3__Address *addr,
			      char *err, size_t errlen)
{
	struct sk_admin *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->server = server;
	a->fd = -1;
	if (bind_address(a, addr, err, errlen) < 0) {
		free(a->unix_path);
		free(a);
		return NULL;
	}
	ev_io_init(&a->accept_io, on_accept, a->fd, EV_READ);
	a->accept_io.data = a;
	ev_timer_init(&a->accept_pause, on_accept_pause, ADMIN_ACCEPT_PAUSE, 0.);
	a->accept_pause.data = a;
	ev_io_start(server->loop, &a->accept_io);
	return a;
}

void sk_admin_free(struct sk_admin *a)
{
	if (a == NULL)
		return;
	while (a->conns)
		conn_free(a->conns);
	ev_io_stop(a->server->loop, &a->accept_io);
	ev_timer_stop(a->server->loop, &a->accept_pause);
	close(a->fd);
	if (a->unix_path) {
		unlink(a->unix_path);
		free(a->unix_path);
	}
	free(a);
}
