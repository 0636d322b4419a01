/* listener: Listener proto -> struct sk_listener_config. See listener.h.
 *
 * What is honoured, accepted without effect, or refused (fail closed):
 * - listener filters: original_dst, tls_inspector, http_inspector; others refused;
 * - network filters: tcp_proxy and http_connection_manager (translated by hcm.c; HTTP/1.1), Istio's observe-only filters (metadata exchange, stats, authn) accepted
 *   without effect; security filters (rbac, ext_authz) and unknown ones refused. */
#include "xds/pbjson.h"
#include "xds/translate/listener.h"

#include "proxy/network/access_log.h"
#include "xds/translate/hcm.h"
#include "xds/translate/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BUFFER_LIMIT (1024 * 1024)
#define DEFAULT_FILTERS_TIMEOUT 15.0
#define DEFAULT_TCP_IDLE_TIMEOUT 3600.0

/* Envoy's default TCP access log format (source/common/formatter). */
#define DEFAULT_TCP_LOG_FORMAT                                                                 \
	"[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "       \
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "             \
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" " \
	"\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"

typedef Envoy__Config__Listener__V3__Listener listener_pb;

static int lfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int lfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *sk_typed_config_name(const Google__Protobuf__Any *any, char *buf, size_t len)
{
	const char *slash;

	buf[0] = '\0';
	if (any == NULL || any->type_url == NULL)
		return buf;
	slash = strrchr(any->type_url, '/');
	snprintf(buf, len, "%s", slash ? slash + 1 : any->type_url);
	if (strcmp(buf, "udpa.type.v1.TypedStruct") == 0 || strcmp(buf, "xds.type.v3.TypedStruct") == 0) {
		/* both TypedStructs have type_url = 1 and value = 2 */
		Udpa__Type__V1__TypedStruct *ts = (void *)protobuf_c_message_unpack(
			&udpa__type__v1__typed_struct__descriptor, NULL, any->value.len, any->value.data);

		buf[0] = '\0';
		if (ts != NULL) {
			slash = strrchr(ts->type_url, '/');
			snprintf(buf, len, "%s", slash ? slash + 1 : ts->type_url);
			protobuf_c_message_free_unpacked(&ts->base, NULL);
		}
	}
	return buf;
}

static int log_json_struct(const Google__Protobuf__Struct *st, struct sk_log_json *out, bool sort,
			   const char *where, char *err, size_t errlen);

static int log_json_value(const Google__Protobuf__Value *v, struct sk_log_json *out, bool sort, const char *where,
			  char *err, size_t errlen)
{
	switch (v->kind_case) {
	case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
		out->kind = SK_LOG_JSON_FORMAT;
		out->format = strdup(v->string_value);
		return out->format ? 0 : lfail(err, errlen, "out of memory");
	case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
		out->kind = SK_LOG_JSON_NUMBER;
		out->number = v->number_value;
		return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
		return log_json_struct(v->struct_value, out, sort, where, err, errlen);
	case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
		out->kind = SK_LOG_JSON_LIST;
		out->items = calloc(v->list_value->n_values ? v->list_value->n_values : 1, sizeof(*out->items));
		if (out->items == NULL)
			return lfail(err, errlen, "out of memory");
		for (size_t i = 0; i < v->list_value->n_values; i++) {
			out->n = i + 1;
			if (log_json_value(v->list_value->values[i], &out->items[i], sort, where, err, errlen) < 0)
				return -EINVAL;
		}
		return 0;
	default:
		/* Envoy's structured formatter takes strings, numbers, objects and lists only */
		return lfail(err, errlen, "%s: only string values, nested structs, list values and number values "
			     "are supported in structured access log format", where);
	}
}

static int json_key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sk_log_json *)a)->key, ((const struct sk_log_json *)b)->key);
}

/* A json_format Struct -> an sk_log_json object, its keys in the configured order (sorted with
 * json_format_options.sort_properties). */
