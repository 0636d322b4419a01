/* tls_stats: see tls_stats.h. */
#include "proxy/network/tls_stats.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The names Envoy reports (BoringSSL's; OpenSSL's cipher names are the same). A negotiated
 * value outside these (a cipher configured by hand, say) is not counted. */
static const char *const named[] = {
#define VERSIONS 0
	"versions.TLSv1.2", "versions.TLSv1.3",
#define CIPHERS 2
	"ciphers.TLS_AES_128_GCM_SHA256", "ciphers.TLS_AES_256_GCM_SHA384", "ciphers.TLS_CHACHA20_POLY1305_SHA256",
	"ciphers.ECDHE-ECDSA-AES128-GCM-SHA256", "ciphers.ECDHE-RSA-AES128-GCM-SHA256",
	"ciphers.ECDHE-ECDSA-AES256-GCM-SHA384", "ciphers.ECDHE-RSA-AES256-GCM-SHA384",
	"ciphers.ECDHE-ECDSA-CHACHA20-POLY1305", "ciphers.ECDHE-RSA-CHACHA20-POLY1305",
	"ciphers.ECDHE-ECDSA-AES128-SHA", "ciphers.ECDHE-RSA-AES128-SHA", "ciphers.AES128-GCM-SHA256",
	"ciphers.AES128-SHA", "ciphers.ECDHE-ECDSA-AES256-SHA", "ciphers.ECDHE-RSA-AES256-SHA",
	"ciphers.AES256-GCM-SHA384", "ciphers.AES256-SHA",
#define CURVES 19
	"curves.X25519", "curves.P-256", "curves.P-384", "curves.P-521",
#define SIGALGS 23
	"sigalgs.ecdsa_secp256r1_sha256", "sigalgs.ecdsa_secp384r1_sha384", "sigalgs.ecdsa_secp521r1_sha512",
	"sigalgs.rsa_pss_rsae_sha256", "sigalgs.rsa_pss_rsae_sha384", "sigalgs.rsa_pss_rsae_sha512",
	"sigalgs.rsa_pkcs1_sha256", "sigalgs.rsa_pkcs1_sha384", "sigalgs.rsa_pkcs1_sha512", "sigalgs.ed25519",
};
#define N_NAMED (sizeof(named) / sizeof(named[0]))

struct sk_tls_named {
	_Atomic sk_stat_id id1[N_NAMED]; /* the stat's id + 1; 0 while not registered */
	atomic_uint pending[N_NAMED];    /* counted before it was */
};

static int find(int from, int to, const char *name)
{
	for (int k = from; k < to && name != NULL; k++)
		if (strcmp(strchr(named[k], '.') + 1, name) == 0)
			return k;
	return -1;
}

static void named_inc(struct sk_stats_shard *shard, struct sk_tls_stats *ts, int k)
{
	struct sk_tls_named *t = atomic_load_explicit(&ts->named, memory_order_acquire);
	sk_stat_id id1;

	if (k < 0)
		return;
	if (t == NULL) {
		struct sk_tls_named *fresh = calloc(1, sizeof(*fresh)), *none = NULL;

		if (fresh == NULL)
			return;
		if (atomic_compare_exchange_strong(&ts->named, &none, fresh))
			t = fresh;
		else
			free(fresh), t = none; /* another worker's table won */
	}
	id1 = atomic_load_explicit(&t->id1[k], memory_order_acquire);
	if (id1 == 0)
		atomic_fetch_add_explicit(&t->pending[k], 1, memory_order_relaxed);
	else if (id1 - 1 != SK_STAT_NONE)
		sk_stat_inc(shard, id1 - 1);
}

void sk_tls_stats_sync(struct sk_tls_stats *ts, struct sk_stats_store *store, struct sk_stats_shard *shard,
		       const char *scope)
{
	struct sk_tls_named *t = atomic_load_explicit(&ts->named, memory_order_acquire);

	for (size_t k = 0; t != NULL && k < N_NAMED; k++) {
		unsigned n;
		sk_stat_id id;

		if (atomic_load_explicit(&t->id1[k], memory_order_relaxed) != 0 ||
		    atomic_load_explicit(&t->pending[k], memory_order_relaxed) == 0)
			continue;
		id = sk_stats_counterf(store, "%s.ssl.%s", scope, named[k]);
		atomic_store_explicit(&t->id1[k], id + 1, memory_order_release);
		/* what workers counted before they could see the id */
		n = atomic_exchange_explicit(&t->pending[k], 0, memory_order_relaxed);
		if (id != SK_STAT_NONE)
			sk_stat_add(shard, id, n);
	}
}

void sk_tls_stats_free(struct sk_tls_stats *ts)
{
	free(atomic_exchange(&ts->named, NULL));
}

void sk_tls_stats_register(struct sk_tls_stats *ts, struct sk_stats_store *store, const char *scope)
{
#define C(field) ts->field = sk_stats_counterf(store, "%s.ssl." #field, scope)
	C(handshake);
	C(connection_error);
	C(no_certificate);
	C(session_reused);
	C(fail_verify_no_cert);
	C(fail_verify_error);
	C(fail_verify_san);
#undef C
}

void sk_tls_stats_count(struct sk_stats_shard *shard, struct sk_tls_stats *ts, const struct sk_tls_conn *c,
			bool ok)
{
	if (ok) {
		struct sk_tls_negotiated n;

		sk_stat_inc(shard, ts->handshake);
		if (!sk_tls_peer_has_cert(c))
			sk_stat_inc(shard, ts->no_certificate);
		if (sk_tls_session_reused(c))
			sk_stat_inc(shard, ts->session_reused);
		sk_tls_negotiated(c, &n);
		named_inc(shard, ts, find(VERSIONS, CIPHERS, n.version));
		named_inc(shard, ts, find(CIPHERS, CURVES, n.cipher));
		named_inc(shard, ts, find(CURVES, SIGALGS, n.curve));
		named_inc(shard, ts, find(SIGALGS, (int)N_NAMED, n.peer_sigalg));
		return;
	}
	switch (sk_tls_failure(c)) {
	case SK_TLS_FAIL_NO_CERT:
		sk_stat_inc(shard, ts->fail_verify_no_cert);
		break;
	case SK_TLS_FAIL_VERIFY_SAN:
		sk_stat_inc(shard, ts->fail_verify_san);
		break;
	case SK_TLS_FAIL_VERIFY_ERROR:
		sk_stat_inc(shard, ts->fail_verify_error);
		break;
	default:
		sk_stat_inc(shard, ts->connection_error);
		break;
	}
}
