/* access_log_test: the access log formatter: text formats with Envoy's command operators, and
 * JSON formats (json_format) as Envoy writes them: one object per line, keys in the configured
 * order, a value that is one operator typed (numbers, strings, null when it has no value),
 * mixed text and operators as strings, omit_empty_values, escaping. */
#include <arpa/inet.h>
#include <stdlib.h>

#include "proxy/network/access_log.h"
#include "test.h"

static const char *hdr(void *ctx, bool resp, const char *name, size_t n, size_t *vlen)
{
	(void)ctx;
	(void)n;
	if (!resp && strcmp(name, ":method") == 0)
		return *vlen = 3, "GET";
	if (!resp && strcmp(name, ":path") == 0)
		return *vlen = 6, "/a?b=c";
	if (!resp && strcmp(name, "user-agent") == 0)
		return *vlen = 12, "curl/\"8\"\\x\n\t";
	if (!resp && strcmp(name, "x-bin") == 0)
		return *vlen = 4, "a\xff\x01" "b";
	if (!resp && strcmp(name, "x-utf8") == 0)
		return *vlen = 8, "caf\xc3\xa9 \xe2\x82\xac"; /* "café €" cut inside the euro sign */
	if (resp && strcmp(name, "content-type") == 0)
		return *vlen = 10, "text/plain";
	return NULL;
}

static struct sk_addr peer, up;

static void entry(struct sk_access_log_entry *e)
{
	struct sockaddr_in *a = (struct sockaddr_in *)&peer.ss, *b = (struct sockaddr_in *)&up.ss;

	memset(e, 0, sizeof(*e));
	a->sin_family = AF_INET;
	a->sin_port = htons(40000);
	inet_pton(AF_INET, "10.1.2.3", &a->sin_addr);
	peer.len = sizeof(*a);
	b->sin_family = AF_INET;
	b->sin_port = htons(8080);
	inet_pton(AF_INET, "127.0.0.1", &b->sin_addr);
	up.len = sizeof(*b);
	e->start = 1700000000.25;
	e->duration_ms = 12.7;
	e->downstream_remote = &peer;
	e->upstream_host = &up;
	e->upstream_cluster = "backend";
	e->response_flags = "-";
	e->bytes_received = 5;
	e->bytes_sent = 1234;
	e->connection_id = 77;
	e->protocol = "HTTP/1.1";
	e->response_code = 200;
	e->header = hdr;
}

/* A JSON format built by hand as translation builds it. */
static struct sk_log_json item(const char *key, const char *format)
{
	struct sk_log_json j = {.kind = SK_LOG_JSON_FORMAT};

	j.key = key ? strdup(key) : NULL;
	j.format = strdup(format);
	return j;
}

static struct sk_log_format *json_format(bool typed, bool omit, size_t n, const struct sk_log_json *items)
{
	struct sk_log_format *f = calloc(1, sizeof(*f));

	f->json = calloc(1, sizeof(*f->json));
	f->json->kind = SK_LOG_JSON_OBJECT;
	f->json->items = calloc(n, sizeof(*items));
	memcpy(f->json->items, items, n * sizeof(*items));
	f->json->n = n;
	f->typed = typed;
	f->omit_empty_values = omit;
	return f;
}

