/* tls: Envoy's UpstreamTlsContext, DownstreamTlsContext and SDS Secret (protobuf) -> plain,
 * validated C structs. Immutable once built; owned by whoever holds them (*_free). Building
 * OpenSSL contexts and running handshakes from them is proxy/network/tls.h. */
#ifndef SKIFF_XDS_TRANSLATE_TLS_H
#define SKIFF_XDS_TRANSLATE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff_protos.h"

/* Wire values (0x0303, 0x0304), as OpenSSL's TLS1_2_VERSION / TLS1_3_VERSION. */
enum sk_tls_version {
	SK_TLS_VERSION_1_2 = 0x0303,
	SK_TLS_VERSION_1_3 = 0x0304,
};

/* envoy.config.core.v3.DataSource. Files and environment variables are read when an SSL
 * context is built (proxy/network/tls.c), not at translation. */
enum sk_data_source_kind {
	SK_DATA_NONE,
	SK_DATA_FILE,              /* filename: `name` */
	SK_DATA_INLINE,            /* inline_bytes / inline_string: `data`, `len` */
	SK_DATA_ENV,               /* environment_variable: `name` */
};

struct sk_data_source {
	enum sk_data_source_kind kind;
	char *name;
	unsigned char *data;       /* NUL-terminated copy (the NUL is not counted in len) */
	size_t len;
};

/* Where an SdsSecretConfig's secret comes from. */
enum sk_sds_source {
	SK_SDS_STATIC,             /* no sds_config: bootstrap static_resources.secrets */
	SK_SDS_ADS,                /* sds_config.ads (or self: the stream that carried the config) */
	SK_SDS_GRPC,               /* api_config_source GRPC/DELTA_GRPC to an envoy_grpc cluster */
};

struct sk_sds_ref {
	char *name;                /* "default", "ROOTCA" */
	enum sk_sds_source source;
	char *cluster;             /* GRPC: envoy_grpc.cluster_name ("sds-grpc") */
	bool delta;                /* GRPC: api_type DELTA_GRPC */
	double initial_fetch_timeout; /* seconds; 0: wait forever (Envoy's default is 15 s) */
};

/* Which SANs a matcher looks at. ANY is the untyped match_subject_alt_names: Envoy tries it
 * against DNS, URI, email and IP SANs. */
enum sk_san_type {
	SK_SAN_ANY,
	SK_SAN_EMAIL,
	SK_SAN_DNS,
	SK_SAN_URI,
	SK_SAN_IP,
};

enum sk_san_match_kind {
	SK_SAN_MATCH_EXACT,        /* for DNS SANs: with one-label wildcards, as Envoy's dnsNameMatch */
	SK_SAN_MATCH_PREFIX,
	SK_SAN_MATCH_SUFFIX,
	SK_SAN_MATCH_CONTAINS,
	SK_SAN_MATCH_REGEX,        /* safe_regex: PCRE2 restricted to RE2's syntax, whole-value match */
};

struct sk_tls_regex; /* compiled, refcounted: copies of a matcher share it */

/* A SubjectAltNameMatcher (or an untyped StringMatcher). */
struct sk_san_matcher {
	enum sk_san_type type;
	enum sk_san_match_kind kind;
	bool ignore_case;          /* ASCII case folding; never with REGEX */
	char *value;               /* the pattern (REGEX: the regex's text, for logs and hashing) */
	size_t len;
	struct sk_tls_regex *re;   /* REGEX */
};

/* True when m accepts the SAN s[0..n) of type `type` (never SK_SAN_ANY; IP SANs as text). */
bool sk_san_matcher_match(const struct sk_san_matcher *m, enum sk_san_type type, const char *s, size_t n);
const char *sk_san_type_name(enum sk_san_type type);

/* CertificateValidationContext. With SAN matchers the peer must match at least one. */
struct sk_tls_validation {
	struct sk_data_source trusted_ca;
	struct sk_data_source crl;
	size_t n_sans;
	struct sk_san_matcher *sans;
	bool allow_expired;        /* allow_expired_certificate (also not-yet-valid, as Envoy) */
	bool only_verify_leaf_cert_crl;
	uint32_t max_verify_depth; /* Envoy's meaning (trust anchor counted); 0: not set */
};

