/* tls: SSL_CTX from a translated context, and non-blocking TLS connections. See tls.h.
 *
 * Verification follows Envoy's DefaultCertValidator: with no trusted CA the peer's
 * certificate is not verified (a client still accepts any server; a server still demands a
 * certificate when require_client_certificate); with one, the chain is verified first
 * (partial chains allowed, CRLs when given, expiry unless allow_expired_certificate), then
 * the leaf's SANs must satisfy one matcher (when there are matchers). Which step failed is
 * kept on the connection for the ssl.* counters. */
#include "proxy/network/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Envoy's default cipher list (BoringSSL's equal-preference groups flattened) and
 * BoringSSL's TLS 1.3 order; curves as Envoy's default. */
#define DEFAULT_CIPHERS                                                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define DEFAULT_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define DEFAULT_CURVES "X25519:P-256"
#define MAX_PEM_FILE (16 * 1024 * 1024)

struct sk_tls_ctx {
	atomic_int refs;
	SSL_CTX *ssl;
	bool server;
	bool verify_chain;                  /* a trusted CA is configured */
	struct sk_tls_validation validation; /* merged: SAN matchers, allow_expired */
	char *sni;                          /* client: cfg->sni */
	unsigned char *alpn;                /* wire format: client offers, server selects from */
	size_t alpn_len;
	time_t first_expiry;                /* 0: no certificate */
};

struct sk_tls_conn {
	struct sk_tls_ctx *ctx;
	SSL *ssl;
	enum sk_tls_status want;
	enum sk_tls_failure failure;
	bool fatal;                         /* no more I/O (and no shutdown) after this */
	char reason[256];
	char alpn[256];
	size_t alpn_len;
};

/* ---- errors ----------------------------------------------------------------------------- */

static int efail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int efail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return -EINVAL;
}

/* The last OpenSSL error of this thread as text ("" when none). */
static const char *ssl_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	buf[0] = '\0';
	if (e != 0)
		ERR_error_string_n(e, buf, len);
	return buf;
}

/* ---- loading PEM ------------------------------------------------------------------------ */

struct blob {
	const unsigned char *p;
	size_t n;
	unsigned char *owned;
};

static void blob_free(struct blob *b)
{
	if (b->owned != NULL) {
		memset(b->owned, 0, b->n);
		free(b->owned);
	}
	memset(b, 0, sizeof(*b));
}

/* The bytes of d: inline as is, files and environment variables read now. */
static int load(const struct sk_data_source *d, struct blob *out, const char *where, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	switch (d->kind) {
	case SK_DATA_INLINE:
		out->p = d->data;
		out->n = d->len;
		return 0;
	case SK_DATA_ENV: {
		const char *v = getenv(d->name);

		if (v == NULL)
			return efail(err, errlen, "%s: environment variable '%s' is not set", where, d->name);
		out->p = (const unsigned char *)v;
		out->n = strlen(v);
		return 0;
	}
	case SK_DATA_FILE: {
		FILE *f = fopen(d->name, "rb");
		struct stat st;
		size_t got;

		if (f == NULL)
			return efail(err, errlen, "%s: cannot read '%s': %s", where, d->name, strerror(errno));
		if (fstat(fileno(f), &st) < 0 || st.st_size > MAX_PEM_FILE) {
			fclose(f);
			return efail(err, errlen, "%s: '%s' is not a file of at most %d bytes", where, d->name,
				     MAX_PEM_FILE);
		}
		out->owned = malloc((size_t)st.st_size + 1);
		if (out->owned == NULL) {
			fclose(f);
			return efail(err, errlen, "out of memory");
		}
		got = fread(out->owned, 1, (size_t)st.st_size, f);
		fclose(f);
		out->owned[got] = '\0';
		out->p = out->owned;
		out->n = got;
		return 0;
	}
	default:
		out->p = (const unsigned char *)"";
		return 0;
	}
}

/* Never prompts: the password (or none) is what the config gives. */
static int password_cb(char *buf, int size, int rwflag, void *u)
{
	const struct blob *pw = u;

	(void)rwflag;
	if (pw == NULL || pw->n == 0 || pw->n > (size_t)size)
		return -1;
	memcpy(buf, pw->p, pw->n);
	return (int)pw->n;
}

/* All certificates of a PEM blob, in order. NULL (with err) when there is none. */
static STACK_OF(X509) *read_certs(const struct blob *b, const char *where, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(b->p, (int)b->n);
	X509 *x;

	if (certs == NULL || bio == NULL || b->n > INT_MAX) {
		sk_X509_free(certs);
		BIO_free(bio);
		efail(err, errlen, "%s: out of memory", where);
		return NULL;
	}
	while ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			break;
		}
	}
	BIO_free(bio);
	/* the loop ends on "no start line" at the end of the data: not an error unless nothing parsed */
	if (sk_X509_num(certs) == 0) {
		char why[256];

		ssl_error_text(why, sizeof(why));
		sk_X509_pop_free(certs, X509_free);
		efail(err, errlen, "%s: no PEM certificate could be read%s%s", where, why[0] ? ": " : "", why);
		return NULL;
	}
	ERR_clear_error();
	return certs;
}

static EVP_PKEY *read_key(const struct blob *b, const struct blob *password, const char *where, char *err,
			  size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(b->p, (int)b->n);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, password_cb, (void *)password) : NULL;
	char why[256];

	BIO_free(bio);
	if (key == NULL) {
		ssl_error_text(why, sizeof(why));
		efail(err, errlen, "%s: no PEM private key could be read%s%s%s", where,
		      password->n ? "" : " (an encrypted key needs a password)", why[0] ? ": " : "", why);
		return NULL;
	}
	ERR_clear_error();
	return key;
}

