/* tls_stats: see tls_stats.h. */
#include "proxy/network/tls_stats.h"

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

void sk_tls_stats_count(struct sk_stats_shard *shard, const struct sk_tls_stats *ts, const struct sk_tls_conn *c,
			bool ok)
{
	if (ok) {
		sk_stat_inc(shard, ts->handshake);
		if (!sk_tls_peer_has_cert(c))
			sk_stat_inc(shard, ts->no_certificate);
		if (sk_tls_session_reused(c))
			sk_stat_inc(shard, ts->session_reused);
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
