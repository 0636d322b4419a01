/* tls: OpenSSL 3 contexts built from translated TLS configs (xds/translate/tls.h), and
 * non-blocking TLS connections over a socket. A context is refcounted and shared by workers
 * (each connection holds a reference); a connection belongs to its owner, one thread.
 *
 * Session resumption never crosses a change of certificate or validation settings (the
 * lesson of CVE-2022-21654): every config or secret version gets its own SSL_CTX, whose
 * session cache and random ticket keys are its own, and a server context's session id
 * context is a SHA-256 over everything that decides who may connect (CA, CRL, SAN matchers,
 * expiry and client-certificate policy, own chain). A ticket from an old context therefore
 * never resumes on a new one. skiff's client never resumes (every upstream handshake is full). */
#ifndef SKIFF_PROXY_NETWORK_TLS_H
#define SKIFF_PROXY_NETWORK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "xds/translate/tls.h"

struct sk_tls_ctx;
struct sk_tls_conn;

/* Builds a client (cfg->server false) or server context. The certificate comes from cfg
 * (tls_certificates) or, when cfg names an SDS secret, from cert_secret; the validation
 * context from cfg, validation_secret, or both merged (combined_validation_context). A secret
 * cfg does not name is ignored; one it names must be given (the caller warms until it is).
 * Files and environment variables are read here. Returns a context with one reference, or
 * NULL with err ("tls_certificate: the private key does not match the certificate chain"). */
struct sk_tls_ctx *sk_tls_ctx_new(const struct sk_tls_context_config *cfg, const struct sk_tls_secret *cert_secret,
				  const struct sk_tls_secret *validation_secret, char *err, size_t errlen);
/* Looks up the current version of an SDS secret (NULL while it has not arrived). */
typedef const struct sk_tls_secret *(*sk_tls_secret_lookup_fn)(void *arg, const char *name);

/* A version of a secret its owner keeps alive for a holder, on any thread, until release(h). */
struct sk_tls_secret_hold {
	const struct sk_tls_secret *secret;
	void (*release)(void *h);
	void *h;
};
/* Takes a hold on the current version of a secret: true, or false while it has not arrived. */
typedef bool (*sk_tls_secret_hold_fn)(void *arg, const char *name, struct sk_tls_secret_hold *out);

/* For a cfg that names SDS secrets (cert and/or validation): when `changed` is NULL or one of
 * the names cfg uses, and every secret cfg names is present (lookup), builds a new context
 * into *out (one reference) and returns 1; returns 0 with *out NULL when cfg names no SDS
 * secret, `changed` does not concern it, or a secret is still missing; -EINVAL with err
 * when the context does not build (the caller keeps its previous context). */
int sk_tls_ctx_from_sds(const struct sk_tls_context_config *cfg, const char *changed, sk_tls_secret_lookup_fn lookup,
			void *arg, struct sk_tls_ctx **out, char *err, size_t errlen);
struct sk_tls_ctx *sk_tls_ctx_ref(struct sk_tls_ctx *ctx);
void sk_tls_ctx_unref(struct sk_tls_ctx *ctx); /* NULL: no-op; thread-safe */
bool sk_tls_ctx_is_server(const struct sk_tls_ctx *ctx);

/* Days until the first of the context's certificates (own chain, trusted CAs) expires, as
 * Envoy's server.days_until_first_cert_expiring: 0 once expired, -1 with no certificate. */
long sk_tls_ctx_days_until_first_cert_expiring(const struct sk_tls_ctx *ctx, time_t now);

/* An SDS secret as it arrives, before it is used: its PEM parses, a certificate's key matches
 * its chain's leaf, a CA bundle holds at least one certificate. 0, or -EINVAL with err (the
 * NACK's error_detail). */
int sk_tls_secret_check(const struct sk_tls_secret *s, char *err, size_t errlen);

/* Non-blocking results of sk_tls_handshake (and of sk_tls_want after -EAGAIN). */
enum sk_tls_status {
	SK_TLS_DONE = 0,
	SK_TLS_WANT_READ = 1,      /* call again when fd is readable */
	SK_TLS_WANT_WRITE = 2,     /* call again when fd is writable */
	SK_TLS_FAILED = -1,        /* see sk_tls_failure / sk_tls_failure_reason */
};

/* Why a handshake (or a read after it: a TLS 1.3 client learns of its rejection there)
 * failed, as Envoy's ssl.* counters of the context's scope. */
enum sk_tls_failure {
	SK_TLS_FAIL_NONE,
	SK_TLS_FAIL_NO_CERT,       /* server: required client certificate missing (ssl.fail_verify_no_cert) */
	SK_TLS_FAIL_VERIFY_SAN,    /* peer chain fine, no SAN matcher accepted it (ssl.fail_verify_san) */
	SK_TLS_FAIL_VERIFY_ERROR,  /* peer chain did not verify: CA, expiry, CRL (ssl.fail_verify_error) */
	SK_TLS_FAIL_CONNECTION,    /* anything else: protocol, alert from the peer, I/O (ssl.connection_error) */
};

/* The counter name under the listener's or cluster's scope: "ssl.fail_verify_san", ...;
 * NULL for SK_TLS_FAIL_NONE. */
const char *sk_tls_failure_stat(enum sk_tls_failure f);

/* A TLS connection over the non-blocking socket fd (which stays the caller's: never closed
 * here). is_server must match the context. sni: the client's server name (NULL: cfg->sni, or
 * none); ignored on servers. Takes a reference on ctx. NULL on error (mismatch, memory). */