static STACK_OF(X509_CRL) *read_crls(const struct blob *b, const char *where, char *err, size_t errlen)
{
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	BIO *bio = BIO_new_mem_buf(b->p, (int)b->n);
	X509_CRL *x;

	if (crls == NULL || bio == NULL) {
		sk_X509_CRL_free(crls);
		BIO_free(bio);
		efail(err, errlen, "%s: out of memory", where);
		return NULL;
	}
	while ((x = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_CRL_push(crls, x)) {
			X509_CRL_free(x);
			break;
		}
	BIO_free(bio);
	if (sk_X509_CRL_num(crls) == 0) {
		sk_X509_CRL_free(crls);
		efail(err, errlen, "%s: no PEM CRL could be read", where);
		return NULL;
	}
	ERR_clear_error();
	return crls;
}

/* A chain and its key, checked against each other. */
struct keypair {
	STACK_OF(X509) *chain; /* leaf first */
	EVP_PKEY *key;
	struct blob chain_pem;
};

static void keypair_free(struct keypair *kp)
{
	sk_X509_pop_free(kp->chain, X509_free);
	EVP_PKEY_free(kp->key);
	blob_free(&kp->chain_pem);
	memset(kp, 0, sizeof(*kp));
}

static int keypair_load(const struct sk_tls_certificate *cert, const char *where, struct keypair *kp, char *err,
			size_t errlen)
{
	struct blob key = {0}, pw = {0};
	char w[160];
	int rc = -EINVAL;

	memset(kp, 0, sizeof(*kp));
	snprintf(w, sizeof(w), "%s.certificate_chain", where);
	if (load(&cert->chain, &kp->chain_pem, w, err, errlen) < 0 ||
	    (kp->chain = read_certs(&kp->chain_pem, w, err, errlen)) == NULL)
		goto out;
	snprintf(w, sizeof(w), "%s.private_key", where);
	if (load(&cert->key, &key, w, err, errlen) < 0)
		goto out;
	snprintf(w, sizeof(w), "%s.password", where);
	if (load(&cert->password, &pw, w, err, errlen) < 0)
		goto out;
	snprintf(w, sizeof(w), "%s.private_key", where);
	if ((kp->key = read_key(&key, &pw, w, err, errlen)) == NULL)
		goto out;
	if (X509_check_private_key(sk_X509_value(kp->chain, 0), kp->key) != 1) {
		efail(err, errlen, "%s: the private key does not match the certificate chain's leaf certificate",
		      where);
		goto out;
	}
	rc = 0;
out:
	blob_free(&key);
	blob_free(&pw);
	if (rc < 0)
		keypair_free(kp);
	return rc;
}

int sk_tls_secret_check(const struct sk_tls_secret *s, char *err, size_t errlen)
{
	char why[512];
	int rc = 0;

	if (s->kind == SK_TLS_SECRET_CERTIFICATE) {
		struct keypair kp;

		rc = keypair_load(&s->cert, "tls_certificate", &kp, why, sizeof(why));
		keypair_free(&kp);
	} else {
		struct blob b;

		if (s->validation.trusted_ca.kind != SK_DATA_NONE) {
			STACK_OF(X509) *cas = NULL;

			rc = load(&s->validation.trusted_ca, &b, "validation_context.trusted_ca", why, sizeof(why));
			if (rc == 0 && (cas = read_certs(&b, "validation_context.trusted_ca", why, sizeof(why))) == NULL)
				rc = -EINVAL;
			sk_X509_pop_free(cas, X509_free);
			blob_free(&b);
		}
		if (rc == 0 && s->validation.crl.kind != SK_DATA_NONE) {
			STACK_OF(X509_CRL) *crls = NULL;

			rc = load(&s->validation.crl, &b, "validation_context.crl", why, sizeof(why));
			if (rc == 0 && (crls = read_crls(&b, "validation_context.crl", why, sizeof(why))) == NULL)
				rc = -EINVAL;
			sk_X509_CRL_pop_free(crls, X509_CRL_free);
			blob_free(&b);
		}
	}
	if (rc < 0)
		snprintf(err, errlen, "secret '%s': %s", s->name, why);
	return rc;
}

/* ---- verification ----------------------------------------------------------------------- */

static int ignore_expiry(int ok, X509_STORE_CTX *sctx)
{
	int e = X509_STORE_CTX_get_error(sctx);

	if (!ok && (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)) {
		X509_STORE_CTX_set_error(sctx, X509_V_OK);
		return 1;
	}
	return ok;
}

/* Calls fn for each DNS, URI, email and IP SAN of x (IPs as text) until it returns true. */
static bool each_san(X509 *x, bool (*fn)(void *, enum sk_san_type, const char *, size_t), void *arg)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool hit = false;

	for (int i = 0; !hit && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_STRING *str = NULL;
		enum sk_san_type type;
		char ip[INET6_ADDRSTRLEN];

		switch (g->type) {
		case GEN_DNS:
			type = SK_SAN_DNS, str = g->d.dNSName;
			break;
		case GEN_URI:
			type = SK_SAN_URI, str = g->d.uniformResourceIdentifier;
			break;
		case GEN_EMAIL:
			type = SK_SAN_EMAIL, str = g->d.rfc822Name;
			break;
		case GEN_IPADD: {
			int n = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);

			if ((n == 4 && inet_ntop(AF_INET, p, ip, sizeof(ip))) ||
			    (n == 16 && inet_ntop(AF_INET6, p, ip, sizeof(ip))))
				hit = fn(arg, SK_SAN_IP, ip, strlen(ip));
			continue;
		}
		default:
			continue;
		}
		{
			const char *s = (const char *)ASN1_STRING_get0_data(str);
			size_t n = (size_t)ASN1_STRING_length(str);

			/* an embedded NUL is an attempt to fool C string comparisons */
			if (s != NULL && memchr(s, '\0', n) == NULL)
				hit = fn(arg, type, s, n);
		}
	}
	GENERAL_NAMES_free(names);
	return hit;
}

