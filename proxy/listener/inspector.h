/* inspector: the listener filters that peek at a connection's first bytes without consuming
 * them. tls_inspector reads a TLS ClientHello (possibly split across reads) for SNI and
 * ALPN; http_inspector recognizes HTTP/1.0, HTTP/1.1 and the h2c preface. Pure functions
 * over a byte buffer: the caller peeks (recv MSG_PEEK) and calls again with more bytes
 * while the answer is SK_INSPECT_NEED_MORE. */
#ifndef SKIFF_PROXY_LISTENER_INSPECTOR_H
#define SKIFF_PROXY_LISTENER_INSPECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sk_inspect_result {
	SK_INSPECT_DONE,        /* the answer is in *out */
	SK_INSPECT_NEED_MORE,   /* undecided: call again with more bytes */
	SK_INSPECT_NOT_FOUND,   /* not this protocol (tls: not a ClientHello; http: not HTTP) */
	SK_INSPECT_ERROR,       /* still undecided at the size limit: close the connection */
};

#define SK_TLS_MAX_CLIENT_HELLO (64 * 1024)  /* bytes peeked at most (Envoy's limit) */
#define SK_TLS_MAX_ALPN 16

struct sk_tls_hello {
	char sni[256];                          /* "" when absent; lowercased */
	size_t n_alpn;
	char alpn[SK_TLS_MAX_ALPN][256];       /* in the client's order */
	uint16_t legacy_version;               /* ClientHello.legacy_version */
	bool has_supported_versions_13;        /* offers TLS 1.3 */
};

/* Inspects buf[0..len): DONE when a complete ClientHello was parsed (transport "tls");
 * NOT_FOUND when the bytes are not a ClientHello Envoy's BoringSSL would accept, including
 * a malformed one (Envoy then goes on as plaintext: tls_not_found); NEED_MORE; ERROR when
 * SK_TLS_MAX_CLIENT_HELLO bytes hold no complete ClientHello (Envoy closes the connection).
 * *out is meaningful only on DONE. Uses about 25 KiB of stack (reassembly of the records). */
enum sk_inspect_result sk_tls_inspect(const uint8_t *buf, size_t len, struct sk_tls_hello *out);

#define SK_HTTP_INSPECT_MAX 8192   /* bytes peeked at most for the request line */

/* Inspects buf[0..len): DONE with *proto "http/1.0", "http/1.1" or "h2c" (every accepted
 * version other than HTTP/1.1, and HTTP/0.9, is "http/1.0", as in Envoy); NOT_FOUND when it
 * is not HTTP; NEED_MORE while the request line (or the 24-byte h2 preface) is incomplete;
 * ERROR when SK_HTTP_INSPECT_MAX bytes hold no complete line (Envoy closes the connection). */
enum sk_inspect_result sk_http_inspect(const uint8_t *buf, size_t len, const char **proto);

#endif