static void test_text(void)
{
	struct sk_access_log_entry e;
	struct sk_log_format *f;
	char buf[512];

	entry(&e);
	sk_access_log_format("[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
			     "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
			     "%UPSTREAM_HOST% %ROUTE_NAME% %REQ(X-NONE)% 100%%\n", &e, buf, sizeof(buf));
	CHECK_STR(buf, "[2023-11-14T22:13:20.250Z] \"GET /a?b=c HTTP/1.1\" 200 - 5 1234 12 127.0.0.1:8080 - - 100%\n");
	sk_access_log_format("%REQ(:PATH):2% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UNKNOWN_OP% %bad", &e, buf,
			     sizeof(buf));
	CHECK_STR(buf, "/a 10.1.2.3 - %bad");

	/* TLS: the peers' SPIFFE ids and versions; "-" on a connection without TLS */
	sk_access_log_format("%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION% %UPSTREAM_PEER_URI_SAN% "
			     "%UPSTREAM_TLS_VERSION%", &e, buf, sizeof(buf));
	CHECK_STR(buf, "- - - -");
	e.downstream_peer_uri_san = "spiffe://cluster.local/ns/default/sa/client";
	e.downstream_tls_version = "TLSv1.3";
	e.upstream_peer_uri_san = "spiffe://cluster.local/ns/default/sa/server";
	e.upstream_tls_version = "TLSv1.2";
	sk_access_log_format("%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION% %UPSTREAM_PEER_URI_SAN% "
			     "%UPSTREAM_TLS_VERSION%", &e, buf, sizeof(buf));
	CHECK_STR(buf, "spiffe://cluster.local/ns/default/sa/client TLSv1.3 spiffe://cluster.local/ns/default/sa/server "
		       "TLSv1.2");
	entry(&e);

	/* omit_empty_values: an operator without a value prints nothing */
	f = sk_log_format_text("a=%ROUTE_NAME% b=%REQ(X-NONE)% c=%RESPONSE_CODE%", true);
	sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "a= b= c=200");
	sk_log_format_free(f);
	f = sk_log_format_text("a=%ROUTE_NAME%", false);
	sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "a=-");
	sk_log_format_free(f);
	sk_log_format_free(NULL);

	/* bounded: the output is cut at the buffer, always terminated */
	CHECK(sk_access_log_format("%BYTES_SENT%%BYTES_SENT%", &e, buf, 6) == 5);
	CHECK_STR(buf, "12341");
}

static void test_json_typed(void)
{
	struct sk_access_log_entry e;
	struct sk_log_json items[] = {
		item("code", "%RESPONSE_CODE%"),
		item("method", "%REQ(:METHOD)%"),
		item("rx", "%BYTES_RECEIVED%"),
		item("tx", "%BYTES_SENT%"),
		item("ms", "%DURATION%"),
		item("route", "%ROUTE_NAME%"),
		item("missing", "%REQ(X-NONE)%"),
		item("flags", "%RESPONSE_FLAGS%"),
		item("line", "%REQ(:METHOD)% %REQ(:PATH)% %ROUTE_NAME%"),
		item("lit", "plain text"),
		item("up", "%UPSTREAM_HOST%"),
		item("pct", "100%%"),
	};
	struct sk_log_format *f = json_format(true, false, sizeof(items) / sizeof(items[0]), items);
	char buf[1024];
	size_t n;

	entry(&e);
	n = sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "{\"code\":200,\"method\":\"GET\",\"rx\":5,\"tx\":1234,\"ms\":12,\"route\":null,"
		       "\"missing\":null,\"flags\":\"-\",\"line\":\"GET /a?b=c -\",\"lit\":\"plain text\","
		       "\"up\":\"127.0.0.1:8080\",\"pct\":\"100%\"}\n");
	CHECK(n == strlen(buf));
	/* a line longer than the buffer is cut but keeps its newline (lines never run together) */
	n = sk_log_format_render(f, &e, buf, 20);
	CHECK(n == 19 && buf[18] == '\n' && strncmp(buf, "{\"code\":200,\"metho", 18) == 0);

	/* omit_empty_values: members whose value is null are left out, commas stay right */
	f->omit_empty_values = true;
	sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "{\"code\":200,\"method\":\"GET\",\"rx\":5,\"tx\":1234,\"ms\":12,\"flags\":\"-\","
		       "\"line\":\"GET /a?b=c \",\"lit\":\"plain text\",\"up\":\"127.0.0.1:8080\",\"pct\":\"100%\"}\n");
	sk_log_format_free(f);

	/* the first member omitted: no leading comma */
	{
		struct sk_log_json two[] = {item("a", "%ROUTE_NAME%"), item("b", "%RESPONSE_CODE%")};

		f = json_format(true, true, 2, two);
		sk_log_format_render(f, &e, buf, sizeof(buf));
		CHECK_STR(buf, "{\"b\":200}\n");
		sk_log_format_free(f);
	}
}