static bool san_matches(void *arg, enum sk_san_type type, const char *s, size_t n)
{
	const struct sk_tls_validation *v = arg;

	for (size_t i = 0; i < v->n_sans; i++)
		if (sk_san_matcher_match(&v->sans[i], type, s, n))
			return true;
	return false;
}

static int verify_cert(X509_STORE_CTX *sctx, void *arg)
{
	struct sk_tls_ctx *ctx = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct sk_tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;

	if (!ctx->verify_chain)
		return 1; /* no trusted CA: the peer is not verified (Envoy) */
	if (ctx->validation.allow_expired)
		X509_STORE_CTX_set_verify_cb(sctx, ignore_expiry);
	if (X509_verify_cert(sctx) <= 0) {
		if (c != NULL) {
			c->failure = SK_TLS_FAIL_VERIFY_ERROR;
			snprintf(c->reason, sizeof(c->reason), "peer certificate verification failed: %s",
				 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
		}
		return 0;
	}
	if (ctx->validation.n_sans > 0 &&
	    !each_san(X509_STORE_CTX_get0_cert(sctx), san_matches, &ctx->validation)) {
		if (c != NULL) {
			c->failure = SK_TLS_FAIL_VERIFY_SAN;
			snprintf(c->reason, sizeof(c->reason),
				 "peer certificate verification failed: no subject alt name matched");
		}
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/* ---- contexts --------------------------------------------------------------------------- */

static int alpn_wire(char *const *protos, size_t n, unsigned char **out, size_t *len)
{
	size_t total = 0, off = 0;

	*out = NULL;
	*len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(protos[i]);

		if (l == 0 || l > 255)
			return -EINVAL;
		total += l + 1;
	}
	if (total == 0)
		return 0;
	if (total > 65535 || (*out = malloc(total)) == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(protos[i]);

		(*out)[off++] = (unsigned char)l;
		memcpy(*out + off, protos[i], l);
		off += l;
	}
	*len = total;
	return 0;
}

/* Server: the first of our protocols the client offers (server preference, as Envoy);
 * none in common: no ALPN (not a failure). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	struct sk_tls_ctx *ctx = arg;
	unsigned char *sel = NULL;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, ctx->alpn, (unsigned int)ctx->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static time_t not_after(const X509 *x)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return timegm(&tm);
}

static void note_expiry(struct sk_tls_ctx *ctx, const X509 *x)
{
	time_t t = not_after(x);

	if (t != 0 && (ctx->first_expiry == 0 || t < ctx->first_expiry))
		ctx->first_expiry = t;
}

/* The session id context: a digest of everything that decides who may connect and as whom. */
static void digest_str(EVP_MD_CTX *md, const void *p, size_t n)
{
	uint64_t len = n;

	EVP_DigestUpdate(md, &len, sizeof(len));
	if (n)
		EVP_DigestUpdate(md, p, n);
}

static int session_id_context(struct sk_tls_ctx *ctx, const struct sk_tls_context_config *cfg,
			      const struct blob *chain, const struct blob *ca, const struct blob *crl)
{
	unsigned char sid[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const struct sk_tls_validation *v = &ctx->validation;
	unsigned char flags[4] = {cfg->require_client_certificate, v->allow_expired, v->only_verify_leaf_cert_crl,
				  ctx->verify_chain};
	int ok;

	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	if (ok) {
		digest_str(md, flags, sizeof(flags));
		digest_str(md, &v->max_verify_depth, sizeof(v->max_verify_depth));
		digest_str(md, chain->p, chain->n);
		digest_str(md, ca->p, ca->n);
		digest_str(md, crl->p, crl->n);
		for (size_t i = 0; i < v->n_sans; i++) {
			unsigned char m[3] = {(unsigned char)v->sans[i].type, (unsigned char)v->sans[i].kind,
					      v->sans[i].ignore_case};

			digest_str(md, m, sizeof(m));
			digest_str(md, v->sans[i].value, v->sans[i].len);
		}
		ok = EVP_DigestFinal_ex(md, sid, &len) == 1;
	}
	EVP_MD_CTX_free(md);
	if (len > SSL_MAX_SID_CTX_LENGTH)
		len = SSL_MAX_SID_CTX_LENGTH;
	return ok && SSL_CTX_set_session_id_context(ctx->ssl, sid, len) == 1 ? 0 : -EINVAL;
}

static int setup_params(struct sk_tls_ctx *ctx, const struct sk_tls_context_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *s = ctx->ssl;
	uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
	char why[256];

	if (SSL_CTX_set_min_proto_version(s, (int)cfg->min_version) != 1 ||
	    SSL_CTX_set_max_proto_version(s, (int)cfg->max_version) != 1)
		return efail(err, errlen, "tls_params: cannot set the protocol versions");
	if (cfg->server && !cfg->prefer_client_ciphers)
		opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
	if (cfg->server && cfg->disable_stateless_resumption)
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(s, opts);
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(s, cfg->cipher_list ? cfg->cipher_list : DEFAULT_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(s, DEFAULT_TLS13_SUITES) != 1)
		return efail(err, errlen, "tls_params.cipher_suites: %s", ssl_error_text(why, sizeof(why)));
	if (SSL_CTX_set1_groups_list(s, cfg->curves ? cfg->curves : DEFAULT_CURVES) != 1)
		return efail(err, errlen, "tls_params.ecdh_curves: %s", ssl_error_text(why, sizeof(why)));
	if (cfg->sigalgs && SSL_CTX_set1_sigalgs_list(s, cfg->sigalgs) != 1)
		return efail(err, errlen, "tls_params.signature_algorithms: %s", ssl_error_text(why, sizeof(why)));

	if (cfg->server) {
		SSL_CTX_set_session_cache_mode(s, cfg->disable_stateful_resumption ? SSL_SESS_CACHE_OFF
										: SSL_SESS_CACHE_SERVER);
		/* one TLS 1.3 ticket per handshake, not OpenSSL's two: Envoy's client keeps one
		 * session per upstream (max_session_keys 1) and skiff's never resumes, so a second
		 * one is never used; issuing it costs a tenth of a handshake's CPU */
		SSL_CTX_set_num_tickets(s, cfg->disable_stateful_resumption && cfg->disable_stateless_resumption ? 0 : 1);
		if (cfg->session_timeout >= 0)
			SSL_CTX_set_timeout(s, (long)cfg->session_timeout);
	} else {
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	}

	if (alpn_wire(cfg->alpn, cfg->n_alpn, &ctx->alpn, &ctx->alpn_len) < 0)
		return efail(err, errlen, "alpn_protocols: invalid");
	if (ctx->alpn_len > 0) {
		if (cfg->server)
			SSL_CTX_set_alpn_select_cb(s, alpn_select, ctx);
		else if (SSL_CTX_set_alpn_protos(s, ctx->alpn, (unsigned int)ctx->alpn_len) != 0)
			return efail(err, errlen, "alpn_protocols: cannot be set");
	}
	return 0;
}

/* Own certificate: chain and key into the context. */
static int setup_cert(struct sk_tls_ctx *ctx, const struct sk_tls_certificate *cert, const char *where,
		      struct blob *chain_pem, char *err, size_t errlen)
{
	struct keypair kp;
	char why[256];
	int rc = -EINVAL;

	if (keypair_load(cert, where, &kp, err, errlen) < 0)
		return -EINVAL;
	if (SSL_CTX_use_certificate(ctx->ssl, sk_X509_value(kp.chain, 0)) != 1) {
		efail(err, errlen, "%s.certificate_chain: %s", where, ssl_error_text(why, sizeof(why)));
		goto out;
	}
	note_expiry(ctx, sk_X509_value(kp.chain, 0));
	for (int i = 1; i < sk_X509_num(kp.chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx->ssl, sk_X509_value(kp.chain, i)) != 1) {
			efail(err, errlen, "%s.certificate_chain: %s", where, ssl_error_text(why, sizeof(why)));
			goto out;
		}
	if (SSL_CTX_use_PrivateKey(ctx->ssl, kp.key) != 1 || SSL_CTX_check_private_key(ctx->ssl) != 1) {
		efail(err, errlen, "%s: the private key does not match the certificate chain's leaf certificate",
		      where);
		goto out;
	}
	*chain_pem = kp.chain_pem; /* handed over for the session id context */
	kp.chain_pem = (struct blob){0};
	rc = 0;
out:
	keypair_free(&kp);
	return rc;
}

/* Trust: CA bundle and CRLs into the context's store. */
static int setup_trust(struct sk_tls_ctx *ctx, struct blob *ca, struct blob *crl, char *err, size_t errlen)
{
	const struct sk_tls_validation *v = &ctx->validation;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx->ssl);
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
	STACK_OF(X509) *cas;

	if (v->trusted_ca.kind == SK_DATA_NONE)
		return 0;
	if (load(&v->trusted_ca, ca, "trusted_ca", err, errlen) < 0 ||
	    (cas = read_certs(ca, "trusted_ca", err, errlen)) == NULL)
		return -EINVAL;
	for (int i = 0; i < sk_X509_num(cas); i++) {
		X509 *x = sk_X509_value(cas, i);

		/* the same CA twice in a bundle is harmless */
		if (X509_STORE_add_cert(store, x) != 1)
			ERR_clear_error();
		note_expiry(ctx, x);
	}
	sk_X509_pop_free(cas, X509_free);
	ctx->verify_chain = true;
	if (v->crl.kind != SK_DATA_NONE) {
		STACK_OF(X509_CRL) *crls;

		if (load(&v->crl, crl, "crl", err, errlen) < 0 || (crls = read_crls(crl, "crl", err, errlen)) == NULL)
			return -EINVAL;
		for (int i = 0; i < sk_X509_CRL_num(crls); i++)
			if (X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i)) != 1)
				ERR_clear_error();
		sk_X509_CRL_pop_free(crls, X509_CRL_free);
		flags |= X509_V_FLAG_CRL_CHECK | (v->only_verify_leaf_cert_crl ? 0 : X509_V_FLAG_CRL_CHECK_ALL);
	}
	X509_STORE_set_flags(store, flags);
	/* Envoy counts the trust anchor in the depth, OpenSSL does not */
	if (v->max_verify_depth > 0)
		SSL_CTX_set_verify_depth(ctx->ssl, (int)v->max_verify_depth - 1);
	return 0;
}

