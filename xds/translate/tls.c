/* tls: UpstreamTlsContext / DownstreamTlsContext / Secret -> struct sk_tls_context_config /
 * struct sk_tls_secret. See tls.h. Everything is copied out; the proto can be freed after.
 *
 * Honoured: tls_params (TLS 1.2 and 1.3 only; cipher_suites, ecdh_curves and
 * signature_algorithms checked name by name against OpenSSL, BoringSSL's "[a|b]" groups
 * flattened), one tls_certificates entry (certificate_chain, private_key, password: filename,
 * inline_bytes, inline_string, environment_variable) or one tls_certificate_sds_secret_configs
 * entry, validation_context / validation_context_sds_secret_config /
 * combined_validation_context (trusted_ca, crl, only_verify_leaf_cert_crl,
 * match_typed_subject_alt_names and the untyped match_subject_alt_names, allow_expired_certificate,
 * max_verify_depth), alpn_protocols, sni, auto_host_sni (the connection supplies the name),
 * require_client_certificate, disable_stateless_session_resumption,
 * disable_stateful_session_resumption, session_timeout, prefer_client_ciphers. SDS sources:
 * ads, self (treated as ADS), api_config_source GRPC / DELTA_GRPC with envoy_grpc, none
 * (a bootstrap static secret).
 *
 * Accepted without effect (same behaviour as Envoy for what skiff does):
 * - UpstreamTlsContext.max_session_keys: skiff's client never resumes sessions, so every
 *   upstream handshake is a full one (as max_session_keys: 0);
 * - DownstreamTlsContext.full_scan_certs_on_sni_mismatch: one certificate per context;
 * - ocsp_staple_policy LENIENT_STAPLING / STRICT_STAPLING: no OCSP staples are configured
 *   (ocsp_staple is refused), and both then serve the certificate without a staple;
 * - false / default values of require_sni, enforce_rsa_key_usage,
 *   require_signed_certificate_timestamp, allow_renegotiation, auto_sni_san_validation,
 *   trust_chain_verification (VERIFY_TRUST_CHAIN);
 * - ConfigSource api versions, set_node_on_first_message_only, authorities, and the
 *   untyped match_subject_alt_names when match_typed_subject_alt_names is set (Envoy
 *   ignores the deprecated field then).
 *
 * Refused with the field's path: TLS 1.0/1.1, minimum above maximum, unknown cipher / curve /
 * signature algorithm names, compliance_policies, pkcs12, private_key_provider,
 * watched_directory (certificates and DataSources), ocsp_staple, signed_certificate_timestamp, more
 * than one certificate or certificate SDS config, certificate providers (every
 * *_certificate_provider* field), custom_tls_certificate_selector, custom_handshaker, key_log,
 * verify_certificate_spki/hash, ca_certificate_provider_instance, system_root_certs,
 * require_signed_certificate_timestamp: true, trust_chain_verification: ACCEPT_UNTRUSTED,
 * custom_validator_config, max_verify_depth: 0, OTHER_NAME or untyped typed SANs, custom
 * string matchers, empty non-exact patterns, safe_regex with ignore_case or constructs RE2
 * lacks, SAN matchers without a trusted CA, ALPN names of 0 or > 255 bytes,
 * allow_renegotiation: true, auto_sni_san_validation, enforce_rsa_key_usage: true,
 * require_sni: true, session_ticket_keys (inline or SDS), MUST_STAPLE, a server context with
 * no certificate, SDS over REST, aggregated api_config_source, google_grpc, path sources, and
 * Secrets of type session_ticket_keys / generic_secret. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "xds/translate/tls.h"

#include "xds/pbjson.h"
#include "xds/translate/listener.h"
#include "xds/translate/route.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHERE_MAX 320
#define DEFAULT_INITIAL_FETCH_TIMEOUT 15.0

typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext common_pb;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext validation_pb;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate certificate_pb;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig sds_pb;
typedef Envoy__Config__Core__V3__DataSource data_pb;

struct sk_tls_regex {
	atomic_int refs;
	pcre2_code *code;
};

/* Translation state: the error buffer and a scratch SSL_CTX to check OpenSSL names with. */
struct tctx {
	char *err;
	size_t errlen;
	SSL_CTX *scratch;
};