static int log_json_struct(const Google__Protobuf__Struct *st, struct sk_log_json *out, bool sort,
			   const char *where, char *err, size_t errlen)
{
	out->kind = SK_LOG_JSON_OBJECT;
	if (st == NULL)
		return 0;
	out->items = calloc(st->n_fields ? st->n_fields : 1, sizeof(*out->items));
	if (out->items == NULL)
		return lfail(err, errlen, "out of memory");
	for (size_t i = 0; i < st->n_fields; i++) {
		const Google__Protobuf__Struct__FieldsEntry *fe = st->fields[i];

		out->n = i + 1;
		if ((out->items[i].key = strdup(fe->key ? fe->key : "")) == NULL)
			return lfail(err, errlen, "out of memory");
		if (fe->value == NULL)
			return lfail(err, errlen, "%s: '%s' has no value", where, fe->key ? fe->key : "");
		if (log_json_value(fe->value, &out->items[i], sort, where, err, errlen) < 0)
			return -EINVAL;
	}
	if (sort)
		qsort(out->items, out->n, sizeof(*out->items), json_key_cmp);
	return 0;
}

/* A JSON format: typed (log_format.json_format, typed_json_format) or all strings
 * (FileAccessLog.json_format). NULL with err. */
static struct sk_log_format *log_json_format(const Google__Protobuf__Struct *st, bool typed, bool omit, bool sort,
					     const char *where, char *err, size_t errlen)
{
	struct sk_log_format *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->json = calloc(1, sizeof(*f->json))) == NULL) {
		free(f);
		lfail(err, errlen, "out of memory");
		return NULL;
	}
	f->typed = typed;
	f->omit_empty_values = omit;
	if (log_json_struct(st, f->json, sort, where, err, errlen) < 0) {
		sk_log_format_free(f);
		return NULL;
	}
	return f;
}

/* The format of one FileAccessLog: Envoy's default when none (or an empty format string) is
 * given. NULL with err. */
static struct sk_log_format *file_log_format(const Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *f,
					     const char *where, char *err, size_t errlen)
{
	const Envoy__Config__Core__V3__SubstitutionFormatString *lf = f->log_format;
	struct sk_log_format *out;

	switch (f->access_log_format_case) {
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_FORMAT:
		out = sk_log_format_text(f->format[0] ? f->format : DEFAULT_TCP_LOG_FORMAT, false);
		break;
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_JSON_FORMAT:
		return log_json_format(f->json_format, false, false, false, where, err, errlen);
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_TYPED_JSON_FORMAT:
		return log_json_format(f->typed_json_format, true, false, false, where, err, errlen);
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT:
		switch (lf->format_case) {
		case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT:
			out = sk_log_format_text(lf->text_format, lf->omit_empty_values);
			break;
		case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT_SOURCE:
			if (lf->text_format_source == NULL ||
			    lf->text_format_source->specifier_case != ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING) {
				lfail(err, errlen, "%s.log_format.text_format_source: only inline_string is supported", where);
				return NULL;
			}
			out = sk_log_format_text(lf->text_format_source->inline_string, lf->omit_empty_values); /* what Istio sends */
			break;
		case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT:
			return log_json_format(lf->json_format, true, lf->omit_empty_values,
					       lf->json_format_options && lf->json_format_options->sort_properties, where,
					       err, errlen);
		default:
			lfail(err, errlen, "%s.log_format: no format", where);
			return NULL;
		}
		break;
	default:
		out = sk_log_format_text(DEFAULT_TCP_LOG_FORMAT, false);
		break;
	}
	if (out == NULL)
		lfail(err, errlen, "out of memory");
	return out;
}

void sk__access_logs_free(struct sk_access_log_config *logs, size_t n)
{
	for (size_t i = 0; logs && i < n; i++) {
		free(logs[i].path);
		sk_log_format_free(logs[i].format);
	}
	free(logs);
}

