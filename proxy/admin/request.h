/* request: the parser of one admin HTTP/1.x request head (request line and headers), kept
 * apart from the sockets so that it can be tested and fuzzed alone. It reads the bytes it
 * is given and allocates nothing; results point into the caller's buffer. */
#ifndef SKIFF_PROXY_ADMIN_REQUEST_H
#define SKIFF_PROXY_ADMIN_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SK_ADMIN_MAX_BODY_BYTES (1024 * 1024)

struct sk_admin_head {
	char method[16];
	const char *target;       /* points into the buffer, not NUL-terminated */
	size_t target_len;
	bool http10;
	bool keep_alive;          /* after Connection: close/keep-alive and the version */
	uint64_t content_length;
	size_t head_len;          /* bytes of the head, CRLFCRLF included */
	int status;               /* on error: 400, 413 or 431 */
	const char *error;        /* on error: what was wrong, for the response body */
};

enum {
	SK_ADMIN_HEAD_DONE = 0,
	SK_ADMIN_HEAD_PARTIAL = 1,  /* no end of head yet within max_head bytes */
	SK_ADMIN_HEAD_ERROR = -1,   /* h->status and h->error say why */
};

/* Parses the head at the start of buf[0..len). max_head bounds the head's size: a buffer
 * that holds max_head bytes without a complete head is a 431. */
int sk_admin_parse_head(const char *buf, size_t len, size_t max_head, struct sk_admin_head *h);

#endif