static void test_json_untyped(void)
{
	struct sk_access_log_entry e;
	struct sk_log_json items[] = {
		item("code", "%RESPONSE_CODE%"),
		item("route", "%ROUTE_NAME%"),
		item("method", "%REQ(:METHOD)%"),
	};
	struct sk_log_format *f = json_format(false, false, 3, items);
	char buf[512];

	/* the deprecated json_format: every value a string, "-" when empty */
	entry(&e);
	sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "{\"code\":\"200\",\"route\":\"-\",\"method\":\"GET\"}\n");
	sk_log_format_free(f);
}

static void test_json_nested(void)
{
	struct sk_access_log_entry e;
	struct sk_log_json inner[] = {item("status", "%RESPONSE_CODE%"), item("type", "%RESP(CONTENT-TYPE)%"),
				      item("gone", "%RESP(X-NONE)%")};
	struct sk_log_json list[] = {item(NULL, "%PROTOCOL%"), item(NULL, "%ROUTE_NAME%"),
				     {.kind = SK_LOG_JSON_NUMBER, .number = 1.5}};
	struct sk_log_json top[4];
	struct sk_log_format *f;
	char buf[512];

	entry(&e);
	top[0] = item("id", "%CONNECTION_ID%");
	top[1] = (struct sk_log_json){.kind = SK_LOG_JSON_OBJECT, .key = strdup("response"), .n = 3,
				      .items = malloc(sizeof(inner))};
	memcpy(top[1].items, inner, sizeof(inner));
	top[2] = (struct sk_log_json){.kind = SK_LOG_JSON_LIST, .key = strdup("list"), .n = 3,
				      .items = malloc(sizeof(list))};
	memcpy(top[2].items, list, sizeof(list));
	top[3] = (struct sk_log_json){.kind = SK_LOG_JSON_NUMBER, .key = strdup("version"), .number = 3};
	f = json_format(true, false, 4, top);
	sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "{\"id\":77,\"response\":{\"status\":200,\"type\":\"text/plain\",\"gone\":null},"
		       "\"list\":[\"HTTP/1.1\",null,1.5],\"version\":3}\n");
	f->omit_empty_values = true;
	sk_log_format_render(f, &e, buf, sizeof(buf));
	CHECK_STR(buf, "{\"id\":77,\"response\":{\"status\":200,\"type\":\"text/plain\"},"
		       "\"list\":[\"HTTP/1.1\",1.5],\"version\":3}\n");
	sk_log_format_free(f);
}

static void test_json_escaping(void)
{
	struct sk_access_log_entry e;
	struct sk_log_json items[] = {item("ua", "%REQ(USER-AGENT)%"), item("bin", "%REQ(X-BIN)%"),
				      item("utf8", "%REQ(X-UTF8)%"), item("k\"ey", "quote \" and \\")};
	struct sk_log_format *f = json_format(true, false, 4, items);
	char buf[512];

	entry(&e);
	sk_log_format_render(f, &e, buf, sizeof(buf));
	/* quotes, backslashes and control characters escaped; bytes that are not UTF-8 as \u00XX;
	 * valid UTF-8 kept; the truncated euro sign's two bytes escaped */
	CHECK_STR(buf, "{\"ua\":\"curl/\\\"8\\\"\\\\x\\n\\t\",\"bin\":\"a\\u00ff\\u0001b\","
		       "\"utf8\":\"caf\xc3\xa9 \\u00e2\\u0082\",\"k\\\"ey\":\"quote \\\" and \\\\\"}\n");
	sk_log_format_free(f);
}

int main(void)
{
	test_text();
	test_json_typed();
	test_json_untyped();
	test_json_nested();
	test_json_escaping();
	return TEST_SUMMARY();
}