/* TlsCertificate: a PEM chain (leaf first) and its PEM private key. */
struct sk_tls_certificate {
	struct sk_data_source chain;
	struct sk_data_source key;
	struct sk_data_source password; /* NONE unless the key is encrypted */
};

/* A translated Upstream- or DownstreamTlsContext. */
struct sk_tls_context_config {
	bool server;               /* DownstreamTlsContext */
	enum sk_tls_version min_version, max_version; /* defaults resolved as Envoy's */
	char *cipher_list;         /* OpenSSL syntax, ':'-joined; NULL: skiff's default (Envoy's) */
	char *curves;              /* ':'-joined groups; NULL: X25519:P-256 */
	char *sigalgs;             /* ':'-joined; NULL: OpenSSL's default */
	size_t n_alpn;
	char **alpn;               /* alpn_protocols in order */

	/* the own certificate: inline/file (tls_certificates[0]) or by SDS (at most one) */
	bool has_cert;
	struct sk_tls_certificate cert;
	bool has_cert_sds;
	struct sk_sds_ref cert_sds;

	/* validation: validation_context (static only), validation_context_sds_secret_config
	 * (SDS only) or combined_validation_context (both: the SDS context merged over the
	 * static default, as Envoy's MergeFrom) */
	bool has_validation;
	struct sk_tls_validation validation;
	bool has_validation_sds;
	struct sk_sds_ref validation_sds;

	/* upstream */
	char *sni;                 /* NULL when not set */
	bool auto_host_sni;        /* the connection passes the host's name as SNI */
	/* downstream */
	bool require_client_certificate;
	bool disable_stateless_resumption; /* no session tickets */
	bool disable_stateful_resumption;  /* no server-side session cache */
	double session_timeout;    /* seconds; < 0: OpenSSL's default (7200) */
	bool prefer_client_ciphers;
};

/* Translate a context. NULL with err ("common_tls_context.tls_params.tls_minimum_protocol_version:
 * TLSv1_0 is not supported (TLS 1.2 and 1.3 only)") when skiff cannot honour it. */
struct sk_tls_context_config *sk_tls_upstream_context_new(
	const Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *uc, char *err, size_t errlen);
struct sk_tls_context_config *sk_tls_downstream_context_new(
	const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *dc, char *err, size_t errlen);
void sk_tls_context_config_free(struct sk_tls_context_config *cfg);

/* A cluster's (upstream) or filter chain's (downstream) TransportSocket: raw_buffer (or no
 * socket) -> 0 with *out NULL; envoy.transport_sockets.tls with the matching context type ->
 * 0 with *out set (caller frees); anything else -EINVAL with err ("typed_config
 * (UpstreamTlsContext): sni: ..."). */
int sk_tls_transport_socket_translate(const Envoy__Config__Core__V3__TransportSocket *ts, bool upstream,
				      struct sk_tls_context_config **out, char *err, size_t errlen);

/* An SDS Secret: tls_certificate or validation_context. */
enum sk_tls_secret_kind {
	SK_TLS_SECRET_CERTIFICATE,
	SK_TLS_SECRET_VALIDATION,
};

struct sk_tls_secret {
	char *name;
	enum sk_tls_secret_kind kind;
	struct sk_tls_certificate cert;       /* CERTIFICATE */
	struct sk_tls_validation validation;  /* VALIDATION */
};

/* NULL with err ("secret 'x': tls_certificate.pkcs12: not supported"). Whether its PEM parses
 * and its key matches its chain is checked by sk_tls_secret_check (proxy/network/tls.h). */
struct sk_tls_secret *sk_tls_secret_new(const Envoy__Extensions__TransportSockets__Tls__V3__Secret *s, char *err,
					size_t errlen);
void sk_tls_secret_free(struct sk_tls_secret *s);

/* out = base with over merged in, as protobuf MergeFrom (Envoy's combined_validation_context):
 * set data sources of `over` replace, SAN matchers append, booleans OR, depth replaces when
 * set. Either may be NULL. out is a deep copy (free with sk_tls_validation_clear). 0 or -ENOMEM. */
int sk_tls_validation_merge(const struct sk_tls_validation *base, const struct sk_tls_validation *over,
			    struct sk_tls_validation *out);
void sk_tls_validation_clear(struct sk_tls_validation *v);

#endif