int sk__access_logs_translate(Envoy__Config__Accesslog__V3__AccessLog **logs, size_t n,
			      struct sk_access_log_config **out_logs, size_t *n_out, const char *where,
			      char *err, size_t errlen)
{
	size_t i;

	*out_logs = calloc(n ? n : 1, sizeof(**out_logs));
	if (*out_logs == NULL)
		return lfail(err, errlen, "out of memory");
	for (i = 0; i < n; i++) {
		const Envoy__Config__Accesslog__V3__AccessLog *al = logs[i];
		Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *f;
		struct sk_access_log_config *out = &(*out_logs)[*n_out];
		char type[256], w[320];

		sk_typed_config_name(al->typed_config, type, sizeof(type));
		if (strcmp(type, "envoy.extensions.access_loggers.file.v3.FileAccessLog") != 0)
			return lfail(err, errlen, "%s.access_log[%zu]: access logger '%s' is not supported",
				     where, i, type);
		if (al->filter != NULL)
			return lfail(err, errlen, "%s.access_log[%zu].filter: access log filters are not "
				     "supported yet", where, i);
		f = (void *)protobuf_c_message_unpack(&envoy__extensions__access_loggers__file__v3__file_access_log__descriptor,
						      NULL, al->typed_config->value.len, al->typed_config->value.data);
		if (f == NULL)
			return lfail(err, errlen, "%s.access_log[%zu]: invalid FileAccessLog", where, i);
		snprintf(w, sizeof(w), "%s.access_log[%zu]", where, i);
		out->format = file_log_format(f, w, err, errlen);
		out->path = out->format ? strdup(f->path) : NULL;
		protobuf_c_message_free_unpacked(&f->base, NULL);
		if (out->format == NULL)
			return -EINVAL;
		(*n_out)++;
		if (out->path == NULL)
			return lfail(err, errlen, "out of memory");
	}
	return 0;
}

static int translate_tcp_proxy(const Google__Protobuf__Any *any, struct sk_tcp_proxy_config *tc,
			       const char *where, char *err, size_t errlen)
{
	Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = (void *)protobuf_c_message_unpack(
		&envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor, NULL, any->value.len,
		any->value.data);
	size_t i;
	int rc = 0;

	if (tp == NULL)
		return lfail(err, errlen, "%s: invalid TcpProxy", where);
	tc->stat_prefix = strdup(tp->stat_prefix);
	tc->idle_timeout = sk_duration_seconds(tp->idle_timeout, DEFAULT_TCP_IDLE_TIMEOUT);
	tc->max_connect_attempts = tp->max_connect_attempts ? tp->max_connect_attempts->value : 1;
	if (tp->stat_prefix == NULL || tp->stat_prefix[0] == '\0') {
		rc = lfail(err, errlen, "%s.stat_prefix: must not be empty", where);
	} else if (tc->max_connect_attempts < 1) {
		rc = lfail(err, errlen, "%s.max_connect_attempts: must be at least 1", where);
	} else if (tp->cluster_specifier_case ==
		   ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER) {
		tc->cluster = strdup(tp->cluster);
	} else if (tp->cluster_specifier_case ==
		   ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
		const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc = tp->weighted_clusters;

		tc->weighted = calloc(wc->n_clusters ? wc->n_clusters : 1, sizeof(*tc->weighted));
		for (i = 0; tc->weighted && i < wc->n_clusters; i++) {
			tc->weighted[i].name = strdup(wc->clusters[i]->name);
			tc->weighted[i].weight = wc->clusters[i]->weight;
			tc->total_weight += wc->clusters[i]->weight;
			tc->n_weighted++;
		}
		if (tc->total_weight == 0)
			rc = lfail(err, errlen, "%s.weighted_clusters: the weights sum to 0", where);
	} else {
		rc = lfail(err, errlen, "%s: tcp_proxy needs a cluster or weighted_clusters", where);
	}
	if (rc == 0 && tp->tunneling_config)
		rc = lfail(err, errlen, "%s.tunneling_config: not supported", where);
	if (rc == 0)
		rc = sk__access_logs_translate(tp->access_log, tp->n_access_log, &tc->access_logs,
					       &tc->n_access_logs, where, err, errlen);
	protobuf_c_message_free_unpacked(&tp->base, NULL);
	return rc;
}