struct sk_tls_conn *sk_tls_conn_new(struct sk_tls_ctx *ctx, int fd, bool is_server, const char *sni);
/* NULL: no-op; sends nothing. Without a prior sk_tls_shutdown the session is not resumable
 * (OpenSSL drops it from the server's cache). */
void sk_tls_conn_free(struct sk_tls_conn *c);

/* Before the handshake: bytes already read from fd (a listener's inspectors consumed the
 * ClientHello) that the connection reads before the socket's. Copies them. 0 or -ENOMEM. */
int sk_tls_conn_set_prefix(struct sk_tls_conn *c, const void *p, size_t n);

/* Client only, before the handshake: offer these protocols instead of the context's
 * alpn_protocols (istio.alpn rewrites them per request HTTP version). 0 or -EINVAL. */
int sk_tls_conn_set_alpn(struct sk_tls_conn *c, const char *const *protos, size_t n);
/* The same from a comma-joined list ("istio-h2,istio"); "" or NULL: no change. */
int sk_tls_conn_set_alpn_list(struct sk_tls_conn *c, const char *list);

/* Advances the handshake. DONE once established (peer verified as configured). */
enum sk_tls_status sk_tls_handshake(struct sk_tls_conn *c);
enum sk_tls_failure sk_tls_failure(const struct sk_tls_conn *c);
const char *sk_tls_failure_reason(const struct sk_tls_conn *c); /* "" when none */

/* Like read(2)/write(2) on an established connection: > 0 bytes; read returns 0 on the
 * peer's close_notify; -EAGAIN when the socket must become ready first (sk_tls_want says
 * which way: a read may need to write and back); -ECONNRESET when the peer closed without
 * close_notify (Envoy closes such a connection as an error); -EPROTO on TLS errors (alerts:
 * sk_tls_failure / sk_tls_failure_reason). Writes are all-or-part (partial writes enabled):
 * the return says how much was taken; after -EAGAIN retry with the same bytes. */
ssize_t sk_tls_read(struct sk_tls_conn *c, void *buf, size_t len);
ssize_t sk_tls_write(struct sk_tls_conn *c, const void *buf, size_t len);
enum sk_tls_status sk_tls_want(const struct sk_tls_conn *c);

/* The socket I/O of a connection that may be TLS: through t when it is not NULL, else
 * read(2)/send(2) on fd (never SIGPIPE). > 0 bytes, 0 at the peer's end (FIN or
 * close_notify), or -errno; -EAGAIN when it must wait, and then *other says a TLS read waits
 * for writability (a write for readability) rather than for its own direction. */
ssize_t sk_tls_io_read(struct sk_tls_conn *t, int fd, void *buf, size_t len, bool *other);
ssize_t sk_tls_io_write(struct sk_tls_conn *t, int fd, const void *buf, size_t len, bool *other);
/* Bytes already decrypted and waiting: read them before waiting for the socket again. */
size_t sk_tls_pending(const struct sk_tls_conn *c);

/* Sends close_notify (does not wait for the peer's). 0, -EAGAIN (sk_tls_want), or -EPROTO. */
int sk_tls_shutdown(struct sk_tls_conn *c);

/* After the handshake. The negotiated ALPN protocol ("" when none; *len may be NULL). */
const char *sk_tls_alpn(const struct sk_tls_conn *c, size_t *len);
/* "TLSv1.2" / "TLSv1.3" (%DOWNSTREAM_TLS_VERSION%). */
const char *sk_tls_version(const struct sk_tls_conn *c);
/* The cipher's OpenSSL name ("TLS_AES_128_GCM_SHA256"), for ssl.ciphers.<name>. */
const char *sk_tls_cipher(const struct sk_tls_conn *c);
/* What the handshake negotiated, named as Envoy's ssl.* stats name them: version
 * ("TLSv1.3"), cipher, curve ("X25519", "P-256"; NULL when not one of those) and the peer's
 * signature algorithm ("ecdsa_secp256r1_sha256"; NULL when the peer did not sign). */
struct sk_tls_negotiated {
	const char *version, *cipher, *curve, *peer_sigalg;
};
void sk_tls_negotiated(const struct sk_tls_conn *c, struct sk_tls_negotiated *out);
bool sk_tls_session_reused(const struct sk_tls_conn *c);
/* Whether the peer presented a certificate (a server's successful handshake without one
 * counts ssl.no_certificate). */
bool sk_tls_peer_has_cert(const struct sk_tls_conn *c);
/* The peer's (local's) URI SANs joined with ',' as Envoy's %DOWNSTREAM_PEER_URI_SAN%: the
 * SPIFFE id. Writes at most len bytes NUL-terminated; returns the full length, or -ENOENT
 * when there is no certificate or no URI SAN. */
int sk_tls_peer_uri_san(const struct sk_tls_conn *c, char *buf, size_t len);
int sk_tls_local_uri_san(const struct sk_tls_conn *c, char *buf, size_t len);
/* The peer's DNS SANs, the same way. */
int sk_tls_peer_dns_san(const struct sk_tls_conn *c, char *buf, size_t len);
/* For x-forwarded-client-cert: the peer certificate's SHA-256 in lowercase hex (0, or -ENOENT
 * without one); its subject in RFC 2253 form (length, or -ENOENT); the PEM of its leaf, or of
 * its whole chain leaf first (malloc'd, NULL without a certificate). */
int sk_tls_peer_cert_digest(const struct sk_tls_conn *c, char hex[65]);
int sk_tls_peer_subject(const struct sk_tls_conn *c, char *buf, size_t len);
char *sk_tls_peer_pem(const struct sk_tls_conn *c, bool chain);

#endif
