/* request_test: the admin request-head parser, including the inputs it must refuse. */
#include "test.h"
#include "proxy/admin/request.h"

static struct sk_admin_head h;

static int parse(const char *s)
{
	return sk_admin_parse_head(s, strlen(s), 65536, &h);
}

static void refuses(const char *s, int status, const char *why)
{
	CHECK(parse(s) == SK_ADMIN_HEAD_ERROR);
	CHECK(h.status == status);
	CHECK_CONTAINS(h.error, why);
}

int main(void)
{
	char big[70000];

	CHECK(parse("GET /stats?usedonly&filter=^(server\\.state|x) HTTP/1.1\r\nHost: a\r\n\r\nGET") ==
	      SK_ADMIN_HEAD_DONE);
	CHECK_STR(h.method, "GET");
	CHECK(h.target_len == strlen("/stats?usedonly&filter=^(server\\.state|x)"));
	CHECK(strncmp(h.target, "/stats?usedonly", 15) == 0);
	CHECK(h.keep_alive && !h.http10 && h.content_length == 0);
	CHECK(h.head_len == strlen("GET /stats?usedonly&filter=^(server\\.state|x) HTTP/1.1\r\nHost: a\r\n\r\n"));

	CHECK(parse("POST /logging?level=debug HTTP/1.0\r\nContent-Length: 5\r\n\r\n") == SK_ADMIN_HEAD_DONE);
	CHECK(h.http10 && !h.keep_alive && h.content_length == 5);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == SK_ADMIN_HEAD_DONE && h.keep_alive);
	CHECK(parse("GET / HTTP/1.1\r\nconnection: Close\r\n\r\n") == SK_ADMIN_HEAD_DONE && !h.keep_alive);
	CHECK(parse("GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n") == SK_ADMIN_HEAD_DONE);

	CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\n") == SK_ADMIN_HEAD_PARTIAL);
	CHECK(parse("") == SK_ADMIN_HEAD_PARTIAL);

	refuses("GET / HTTP/2.0\r\n\r\n", 400, "version");
	refuses("GET /\r\n\r\n", 400, "request target");
	refuses("get / HTTP/1.1\r\n\r\n", 400, "method");
	refuses("GET stats HTTP/1.1\r\n\r\n", 400, "request target");
	refuses("GET /a\x01 HTTP/1.1\r\n\r\n", 400, "request target");
	refuses("GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", 400, "header line");
	refuses("GET / HTTP/1.1\r\n: empty\r\n\r\n", 400, "header line");
	refuses("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "header name");
	refuses("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "folding");
	refuses("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", 400, "header value");
	refuses("GET / HTTP/1.1\r\nA: b\nc\r\n\r\n", 400, "header value");
	refuses("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "content-length");
	refuses("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "content-length");
	refuses("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "content-length");
	refuses("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, "conflicting");
	refuses("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "chunked");
	refuses("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413, "too large");

	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	CHECK(sk_admin_parse_head(big, sizeof(big), 65536, &h) == SK_ADMIN_HEAD_ERROR && h.status == 431);
	CHECK(sk_admin_parse_head(big, 1000, 65536, &h) == SK_ADMIN_HEAD_PARTIAL);
	return TEST_SUMMARY();
}