struct sk_tls_ctx *sk_tls_ctx_new(const struct sk_tls_context_config *cfg, const struct sk_tls_secret *cert_secret,
				  const struct sk_tls_secret *validation_secret, char *err, size_t errlen)
{
	struct sk_tls_ctx *ctx = calloc(1, sizeof(*ctx));
	struct blob chain = {0}, ca = {0}, crl = {0};
	const struct sk_tls_validation *base = NULL, *over = NULL;
	int mode;

	ERR_clear_error();
	if (ctx == NULL) {
		efail(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&ctx->refs, 1);
	ctx->server = cfg->server;
	ctx->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
	if (ctx->ssl == NULL || (cfg->sni && (ctx->sni = strdup(cfg->sni)) == NULL)) {
		efail(err, errlen, "out of memory");
		goto fail;
	}
	if (setup_params(ctx, cfg, err, errlen) < 0)
		goto fail;

	/* own certificate */
	if (cfg->has_cert) {
		if (setup_cert(ctx, &cfg->cert, "tls_certificates[0]", &chain, err, errlen) < 0)
			goto fail;
	} else if (cfg->has_cert_sds) {
		if (cert_secret == NULL) {
			efail(err, errlen, "secret '%s' (tls_certificate_sds_secret_configs[0]) has not arrived",
			      cfg->cert_sds.name);
			goto fail;
		}
		if (cert_secret->kind != SK_TLS_SECRET_CERTIFICATE) {
			efail(err, errlen, "secret '%s' is not a tls_certificate", cert_secret->name);
			goto fail;
		}
		if (setup_cert(ctx, &cert_secret->cert, "tls_certificate", &chain, err, errlen) < 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s", err);
			efail(err, errlen, "secret '%s': %s", cert_secret->name, why);
			goto fail;
		}
	}

	/* validation: the static context, the SDS one merged over it */
	if (cfg->has_validation)
		base = &cfg->validation;
	if (cfg->has_validation_sds) {
		if (validation_secret == NULL) {
			efail(err, errlen, "secret '%s' (validation context) has not arrived", cfg->validation_sds.name);
			goto fail;
		}
		if (validation_secret->kind != SK_TLS_SECRET_VALIDATION) {
			efail(err, errlen, "secret '%s' is not a validation_context", validation_secret->name);
			goto fail;
		}
		over = &validation_secret->validation;
	}
	if (sk_tls_validation_merge(base, over, &ctx->validation) < 0) {
		efail(err, errlen, "out of memory");
		goto fail;
	}
	if (ctx->validation.n_sans > 0 && ctx->validation.trusted_ca.kind == SK_DATA_NONE) {
		efail(err, errlen, "validation context: subject alt name matchers need a trusted_ca");
		goto fail;
	}
	if (setup_trust(ctx, &ca, &crl, err, errlen) < 0)
		goto fail;

	SSL_CTX_set_cert_verify_callback(ctx->ssl, verify_cert, ctx);
	if (!cfg->server)
		mode = SSL_VERIFY_PEER;
	else if (cfg->require_client_certificate)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	else
		mode = ctx->verify_chain ? SSL_VERIFY_PEER : SSL_VERIFY_NONE;
	SSL_CTX_set_verify(ctx->ssl, mode, NULL);
	if (cfg->server && session_id_context(ctx, cfg, &chain, &ca, &crl) < 0) {
		efail(err, errlen, "cannot set the session id context");
		goto fail;
	}
	blob_free(&chain);
	blob_free(&ca);
	blob_free(&crl);
	ERR_clear_error();
	return ctx;
fail:
	blob_free(&chain);
	blob_free(&ca);
	blob_free(&crl);
	sk_tls_ctx_unref(ctx);
	return NULL;
}

int sk_tls_ctx_from_sds(const struct sk_tls_context_config *cfg, const char *changed, sk_tls_secret_lookup_fn lookup,
			void *arg, struct sk_tls_ctx **out, char *err, size_t errlen)
{
	const struct sk_tls_secret *cert = NULL, *val = NULL;

	*out = NULL;
	if (cfg == NULL || (!cfg->has_cert_sds && !cfg->has_validation_sds))
		return 0;
	if (changed != NULL && !(cfg->has_cert_sds && strcmp(cfg->cert_sds.name, changed) == 0) &&
	    !(cfg->has_validation_sds && strcmp(cfg->validation_sds.name, changed) == 0))
		return 0;
	if (cfg->has_cert_sds && (cert = lookup(arg, cfg->cert_sds.name)) == NULL)
		return 0;
	if (cfg->has_validation_sds && (val = lookup(arg, cfg->validation_sds.name)) == NULL)
		return 0;
	*out = sk_tls_ctx_new(cfg, cert, val, err, errlen);
	return *out != NULL ? 1 : -EINVAL;
}

struct sk_tls_ctx *sk_tls_ctx_ref(struct sk_tls_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

void sk_tls_ctx_unref(struct sk_tls_ctx *ctx)
{
	if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	SSL_CTX_free(ctx->ssl);
	sk_tls_validation_clear(&ctx->validation);
	free(ctx->sni);
	free(ctx->alpn);
	free(ctx);
}

bool sk_tls_ctx_is_server(const struct sk_tls_ctx *ctx)
{
	return ctx->server;
}

long sk_tls_ctx_days_until_first_cert_expiring(const struct sk_tls_ctx *ctx, time_t now)
{
	if (ctx->first_expiry == 0)
		return -1;
	if (ctx->first_expiry <= now)
		return 0;
	return (long)((ctx->first_expiry - now) / 86400);
}

/* ---- connections ------------------------------------------------------------------------ */

const char *sk_tls_failure_stat(enum sk_tls_failure f)
{
	switch (f) {
	case SK_TLS_FAIL_NO_CERT:
		return "ssl.fail_verify_no_cert";
	case SK_TLS_FAIL_VERIFY_SAN:
		return "ssl.fail_verify_san";
	case SK_TLS_FAIL_VERIFY_ERROR:
		return "ssl.fail_verify_error";
	case SK_TLS_FAIL_CONNECTION:
		return "ssl.connection_error";
	default:
		return NULL;
	}
}

struct sk_tls_conn *sk_tls_conn_new(struct sk_tls_ctx *ctx, int fd, bool is_server, const char *sni)
{
	struct sk_tls_conn *c;

	if (ctx == NULL || is_server != ctx->server || fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ssl = SSL_new(ctx->ssl);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	c->ctx = sk_tls_ctx_ref(ctx);
	SSL_set_app_data(c->ssl, c);
	if (is_server) {
		SSL_set_accept_state(c->ssl);
	} else {
		const char *name = sni && sni[0] ? sni : ctx->sni;

		SSL_set_connect_state(c->ssl);
		if (name != NULL && SSL_set_tlsext_host_name(c->ssl, name) != 1) {
			sk_tls_conn_free(c);
			ERR_clear_error();
			return NULL;
		}
	}
	return c;
}

/* The prefix BIO: a filter over the socket BIO that serves bytes read before the TLS
 * connection existed, then passes reads (and every write and control) to the socket. */
struct prefix {
	unsigned char *p;
	size_t n, off;
};

static int prefix_read(BIO *b, char *out, size_t len, size_t *got)
{
	struct prefix *px = BIO_get_data(b);
	BIO *next = BIO_next(b);
	int ret;

	BIO_clear_retry_flags(b);
	if (px != NULL && px->off < px->n) {
		size_t k = px->n - px->off < len ? px->n - px->off : len;

		memcpy(out, px->p + px->off, k);
		px->off += k;
		*got = k;
		return 1;
	}
	if (next == NULL)
		return 0;
	ret = BIO_read_ex(next, out, len, got);
	BIO_copy_next_retry(b);
	return ret;
}

static int prefix_write(BIO *b, const char *in, size_t len, size_t *put)
{
	BIO *next = BIO_next(b);
	int ret;

	BIO_clear_retry_flags(b);
	if (next == NULL)
		return 0;
	ret = BIO_write_ex(next, in, len, put);
	BIO_copy_next_retry(b);
	return ret;
}

static long prefix_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct prefix *px = BIO_get_data(b);
	BIO *next = BIO_next(b);
	long left = px != NULL ? (long)(px->n - px->off) : 0;

	if (cmd == BIO_CTRL_PENDING && left > 0)
		return left;
	if (cmd == BIO_CTRL_EOF && left > 0)
		return 0;
	return next != NULL ? BIO_ctrl(next, cmd, num, ptr) : 0;
}

static int prefix_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int prefix_destroy(BIO *b)
{
	struct prefix *px = BIO_get_data(b);

	if (px != NULL) {
		free(px->p);
		free(px);
	}
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *prefix_method;

static void prefix_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "skiff prefix");

	if (m != NULL && (BIO_meth_set_read_ex(m, prefix_read) != 1 || BIO_meth_set_write_ex(m, prefix_write) != 1 ||
			  BIO_meth_set_ctrl(m, prefix_ctrl) != 1 || BIO_meth_set_create(m, prefix_create) != 1 ||
			  BIO_meth_set_destroy(m, prefix_destroy) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	prefix_method = m;
}

int sk_tls_conn_set_prefix(struct sk_tls_conn *c, const void *p, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *sock = SSL_get_rbio(c->ssl), *f;
	struct prefix *px;

	if (n == 0)
		return 0;
	pthread_once(&once, prefix_method_init);
	if (prefix_method == NULL || sock == NULL)
		return -ENOMEM;
	px = calloc(1, sizeof(*px));
	f = BIO_new(prefix_method);
	if (px == NULL || f == NULL || (px->p = malloc(n)) == NULL) {
		free(px);
		BIO_free(f);
		ERR_clear_error();
		return -ENOMEM;
	}
	memcpy(px->p, p, n);
	px->n = n;
	BIO_set_data(f, px);
	/* the chain takes its own reference on the socket BIO; set0_rbio drops the old rbio's */
	BIO_up_ref(sock);
	BIO_push(f, sock);
	SSL_set0_rbio(c->ssl, f);
	return 0;
}

void sk_tls_conn_free(struct sk_tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	sk_tls_ctx_unref(c->ctx);
	free(c);
}

int sk_tls_conn_set_alpn(struct sk_tls_conn *c, const char *const *protos, size_t n)
{
	unsigned char *wire;
	size_t len;
	int rc;

	if (c->ctx->server || alpn_wire((char *const *)protos, n, &wire, &len) < 0)
		return -EINVAL;
	rc = SSL_set_alpn_protos(c->ssl, wire, (unsigned int)len) == 0 ? 0 : -EINVAL;
	free(wire);
	return rc;
}

int sk_tls_conn_set_alpn_list(struct sk_tls_conn *c, const char *list)
{
	char copy[1024], *protos[32], *tok, *save = NULL;
	size_t n = 0;

	if (list == NULL || list[0] == '\0')
		return 0;
	if (strlen(list) >= sizeof(copy))
		return -EINVAL;
	strcpy(copy, list);
	for (tok = strtok_r(copy, ",", &save); tok != NULL && n < 32; tok = strtok_r(NULL, ",", &save))
		protos[n++] = tok;
	return sk_tls_conn_set_alpn(c, (const char *const *)protos, n);
}

ssize_t sk_tls_io_read(struct sk_tls_conn *t, int fd, void *buf, size_t len, bool *other)
{
	ssize_t n;

	*other = false;
	if (t != NULL) {
		n = sk_tls_read(t, buf, len);
		*other = n == -EAGAIN && sk_tls_want(t) == SK_TLS_WANT_WRITE;
		return n;
	}
	n = read(fd, buf, len);
	return n >= 0 ? n : errno == EINTR ? -EAGAIN : -errno;
}

ssize_t sk_tls_io_write(struct sk_tls_conn *t, int fd, const void *buf, size_t len, bool *other)
{
	ssize_t n;

	*other = false;
	if (t != NULL) {
		n = sk_tls_write(t, buf, len);
		*other = n == -EAGAIN && sk_tls_want(t) == SK_TLS_WANT_READ;
		return n;
	}
	n = send(fd, buf, len, MSG_NOSIGNAL);
	return n >= 0 ? n : errno == EINTR ? -EAGAIN : -errno;
}

/* Classifies a failed SSL call (ret <= 0): WANT_* as the status, anything else fatal with
 * the failure kept (the verify callback may already have said why). Returns the SSL_get_error
 * code. Clears this thread's OpenSSL error queue. */
static int classify(struct sk_tls_conn *c, int ret)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long code;
	char why[200];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = SK_TLS_WANT_READ;
		return e;
	case SSL_ERROR_WANT_WRITE:
		c->want = SK_TLS_WANT_WRITE;
		return e;
	case SSL_ERROR_ZERO_RETURN:
		return e;
	default:
		break;
	}
	c->fatal = true;
	code = ERR_peek_last_error();
	if (c->failure == SK_TLS_FAIL_NONE) {
		if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
			c->failure = SK_TLS_FAIL_NO_CERT;
			snprintf(c->reason, sizeof(c->reason), "the peer did not return a required certificate");
		} else {
			c->failure = SK_TLS_FAIL_CONNECTION;
			if (code != 0)
				snprintf(c->reason, sizeof(c->reason), "%s", ssl_error_text(why, sizeof(why)));
			else if (e == SSL_ERROR_SYSCALL && errno != 0)
				snprintf(c->reason, sizeof(c->reason), "%s", strerror(errno));
			else
				snprintf(c->reason, sizeof(c->reason), "connection closed by the peer");
		}
	}
	ERR_clear_error();
	return e;
}