static int tfail(struct tctx *c, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int tfail(struct tctx *c, const char *where, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s%s%s", where, where[0] ? ": " : "", what);
	return -EINVAL;
}

static int oom(struct tctx *c)
{
	snprintf(c->err, c->errlen, "out of memory");
	return -ENOMEM;
}

/* where = base + suffix ("common_tls_context" + ".tls_params"). */
static const char *at(char *buf, const char *base, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static const char *at(char *buf, const char *base, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	n = (size_t)snprintf(buf, WHERE_MAX, "%s", base);
	if (n >= WHERE_MAX)
		return buf;
	va_start(ap, fmt);
	vsnprintf(buf + n, WHERE_MAX - n, fmt, ap);
	va_end(ap);
	/* a relative path starting at the top has no leading '.' */
	if (buf[0] == '.')
		memmove(buf, buf + 1, strlen(buf));
	return buf;
}

/* ---- data sources ----------------------------------------------------------------------- */

static void data_clear(struct sk_data_source *d)
{
	free(d->name);
	if (d->data != NULL)
		memset(d->data, 0, d->len); /* may be a private key */
	free(d->data);
	memset(d, 0, sizeof(*d));
}

static int data_copy(const struct sk_data_source *from, struct sk_data_source *to)
{
	memset(to, 0, sizeof(*to));
	to->kind = from->kind;
	to->len = from->len;
	if (from->name != NULL && (to->name = strdup(from->name)) == NULL)
		return -ENOMEM;
	if (from->data != NULL) {
		to->data = malloc(from->len + 1);
		if (to->data == NULL)
			return -ENOMEM;
		memcpy(to->data, from->data, from->len);
		to->data[from->len] = '\0';
	}
	return 0;
}

/* A DataSource; `required` refuses one that is absent or empty. */
static int data_source(struct tctx *c, const data_pb *d, struct sk_data_source *out, bool required,
		       const char *where)
{
	const unsigned char *p = NULL;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (d == NULL || d->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER__NOT_SET)
		return required ? tfail(c, where, "missing") : 0;
	if (d->watched_directory != NULL)
		return tfail(c, where, "watched_directory: not supported");
	switch (d->specifier_case) {
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
		if (d->filename == NULL || d->filename[0] == '\0')
			return tfail(c, where, "filename: must not be empty");
		out->kind = SK_DATA_FILE;
		out->name = strdup(d->filename);
		return out->name ? 0 : oom(c);
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
		if (d->environment_variable == NULL || d->environment_variable[0] == '\0')
			return tfail(c, where, "environment_variable: must not be empty");
		out->kind = SK_DATA_ENV;
		out->name = strdup(d->environment_variable);
		return out->name ? 0 : oom(c);
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
		p = d->inline_bytes.data;
		n = d->inline_bytes.len;
		break;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
		p = (const unsigned char *)d->inline_string;
		n = d->inline_string ? strlen(d->inline_string) : 0;
		break;
	default:
		return tfail(c, where, "unknown specifier");
	}
	if (n == 0 && required)
		return tfail(c, where, "must not be empty");
	out->kind = SK_DATA_INLINE;
	out->data = malloc(n + 1);
	if (out->data == NULL)
		return oom(c);
	if (n)
		memcpy(out->data, p, n);
	out->data[n] = '\0';
	out->len = n;
	return 0;
}

/* ---- SAN matchers ----------------------------------------------------------------------- */


static struct sk_tls_regex *regex_ref(struct sk_tls_regex *re)
{
	if (re != NULL)
		atomic_fetch_add(&re->refs, 1);
	return re;
}

static void regex_unref(struct sk_tls_regex *re)
{
	if (re == NULL || atomic_fetch_sub(&re->refs, 1) != 1)
		return;
	pcre2_code_free(re->code);
	free(re);
}

static int regex_new(struct tctx *c, const Envoy__Type__Matcher__V3__RegexMatcher *m, struct sk_tls_regex **out,
		     const char *where)
{
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ANCHORED |
			PCRE2_ENDANCHORED;
	struct sk_tls_regex *re;
	PCRE2_SIZE off;
	const char *why;
	int ec;

	if (m == NULL || m->regex == NULL || m->regex[0] == '\0')
		return tfail(c, where, "regex: must not be empty");
	re = calloc(1, sizeof(*re));
	if (re == NULL)
		return oom(c);
	atomic_init(&re->refs, 1);
	re->code = pcre2_compile((PCRE2_SPTR)m->regex, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
	if (re->code == NULL) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(ec, msg, sizeof(msg));
		free(re);
		return tfail(c, where, "regex '%s': %s at offset %zu", m->regex, (char *)msg, (size_t)off);
	}
	why = sk_regex_re2_unsupported(m->regex, re->code);
	if (why != NULL) {
		regex_unref(re);
		return tfail(c, where, "regex '%s': %s are not supported (Envoy's RE2 has none)", m->regex, why);
	}
	pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional: the interpreter also works */
	*out = re;
	return 0;
}

static bool regex_match(const struct sk_tls_regex *re, const char *s, size_t n)
{
	/* verification runs once per handshake: match data per call keeps this thread-agnostic */
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	int rc;

	if (md == NULL)
		return false;
	rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

static int string_matcher(struct tctx *c, const Envoy__Type__Matcher__V3__StringMatcher *m, enum sk_san_type type,
			  struct sk_san_matcher *out, const char *where)
{
	char w[WHERE_MAX];
	const char *v = NULL;

	memset(out, 0, sizeof(*out));
	out->type = type;
	if (m == NULL)
		return tfail(c, where, "matcher: missing");
	out->ignore_case = m->ignore_case;
	switch (m->match_pattern_case) {
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
		out->kind = SK_SAN_MATCH_EXACT;
		v = m->exact;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
		out->kind = SK_SAN_MATCH_PREFIX;
		v = m->prefix;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
		out->kind = SK_SAN_MATCH_SUFFIX;
		v = m->suffix;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
		out->kind = SK_SAN_MATCH_CONTAINS;
		v = m->contains;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
		if (m->ignore_case)
			return tfail(c, at(w, where, ".ignore_case"), "has no effect for safe_regex");
		out->kind = SK_SAN_MATCH_REGEX;
		if (regex_new(c, m->safe_regex, &out->re, at(w, where, ".safe_regex")) < 0)
			return -EINVAL;
		v = m->safe_regex->regex; /* kept as the matcher's text (logs, session id context) */
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CUSTOM:
		return tfail(c, at(w, where, ".custom"), "not supported");
	default:
		return tfail(c, where, "no match pattern (exact, prefix, suffix, contains, safe_regex)");
	}
	/* an empty exact matches nothing useful but is what Envoy accepts; the rest would match all */
	if (out->kind != SK_SAN_MATCH_EXACT && (v == NULL || v[0] == '\0'))
		return tfail(c, where, "the pattern must not be empty");
	out->value = strdup(v ? v : "");
	out->len = strlen(out->value ? out->value : "");
	return out->value ? 0 : oom(c);
}

static void san_matcher_clear(struct sk_san_matcher *m)
{
	free(m->value);
	regex_unref(m->re);
	memset(m, 0, sizeof(*m));
}

static bool eq_bytes(const char *a, const char *b, size_t n, bool fold)
{
	return fold ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
}

/* Envoy's Utility::dnsNameMatch: `name` (configured) against a DNS SAN `san` that may be a
 * wildcard ("*.example.com" covers exactly one label). Case-insensitive. */
static bool dns_name_match(const char *name, size_t nlen, const char *san, size_t slen)
{
	if (nlen == slen && strncasecmp(name, san, nlen) == 0)
		return true;
	if (slen > 2 && san[0] == '*' && san[1] == '.') {
		const char *suffix = san + 1; /* ".example.com" */
		size_t sufl = slen - 1;

		if (nlen > sufl && strncasecmp(name + nlen - sufl, suffix, sufl) == 0) {
			/* the covered part is a single, non-empty label */
			return memchr(name, '.', nlen - sufl) == NULL;
		}
	}
	return false;
}

bool sk_san_matcher_match(const struct sk_san_matcher *m, enum sk_san_type type, const char *s, size_t n)
{
	if (m->type != SK_SAN_ANY && m->type != type)
		return false;
	switch (m->kind) {
	case SK_SAN_MATCH_EXACT:
		if (type == SK_SAN_DNS)
			return dns_name_match(m->value, m->len, s, n);
		return n == m->len && eq_bytes(s, m->value, n, m->ignore_case);
	case SK_SAN_MATCH_PREFIX:
		return n >= m->len && eq_bytes(s, m->value, m->len, m->ignore_case);
	case SK_SAN_MATCH_SUFFIX:
		return n >= m->len && eq_bytes(s + n - m->len, m->value, m->len, m->ignore_case);
	case SK_SAN_MATCH_CONTAINS:
		for (size_t i = 0; m->len <= n && i <= n - m->len; i++)
			if (eq_bytes(s + i, m->value, m->len, m->ignore_case))
				return true;
		return false;
	case SK_SAN_MATCH_REGEX:
		return regex_match(m->re, s, n);
	}
	return false;
}

const char *sk_san_type_name(enum sk_san_type type)
{
	switch (type) {
	case SK_SAN_EMAIL:
		return "EMAIL";
	case SK_SAN_DNS:
		return "DNS";
	case SK_SAN_URI:
		return "URI";
	case SK_SAN_IP:
		return "IP_ADDRESS";
	default:
		return "ANY";
	}
}

/* ---- validation contexts ---------------------------------------------------------------- */

void sk_tls_validation_clear(struct sk_tls_validation *v)
{
	if (v == NULL)
		return;
	data_clear(&v->trusted_ca);
	data_clear(&v->crl);
	for (size_t i = 0; i < v->n_sans; i++)
		san_matcher_clear(&v->sans[i]);
	free(v->sans);
	memset(v, 0, sizeof(*v));
}

static int add_sans(struct sk_tls_validation *out, const struct sk_tls_validation *from)
{
	struct sk_san_matcher *sans;

	if (from == NULL || from->n_sans == 0)
		return 0;
	sans = realloc(out->sans, (out->n_sans + from->n_sans) * sizeof(*sans));
	if (sans == NULL)
		return -ENOMEM;
	out->sans = sans;
	for (size_t i = 0; i < from->n_sans; i++) {
		struct sk_san_matcher *m = &out->sans[out->n_sans];

		*m = from->sans[i];
		m->value = NULL;
		m->re = regex_ref(from->sans[i].re);
		out->n_sans++;
		if (from->sans[i].value != NULL && (m->value = strdup(from->sans[i].value)) == NULL)
			return -ENOMEM;
	}
	return 0;
}

int sk_tls_validation_merge(const struct sk_tls_validation *base, const struct sk_tls_validation *over,
			    struct sk_tls_validation *out)
{
	const struct sk_data_source *ca, *crl;

	memset(out, 0, sizeof(*out));
	ca = over && over->trusted_ca.kind != SK_DATA_NONE ? &over->trusted_ca : base ? &base->trusted_ca : NULL;
	crl = over && over->crl.kind != SK_DATA_NONE ? &over->crl : base ? &base->crl : NULL;
	if ((ca && data_copy(ca, &out->trusted_ca) < 0) || (crl && data_copy(crl, &out->crl) < 0) ||
	    add_sans(out, base) < 0 || add_sans(out, over) < 0) {
		sk_tls_validation_clear(out);
		return -ENOMEM;
	}
	out->allow_expired = (base && base->allow_expired) || (over && over->allow_expired);
	out->only_verify_leaf_cert_crl = (base && base->only_verify_leaf_cert_crl) ||
					 (over && over->only_verify_leaf_cert_crl);
	out->max_verify_depth = over && over->max_verify_depth ? over->max_verify_depth
				: base			       ? base->max_verify_depth
							       : 0;
	return 0;
}

static enum sk_san_type san_type(Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher__SanType t)
{
	switch (t) {
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__EMAIL:
		return SK_SAN_EMAIL;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS:
		return SK_SAN_DNS;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI:
		return SK_SAN_URI;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__IP_ADDRESS:
		return SK_SAN_IP;
	default:
		return SK_SAN_ANY;
	}
}

/* `partial`: an SDS-delivered context or the default half of a combined one, whose trusted
 * CA may come from the other half; the "SANs need a CA" rule is then checked when the SSL
 * context is built from the merged halves. */
static int validation(struct tctx *c, const validation_pb *v, struct sk_tls_validation *out, bool partial,
		      const char *where)
{
	char w[WHERE_MAX], mw[WHERE_MAX];
	size_t i;

	memset(out, 0, sizeof(*out));
	if (v == NULL)
		return 0;
	if (v->ca_certificate_provider_instance != NULL)
		return tfail(c, at(w, where, ".ca_certificate_provider_instance"), "not supported");
	if (v->system_root_certs != NULL)
		return tfail(c, at(w, where, ".system_root_certs"), "not supported (give trusted_ca)");
	if (v->watched_directory != NULL)
		return tfail(c, at(w, where, ".watched_directory"), "not supported");
	if (v->n_verify_certificate_spki > 0)
		return tfail(c, at(w, where, ".verify_certificate_spki"), "not supported");
	if (v->n_verify_certificate_hash > 0)
		return tfail(c, at(w, where, ".verify_certificate_hash"), "not supported");
	if (v->require_signed_certificate_timestamp && v->require_signed_certificate_timestamp->value)
		return tfail(c, at(w, where, ".require_signed_certificate_timestamp"), "not supported");
	if (v->trust_chain_verification !=
	    ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__TRUST_CHAIN_VERIFICATION__VERIFY_TRUST_CHAIN)
		return tfail(c, at(w, where, ".trust_chain_verification"), "ACCEPT_UNTRUSTED is not supported");
	if (v->custom_validator_config != NULL)
		return tfail(c, at(w, where, ".custom_validator_config"), "'%s' is not supported",
			     v->custom_validator_config->name ? v->custom_validator_config->name : "");
	if (data_source(c, v->trusted_ca, &out->trusted_ca, false, at(w, where, ".trusted_ca")) < 0 ||
	    data_source(c, v->crl, &out->crl, false, at(w, where, ".crl")) < 0)
		return -EINVAL;
	out->allow_expired = v->allow_expired_certificate;
	out->only_verify_leaf_cert_crl = v->only_verify_leaf_cert_crl;
	if (v->max_verify_depth != NULL) {
		if (v->max_verify_depth->value > 100)
			return tfail(c, at(w, where, ".max_verify_depth"), "must be at most 100");
		/* 0 (the leaf alone, no trust anchor) has no OpenSSL equivalent */
		if (v->max_verify_depth->value == 0)
			return tfail(c, at(w, where, ".max_verify_depth"), "0 is not supported");
		out->max_verify_depth = v->max_verify_depth->value;
	}
	if (v->n_match_typed_subject_alt_names > 0) {
		out->sans = calloc(v->n_match_typed_subject_alt_names, sizeof(*out->sans));
		if (out->sans == NULL)
			return oom(c);
		for (i = 0; i < v->n_match_typed_subject_alt_names; i++) {
			const Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
				v->match_typed_subject_alt_names[i];
			enum sk_san_type t = san_type(m->san_type);

			at(w, where, ".match_typed_subject_alt_names[%zu]", i);
			if (m->san_type ==
			    ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__OTHER_NAME)
				return tfail(c, w, "san_type: OTHER_NAME is not supported");
			if (t == SK_SAN_ANY)
				return tfail(c, w, "san_type: must be EMAIL, DNS, URI or IP_ADDRESS");
			out->n_sans = i + 1;
			if (string_matcher(c, m->matcher, t, &out->sans[i], at(mw, w, ".matcher")) < 0)
				return -EINVAL;
		}
	} else if (v->n_match_subject_alt_names > 0) {
		out->sans = calloc(v->n_match_subject_alt_names, sizeof(*out->sans));
		if (out->sans == NULL)
			return oom(c);
		for (i = 0; i < v->n_match_subject_alt_names; i++) {
			out->n_sans = i + 1;
			if (string_matcher(c, v->match_subject_alt_names[i], SK_SAN_ANY, &out->sans[i],
					   at(w, where, ".match_subject_alt_names[%zu]", i)) < 0)
				return -EINVAL;
		}
	}
	if (!partial && out->n_sans > 0 && out->trusted_ca.kind == SK_DATA_NONE)
		return tfail(c, at(w, where, ".trusted_ca"), "required with subject alt name matchers (SAN-based "
			     "verification without a trusted CA is insecure)");
	return 0;
}

/* ---- certificates ----------------------------------------------------------------------- */

static void certificate_clear(struct sk_tls_certificate *cert)
{
	data_clear(&cert->chain);
	data_clear(&cert->key);
	data_clear(&cert->password);
}

static int certificate(struct tctx *c, const certificate_pb *tc, struct sk_tls_certificate *out, const char *where)
{
	char w[WHERE_MAX];

	memset(out, 0, sizeof(*out));
	if (tc->pkcs12 != NULL)
		return tfail(c, at(w, where, ".pkcs12"), "not supported (give certificate_chain and private_key)");
	if (tc->private_key_provider != NULL)
		return tfail(c, at(w, where, ".private_key_provider"), "not supported");
	if (tc->watched_directory != NULL)
		return tfail(c, at(w, where, ".watched_directory"), "not supported");
	if (tc->ocsp_staple != NULL)
		return tfail(c, at(w, where, ".ocsp_staple"), "not supported");
	if (tc->n_signed_certificate_timestamp > 0)
		return tfail(c, at(w, where, ".signed_certificate_timestamp"), "not supported");
	if (data_source(c, tc->certificate_chain, &out->chain, true, at(w, where, ".certificate_chain")) < 0 ||
	    data_source(c, tc->private_key, &out->key, true, at(w, where, ".private_key")) < 0 ||
	    data_source(c, tc->password, &out->password, false, at(w, where, ".password")) < 0)
		return -EINVAL;
	return 0;
}

/* ---- SDS references --------------------------------------------------------------------- */

static void sds_clear(struct sk_sds_ref *r)
{
	free(r->name);
	free(r->cluster);
	memset(r, 0, sizeof(*r));
}

static int sds_ref(struct tctx *c, const sds_pb *s, struct sk_sds_ref *out, const char *where)
{
	const Envoy__Config__Core__V3__ConfigSource *cs = s->sds_config;
	char w[WHERE_MAX];

	memset(out, 0, sizeof(*out));
	if (s->name == NULL || s->name[0] == '\0')
		return tfail(c, at(w, where, ".name"), "must not be empty");
	out->name = strdup(s->name);
	if (out->name == NULL)
		return oom(c);
	if (cs == NULL) {
		out->source = SK_SDS_STATIC;
		return 0;
	}
	out->initial_fetch_timeout = sk_duration_seconds(cs->initial_fetch_timeout, DEFAULT_INITIAL_FETCH_TIMEOUT);
	switch (cs->config_source_specifier_case) {
	case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS:
	case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_SELF:
		out->source = SK_SDS_ADS;
		return 0;
	case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE: {
		const Envoy__Config__Core__V3__ApiConfigSource *api = cs->api_config_source;
		const Envoy__Config__Core__V3__GrpcService *g;

		if (api->api_type != ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC &&
		    api->api_type != ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC)
			return tfail(c, at(w, where, ".sds_config.api_config_source.api_type"),
				     "only GRPC and DELTA_GRPC are supported");
		if (api->n_grpc_services != 1)
			return tfail(c, at(w, where, ".sds_config.api_config_source.grpc_services"),
				     "exactly one gRPC service is supported");
		g = api->grpc_services[0];
		if (g->target_specifier_case != ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC ||
		    g->envoy_grpc->cluster_name == NULL || g->envoy_grpc->cluster_name[0] == '\0')
			return tfail(c, at(w, where, ".sds_config.api_config_source.grpc_services[0]"),
				     "only envoy_grpc with a cluster_name is supported");
		out->source = SK_SDS_GRPC;
		out->delta = api->api_type == ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC;
		out->cluster = strdup(g->envoy_grpc->cluster_name);
		return out->cluster ? 0 : oom(c);
	}
	case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH:
	case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH_CONFIG_SOURCE:
		return tfail(c, at(w, where, ".sds_config"), "file-based SDS (path) is not supported");
	default:
		return tfail(c, at(w, where, ".sds_config"), "no config source (ads or api_config_source)");
	}
}

/* ---- tls_params ------------------------------------------------------------------------- */

typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters__TlsProtocol tls_protocol_pb;

static int version(struct tctx *c, tls_protocol_pb v, enum sk_tls_version dflt, enum sk_tls_version *out,
		   const char *where)
{
	switch (v) {
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLS_AUTO:
		*out = dflt;
		return 0;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2:
		*out = SK_TLS_VERSION_1_2;
		return 0;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3:
		*out = SK_TLS_VERSION_1_3;
		return 0;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_0:
		return tfail(c, where, "TLSv1_0 is not supported (TLS 1.2 and 1.3 only)");
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_1:
		return tfail(c, where, "TLSv1_1 is not supported (TLS 1.2 and 1.3 only)");
	default:
		return tfail(c, where, "unknown TLS version %d", (int)v);
	}
}

static SSL_CTX *scratch(struct tctx *c)
{
	if (c->scratch == NULL)
		c->scratch = SSL_CTX_new(TLS_method());
	return c->scratch;
}

enum name_kind { NAME_CIPHER, NAME_CURVE, NAME_SIGALG };

/* Is `name` one OpenSSL knows as kind? */
static bool openssl_knows(struct tctx *c, enum name_kind kind, const char *name)
{
	SSL_CTX *ctx = scratch(c);

	if (ctx == NULL)
		return false;
	switch (kind) {
	case NAME_CIPHER:
		/* TLS 1.3 suites are not configurable (as in Envoy): these are TLS 1.2 names */
		return SSL_CTX_set_cipher_list(ctx, name) == 1;
	case NAME_CURVE:
		return SSL_CTX_set1_groups_list(ctx, name) == 1;
	case NAME_SIGALG:
		return SSL_CTX_set1_sigalgs_list(ctx, name) == 1;
	}
	return false;
}

static int append(char **list, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 2 > *cap) {
		size_t ncap = (*cap + n + 2) * 2;
		char *p = realloc(*list, ncap);

		if (p == NULL)
			return -ENOMEM;
		*list = p;
		*cap = ncap;
	}
	if (*len)
		(*list)[(*len)++] = ':';
	memcpy(*list + *len, s, n);
	*len += n;
	(*list)[*len] = '\0';
	return 0;
}

/* A repeated string of OpenSSL names -> one ':'-joined list, each name checked. Cipher
 * entries may be BoringSSL equal-preference groups "[A|B]": flattened in order (OpenSSL has
 * no such groups). Entries that are cipher-string operators ("!aNULL", "-X", "+X") pass. */
static int name_list(struct tctx *c, char **names, size_t n, enum name_kind kind, char **out, const char *where)
{
	char w[WHERE_MAX];
	size_t len = 0, cap = 0;

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *s = names[i];
		size_t sl = strlen(s);

		at(w, where, "[%zu]", i);
		if (sl == 0)
			return tfail(c, w, "must not be empty");
		if (kind == NAME_CIPHER && s[0] == '[' && s[sl - 1] == ']') {
			s++;
			sl -= 2;
		}
		while (sl > 0) {
			size_t tl = strcspn(s, kind == NAME_CIPHER ? "|:" : ":");
			char tok[128];

			if (tl > sl)
				tl = sl;
			if (tl == 0 || tl >= sizeof(tok))
				return tfail(c, w, "'%s' is not a valid name", names[i]);
			memcpy(tok, s, tl);
			tok[tl] = '\0';
			if (kind == NAME_CIPHER && (tok[0] == '!' || tok[0] == '-' || tok[0] == '+')) {
				/* an operator: validated by OpenSSL as part of the whole list */
			} else if (!openssl_knows(c, kind, tok)) {
				return tfail(c, w, "'%s' is not a %s OpenSSL supports", tok,
					     kind == NAME_CIPHER ? "TLS 1.2 cipher suite"
					     : kind == NAME_CURVE ? "curve (group)"
								  : "signature algorithm");
			}
			if (append(out, &len, &cap, tok, tl) < 0)
				return oom(c);
			s += tl;
			sl -= tl;
			if (sl > 0) {
				s++;
				sl--;
			}
		}
	}
	if (*out && kind == NAME_CIPHER && !openssl_knows(c, kind, *out))
		return tfail(c, where, "'%s' selects no cipher suite", *out);
	return 0;
}

static int tls_params(struct tctx *c, const Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *p,
		      struct sk_tls_context_config *cfg, const char *where)
{
	char w[WHERE_MAX];
	/* Envoy's defaults: at least TLS 1.2; at most 1.2 for clients and 1.3 for servers */
	enum sk_tls_version dmax = cfg->server ? SK_TLS_VERSION_1_3 : SK_TLS_VERSION_1_2;

	cfg->min_version = SK_TLS_VERSION_1_2;
	cfg->max_version = dmax;
	if (p == NULL)
		return 0;
	if (version(c, p->tls_minimum_protocol_version, SK_TLS_VERSION_1_2, &cfg->min_version,
		    at(w, where, ".tls_minimum_protocol_version")) < 0 ||
	    version(c, p->tls_maximum_protocol_version, dmax, &cfg->max_version,
		    at(w, where, ".tls_maximum_protocol_version")) < 0)
		return -EINVAL;
	if (cfg->min_version > cfg->max_version)
		return tfail(c, where, "tls_minimum_protocol_version is above tls_maximum_protocol_version");
	if (p->n_compliance_policies > 0)
		return tfail(c, at(w, where, ".compliance_policies"), "not supported");
	if (name_list(c, p->cipher_suites, p->n_cipher_suites, NAME_CIPHER, &cfg->cipher_list,
		      at(w, where, ".cipher_suites")) < 0 ||
	    name_list(c, p->ecdh_curves, p->n_ecdh_curves, NAME_CURVE, &cfg->curves, at(w, where, ".ecdh_curves")) < 0 ||
	    name_list(c, p->signature_algorithms, p->n_signature_algorithms, NAME_SIGALG, &cfg->sigalgs,
		      at(w, where, ".signature_algorithms")) < 0)
		return -EINVAL;
	return 0;
}

/* ---- CommonTlsContext ------------------------------------------------------------------- */

static int common(struct tctx *c, const common_pb *ct, struct sk_tls_context_config *cfg)
{
	const char *where = "common_tls_context";
	char w[WHERE_MAX];
	size_t i, total = 0;

	if (ct == NULL)
		return tls_params(c, NULL, cfg, where);
	if (ct->tls_certificate_provider_instance != NULL)
		return tfail(c, at(w, where, ".tls_certificate_provider_instance"), "not supported");
	if (ct->custom_tls_certificate_selector != NULL)
		return tfail(c, at(w, where, ".custom_tls_certificate_selector"), "not supported");
	if (ct->tls_certificate_certificate_provider != NULL)
		return tfail(c, at(w, where, ".tls_certificate_certificate_provider"), "not supported");
	if (ct->tls_certificate_certificate_provider_instance != NULL)
		return tfail(c, at(w, where, ".tls_certificate_certificate_provider_instance"), "not supported");
	if (ct->custom_handshaker != NULL)
		return tfail(c, at(w, where, ".custom_handshaker"), "not supported");
	if (ct->key_log != NULL)
		return tfail(c, at(w, where, ".key_log"), "not supported");
	if (tls_params(c, ct->tls_params, cfg, at(w, where, ".tls_params")) < 0)
		return -EINVAL;

	if (ct->n_tls_certificates > 1)
		return tfail(c, at(w, where, ".tls_certificates"), "only one certificate is supported");
	if (ct->n_tls_certificates == 1) {
		/* Envoy ignores tls_certificate_sds_secret_configs when tls_certificates is set */
		cfg->has_cert = true;
		if (certificate(c, ct->tls_certificates[0], &cfg->cert, at(w, where, ".tls_certificates[0]")) < 0)
			return -EINVAL;
	} else if (ct->n_tls_certificate_sds_secret_configs > 1) {
		return tfail(c, at(w, where, ".tls_certificate_sds_secret_configs"),
			     "only one certificate is supported");
	} else if (ct->n_tls_certificate_sds_secret_configs == 1) {
		cfg->has_cert_sds = true;
		if (sds_ref(c, ct->tls_certificate_sds_secret_configs[0], &cfg->cert_sds,
			    at(w, where, ".tls_certificate_sds_secret_configs[0]")) < 0)
			return -EINVAL;
	}

	switch (ct->validation_context_type_case) {
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE__NOT_SET:
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT:
		cfg->has_validation = true;
		if (validation(c, ct->validation_context, &cfg->validation, false,
			       at(w, where, ".validation_context")) < 0)
			return -EINVAL;
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG:
		cfg->has_validation_sds = true;
		if (sds_ref(c, ct->validation_context_sds_secret_config, &cfg->validation_sds,
			    at(w, where, ".validation_context_sds_secret_config")) < 0)
			return -EINVAL;
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT: {
		const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
			*cv = ct->combined_validation_context;
		char cw[WHERE_MAX];

		at(cw, where, ".combined_validation_context");
		if (cv->validation_context_certificate_provider != NULL)
			return tfail(c, at(w, cw, ".validation_context_certificate_provider"), "not supported");
		if (cv->validation_context_certificate_provider_instance != NULL)
			return tfail(c, at(w, cw, ".validation_context_certificate_provider_instance"),
				     "not supported");
		if (cv->validation_context_sds_secret_config == NULL)
			return tfail(c, at(w, cw, ".validation_context_sds_secret_config"), "missing");
		cfg->has_validation = true;
		cfg->has_validation_sds = true;
		if (validation(c, cv->default_validation_context, &cfg->validation, true,
			       at(w, cw, ".default_validation_context")) < 0 ||
		    sds_ref(c, cv->validation_context_sds_secret_config, &cfg->validation_sds,
			    at(w, cw, ".validation_context_sds_secret_config")) < 0)
			return -EINVAL;
		break;
	}
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_CERTIFICATE_PROVIDER:
		return tfail(c, at(w, where, ".validation_context_certificate_provider"), "not supported");
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_CERTIFICATE_PROVIDER_INSTANCE:
		return tfail(c, at(w, where, ".validation_context_certificate_provider_instance"), "not supported");
	default:
		return tfail(c, where, "unknown validation_context_type");
	}

	if (ct->n_alpn_protocols > 0) {
		cfg->alpn = calloc(ct->n_alpn_protocols, sizeof(*cfg->alpn));
		if (cfg->alpn == NULL)
			return oom(c);
	}
	for (i = 0; i < ct->n_alpn_protocols; i++) {
		size_t n = strlen(ct->alpn_protocols[i]);

		if (n == 0 || n > 255)
			return tfail(c, at(w, where, ".alpn_protocols[%zu]", i), "must be 1 to 255 bytes");
		total += n + 1;
		cfg->alpn[i] = strdup(ct->alpn_protocols[i]);
		if (cfg->alpn[i] == NULL)
			return oom(c);
		cfg->n_alpn = i + 1;
	}
	if (total > 65535)
		return tfail(c, at(w, where, ".alpn_protocols"), "the list is longer than 65535 bytes");
	return 0;
}

/* ---- contexts --------------------------------------------------------------------------- */

static struct sk_tls_context_config *finish(struct tctx *c, struct sk_tls_context_config *cfg, int rc)
{
	SSL_CTX_free(c->scratch);
	c->scratch = NULL;
	if (rc < 0) {
		sk_tls_context_config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct sk_tls_context_config *sk_tls_upstream_context_new(
	const Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *uc, char *err, size_t errlen)
{
	struct tctx c = {.err = err, .errlen = errlen};
	struct sk_tls_context_config *cfg = calloc(1, sizeof(*cfg));
	int rc;

	if (cfg == NULL) {
		oom(&c);
		return NULL;
	}
	cfg->session_timeout = -1;
	if (uc->allow_renegotiation)
		return finish(&c, cfg, tfail(&c, "allow_renegotiation", "renegotiation is not supported"));
	if (uc->auto_sni_san_validation)
		return finish(&c, cfg, tfail(&c, "auto_sni_san_validation", "not supported"));
	if (uc->enforce_rsa_key_usage && uc->enforce_rsa_key_usage->value)
		return finish(&c, cfg, tfail(&c, "enforce_rsa_key_usage", "not supported"));
	if (uc->sni && strlen(uc->sni) > 255)
		return finish(&c, cfg, tfail(&c, "sni", "longer than 255 bytes"));
	if (uc->sni && uc->sni[0] && (cfg->sni = strdup(uc->sni)) == NULL)
		return finish(&c, cfg, oom(&c));
	cfg->auto_host_sni = uc->auto_host_sni;
	rc = common(&c, uc->common_tls_context, cfg);
	return finish(&c, cfg, rc);
}

struct sk_tls_context_config *sk_tls_downstream_context_new(
	const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *dc, char *err, size_t errlen)
{
	struct tctx c = {.err = err, .errlen = errlen};
	struct sk_tls_context_config *cfg = calloc(1, sizeof(*cfg));
	int rc;

	if (cfg == NULL) {
		oom(&c);
		return NULL;
	}
	cfg->server = true;
	cfg->session_timeout = -1;
	if (dc->require_sni && dc->require_sni->value)
		return finish(&c, cfg, tfail(&c, "require_sni", "not supported"));
	switch (dc->session_ticket_keys_type_case) {
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS:
		return finish(&c, cfg, tfail(&c, "session_ticket_keys", "not supported (skiff keeps random "
					     "per-context ticket keys)"));
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS_SDS_SECRET_CONFIG:
		return finish(&c, cfg, tfail(&c, "session_ticket_keys_sds_secret_config", "not supported"));
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_DISABLE_STATELESS_SESSION_RESUMPTION:
		cfg->disable_stateless_resumption = dc->disable_stateless_session_resumption;
		break;
	default:
		break;
	}
	if (dc->ocsp_staple_policy ==
	    ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__OCSP_STAPLE_POLICY__MUST_STAPLE)
		return finish(&c, cfg, tfail(&c, "ocsp_staple_policy", "MUST_STAPLE is not supported (no OCSP "
					     "stapling)"));
	cfg->disable_stateful_resumption = dc->disable_stateful_session_resumption;
	if (dc->session_timeout != NULL) {
		double t = sk_duration_seconds(dc->session_timeout, -1);

		if (t < 0 || t >= 4294967296.0)
			return finish(&c, cfg, tfail(&c, "session_timeout", "must be between 0 and 2^32 seconds"));
		cfg->session_timeout = t;
	}
	cfg->prefer_client_ciphers = dc->prefer_client_ciphers;
	cfg->require_client_certificate = dc->require_client_certificate && dc->require_client_certificate->value;
	rc = common(&c, dc->common_tls_context, cfg);
	if (rc == 0 && !cfg->has_cert && !cfg->has_cert_sds)
		rc = tfail(&c, "common_tls_context", "a server context needs a certificate (tls_certificates or "
			   "tls_certificate_sds_secret_configs)");
	return finish(&c, cfg, rc);
}

void sk_tls_context_config_free(struct sk_tls_context_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->cipher_list);
	free(cfg->curves);
	free(cfg->sigalgs);
	for (size_t i = 0; i < cfg->n_alpn; i++)
		free(cfg->alpn[i]);
	free(cfg->alpn);
	certificate_clear(&cfg->cert);
	sds_clear(&cfg->cert_sds);
	sk_tls_validation_clear(&cfg->validation);
	sds_clear(&cfg->validation_sds);
	free(cfg->sni);
	free(cfg);
}

int sk_tls_transport_socket_translate(const Envoy__Config__Core__V3__TransportSocket *ts, bool upstream,
				      struct sk_tls_context_config **out, char *err, size_t errlen)
{
	const char *want = upstream ? "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
				    : "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
	const char *what = upstream ? "UpstreamTlsContext" : "DownstreamTlsContext";
	char type[256], why[768];
	ProtobufCMessage *m;

	*out = NULL;
	if (ts == NULL)
		return 0;
	if (ts->config_type_case != ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG) {
		if (ts->name && strcmp(ts->name, "envoy.transport_sockets.raw_buffer") == 0)
			return 0;
		snprintf(err, errlen, "transport socket '%s': no typed_config", ts->name ? ts->name : "");
		return -EINVAL;
	}
	sk_typed_config_name(ts->typed_config, type, sizeof(type));
	if (strcmp(type, "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer") == 0)
		return 0;
	if (strcmp(type, want) != 0) {
		if (strcmp(type, "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext") == 0 ||
		    strcmp(type, "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext") == 0)
			snprintf(err, errlen, "typed_config: %s is not valid here (%s expected)", type, what);
		else
			snprintf(err, errlen, "transport socket '%s' (%s) is not supported", ts->name ? ts->name : "",
				 type);
		return -EINVAL;
	}
	if (strstr(ts->typed_config->type_url, "TypedStruct") != NULL) {
		snprintf(err, errlen, "typed_config: a %s wrapped in a TypedStruct is not supported", what);
		return -EINVAL;
	}
	m = protobuf_c_message_unpack(
		upstream ? &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor
			 : &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor,
		NULL, ts->typed_config->value.len, ts->typed_config->value.data);
	if (m == NULL) {
		snprintf(err, errlen, "typed_config: invalid %s", what);
		return -EINVAL;
	}
	*out = upstream ? sk_tls_upstream_context_new((void *)m, why, sizeof(why))
			: sk_tls_downstream_context_new((void *)m, why, sizeof(why));
	protobuf_c_message_free_unpacked(m, NULL);
	if (*out == NULL) {
		snprintf(err, errlen, "typed_config (%s): %s", what, why);
		return -EINVAL;
	}
	return 0;
}

/* ---- secrets ---------------------------------------------------------------------------- */

struct sk_tls_secret *sk_tls_secret_new(const Envoy__Extensions__TransportSockets__Tls__V3__Secret *s, char *err,
					size_t errlen)
{
	struct tctx c = {.err = err, .errlen = errlen};
	struct sk_tls_secret *out;
	char why[768];
	int rc;

	if (s->name == NULL || s->name[0] == '\0') {
		snprintf(err, errlen, "secret: name: must not be empty");
		return NULL;
	}
	out = calloc(1, sizeof(*out));
	if (out == NULL || (out->name = strdup(s->name)) == NULL) {
		free(out);
		oom(&c);
		return NULL;
	}
	c.err = why;
	c.errlen = sizeof(why);
	switch (s->type_case) {
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE:
		out->kind = SK_TLS_SECRET_CERTIFICATE;
		rc = certificate(&c, s->tls_certificate, &out->cert, "tls_certificate");
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT:
		out->kind = SK_TLS_SECRET_VALIDATION;
		/* SANs in an SDS validation context may rely on the default context's CA */
		rc = validation(&c, s->validation_context, &out->validation, true, "validation_context");
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_SESSION_TICKET_KEYS:
		rc = tfail(&c, "session_ticket_keys", "not supported");
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_GENERIC_SECRET:
		rc = tfail(&c, "generic_secret", "not supported");
		break;
	default:
		rc = tfail(&c, "", "no tls_certificate or validation_context");
		break;
	}
	if (rc < 0) {
		snprintf(err, errlen, "secret '%s': %s", s->name, why);
		sk_tls_secret_free(out);
		return NULL;
	}
	return out;
}

void sk_tls_secret_free(struct sk_tls_secret *s)
{
	if (s == NULL)
		return;
	free(s->name);
	certificate_clear(&s->cert);
	sk_tls_validation_clear(&s->validation);
	free(s);
}
