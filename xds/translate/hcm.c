/* hcm: HttpConnectionManager proto -> struct sk_hcm_config. See hcm.h.
 *
 * What is honoured, accepted without effect, or refused (fail closed):
 * - codec_type AUTO (HTTP/2 by its preface, else HTTP/1.1), HTTP1, HTTP2; HTTP3 refused;
 * - route_config inline (sk_route_config_new), or rds by route_config_name over ADS (the
 *   xDS client delivers the RouteConfiguration; rds.config_source must be ads); scoped_routes
 *   refused;
 * - http_filters, in order, envoy.filters.http.router required and last:
 *   . observe-only filters accepted without effect and counted (observe_only): Istio's
 *     metadata exchange (io.istio.http.peer_metadata.Config), istio.stats
 *     (stats.PluginConfig), Wasm stats/metadata-exchange filters (Wasm config named
 *     istio.stats / istio.metadata_exchange), envoy.filters.http.grpc_stats;
 *   . istio.alpn: its alpn_override lists (per upstream HTTP/1.0, 1.1, 2) replace the ALPN a
 *     TLS upstream connection offers (alpn_override); wrapped in a TypedStruct refused;
 *   . envoy.filters.http.compressor accepted without effect, counted (compressors): responses
 *     leave uncompressed, which every client accepts (Istio's 15090 stats listener has three);
 *   . envoy.filters.http.cors: the CorsPolicy of the route, virtual host and route
 *     configuration (typed_per_filter_config, or the deprecated cors fields; translated by
 *     route.c) applied by http_conn with proxy/http/cors.c, before or after the fault filter
 *     as configured; policies on weighted clusters are accepted without effect. Counted in
 *     per_route_cors;
 *   . envoy.filters.http.fault: filter-level and per-route (typed_per_filter_config) abort
 *     (http_status) and delay (fixed_delay) with their percentages, applied by http_conn;
 *     header_abort/header_delay, grpc_status, response_rate_limit and the headers /
 *     downstream_nodes / upstream_cluster restrictions refused (parse_fault);
 *   . rbac, ext_authz, jwt_authn refused (security filters are never passed through);
 *   . any other filter refused naming it, unless is_optional (skipped, skipped_optional);
 *   . disabled filters are skipped (they run only when a route enables them, which skiff
 *     refuses for unknown filters in route translation);
 * - upgrade_configs: the types are kept (websocket, ...); CONNECT and per-upgrade filters refused;
 * - forward_client_cert_details and set_current_client_cert_details (x-forwarded-client-cert);
 *   forward_client_cert_matcher refused;
 * - request_id_extension other than the default uuid, local_reply_config, original_ip_detection_extensions,
 *   early_header_mutation_extensions, path_with_escaped_slashes_action other than the
 *   defaults, internal_address_config with CIDRs: refused (they change behaviour);
 * - tracing, add_user_agent, delayed_close_timeout, drain_timeout, stream_flush_timeout,
 *   access_log_options, proxy_status_config, scheme_header_transformation,
 *   http_protocol_options: accepted without effect;
 * - http2_protocol_options (sk_h2_options_from_pb): the limits and windows honoured by the
 *   HTTP/2 codec; allow_connect and custom_settings_parameters refused; allow_metadata,
 *   stream_error_on_invalid_http_messaging, connection_keepalive accepted without effect. */
#include "xds/translate/hcm.h"

#include "xds/pbjson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager hcm_pb;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter filter_pb;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__UpgradeConfig HcmUpgrade;

#define HCM(x) ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__##x

static void *hfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void *hfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return NULL;
}

static bool type_in(const char *type, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(type, list[i]) == 0)
			return true;
	return false;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Filters that only observe: accepted without effect, counted. */