enum sk_tls_status sk_tls_handshake(struct sk_tls_conn *c)
{
	const unsigned char *p;
	unsigned int n;
	int ret, e;

	if (c->fatal)
		return SK_TLS_FAILED;
	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1) {
		c->want = SK_TLS_DONE;
		SSL_get0_alpn_selected(c->ssl, &p, &n);
		if (n >= sizeof(c->alpn))
			n = 0;
		if (n)
			memcpy(c->alpn, p, n);
		c->alpn[n] = '\0';
		c->alpn_len = n;
		return SK_TLS_DONE;
	}
	e = classify(c, ret);
	if (e == SSL_ERROR_WANT_READ)
		return SK_TLS_WANT_READ;
	if (e == SSL_ERROR_WANT_WRITE)
		return SK_TLS_WANT_WRITE;
	c->fatal = true;
	if (c->failure == SK_TLS_FAIL_NONE) {
		c->failure = SK_TLS_FAIL_CONNECTION;
		snprintf(c->reason, sizeof(c->reason), "connection closed during the handshake");
	}
	return SK_TLS_FAILED;
}

enum sk_tls_failure sk_tls_failure(const struct sk_tls_conn *c)
{
	return c->failure;
}

const char *sk_tls_failure_reason(const struct sk_tls_conn *c)
{
	return c->reason;
}