/* Filters that only observe (Istio telemetry): accepted without effect, counted. */
static bool observe_only(const char *type)
{
	static const char *const types[] = {
		"envoy.tcp.metadataexchange.config.MetadataExchange",
		"stats.PluginConfig",
		"io.istio.network.authn.Config",
		"envoy.extensions.filters.network.peer_metadata.Config",
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

static int translate_chain(const Envoy__Config__Listener__V3__FilterChain *fc, struct sk_filter_chain_config *out,
			   const char *where, char *err, size_t errlen)
{
	size_t i;

	out->name = strdup(fc->name ? fc->name : "");
	if (fc->transport_socket != NULL) {
		char why[512];

		if (sk_tls_transport_socket_translate(fc->transport_socket, false, &out->tls_ctx, why, sizeof(why)) < 0)
			return lfail(err, errlen, "%s.transport_socket: %s", where, why);
		out->tls = out->tls_ctx != NULL;
		out->tls_timeout = sk_duration_seconds(fc->transport_socket_connect_timeout, 0);
	}
	for (i = 0; i < fc->n_filters; i++) {
		const Envoy__Config__Listener__V3__Filter *f = fc->filters[i];
		char type[256], fw[256];
		bool last = i + 1 == fc->n_filters;

		snprintf(fw, sizeof(fw), "%s.filters[%zu]", where, i);
		if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
			return lfail(err, errlen, "%s (%s): filter config discovery (ECDS) is not supported yet",
				     fw, f->name);
		sk_typed_config_name(f->typed_config, type, sizeof(type));
		if (strcmp(type, "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy") == 0) {
			if (!last)
				return lfail(err, errlen, "%s: tcp_proxy must be the last filter", fw);
			if (translate_tcp_proxy(f->typed_config, &out->tcp, fw, err, errlen) < 0)
				return -EINVAL;
			out->tcp_proxy = true;
		} else if (strcmp(type, "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager") == 0) {
			char why[1024];

			if (!last)
				return lfail(err, errlen, "%s: http_connection_manager must be the last filter", fw);
			out->hcm = sk_hcm_config_new(f->typed_config, why, sizeof(why));
			if (out->hcm == NULL)
				return lfail(err, errlen, "%s (%s): %s", fw, f->name, why);
			out->http = true;
		} else if (observe_only(type)) {
			out->observe_only++;
		} else if (type[0] == '\0') {
			return lfail(err, errlen, "%s (%s): no typed_config", fw, f->name);
		} else {
			/* rbac, ext_authz and anything unknown: refusing beats ignoring a policy */
			return lfail(err, errlen, "%s (%s): network filter '%s' is not supported", fw, f->name, type);
		}
	}
	if (!out->tcp_proxy && !out->http)
		return lfail(err, errlen, "%s: the chain has no terminal filter (tcp_proxy or "
			     "http_connection_manager)", where);
	return 0;
}

static int translate_listener_filters(const listener_pb *l, struct sk_listener_config *lc, char *err,
				      size_t errlen)
{
	size_t i;

	for (i = 0; i < l->n_listener_filters; i++) {
		const Envoy__Config__Listener__V3__ListenerFilter *f = l->listener_filters[i];
		char type[256];

		if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG)
			return lfail(err, errlen, "listener '%s': listener_filters[%zu] (%s): no typed_config",
				     l->name, i, f->name);
		if (f->filter_disabled != NULL)
			return lfail(err, errlen, "listener '%s': listener_filters[%zu].filter_disabled: not "
				     "supported", l->name, i);
		sk_typed_config_name(f->typed_config, type, sizeof(type));
		if (strcmp(type, "envoy.extensions.filters.listener.original_dst.v3.OriginalDst") == 0)
			lc->original_dst = true;
		else if (strcmp(type, "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector") == 0)
			lc->tls_inspector = true;
		else if (strcmp(type, "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector") == 0)
			lc->http_inspector = true;
		else
			return lfail(err, errlen, "listener '%s': listener_filters[%zu] (%s): '%s' is not supported",
				     l->name, i, f->name, type);
	}
	return 0;
}

struct sk_listener_config *sk_listener_config_new(const listener_pb *l, char *err, size_t errlen)
{
	struct sk_listener_config *lc = calloc(1, sizeof(*lc));
	char why[512], where[128], stat[SK_ADDR_TEXT_MAX];
	size_t i;

	if (lc == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lc->name = strdup(l->name);
	if (sk_addr_from_pb(l->address, &lc->addr, why, sizeof(why)) < 0) {
		lfail(err, errlen, "listener '%s': address: %s", l->name, why);
		goto fail;
	}
	if (l->stat_prefix && l->stat_prefix[0]) {
		lc->stat_name = strdup(l->stat_prefix);
	} else {
		sk_addr_stat_name(&lc->addr, stat, sizeof(stat));
		lc->stat_name = strdup(stat);
	}
	lc->bind_to_port = l->bind_to_port == NULL || l->bind_to_port->value;
	lc->use_original_dst = l->use_original_dst && l->use_original_dst->value;
	lc->direction = (enum sk_direction)l->traffic_direction;
	lc->buffer_limit = l->per_connection_buffer_limit_bytes ? l->per_connection_buffer_limit_bytes->value
								 : DEFAULT_BUFFER_LIMIT;
	lc->filters_timeout = sk_duration_seconds(l->listener_filters_timeout, DEFAULT_FILTERS_TIMEOUT);
	lc->continue_on_timeout = l->continue_on_listener_filters_timeout;
	if (l->filter_chain_matcher != NULL) {
		lfail(err, errlen, "listener '%s': filter_chain_matcher: not supported (use filter_chain_match)",
		      l->name);
		goto fail;
	}
	if (translate_listener_filters(l, lc, err, errlen) < 0)
		goto fail;
	lc->fcm = sk_fcm_build(l, why, sizeof(why));
	if (lc->fcm == NULL) {
		lfail(err, errlen, "listener '%s': %s", l->name, why);
		goto fail;
	}
	lc->chains = calloc(l->n_filter_chains ? l->n_filter_chains : 1, sizeof(*lc->chains));
	if (lc->chains == NULL)
		goto fail;
	lc->served = true;
	for (i = 0; i < l->n_filter_chains; i++) {
		snprintf(where, sizeof(where), "filter_chains[%zu]", i);
		if (translate_chain(l->filter_chains[i], &lc->chains[i], where, why, sizeof(why)) < 0) {
			lfail(err, errlen, "listener '%s': %s", l->name, why);
			lc->n_chains = i + 1;
			goto fail;
		}
		lc->n_chains = i + 1;
		lc->served &= lc->chains[i].tcp_proxy || lc->chains[i].http;
	}
	if (l->default_filter_chain) {
		lc->default_chain = calloc(1, sizeof(*lc->default_chain));
		if (lc->default_chain == NULL ||
		    translate_chain(l->default_filter_chain, lc->default_chain, "default_filter_chain", why,
				    sizeof(why)) < 0) {
			lfail(err, errlen, "listener '%s': %s", l->name, why);
			goto fail;
		}
		lc->served &= lc->default_chain->tcp_proxy || lc->default_chain->http;
	}
	if (l->n_filter_chains == 0 && l->default_filter_chain == NULL) {
		lfail(err, errlen, "listener '%s': no filter chains", l->name);
		goto fail;
	}
	return lc;
fail:
	sk_listener_config_free(lc);
	return NULL;
}

static void free_chain(struct sk_filter_chain_config *c)
{
	size_t i;

	free(c->name);
	sk_tls_context_config_free(c->tls_ctx);
	free(c->tcp.stat_prefix);
	free(c->tcp.cluster);
	for (i = 0; i < c->tcp.n_weighted; i++)
		free(c->tcp.weighted[i].name);
	free(c->tcp.weighted);
	sk__access_logs_free(c->tcp.access_logs, c->tcp.n_access_logs);
	sk_hcm_config_free(c->hcm);
}

void sk_listener_config_free(struct sk_listener_config *lc)
{
	size_t i;

	if (lc == NULL)
		return;
	for (i = 0; i < lc->n_chains; i++)
		free_chain(&lc->chains[i]);
	free(lc->chains);
	if (lc->default_chain) {
		free_chain(lc->default_chain);
		free(lc->default_chain);
	}
	sk_fcm_free(lc->fcm);
	free(lc->name);
	free(lc->stat_name);
	free(lc);
}
