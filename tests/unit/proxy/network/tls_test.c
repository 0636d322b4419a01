/* tls_test: OpenSSL contexts from Istio-shaped configs and handshakes between a client and a
 * server over a non-blocking socketpair: mutual TLS with SPIFFE identities and ALPN, then
 * each refusal with the reason Envoy would count (fail_verify_san, fail_verify_no_cert,
 * fail_verify_error for a foreign CA and an expired certificate), a key that does not match
 * its chain, TLS below 1.2, session resumption across configs, data, close_notify and
 * resets. Certificates are issued at test time by tests/tls/ca.sh into a temporary
 * directory (no key is ever committed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/network/tls.h"
#include "test.h"
#include "xds/pbjson.h"

static char dir[256], err[1024];

/* ---- fixtures --------------------------------------------------------------------------- */

static bool make_certs(void)
{
	const char *src = getenv("SKIFF_SRC") ? getenv("SKIFF_SRC") : SKIFF_SOURCE_DIR;
	char cmd[4096];

	snprintf(dir, sizeof(dir), "/tmp/skiff-tls-test.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return false;
	/* two CAs first, then the leaves in parallel */
	snprintf(cmd, sizeof(cmd),
		 "set -e; ca='%s/tests/tls/ca.sh'; d='%s'; bash \"$ca\" $d ca; bash \"$ca\" $d ca other; "
		 "bash \"$ca\" $d workload server default reviews --days 30 --dns reviews.default.svc & "
		 "bash \"$ca\" $d workload client default productpage & "
		 "bash \"$ca\" $d workload attacker default attacker & "
		 "bash \"$ca\" $d workload expired default productpage --expired & "
		 "bash \"$ca\" $d workload foreign default productpage --ca other & "
		 "wait; for f in server client attacker expired foreign; do test -s $d/$f.crt; done; "
		 "bash \"$ca\" $d crl revoked client; bash \"$ca\" $d crl empty",
		 src, dir);
	return system(cmd) == 0;
}

static void remove_certs(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static char *slurp(const char *name)
{
	char path[512];
	FILE *f;
	char *buf = calloc(1, 65536);
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL || buf == NULL) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static struct sk_tls_secret *secret_json(json_t *j)
{
	ProtobufCMessage *m = sk_pbjson_decode(&envoy__extensions__transport_sockets__tls__v3__secret__descriptor, j,
					       NULL, err, sizeof(err));
	struct sk_tls_secret *s = NULL;

	json_decref(j);
	if (m != NULL) {
		s = sk_tls_secret_new((void *)m, err, sizeof(err));
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (s == NULL)
		fprintf(stderr, "secret: %s\n", err);
	return s;
}

/* SDS `default`: chain and key inline, as pilot-agent sends them. */
static struct sk_tls_secret *cert_secret(const char *chain_file, const char *key_file)
{
	char *chain = slurp(chain_file), *key = slurp(key_file);
	struct sk_tls_secret *s = NULL;

	if (chain && key)
		s = secret_json(json_pack("{s:s,s:{s:{s:s},s:{s:s}}}", "name", "default", "tls_certificate",
					  "certificate_chain", "inline_string", chain, "private_key", "inline_string",
					  key));
	free(chain);
	free(key);
	return s;
}

/* SDS `ROOTCA`. */
static struct sk_tls_secret *root_secret(const char *ca_file)
{
	char *ca = slurp(ca_file);
	struct sk_tls_secret *s = NULL;

	if (ca)
		s = secret_json(json_pack("{s:s,s:{s:{s:s}}}", "name", "ROOTCA", "validation_context", "trusted_ca",
					  "inline_string", ca));
	free(ca);
	return s;
}

static struct sk_tls_context_config *context(bool upstream, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static struct sk_tls_context_config *context(bool upstream, const char *fmt, ...)
{
	char body[4096], text[8192];
	va_list ap;
	json_t *j;
	ProtobufCMessage *m;
	struct sk_tls_context_config *cfg = NULL;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text),
		 "{'name':'envoy.transport_sockets.tls','typed_config':{'@type':'type.googleapis.com/"
		 "envoy.extensions.transport_sockets.tls.v3.%s'%s%s}}",
		 upstream ? "UpstreamTlsContext" : "DownstreamTlsContext", body[0] ? "," : "", body);
	for (char *p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(text, 0, NULL);
	m = j ? sk_pbjson_decode(&envoy__config__core__v3__transport_socket__descriptor, j, NULL, err, sizeof(err))
	      : NULL;
	json_decref(j);
	if (m != NULL) {
		if (sk_tls_transport_socket_translate((void *)m, upstream, &cfg, err, sizeof(err)) < 0)
			cfg = NULL;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (cfg == NULL)
		fprintf(stderr, "context: %s\n", j ? err : "bad JSON");
	return cfg;
}

#define SDS(name) "{'name':'" name "','sds_config':{'api_config_source':{'api_type':'GRPC','grpc_services':" \
		  "[{'envoy_grpc':{'cluster_name':'sds-grpc'}}]},'initial_fetch_timeout':'0s'}}"

/* Istio's outbound context expecting the server identity `sa` (ISTIO_CONTRACT.md). */
static struct sk_tls_ctx *istio_client(const char *sa, const char *chain, const char *key, const char *ca)
{
	struct sk_tls_context_config *cfg = context(
		true,
		"'common_tls_context':{'tls_params':{'tls_minimum_protocol_version':'TLSv1_2',"
		"'tls_maximum_protocol_version':'TLSv1_3'},'alpn_protocols':['istio-peer-exchange','istio'],"
		"'tls_certificate_sds_secret_configs':[" SDS("default") "],'combined_validation_context':{"
		"'default_validation_context':{'match_subject_alt_names':[{'exact':'spiffe://cluster.local/ns/"
		"default/sa/%s'}]},'validation_context_sds_secret_config':" SDS("ROOTCA") "}},"
		"'sni':'outbound_.9080_.v1_.reviews.default.svc.cluster.local'",
		sa);
	struct sk_tls_secret *cs = chain ? cert_secret(chain, key) : NULL, *rs = root_secret(ca);
	struct sk_tls_ctx *ctx = NULL;

	if (cfg && !chain) {
		/* a client with no certificate at all */
		cfg->has_cert_sds = false;
	}
	if (cfg && rs && (cs || !chain))
		ctx = sk_tls_ctx_new(cfg, cs, rs, err, sizeof(err));
	if (ctx == NULL)
		fprintf(stderr, "istio_client: %s\n", err);
	sk_tls_context_config_free(cfg);
	sk_tls_secret_free(cs);
	sk_tls_secret_free(rs);
	return ctx;
}

/* Istio's inbound context: client certificate required, SANs of the trust domain (or
 * `san_json` instead), h2 and http/1.1. `extra`: more DownstreamTlsContext fields. */
static struct sk_tls_ctx *istio_server(const char *san_json, const char *extra)
{
	struct sk_tls_context_config *cfg = context(
		false,
		"'common_tls_context':{'tls_params':{'tls_minimum_protocol_version':'TLSv1_2',"
		"'tls_maximum_protocol_version':'TLSv1_3','cipher_suites':['ECDHE-ECDSA-AES256-GCM-SHA384',"
		"'ECDHE-RSA-AES256-GCM-SHA384','ECDHE-ECDSA-AES128-GCM-SHA256','ECDHE-RSA-AES128-GCM-SHA256',"
		"'AES256-GCM-SHA384','AES128-GCM-SHA256']},'alpn_protocols':['h2','http/1.1'],"
		"'tls_certificate_sds_secret_configs':[" SDS("default") "],'combined_validation_context':{"
		"'default_validation_context':{%s},'validation_context_sds_secret_config':" SDS("ROOTCA") "}},"
		"'require_client_certificate':true%s",
		san_json ? san_json : "'match_subject_alt_names':[{'prefix':'spiffe://cluster.local/'}]", extra ? extra : "");
	struct sk_tls_secret *cs = cert_secret("server-chain.crt", "server.key"), *rs = root_secret("root.crt");
	struct sk_tls_ctx *ctx = NULL;

	if (cfg && cs && rs)
		ctx = sk_tls_ctx_new(cfg, cs, rs, err, sizeof(err));
	if (ctx == NULL)
		fprintf(stderr, "istio_server: %s\n", err);
	sk_tls_context_config_free(cfg);
	sk_tls_secret_free(cs);
	sk_tls_secret_free(rs);
	return ctx;
}

/* ---- a connection pair ------------------------------------------------------------------ */

struct pair {
	int fd[2];                 /* client, server */
	struct sk_tls_conn *c, *s;
	enum sk_tls_status cst, sst;
};

static bool pair_open(struct pair *p, struct sk_tls_ctx *cctx, struct sk_tls_ctx *sctx, const char *sni)
{
	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd) < 0)
		return false;
	p->c = sk_tls_conn_new(cctx, p->fd[0], false, sni);
	p->s = sk_tls_conn_new(sctx, p->fd[1], true, NULL);
	p->cst = p->sst = SK_TLS_WANT_WRITE;
	return p->c && p->s;
}

static void pair_close(struct pair *p)
{
	sk_tls_conn_free(p->c);
	sk_tls_conn_free(p->s);
	if (p->fd[0] >= 0)
		close(p->fd[0]);
	if (p->fd[1] >= 0)
		close(p->fd[1]);
}

static bool settled(enum sk_tls_status st)
{
	return st == SK_TLS_DONE || st == SK_TLS_FAILED;
}

/* Drives both handshakes until each is done or failed, or nothing moves any more (a TLS 1.3
 * client is done before the server has judged its certificate). */
static void handshake(struct pair *p)
{
	for (int i = 0; i < 100 && !(settled(p->cst) && settled(p->sst)); i++) {
		if (!settled(p->cst))
			p->cst = sk_tls_handshake(p->c);
		if (!settled(p->sst))
			p->sst = sk_tls_handshake(p->s);
		if ((p->cst == SK_TLS_FAILED && !settled(p->sst) && i > 20) ||
		    (p->sst == SK_TLS_FAILED && !settled(p->cst) && i > 20))
			break;
	}
}

/* Reads what the other side wrote (after it wrote: a socketpair delivers at once). */
static ssize_t read_some(struct sk_tls_conn *c, char *buf, size_t len)
{
	ssize_t n = -EAGAIN;

	for (int i = 0; i < 10 && n == -EAGAIN; i++)
		n = sk_tls_read(c, buf, len);
	if (n >= 0 && (size_t)n < len)
		buf[n] = '\0';
	return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_mutual_tls(void)
{
	struct sk_tls_ctx *cctx = istio_client("reviews", "client-chain.crt", "client.key", "root.crt");
	struct sk_tls_ctx *sctx = istio_server(NULL, NULL);
	struct pair p;
	char buf[512];
	size_t alen;

	CHECK(cctx != NULL && sctx != NULL);
	if (!cctx || !sctx)
		goto out;
	CHECK(!sk_tls_ctx_is_server(cctx) && sk_tls_ctx_is_server(sctx));
	CHECK(sk_tls_conn_new(cctx, 0, true, NULL) == NULL); /* a client context cannot serve */
	CHECK(pair_open(&p, cctx, sctx, NULL));
	/* istio.alpn's override for an HTTP/1.1 request */
	{
		const char *alpn[] = {"istio-http/1.1", "istio", "http/1.1"};

		CHECK(sk_tls_conn_set_alpn(p.c, alpn, 3) == 0);
		CHECK(sk_tls_conn_set_alpn(p.s, alpn, 3) == -EINVAL); /* servers select, never offer */
	}
	handshake(&p);
	CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
	if (p.sst != SK_TLS_DONE)
		fprintf(stderr, "  server: %s / client: %s\n", sk_tls_failure_reason(p.s), sk_tls_failure_reason(p.c));
	CHECK(sk_tls_failure(p.c) == SK_TLS_FAIL_NONE && sk_tls_failure(p.s) == SK_TLS_FAIL_NONE);
	CHECK_STR(sk_tls_failure_reason(p.s), "");
	CHECK_STR(sk_tls_version(p.s), "TLSv1.3");
	CHECK_STR(sk_tls_version(p.c), "TLSv1.3");
	CHECK_STR(sk_tls_alpn(p.s, &alen), "http/1.1");
	CHECK(alen == 8);
	CHECK_STR(sk_tls_alpn(p.c, NULL), "http/1.1");
	CHECK(sk_tls_cipher(p.s)[0] != '\0');
	CHECK(!sk_tls_session_reused(p.s));
	/* who each side is, as the access log and RBAC will see it */
	CHECK(sk_tls_peer_has_cert(p.s) && sk_tls_peer_has_cert(p.c));
	CHECK(sk_tls_peer_uri_san(p.s, buf, sizeof(buf)) == (int)strlen("spiffe://cluster.local/ns/default/sa/productpage"));
	CHECK_STR(buf, "spiffe://cluster.local/ns/default/sa/productpage");
	CHECK(sk_tls_peer_uri_san(p.c, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "spiffe://cluster.local/ns/default/sa/reviews");
	CHECK(sk_tls_local_uri_san(p.s, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "spiffe://cluster.local/ns/default/sa/reviews");
	CHECK(sk_tls_peer_uri_san(p.s, buf, 10) == 48); /* truncated, full length returned */
	CHECK_STR(buf, "spiffe://");

	/* data both ways, then close_notify */
	CHECK(sk_tls_write(p.c, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
	CHECK(read_some(p.s, buf, sizeof(buf)) == 18);
	CHECK_STR(buf, "GET / HTTP/1.1\r\n\r\n");
	CHECK(sk_tls_read(p.s, buf, sizeof(buf)) == -EAGAIN && sk_tls_want(p.s) == SK_TLS_WANT_READ);
	CHECK(sk_tls_write(p.s, "HTTP/1.1 200 OK\r\n\r\n", 19) == 19);
	CHECK(read_some(p.c, buf, sizeof(buf)) == 19);
	CHECK(sk_tls_pending(p.c) == 0);
	CHECK(sk_tls_shutdown(p.c) == 0);
	CHECK(read_some(p.s, buf, sizeof(buf)) == 0);
	pair_close(&p);

	/* an h2 client gets h2 (the server's preference among what both have) */
	CHECK(pair_open(&p, cctx, sctx, "reviews.default.svc"));
	{
		const char *alpn[] = {"http/1.1", "h2"};

		CHECK(sk_tls_conn_set_alpn(p.c, alpn, 2) == 0);
	}
	handshake(&p);
	CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
	CHECK_STR(sk_tls_alpn(p.s, NULL), "h2");
	/* a peer that vanishes without close_notify: a reset, not an end of stream */
	close(p.fd[0]);
	p.fd[0] = -1;
	CHECK(read_some(p.s, buf, sizeof(buf)) == -ECONNRESET);
	pair_close(&p);

	/* the context's own ALPN (istio-peer-exchange, istio) meets h2/http1.1: no ALPN, no failure */
	CHECK(pair_open(&p, cctx, sctx, NULL));
	handshake(&p);
	CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
	CHECK_STR(sk_tls_alpn(p.s, NULL), "");
	pair_close(&p);
out:
	sk_tls_ctx_unref(cctx);
	sk_tls_ctx_unref(sctx);
}

/* A TLS 1.3 client learns that the server refused its certificate on its first read. */
static void check_client_refused(struct pair *p)
{
	char buf[64];

	if (p->cst == SK_TLS_DONE)
		CHECK(read_some(p->c, buf, sizeof(buf)) == -EPROTO);
	CHECK(sk_tls_failure(p->c) == SK_TLS_FAIL_CONNECTION);
	CHECK(strstr(sk_tls_failure_reason(p->c), "alert") != NULL);
}

static void test_refusals(void)
{
	struct sk_tls_ctx *sctx = istio_server(NULL, NULL), *cctx;
	struct pair p;

	CHECK(sctx != NULL);
	if (sctx == NULL)
		return;

	/* the client expects another identity than the server has: ssl.fail_verify_san */
	cctx = istio_client("ratings", "client-chain.crt", "client.key", "root.crt");
	CHECK(cctx && pair_open(&p, cctx, sctx, NULL));
	handshake(&p);
	CHECK(p.cst == SK_TLS_FAILED);
	CHECK(sk_tls_failure(p.c) == SK_TLS_FAIL_VERIFY_SAN);
	CHECK_STR(sk_tls_failure_stat(sk_tls_failure(p.c)), "ssl.fail_verify_san");
	CHECK_CONTAINS(sk_tls_failure_reason(p.c), "no subject alt name matched");
	CHECK(p.sst == SK_TLS_FAILED && sk_tls_failure(p.s) == SK_TLS_FAIL_CONNECTION); /* the alert */
	CHECK(sk_tls_read(p.c, (char[8]){0}, 8) == -EPROTO && sk_tls_want(p.c) == SK_TLS_FAILED);
	pair_close(&p);
	sk_tls_ctx_unref(cctx);

	/* the server admits only productpage; an attacker from the same mesh is refused */
	{
		struct sk_tls_ctx *strict = istio_server(
			"'match_subject_alt_names':[{'exact':'spiffe://cluster.local/ns/default/sa/productpage'}]", NULL);

		cctx = istio_client("reviews", "attacker-chain.crt", "attacker.key", "root.crt");
		CHECK(strict && cctx && pair_open(&p, cctx, strict, NULL));
		handshake(&p);
		CHECK(p.sst == SK_TLS_FAILED && sk_tls_failure(p.s) == SK_TLS_FAIL_VERIFY_SAN);
		check_client_refused(&p);
		pair_close(&p);
		sk_tls_ctx_unref(cctx);
		/* ... and productpage itself is welcome */
		cctx = istio_client("reviews", "client-chain.crt", "client.key", "root.crt");
		CHECK(pair_open(&p, cctx, strict, NULL));
		handshake(&p);
		CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
		pair_close(&p);
		sk_tls_ctx_unref(cctx);
		sk_tls_ctx_unref(strict);
	}

	/* no client certificate, required: ssl.fail_verify_no_cert */
	cctx = istio_client("reviews", NULL, NULL, "root.crt");
	CHECK(cctx && pair_open(&p, cctx, sctx, NULL));
	handshake(&p);
	CHECK(p.sst == SK_TLS_FAILED && sk_tls_failure(p.s) == SK_TLS_FAIL_NO_CERT);
	CHECK_STR(sk_tls_failure_stat(sk_tls_failure(p.s)), "ssl.fail_verify_no_cert");
	CHECK(!sk_tls_peer_has_cert(p.s));
	check_client_refused(&p);
	pair_close(&p);
	sk_tls_ctx_unref(cctx);

	/* a certificate from another CA: ssl.fail_verify_error */
	cctx = istio_client("reviews", "foreign-chain.crt", "foreign.key", "root.crt");
	CHECK(cctx && pair_open(&p, cctx, sctx, NULL));
	handshake(&p);
	CHECK(p.sst == SK_TLS_FAILED && sk_tls_failure(p.s) == SK_TLS_FAIL_VERIFY_ERROR);
	CHECK_STR(sk_tls_failure_stat(sk_tls_failure(p.s)), "ssl.fail_verify_error");
	CHECK_STR(sk_tls_failure_reason(p.s),
		  "peer certificate verification failed: self-signed certificate in certificate chain");
	check_client_refused(&p);
	pair_close(&p);
	sk_tls_ctx_unref(cctx);

	/* ... and a client that trusts only the other CA refuses our server the same way */
	cctx = istio_client("reviews", "client-chain.crt", "client.key", "other.crt");
	CHECK(cctx && pair_open(&p, cctx, sctx, NULL));
	handshake(&p);
	CHECK(p.cst == SK_TLS_FAILED && sk_tls_failure(p.c) == SK_TLS_FAIL_VERIFY_ERROR);
	pair_close(&p);
	sk_tls_ctx_unref(cctx);

	/* an expired certificate: ssl.fail_verify_error ... */
	cctx = istio_client("reviews", "expired-chain.crt", "expired.key", "root.crt");
	CHECK(cctx && pair_open(&p, cctx, sctx, NULL));
	handshake(&p);
	CHECK(p.sst == SK_TLS_FAILED && sk_tls_failure(p.s) == SK_TLS_FAIL_VERIFY_ERROR);
	CHECK_CONTAINS(sk_tls_failure_reason(p.s), "certificate has expired");
	check_client_refused(&p);
	pair_close(&p);
	/* ... unless allow_expired_certificate */
	{
		struct sk_tls_ctx *lax = istio_server("'allow_expired_certificate':true,'match_subject_alt_names':"
						      "[{'prefix':'spiffe://cluster.local/'}]", NULL);

		CHECK(lax && pair_open(&p, cctx, lax, NULL));
		handshake(&p);
		CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
		pair_close(&p);
		sk_tls_ctx_unref(lax);
	}
	sk_tls_ctx_unref(cctx);
	sk_tls_ctx_unref(sctx);
}

/* CRLs: a revoked client certificate fails verification; with a CRL that revokes nothing
 * (and CRL checks over the whole chain) it passes. */
static void test_crl(void)
{
	struct sk_tls_ctx *cctx = istio_client("reviews", "client-chain.crt", "client.key", "root.crt");
	struct sk_tls_ctx *revoked, *empty;
	char san[600];
	struct pair p;

	snprintf(san, sizeof(san), "'crl':{'filename':'%s/revoked.crl'},'match_subject_alt_names':[{'prefix':"
		 "'spiffe://cluster.local/'}]", dir);
	revoked = istio_server(san, NULL);
	snprintf(san, sizeof(san), "'crl':{'filename':'%s/empty.crl'}", dir);
	empty = istio_server(san, NULL);
	CHECK(cctx && revoked && empty);
	if (cctx && revoked && empty) {
		CHECK(pair_open(&p, cctx, revoked, NULL));
		handshake(&p);
		CHECK(p.sst == SK_TLS_FAILED && sk_tls_failure(p.s) == SK_TLS_FAIL_VERIFY_ERROR);
		CHECK_STR(sk_tls_failure_reason(p.s), "peer certificate verification failed: certificate revoked");
		pair_close(&p);
		CHECK(pair_open(&p, cctx, empty, NULL));
		handshake(&p);
		CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
		pair_close(&p);
	}
	sk_tls_ctx_unref(cctx);
	sk_tls_ctx_unref(revoked);
	sk_tls_ctx_unref(empty);
}

/* Secrets that cannot be used are refused before any connection (SDS NACKs them). */
static void test_bad_material(void)
{
	struct sk_tls_context_config *cfg = context(false, "'common_tls_context':{'tls_certificate_sds_secret_configs':"
							  "[{'name':'default'}]},'require_client_certificate':true");
	struct sk_tls_secret *good = cert_secret("server-chain.crt", "server.key");
	struct sk_tls_secret *mismatch = cert_secret("server-chain.crt", "client.key");
	struct sk_tls_secret *root = root_secret("root.crt");
	struct sk_tls_secret *garbage = secret_json(json_pack("{s:s,s:{s:{s:s},s:{s:s}}}", "name", "default",
							      "tls_certificate", "certificate_chain", "inline_string",
							      "not a certificate", "private_key", "inline_string", "x"));
	struct sk_tls_ctx *ctx;

	CHECK(cfg && good && mismatch && root && garbage);
	if (!(cfg && good && mismatch && root && garbage))
		goto out;
	CHECK(sk_tls_secret_check(good, err, sizeof(err)) == 0);
	CHECK(sk_tls_secret_check(root, err, sizeof(err)) == 0);
	CHECK(sk_tls_secret_check(mismatch, err, sizeof(err)) == -EINVAL);
	CHECK_STR(err, "secret 'default': tls_certificate: the private key does not match the certificate chain's "
		       "leaf certificate");
	CHECK(sk_tls_ctx_new(cfg, mismatch, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "secret 'default': tls_certificate: the private key does not match the certificate chain's "
		       "leaf certificate");
	CHECK(sk_tls_secret_check(garbage, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "secret 'default': tls_certificate.certificate_chain: no PEM certificate could be read");

	/* a secret that has not arrived; one of the wrong kind */
	CHECK(sk_tls_ctx_new(cfg, NULL, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "secret 'default' (tls_certificate_sds_secret_configs[0]) has not arrived");
	CHECK(sk_tls_ctx_new(cfg, root, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "secret 'ROOTCA' is not a tls_certificate");

	/* require_client_certificate without a CA: any certificate, but one is needed */
	ctx = sk_tls_ctx_new(cfg, good, NULL, err, sizeof(err));
	CHECK(ctx != NULL);
	/* the server certificate is valid 30 days (less the 5 minutes ca.sh backdates), the CA 10 years */
	CHECK(ctx && sk_tls_ctx_days_until_first_cert_expiring(ctx, time(NULL)) == 29);
	CHECK(ctx && sk_tls_ctx_days_until_first_cert_expiring(ctx, time(NULL) + 40 * 86400) == 0);
	sk_tls_ctx_unref(ctx);
	sk_tls_context_config_free(cfg);

	/* files: missing, a key of another chain, an absent environment variable */
	{
		char c[300], k[300];

		snprintf(c, sizeof(c), "%s/client-chain.crt", dir);
		snprintf(k, sizeof(k), "%s/server.key", dir);
		cfg = context(true, "'common_tls_context':{'tls_certificates':[{'certificate_chain':{'filename':'%s'},"
				    "'private_key':{'filename':'%s'}}]}", c, k);
		CHECK(cfg && sk_tls_ctx_new(cfg, NULL, NULL, err, sizeof(err)) == NULL);
		CHECK_STR(err, "tls_certificates[0]: the private key does not match the certificate chain's leaf certificate");
		sk_tls_context_config_free(cfg);
		cfg = context(true, "'common_tls_context':{'tls_certificates':[{'certificate_chain':{'filename':'%s/nope'},"
				    "'private_key':{'filename':'%s'}}]}", dir, k);
		CHECK(cfg && sk_tls_ctx_new(cfg, NULL, NULL, err, sizeof(err)) == NULL);
		CHECK_CONTAINS(err, "tls_certificates[0].certificate_chain: cannot read '");
		CHECK_CONTAINS(err, "nope': No such file or directory");
		sk_tls_context_config_free(cfg);
		cfg = context(true, "'common_tls_context':{'validation_context':{'trusted_ca':{'environment_variable':"
				    "'SKIFF_TLS_TEST_UNSET'}}}");
		CHECK(cfg && sk_tls_ctx_new(cfg, NULL, NULL, err, sizeof(err)) == NULL);
		CHECK_STR(err, "trusted_ca: environment variable 'SKIFF_TLS_TEST_UNSET' is not set");
		sk_tls_context_config_free(cfg);
		/* SAN matchers whose CA never came (an SDS validation context without trusted_ca) */
		cfg = context(true, "'common_tls_context':{'combined_validation_context':{'default_validation_context':"
				    "{'match_subject_alt_names':[{'exact':'x'}]},'validation_context_sds_secret_config':"
				    "{'name':'ROOTCA'}}}");
		{
			struct sk_tls_secret *empty = secret_json(json_pack("{s:s,s:{s:b}}", "name", "ROOTCA",
									    "validation_context",
									    "allow_expired_certificate", 1));

			CHECK(cfg && empty && sk_tls_ctx_new(cfg, NULL, empty, err, sizeof(err)) == NULL);
			CHECK_STR(err, "validation context: subject alt name matchers need a trusted_ca");
			sk_tls_secret_free(empty);
		}
		sk_tls_context_config_free(cfg);
	}
	cfg = NULL;
out:
	sk_tls_context_config_free(cfg);
	sk_tls_secret_free(good);
	sk_tls_secret_free(mismatch);
	sk_tls_secret_free(root);
	sk_tls_secret_free(garbage);
}

/* A raw OpenSSL client, to try what skiff's client never does. */
static SSL_CTX *raw_client(int max_version, bool with_cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char c[300], k[300];

	snprintf(c, sizeof(c), "%s/client-chain.crt", dir);
	snprintf(k, sizeof(k), "%s/client.key", dir);
	SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_security_level(ctx, 0); /* let OpenSSL offer what it would otherwise refuse */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	if (with_cert) {
		SSL_CTX_use_certificate_chain_file(ctx, c);
		SSL_CTX_use_PrivateKey_file(ctx, k, SSL_FILETYPE_PEM);
	}
	return ctx;
}

/* Handshakes a raw client with a skiff server; the session to resume (or NULL); returns
 * whether the server completed, and the session the client got (to free). */
static bool raw_handshake(SSL_CTX *cctx, struct sk_tls_ctx *sctx, SSL_SESSION *resume, SSL_SESSION **got,
			  bool *reused)
{
	int fd[2];
	SSL *c;
	struct sk_tls_conn *s;
	enum sk_tls_status sst = SK_TLS_WANT_READ;
	int crc = -1;
	bool ok;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
		return false;
	c = SSL_new(cctx);
	SSL_set_fd(c, fd[0]);
	SSL_set_connect_state(c);
	if (resume)
		SSL_set_session(c, resume);
	s = sk_tls_conn_new(sctx, fd[1], true, NULL);
	for (int i = 0; i < 50 && !(crc == 1 && settled(sst)); i++) {
		if (crc != 1)
			crc = SSL_do_handshake(c);
		if (!settled(sst))
			sst = sk_tls_handshake(s);
		if (sst == SK_TLS_FAILED)
			break;
	}
	ok = sst == SK_TLS_DONE && crc == 1;
	if (reused)
		*reused = s && sk_tls_session_reused(s);
	if (got)
		*got = ok ? SSL_get1_session(c) : NULL;
	if (ok) {
		SSL_shutdown(c); /* a session is only resumable after a clean close */
		sk_tls_shutdown(s);
	}
	ERR_clear_error();
	SSL_free(c);
	sk_tls_conn_free(s);
	close(fd[0]);
	close(fd[1]);
	return ok;
}

/* A TLS 1.2 client that asks to renegotiate is refused (allow_renegotiation is never true,
 * and a server never renegotiates). */
static bool renegotiation_refused(SSL_CTX *cctx, struct sk_tls_ctx *sctx)
{
	int fd[2], crc = -1, e = 0;
	SSL *c;
	struct sk_tls_conn *s;
	enum sk_tls_status sst = SK_TLS_WANT_READ;
	char buf[16];
	bool refused = false;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
		return false;
	c = SSL_new(cctx);
	SSL_set_fd(c, fd[0]);
	SSL_set_connect_state(c);
	s = sk_tls_conn_new(sctx, fd[1], true, NULL);
	for (int i = 0; i < 50 && !(crc == 1 && settled(sst)); i++) {
		if (crc != 1)
			crc = SSL_do_handshake(c);
		if (!settled(sst))
			sst = sk_tls_handshake(s);
	}
	if (crc == 1 && sst == SK_TLS_DONE && SSL_renegotiate(c) == 1) {
		for (int i = 0; i < 20; i++) {
			crc = SSL_do_handshake(c);
			e = crc == 1 ? 0 : SSL_get_error(c, crc);
			if (crc == 1 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE))
				break;
			(void)sk_tls_read(s, buf, sizeof(buf)); /* the server sees the new ClientHello */
		}
		refused = crc != 1 && e == SSL_ERROR_SSL;
	}
	ERR_clear_error();
	SSL_free(c);
	sk_tls_conn_free(s);
	close(fd[0]);
	close(fd[1]);
	return refused;
}

/* A TLS 1.2 server that asks skiff's client to renegotiate (HelloRequest) is refused too:
 * OpenSSL's client would otherwise comply. */
static bool server_renegotiation_refused(struct sk_tls_ctx *cctx)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	char c[300], k[300], buf[16];
	int fd[2], src = -1;
	SSL *s;
	struct sk_tls_conn *cl;
	enum sk_tls_status cst = SK_TLS_WANT_WRITE;
	bool refused = false;

	snprintf(c, sizeof(c), "%s/server-chain.crt", dir);
	snprintf(k, sizeof(k), "%s/server.key", dir);
	SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(sctx, c) != 1 || SSL_CTX_use_PrivateKey_file(sctx, k, SSL_FILETYPE_PEM) != 1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0) {
		SSL_CTX_free(sctx);
		return false;
	}
	s = SSL_new(sctx);
	SSL_set_fd(s, fd[1]);
	SSL_set_accept_state(s);
	cl = sk_tls_conn_new(cctx, fd[0], false, NULL);
	for (int i = 0; i < 50 && !(src == 1 && settled(cst)); i++) {
		if (!settled(cst))
			cst = sk_tls_handshake(cl);
		if (src != 1)
			src = SSL_do_handshake(s);
	}
	/* the server's handshake "completes" at once: the HelloRequest is out; the renegotiation
	 * itself would run inside SSL_read, and ends pending no more when the client complies */
	if (src == 1 && cst == SK_TLS_DONE && SSL_renegotiate(s) == 1 && SSL_do_handshake(s) == 1) {
		int e = 0;

		for (int i = 0; i < 20 && SSL_renegotiate_pending(s); i++) {
			(void)sk_tls_read(cl, buf, sizeof(buf)); /* the client sees the HelloRequest */
			e = SSL_get_error(s, SSL_read(s, buf, sizeof(buf)));
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				break;
		}
		refused = SSL_renegotiate_pending(s) && e == SSL_ERROR_SSL;
	}
	ERR_clear_error();
	SSL_free(s);
	SSL_CTX_free(sctx);
	sk_tls_conn_free(cl);
	close(fd[0]);
	close(fd[1]);
	return refused;
}

static void test_protocols_and_resumption(void)
{
	struct sk_tls_ctx *a = istio_server(NULL, NULL), *a12, *a12_again, *b12;
	SSL_CTX *old = raw_client(TLS1_1_VERSION, true), *c12 = raw_client(TLS1_2_VERSION, true);
	SSL_SESSION *sess = NULL;
	bool reused = true;

	/* a client capped below TLS 1.2 is refused */
	CHECK(a != NULL);
	CHECK(a && !raw_handshake(old, a, NULL, NULL, NULL));
	sk_tls_ctx_unref(a);

	/* TLS 1.2 servers (session tickets are simplest to observe there): two contexts of one
	 * config, and one whose SAN matchers differ */
	{
		struct sk_tls_context_config *cfg = context(
			false, "'common_tls_context':{'tls_params':{'tls_maximum_protocol_version':'TLSv1_2'},"
			       "'tls_certificate_sds_secret_configs':[{'name':'default'}],'combined_validation_context':{"
			       "'default_validation_context':{'match_subject_alt_names':[{'prefix':'spiffe://cluster.local/'}]},"
			       "'validation_context_sds_secret_config':{'name':'ROOTCA'}}},'require_client_certificate':true");
		struct sk_tls_context_config *other = context(
			false, "'common_tls_context':{'tls_params':{'tls_maximum_protocol_version':'TLSv1_2'},"
			       "'tls_certificate_sds_secret_configs':[{'name':'default'}],'combined_validation_context':{"
			       "'default_validation_context':{'match_subject_alt_names':[{'exact':'spiffe://cluster.local/"
			       "ns/default/sa/productpage'}]},'validation_context_sds_secret_config':{'name':'ROOTCA'}}},"
			       "'require_client_certificate':true");
		struct sk_tls_secret *cs = cert_secret("server-chain.crt", "server.key"), *rs = root_secret("root.crt");

		a12 = cfg && cs && rs ? sk_tls_ctx_new(cfg, cs, rs, err, sizeof(err)) : NULL;
		a12_again = cfg && cs && rs ? sk_tls_ctx_new(cfg, cs, rs, err, sizeof(err)) : NULL;
		b12 = other && cs && rs ? sk_tls_ctx_new(other, cs, rs, err, sizeof(err)) : NULL;
		sk_tls_context_config_free(cfg);
		sk_tls_context_config_free(other);
		sk_tls_secret_free(cs);
		sk_tls_secret_free(rs);
	}
	CHECK(a12 && a12_again && b12);
	if (a12 && a12_again && b12) {
		CHECK(raw_handshake(c12, a12, NULL, &sess, &reused) && !reused);
		CHECK(sess != NULL);
		/* the same context resumes: the test can see a resumption */
		CHECK(raw_handshake(c12, a12, sess, NULL, &reused) && reused);
		/* another SSL_CTX of the same config does not (its own ticket keys) ... */
		CHECK(raw_handshake(c12, a12_again, sess, NULL, &reused) && !reused);
		/* ... nor one whose validation changed (CVE-2022-21654): full handshake, full checks */
		CHECK(raw_handshake(c12, b12, sess, NULL, &reused) && !reused);
	}
	CHECK(b12 && renegotiation_refused(c12, b12));
	{
		struct sk_tls_ctx *cctx = istio_client("reviews", "client-chain.crt", "client.key", "root.crt");

		CHECK(cctx && server_renegotiation_refused(cctx));
		sk_tls_ctx_unref(cctx);
	}
	/* TLS 1.2 when the server says so */
	if (b12) {
		struct sk_tls_ctx *cctx = istio_client("reviews", "client-chain.crt", "client.key", "root.crt");
		struct pair p;

		CHECK(cctx && pair_open(&p, cctx, b12, NULL));
		handshake(&p);
		CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
		CHECK_STR(sk_tls_version(p.s), "TLSv1.2");
		pair_close(&p);
		sk_tls_ctx_unref(cctx);
	}
	SSL_SESSION_free(sess);
	SSL_CTX_free(old);
	SSL_CTX_free(c12);
	sk_tls_ctx_unref(a12);
	sk_tls_ctx_unref(a12_again);
	sk_tls_ctx_unref(b12);
}

/* A client with no validation context trusts any server (Envoy's default for clusters). */
static void test_unverified_client(void)
{
	struct sk_tls_context_config *cfg = context(true, "'sni':'x.example'");
	struct sk_tls_ctx *cctx = cfg ? sk_tls_ctx_new(cfg, NULL, NULL, err, sizeof(err)) : NULL;
	struct sk_tls_ctx *sctx = istio_server(NULL, ",'require_client_certificate':false");
	struct pair p;

	CHECK(cctx && sctx);
	if (cctx && sctx) {
		CHECK(sk_tls_ctx_days_until_first_cert_expiring(cctx, time(NULL)) == -1); /* no certificate */
		CHECK(pair_open(&p, cctx, sctx, NULL));
		handshake(&p);
		/* the client trusts anyone; the server does not require a certificate (ssl.no_certificate) */
		CHECK(p.cst == SK_TLS_DONE && p.sst == SK_TLS_DONE);
		CHECK(!sk_tls_peer_has_cert(p.s));
		CHECK(sk_tls_peer_uri_san(p.s, err, sizeof(err)) == -ENOENT);
		CHECK_STR(sk_tls_version(p.c), "TLSv1.2"); /* a client's default maximum, as Envoy */
		pair_close(&p);
	}
	sk_tls_context_config_free(cfg);
	sk_tls_ctx_unref(cctx);
	sk_tls_ctx_unref(sctx);
}

int main(void)
{
	if (!make_certs()) {
		fprintf(stderr, "tests/tls/ca.sh failed in %s\n", dir);
		sk_test_failed++;
		remove_certs();
		return TEST_SUMMARY();
	}
	test_mutual_tls();
	test_refusals();
	test_crl();
	test_bad_material();
	test_protocols_and_resumption();
	test_unverified_client();
	remove_certs();
	return TEST_SUMMARY();
}