static ssize_t io_result(struct sk_tls_conn *c, int ret)
{
	unsigned long code = ERR_peek_last_error();
	int e;

	/* a peer that closes the TCP connection without close_notify: a reset, not an EOF */
	if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		c->fatal = true;
		return -ECONNRESET;
	}
	e = classify(c, ret);
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		return -ECONNRESET;
	default:
		return -EPROTO;
	}
}

ssize_t sk_tls_read(struct sk_tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;

	if (c->fatal)
		return -EPROTO;
	if (len == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(c->ssl, buf, len, &n) == 1)
		return (ssize_t)n;
	return io_result(c, 0);
}

ssize_t sk_tls_write(struct sk_tls_conn *c, const void *buf, size_t len)
{
	size_t n = 0;

	if (c->fatal)
		return -EPROTO;
	if (len == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(c->ssl, buf, len, &n) == 1)
		return (ssize_t)n;
	return io_result(c, 0);
}

enum sk_tls_status sk_tls_want(const struct sk_tls_conn *c)
{
	return c->fatal ? SK_TLS_FAILED : c->want;
}

size_t sk_tls_pending(const struct sk_tls_conn *c)
{
	int n = SSL_pending(c->ssl);

	return n > 0 ? (size_t)n : 0;
}

int sk_tls_shutdown(struct sk_tls_conn *c)
{
	int ret, e;

	if (c->fatal || !SSL_is_init_finished(c->ssl))
		return -EPROTO;
	ERR_clear_error();
	ret = SSL_shutdown(c->ssl);
	if (ret >= 0)
		return 0; /* 0: ours sent, the peer's not awaited; 1: both */
	e = classify(c, ret);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -EAGAIN : -EPROTO;
}