static bool observe_only(const char *name, const char *type)
{
	static const char *const types[] = {
		"io.istio.http.peer_metadata.Config",
		"istio.envoy.config.filter.http.metadata_exchange.v3alpha1.MetadataExchange",
		"stats.PluginConfig",
		"envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
	};

	if (type_in(type, types, N(types)))
		return true;
	/* older Istio: the stats and metadata-exchange plugins as Wasm */
	return strcmp(type, "envoy.extensions.filters.http.wasm.v3.Wasm") == 0 &&
	       (strcmp(name, "istio.stats") == 0 || strcmp(name, "istio.metadata_exchange") == 0 ||
		strcmp(name, "envoy.wasm.stats") == 0 || strcmp(name, "envoy.wasm.metadata_exchange") == 0);
}

/* istio.alpn: the ALPN list per upstream HTTP version, comma joined. NULL, or why not. */
static const char *parse_alpn(const Google__Protobuf__Any *any, struct sk_hcm_config *hc)
{
	typedef Istio__Envoy__Config__Filter__Http__Alpn__V2alpha1__FilterConfig alpn_pb;
	const char *slash = strrchr(any->type_url, '/');
	const char *why = NULL;
	alpn_pb *m;

	if (strcmp(slash ? slash + 1 : any->type_url, "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig") != 0)
		return "an istio.alpn config wrapped in a TypedStruct is not supported";
	m = istio__envoy__config__filter__http__alpn__v2alpha1__filter_config__unpack(NULL, any->value.len,
										    any->value.data);
	if (m == NULL)
		return "the FilterConfig does not decode";
	for (size_t i = 0; i < m->n_alpn_override && why == NULL; i++) {
		const Istio__Envoy__Config__Filter__Http__Alpn__V2alpha1__FilterConfig__AlpnOverride *o =
			m->alpn_override[i];
		unsigned v = (unsigned)o->upstream_protocol;
		char *out;
		size_t len = 0;

		if (v > SK_ALPN_HTTP2) {
			why = "alpn_override: unknown upstream_protocol";
			break;
		}
		out = hc->alpn_override[v];
		out[0] = '\0';
		for (size_t k = 0; k < o->n_alpn_override; k++) {
			size_t n = strlen(o->alpn_override[k]);

			if (n == 0 || n > 255 || strchr(o->alpn_override[k], ',') != NULL) {
				why = "alpn_override: a protocol name is empty, too long or holds a ','";
				break;
			}
			if (len + n + 2 > sizeof(hc->alpn_override[v])) {
				why = "alpn_override: the protocol list is too long";
				break;
			}
			if (len > 0)
				out[len++] = ',';
			memcpy(out + len, o->alpn_override[k], n + 1);
			len += n;
		}
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return why;
}

static bool security_filter(const char *type)
{
	static const char *const types[] = {
		"envoy.extensions.filters.http.rbac.v3.RBAC",
		"envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
		"envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
	};

	return type_in(type, types, N(types));
}

static int fault_fraction(const Envoy__Type__V3__FractionalPercent *f, struct sk_fraction *out)
{
	static const uint32_t denominators[] = {100, 10000, 1000000};

	if (f == NULL) {
		/* Envoy: an abort or delay without a percentage applies to every request */
		*out = (struct sk_fraction){100, 100};
		return 0;
	}
	if ((unsigned)f->denominator > 2)
		return -1;
	out->denominator = denominators[f->denominator];
	out->numerator = f->numerator > out->denominator ? out->denominator : f->numerator;
	return 0;
}

/* HTTPFault -> sk_fault. What is honoured: abort.http_status, delay.fixed_delay, each with its
 * percentage. Refused (they change who is faulted or how): header_abort / header_delay (the
 * x-envoy-fault-* request headers; without them those headers are ignored, as Envoy does),
 * grpc_status aborts, response_rate_limit, headers, downstream_nodes, upstream_cluster.
 * max_active_faults and the *_runtime keys are accepted without effect (no runtime layer). */
static const char *parse_fault(const uint8_t *data, size_t len, struct sk_fault *out)
{
	Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *f;
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	f = (void *)protobuf_c_message_unpack(&envoy__extensions__filters__http__fault__v3__httpfault__descriptor,
					      NULL, len, data);
	if (f == NULL)
		return "invalid HTTPFault";
	if (f->response_rate_limit != NULL)
		why = "response_rate_limit is not supported";
	else if (f->n_headers > 0 || f->n_downstream_nodes > 0 || (f->upstream_cluster && f->upstream_cluster[0]))
		why = "headers, downstream_nodes and upstream_cluster restrictions are not supported";
	else if (f->abort != NULL) {
		if (f->abort->error_type_case != ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HTTP_STATUS)
			why = "abort: only http_status is supported (not header_abort or grpc_status)";
		else if (f->abort->http_status < 200 || f->abort->http_status >= 600)
			why = "abort.http_status must be in [200, 600)";
		else if (fault_fraction(f->abort->percentage, &out->abort_pct) < 0)
			why = "abort.percentage: unknown denominator";
		out->has_abort = true;
		if (why == NULL)
			out->abort_status = f->abort->http_status;
	}
	if (why == NULL && f->delay != NULL) {
		if (f->delay->fault_delay_secifier_case !=
		    ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_FIXED_DELAY)
			why = "delay: only fixed_delay is supported (not header_delay)";
		else if (fault_fraction(f->delay->percentage, &out->delay_pct) < 0)
			why = "delay.percentage: unknown denominator";
		out->has_delay = true;
		if (why == NULL && f->delay->fixed_delay) /* a oneof: read only when it is fixed_delay */
			out->delay = (double)f->delay->fixed_delay->seconds + f->delay->fixed_delay->nanos / 1e9;
	}
	protobuf_c_message_free_unpacked(&f->base, NULL);
	return why;
}

static const char *check_fault(const Google__Protobuf__Any *any, struct sk_fault *out)
{
	const char *slash = strrchr(any->type_url, '/');

	if (strcmp(slash ? slash + 1 : any->type_url, "envoy.extensions.filters.http.fault.v3.HTTPFault") != 0)
		return "a fault config wrapped in a TypedStruct is not supported";
	return parse_fault(any->value.data, any->value.len, out);
}

/* The per-route configs of one route configuration that the connection manager applies. */
struct per_route {
	struct sk_route_fault *faults;
	unsigned n_faults, n_cors;
};

static int count_per_route(const struct sk_filter_configs *fc, struct per_route *pr, char *err, size_t errlen)
{
	for (size_t i = 0; i < fc->n; i++) {
		if (fc->v[i].disabled || fc->v[i].type == NULL)
			continue;
		if (strcmp(fc->v[i].type, "envoy.extensions.filters.http.fault.v3.HTTPFault") == 0) {
			struct sk_route_fault *rf = realloc(pr->faults, (pr->n_faults + 1) * sizeof(*rf));
			const char *why;

			if (rf == NULL) {
				hfail(err, errlen, "out of memory");
				return -1;
			}
			pr->faults = rf;
			rf[pr->n_faults].fc = fc;
			if ((why = parse_fault(fc->v[i].value, fc->v[i].value_len, &rf[pr->n_faults].fault))) {
				hfail(err, errlen, "typed_per_filter_config[%s]: %s", fc->v[i].filter, why);
				return -1;
			}
			pr->n_faults++;
		} else if (strcmp(fc->v[i].type, "envoy.extensions.filters.http.cors.v3.CorsPolicy") == 0) {
			pr->n_cors++;
		}
	}
	return 0;
}

static int count_route_configs(const struct sk_route_config *rc, struct per_route *pr, char *err, size_t errlen)
{
	if (count_per_route(&rc->filter_configs, pr, err, errlen) < 0)
		return -1;
	for (size_t v = 0; v < rc->n_vhosts; v++) {
		const struct sk_virtual_host *vh = &rc->vhosts[v];

		if (count_per_route(&vh->filter_configs, pr, err, errlen) < 0)
			return -1;
		for (size_t r = 0; r < vh->n_routes; r++) {
			if (count_per_route(&vh->routes[r].filter_configs, pr, err, errlen) < 0)
				return -1;
			for (size_t k = 0; k < vh->routes[r].fwd.n_weighted; k++)
				if (count_per_route(&vh->routes[r].fwd.weighted[k].filter_configs, pr, err, errlen) < 0)
					return -1;
		}
	}
	return 0;
}

int sk_hcm_route_faults(const struct sk_route_config *rc, struct sk_route_fault **faults, unsigned *n,
			char *err, size_t errlen)
{
	struct per_route pr = {0};

	if (count_route_configs(rc, &pr, err, errlen) < 0) {
		free(pr.faults);
		return -1;
	}
	*faults = pr.faults;
	*n = pr.n_faults;
	return 0;
}

static void *filters(const hcm_pb *h, struct sk_hcm_config *hc, char *err, size_t errlen)
{
	bool router = false;
	size_t i;

	for (i = 0; i < h->n_http_filters; i++) {
		const filter_pb *f = h->http_filters[i];
		const char *name = f->name ? f->name : "";
		char type[256];
		const char *why;

		if (router)
			return hfail(err, errlen, "http_filters[%zu] (%s): envoy.filters.http.router must be "
				     "the last filter", i, name);
		if (f->config_type_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY) {
			if (f->is_optional) {
				hc->skipped_optional++;
				continue;
			}
			return hfail(err, errlen, "http_filters[%zu] (%s): filter config discovery (ECDS) is "
				     "not supported yet", i, name);
		}
		sk_typed_config_name(f->config_type_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG
					     ? f->typed_config : NULL, type, sizeof(type));
		if (type[0] == '\0') {
			/* Envoy resolves a filter without typed_config by its name */
			if (strcmp(name, "envoy.filters.http.router") == 0)
				snprintf(type, sizeof(type), "envoy.extensions.filters.http.router.v3.Router");
			else
				return hfail(err, errlen, "http_filters[%zu] (%s): no typed_config", i, name);
		}
		if (strcmp(type, "envoy.extensions.filters.http.router.v3.Router") == 0) {
			router = true;
		} else if (security_filter(type)) {
			return hfail(err, errlen, "http_filters[%zu] (%s): security filter '%s' is not "
				     "implemented yet; refusing rather than passing requests through unchecked",
				     i, name, type);
		} else if (f->disabled) {
			continue;
		} else if (observe_only(name, type)) {
			hc->observe_only++;
		} else if (strcmp(type, "envoy.extensions.filters.http.compressor.v3.Compressor") == 0) {
			/* an uncompressed response is always a valid answer (Istio puts brotli, zstd
			 * and gzip on its 15090 stats listener) */
			hc->compressors++;
		} else if (strcmp(type, "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig") == 0) {
			if (f->typed_config != NULL && (why = parse_alpn(f->typed_config, hc)) != NULL)
				return hfail(err, errlen, "http_filters[%zu] (%s): %s", i, name, why);
			hc->alpn_filter = true;
		} else if (strcmp(type, "envoy.extensions.filters.http.cors.v3.Cors") == 0) {
			hc->cors = true;
			hc->cors_first = !hc->fault;
		} else if (strcmp(type, "envoy.extensions.filters.http.fault.v3.HTTPFault") == 0) {
			if (f->typed_config == NULL)
				memset(&hc->fault_cfg, 0, sizeof(hc->fault_cfg));
			else if ((why = check_fault(f->typed_config, &hc->fault_cfg)) != NULL)
				return hfail(err, errlen, "http_filters[%zu] (%s): %s", i, name, why);
			hc->fault = true;
		} else if (f->is_optional) {
			hc->skipped_optional++;
		} else {
			return hfail(err, errlen, "http_filters[%zu] (%s): HTTP filter '%s' is not supported", i,
				     name, type);
		}
	}
	if (!router)
		return hfail(err, errlen, "http_filters: envoy.filters.http.router is required (last)");
	return hc;
}

/* upgrade_configs: upgrade types to tunnel (websocket and any other Upgrade token Envoy
 * would accept); CONNECT and per-upgrade filter chains are refused. */
static const char *upgrade_error(const struct sk_hcm_config *hc, const HcmUpgrade *u)
{
	if (u->upgrade_type == NULL || u->upgrade_type[0] == '\0')
		return "upgrade_type: must not be empty";
	if (strcasecmp(u->upgrade_type, "CONNECT") == 0)
		return "CONNECT is not supported";
	if (u->n_filters > 0)
		return "filters: per-upgrade filter chains are not supported";
	for (size_t k = 0; k < hc->n_upgrades; k++)
		if (strcasecmp(hc->upgrades[k].type, u->upgrade_type) == 0)
			return "duplicate upgrade_type";
	return NULL;
}

static int upgrades(struct sk_hcm_config *hc, const hcm_pb *h, char *err, size_t errlen)
{
	if (h->n_upgrade_configs == 0)
		return 0;
	hc->upgrades = calloc(h->n_upgrade_configs, sizeof(*hc->upgrades));
	if (hc->upgrades == NULL) {
		hfail(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < h->n_upgrade_configs; i++) {
		const HcmUpgrade *u = h->upgrade_configs[i];
		const char *why = upgrade_error(hc, u);
		char *t;

		if (why != NULL) {
			hfail(err, errlen, "upgrade_configs[%zu]: %s", i, why);
			return -1;
		}
		if ((t = strdup(u->upgrade_type)) == NULL) {
			hfail(err, errlen, "out of memory");
			return -1;
		}
		for (char *q = t; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q + 32);
		hc->upgrades[hc->n_upgrades].type = t;
		hc->upgrades[hc->n_upgrades].enabled = u->enabled == NULL || u->enabled->value;
		hc->n_upgrades++;
	}
	return 0;
}

void sk_h2_options_default(struct sk_h2_options *o)
{
	o->hpack_table_size = 4096;
	o->max_concurrent_streams = 1024;
	o->initial_stream_window_size = 256 * 1024;
	o->initial_connection_window_size = 1024 * 1024;
	o->max_outbound_frames = 10000;
	o->max_outbound_control_frames = 1000;
	o->max_consecutive_inbound_frames_with_empty_payload = 1;
	o->max_inbound_priority_frames_per_stream = 100;
	o->max_inbound_window_update_frames_per_data_frame_sent = 10;
}

int sk_h2_options_from_pb(struct sk_h2_options *o, const Envoy__Config__Core__V3__Http2ProtocolOptions *pb,
			  const char *where, char *err, size_t errlen)
{
	sk_h2_options_default(o);
	if (pb == NULL)
		return 0;
#define U32(f) if (pb->f) o->f = pb->f->value
	U32(hpack_table_size);
	U32(max_concurrent_streams);
	U32(initial_stream_window_size);
	U32(initial_connection_window_size);
	U32(max_outbound_frames);
	U32(max_outbound_control_frames);
	U32(max_consecutive_inbound_frames_with_empty_payload);
	U32(max_inbound_priority_frames_per_stream);
	U32(max_inbound_window_update_frames_per_data_frame_sent);
#undef U32
	if (o->max_concurrent_streams < 1 || o->max_concurrent_streams > 2147483647u) {
		hfail(err, errlen, "%s.max_concurrent_streams: %u is outside 1..2147483647", where, o->max_concurrent_streams);
		return -1;
	}
	if (o->initial_stream_window_size < 65535 || o->initial_stream_window_size > 2147483647u) {
		hfail(err, errlen, "%s.initial_stream_window_size: %u is outside 65535..2147483647", where,
		      o->initial_stream_window_size);
		return -1;
	}
	if (o->initial_connection_window_size < 65535 || o->initial_connection_window_size > 2147483647u) {
		hfail(err, errlen, "%s.initial_connection_window_size: %u is outside 65535..2147483647", where,
		      o->initial_connection_window_size);
		return -1;
	}
	if (o->max_outbound_frames < 1 || o->max_outbound_control_frames < 1) {
		hfail(err, errlen, "%s.max_outbound_frames/max_outbound_control_frames: must be at least 1", where);
		return -1;
	}
	if (pb->allow_connect) {
		hfail(err, errlen, "%s.allow_connect: extended CONNECT is not supported", where);
		return -1;
	}
	if (pb->n_custom_settings_parameters > 0) {
		hfail(err, errlen, "%s.custom_settings_parameters: not supported", where);
		return -1;
	}
	return 0;
}

static void *refuse_fields(const hcm_pb *h, char *err, size_t errlen)
{
	if ((unsigned)h->forward_client_cert_details > SK_XFCC_ALWAYS_FORWARD_ONLY)
		return hfail(err, errlen, "forward_client_cert_details: unknown value %d", h->forward_client_cert_details);
	if (h->request_id_extension != NULL && h->request_id_extension->typed_config != NULL) {
		char type[256];

		sk_typed_config_name(h->request_id_extension->typed_config, type, sizeof(type));
		if (strcmp(type, "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig") != 0)
			return hfail(err, errlen, "request_id_extension: '%s' is not supported", type);
	}
	if (h->local_reply_config != NULL)
		return hfail(err, errlen, "local_reply_config: not supported");
	if (h->n_original_ip_detection_extensions > 0)
		return hfail(err, errlen, "original_ip_detection_extensions: not supported");
	if (h->n_early_header_mutation_extensions > 0)
		return hfail(err, errlen, "early_header_mutation_extensions: not supported");
	if (h->internal_address_config != NULL && h->internal_address_config->n_cidr_ranges > 0)
		return hfail(err, errlen, "internal_address_config.cidr_ranges: not supported");
	if (h->path_with_escaped_slashes_action != HCM(PATH_WITH_ESCAPED_SLASHES_ACTION__IMPLEMENTATION_SPECIFIC_DEFAULT) &&
	    h->path_with_escaped_slashes_action != HCM(PATH_WITH_ESCAPED_SLASHES_ACTION__KEEP_UNCHANGED))
		return hfail(err, errlen, "path_with_escaped_slashes_action: only KEEP_UNCHANGED is supported");
	if (h->path_normalization_options != NULL)
		return hfail(err, errlen, "path_normalization_options: not supported");
	if (h->typed_header_validation_config != NULL)
		return hfail(err, errlen, "typed_header_validation_config: not supported");
	if (h->forward_client_cert_matcher != NULL)
		return hfail(err, errlen, "forward_client_cert_matcher: not supported");
	return (void *)h;
}

struct sk_hcm_config *sk_hcm_config_from_pb(const hcm_pb *h, char *err, size_t errlen)
{
	struct sk_hcm_config *hc = calloc(1, sizeof(*hc));
	char why[512];

	if (hc == NULL)
		return hfail(err, errlen, "out of memory");
	if (h->stat_prefix == NULL || h->stat_prefix[0] == '\0') {
		hfail(err, errlen, "stat_prefix: must not be empty");
		goto fail;
	}
	hc->stat_prefix = strdup(h->stat_prefix);
	switch (h->codec_type) {
	case HCM(CODEC_TYPE__AUTO):
		hc->codec = SK_HCM_CODEC_AUTO;
		break;
	case HCM(CODEC_TYPE__HTTP1):
		hc->codec = SK_HCM_CODEC_HTTP1;
		break;
	case HCM(CODEC_TYPE__HTTP2):
		hc->codec = SK_HCM_CODEC_HTTP2;
		break;
	default:
		hfail(err, errlen, "codec_type: HTTP3 is not supported");
		goto fail;
	}
	if (refuse_fields(h, err, errlen) == NULL)
		goto fail;
	if (sk_h2_options_from_pb(&hc->h2, h->http2_protocol_options, "http2_protocol_options", err, errlen) < 0)
		goto fail;
	if (upgrades(hc, h, err, errlen) < 0)
		goto fail;
	switch (h->route_specifier_case) {
	case HCM(ROUTE_SPECIFIER_ROUTE_CONFIG):
		hc->routes = sk_route_config_new(h->route_config, why, sizeof(why));
		if (hc->routes == NULL) {
			hfail(err, errlen, "route_config: %s", why);
			goto fail;
		}
		break;
	case HCM(ROUTE_SPECIFIER_RDS):
		if (h->rds == NULL || h->rds->route_config_name == NULL || h->rds->route_config_name[0] == '\0') {
			hfail(err, errlen, "rds.route_config_name: missing");
			goto fail;
		}
		if (h->rds->config_source == NULL ||
		    h->rds->config_source->config_source_specifier_case !=
			    ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS) {
			hfail(err, errlen, "rds ('%s').config_source: only ads is supported",
			      h->rds->route_config_name);
			goto fail;
		}
		hc->rds_name = strdup(h->rds->route_config_name);
		if (hc->rds_name == NULL) {
			hfail(err, errlen, "out of memory");
			goto fail;
		}
		break;
	case HCM(ROUTE_SPECIFIER_SCOPED_ROUTES):
		hfail(err, errlen, "scoped_routes: not supported");
		goto fail;
	default:
		hfail(err, errlen, "route_config: missing (one of route_config, rds is required)");
		goto fail;
	}
	if (filters(h, hc, err, errlen) == NULL)
		goto fail;
	if (hc->routes) {
		struct per_route pr = {0};

		if (count_route_configs(hc->routes, &pr, err, errlen) < 0) {
			free(pr.faults);
			goto fail;
		}
		hc->route_faults = pr.faults;
		hc->per_route_faults = pr.n_faults;
		hc->per_route_cors = pr.n_cors;
	}

	hc->use_remote_address = h->use_remote_address && h->use_remote_address->value;
	hc->xff_num_trusted_hops = h->xff_num_trusted_hops;
	hc->skip_xff_append = h->skip_xff_append;
	hc->xfcc = (enum sk_xfcc_mode)h->forward_client_cert_details;
	if (h->set_current_client_cert_details != NULL) {
		const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__SetCurrentClientCertDetails
			*d = h->set_current_client_cert_details;

		hc->xfcc_subject = d->subject != NULL && d->subject->value;
		hc->xfcc_cert = d->cert;
		hc->xfcc_chain = d->chain;
		hc->xfcc_dns = d->dns;
		hc->xfcc_uri = d->uri;
	}
	hc->generate_request_id = h->generate_request_id == NULL || h->generate_request_id->value;
	hc->preserve_external_request_id = h->preserve_external_request_id;
	hc->always_set_request_id_in_response = h->always_set_request_id_in_response;
	hc->server_name = strdup(h->server_name && h->server_name[0] ? h->server_name : "envoy");
	hc->server_header = h->server_header_transformation == HCM(SERVER_HEADER_TRANSFORMATION__APPEND_IF_ABSENT)
				    ? SK_SERVER_APPEND_IF_ABSENT
			    : h->server_header_transformation == HCM(SERVER_HEADER_TRANSFORMATION__PASS_THROUGH)
				    ? SK_SERVER_PASS_THROUGH
				    : SK_SERVER_OVERWRITE;
	hc->via = h->via && h->via[0] ? strdup(h->via) : NULL;
	hc->strip_matching_host_port = h->strip_matching_host_port;
	hc->strip_any_host_port = h->strip_port_mode_case == HCM(STRIP_PORT_MODE_STRIP_ANY_HOST_PORT) &&
				  h->strip_any_host_port;
	hc->stream_idle_timeout = sk_duration_seconds(h->stream_idle_timeout, SK_HCM_DEFAULT_STREAM_IDLE_TIMEOUT);
	hc->request_timeout = sk_duration_seconds(h->request_timeout, 0);
	hc->request_headers_timeout = sk_duration_seconds(h->request_headers_timeout, 0);
	hc->idle_timeout = SK_HCM_DEFAULT_IDLE_TIMEOUT;
	hc->max_headers_count = SK_HCM_DEFAULT_MAX_HEADERS_COUNT;
	if (h->common_http_protocol_options) {
		const Envoy__Config__Core__V3__HttpProtocolOptions *o = h->common_http_protocol_options;

		hc->idle_timeout = sk_duration_seconds(o->idle_timeout, SK_HCM_DEFAULT_IDLE_TIMEOUT);
		hc->max_connection_duration = sk_duration_seconds(o->max_connection_duration, 0);
		if (o->max_headers_count) {
			if (o->max_headers_count->value < 1) {
				hfail(err, errlen, "common_http_protocol_options.max_headers_count: must be at least 1");
				goto fail;
			}
			hc->max_headers_count = o->max_headers_count->value;
		}
		if (o->max_requests_per_connection)
			hc->max_requests_per_connection = o->max_requests_per_connection->value;
		if (o->max_stream_duration) {
			hfail(err, errlen, "common_http_protocol_options.max_stream_duration: not supported yet");
			goto fail;
		}
		hc->underscores = (enum sk_hcm_underscores)o->headers_with_underscores_action;
	}
	hc->max_request_headers_kb = SK_HCM_DEFAULT_MAX_HEADERS_KB;
	if (h->max_request_headers_kb) {
		/* Envoy: 1..8192 */
		if (h->max_request_headers_kb->value < 1 || h->max_request_headers_kb->value > 8192) {
			hfail(err, errlen, "max_request_headers_kb: %u is outside 1..8192",
			      h->max_request_headers_kb->value);
			goto fail;
		}
		hc->max_request_headers_kb = h->max_request_headers_kb->value;
	}
	hc->normalize_path = h->normalize_path && h->normalize_path->value;
	hc->merge_slashes = h->merge_slashes;
	if (sk__access_logs_translate(h->access_log, h->n_access_log, &hc->access_logs, &hc->n_access_logs,
				      "http_connection_manager", why, sizeof(why)) < 0) {
		hfail(err, errlen, "%s", why);
		goto fail;
	}
	if (hc->stat_prefix == NULL || hc->server_name == NULL) {
		hfail(err, errlen, "out of memory");
		goto fail;
	}
	return hc;
fail:
	sk_hcm_config_free(hc);
	return NULL;
}

struct sk_hcm_config *sk_hcm_config_new(const Google__Protobuf__Any *any, char *err, size_t errlen)
{
	hcm_pb *h;
	struct sk_hcm_config *hc;
	const char *slash;

	if (any == NULL)
		return hfail(err, errlen, "no typed_config");
	slash = strrchr(any->type_url, '/');
	if (strcmp(slash ? slash + 1 : any->type_url,
		   "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager") != 0)
		return hfail(err, errlen, "an HttpConnectionManager wrapped in a TypedStruct is not supported");
	h = (void *)protobuf_c_message_unpack(
		&envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
		NULL, any->value.len, any->value.data);
	if (h == NULL)
		return hfail(err, errlen, "invalid HttpConnectionManager");
	hc = sk_hcm_config_from_pb(h, err, errlen);
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return hc;
}

void sk_hcm_config_free(struct sk_hcm_config *hc)
{
	if (hc == NULL)
		return;
	free(hc->stat_prefix);
	free(hc->rds_name);
	sk_route_config_free(hc->routes);
	free(hc->server_name);
	free(hc->via);
	sk__access_logs_free(hc->access_logs, hc->n_access_logs);
	free(hc->route_faults);
	for (size_t i = 0; i < hc->n_upgrades; i++)
		free(hc->upgrades[i].type);
	free(hc->upgrades);
	free(hc);
}