/* ---- what was negotiated ---------------------------------------------------------------- */

const char *sk_tls_alpn(const struct sk_tls_conn *c, size_t *len)
{
	if (len != NULL)
		*len = c->alpn_len;
	return c->alpn;
}

const char *sk_tls_version(const struct sk_tls_conn *c)
{
	return SSL_get_version(c->ssl);
}

const char *sk_tls_cipher(const struct sk_tls_conn *c)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(c->ssl);

	return cipher ? SSL_CIPHER_get_name(cipher) : "";
}

static const char *curve_name(int nid)
{
	switch (nid) {
	case NID_X25519:
		return "X25519";
	case NID_X9_62_prime256v1:
		return "P-256";
	case NID_secp384r1:
		return "P-384";
	case NID_secp521r1:
		return "P-521";
	default:
		return NULL;
	}
}

static const char *sigalg_name(int type, int md)
{
	int bits = md == NID_sha256 ? 256 : md == NID_sha384 ? 384 : md == NID_sha512 ? 512 : 0;

	if (type == NID_ED25519)
		return "ed25519";
	if (bits == 0)
		return NULL;
	if (type == NID_X9_62_id_ecPublicKey)
		return bits == 256 ? "ecdsa_secp256r1_sha256" : bits == 384 ? "ecdsa_secp384r1_sha384"
									 : "ecdsa_secp521r1_sha512";
	if (type == NID_rsassaPss)
		return bits == 256 ? "rsa_pss_rsae_sha256" : bits == 384 ? "rsa_pss_rsae_sha384" : "rsa_pss_rsae_sha512";
	if (type == NID_rsaEncryption)
		return bits == 256 ? "rsa_pkcs1_sha256" : bits == 384 ? "rsa_pkcs1_sha384" : "rsa_pkcs1_sha512";
	return NULL;
}

void sk_tls_negotiated(const struct sk_tls_conn *c, struct sk_tls_negotiated *out)
{
	int type = NID_undef, md = NID_undef;

	out->version = SSL_get_version(c->ssl);
	out->cipher = sk_tls_cipher(c);
	out->curve = curve_name(SSL_get_negotiated_group(c->ssl));
	out->peer_sigalg = SSL_get_peer_signature_type_nid(c->ssl, &type) == 1 &&
					   SSL_get_peer_signature_nid(c->ssl, &md) == 1
				   ? sigalg_name(type, md)
				   : NULL;
}

bool sk_tls_session_reused(const struct sk_tls_conn *c)
{
	return SSL_session_reused(c->ssl) == 1;
}

bool sk_tls_peer_has_cert(const struct sk_tls_conn *c)
{
	return SSL_get0_peer_certificate(c->ssl) != NULL;
}

struct join {
	char *buf;
	size_t len, total;
	enum sk_san_type type;
};

static bool join_san(void *arg, enum sk_san_type type, const char *s, size_t n)
{
	struct join *j = arg;

	if (type != j->type)
		return false;
	if (j->total > 0) {
		if (j->total + 1 < j->len)
			j->buf[j->total] = ',';
		j->total++;
	}
	for (size_t i = 0; i < n; i++, j->total++)
		if (j->total + 1 < j->len)
			j->buf[j->total] = s[i];
	return false;
}

static int joined_sans(X509 *x, enum sk_san_type type, char *buf, size_t len)
{
	struct join j = {buf, len, 0, type};

	if (len > 0)
		buf[0] = '\0';
	if (x == NULL)
		return -ENOENT;
	each_san(x, join_san, &j);
	if (len > 0)
		buf[j.total < len ? j.total : len - 1] = '\0';
	return j.total > 0 ? (int)j.total : -ENOENT;
}

int sk_tls_peer_uri_san(const struct sk_tls_conn *c, char *buf, size_t len)
{
	return joined_sans(SSL_get0_peer_certificate(c->ssl), SK_SAN_URI, buf, len);
}

int sk_tls_local_uri_san(const struct sk_tls_conn *c, char *buf, size_t len)
{
	return joined_sans(SSL_get_certificate(c->ssl), SK_SAN_URI, buf, len);
}

int sk_tls_peer_dns_san(const struct sk_tls_conn *c, char *buf, size_t len)
{
	return joined_sans(SSL_get0_peer_certificate(c->ssl), SK_SAN_DNS, buf, len);
}

int sk_tls_peer_cert_digest(const struct sk_tls_conn *c, char hex[65])
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	hex[0] = '\0';
	if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return -ENOENT;
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int sk_tls_peer_subject(const struct sk_tls_conn *c, char *buf, size_t len)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	BIO *b;
	int n;

	if (len > 0)
		buf[0] = '\0';
	if (x == NULL)
		return -ENOENT;
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return -ENOMEM;
	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	n = BIO_read(b, buf, len > 0 ? (int)len - 1 : 0);
	if (len > 0)
		buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
	return n > 0 ? n : 0;
}

char *sk_tls_peer_pem(const struct sk_tls_conn *c, bool chain)
{
	STACK_OF(X509) *sk = chain ? SSL_get_peer_cert_chain(c->ssl) : NULL;
	X509 *leaf = SSL_get0_peer_certificate(c->ssl);
	BIO *b;
	char *out = NULL, *p;
	long n;

	if (leaf == NULL || (b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (!chain) {
		PEM_write_bio_X509(b, leaf);
	} else {
		/* a server's chain from OpenSSL lacks the leaf: it comes first */
		if (SSL_is_server(c->ssl))
			PEM_write_bio_X509(b, leaf);
		for (int i = 0; i < sk_X509_num(sk); i++)
			PEM_write_bio_X509(b, sk_X509_value(sk, i));
	}
	n = BIO_get_mem_data(b, &p);
	if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);
	return out;
}
