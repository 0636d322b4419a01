/* admin handlers: one function per endpoint, Envoy's paths and output formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proxy/admin/admin.h"
#include "proxy/log/log.h"
#include "proxy/server/listener_manager.h"
#include "proxy/server/server.h"
#include "proxy/server/snapshot.h"
#include "xds/pbjson.h"

static void help(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	size_t i, cap = 4096, len = 0;
	char *out = malloc(cap);

	(void)req;
	if (out == NULL) {
		sk_admin_respond(resp, 500, SK_CT_TEXT, "out of memory\n");
		return;
	}
	len += (size_t)snprintf(out, cap, "admin commands are:\n");
	for (i = 0; i < sk_admin_endpoint_count; i++) {
		const struct sk_admin_endpoint *e = &sk_admin_endpoints[i];
		int n = snprintf(out + len, cap - len, "  %s%s: %s\n", e->mutates ? "POST " : "",
				 e->path, e->help);

		if (n > 0 && (size_t)n < cap - len)
			len += (size_t)n;
	}
	sk_admin_respond_owned(resp, 200, SK_CT_TEXT, out);
}

static void ready(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	enum sk_server_state st = sk_server_reported_state(req->server);

	sk_admin_respond(resp, st == SK_STATE_LIVE ? 200 : 503, SK_CT_TEXT, "%s\n",
			 sk_server_state_name(st));
}

static Google__Protobuf__Duration seconds(double s)
{
	Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;

	d.seconds = (int64_t)s;
	return d;
}

static void server_info(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	const struct sk_server *s = req->server;
	const struct sk_options *o = s->opts;
	Envoy__Admin__V3__ServerInfo info = ENVOY__ADMIN__V3__SERVER_INFO__INIT;
	Envoy__Admin__V3__CommandLineOptions cl = ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__INIT;
	Google__Protobuf__Duration up = seconds(ev_now(s->loop) - s->start_time);
	Google__Protobuf__Duration drain = seconds(o->drain_time_s);
	Google__Protobuf__Duration parent = seconds(o->parent_shutdown_time_s);
	Google__Protobuf__Duration flush = GOOGLE__PROTOBUF__DURATION__INIT;
	struct sk_pbjson_encode_opts eo = {.always_print_primitives = true};

	flush.seconds = o->file_flush_interval_msec / 1000;
	flush.nanos = (int32_t)(o->file_flush_interval_msec % 1000) * 1000000;
	info.version = (char *)"skiff/" SKIFF_VERSION "/Clean/RELEASE/OpenSSL";
	info.state = (Envoy__Admin__V3__ServerInfo__State)sk_server_reported_state(s);
	info.uptime_current_epoch = &up;
	info.uptime_all_epochs = &up;
	info.hot_restart_version = (char *)"disabled";
	info.command_line_options = &cl;
	info.node = (Envoy__Config__Core__V3__Node *)sk_server_node(s);
	cl.base_id = o->base_id;
	cl.use_dynamic_base_id = o->use_dynamic_base_id;
	cl.base_id_path = (char *)(o->base_id_path ? o->base_id_path : "");
	cl.concurrency = s->concurrency;
	cl.config_path = (char *)(o->config_path ? o->config_path : "");
	cl.config_yaml = (char *)(o->config_yaml ? o->config_yaml : "");
	cl.allow_unknown_static_fields = o->allow_unknown_static_fields;
	cl.reject_unknown_dynamic_fields = o->reject_unknown_dynamic_fields;
	cl.ignore_unknown_dynamic_fields = o->ignore_unknown_dynamic_fields;
	cl.skip_deprecated_logs = o->skip_deprecated_logs;
	cl.admin_address_path = (char *)(o->admin_address_path ? o->admin_address_path : "");
	cl.local_address_ip_version = strcmp(o->local_address_ip_version, "v6") == 0
					      ? ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__IP_VERSION__v6
					      : ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__IP_VERSION__v4;
	cl.log_level = (char *)o->log_level;
	cl.component_log_level = (char *)(o->component_log_level ? o->component_log_level : "");
	cl.log_format = (char *)(o->log_format ? o->log_format : "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v");
	cl.log_format_escaped = o->log_format_escaped;
	cl.log_path = (char *)(o->log_path ? o->log_path : "");
	cl.service_cluster = (char *)(o->service_cluster ? o->service_cluster : "");
	cl.service_node = (char *)(o->service_node ? o->service_node : "");
	cl.service_zone = (char *)(o->service_zone ? o->service_zone : "");
	cl.file_flush_interval = &flush;
	cl.file_flush_min_size = o->file_flush_min_size_kb * 1024;
	cl.drain_time = &drain;
	cl.drain_strategy = strcmp(o->drain_strategy, "immediate") == 0
				    ? ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__DRAIN_STRATEGY__Immediate
				    : ENVOY__ADMIN__V3__COMMAND_LINE_OPTIONS__DRAIN_STRATEGY__Gradual;
	cl.parent_shutdown_time = &parent;
	cl.mode = (Envoy__Admin__V3__CommandLineOptions__Mode)o->mode;
	cl.disable_hot_restart = o->disable_hot_restart;
	cl.enable_mutex_tracing = o->enable_mutex_tracing;
	cl.restart_epoch = o->restart_epoch;
	cl.cpuset_threads = o->cpuset_threads;
	cl.enable_fine_grain_logging = o->enable_fine_grain_logging;
	cl.socket_path = (char *)(o->socket_path ? o->socket_path : "@envoy_domain_socket");
	cl.socket_mode = o->socket_mode;
	cl.enable_core_dump = o->enable_core_dump;
	/* Envoy prints server_info with always_print_primitive_fields: "state": "LIVE" too. */
	sk_admin_respond_json(resp, 200, sk_pbjson_encode(&info.base, &eo));
}

static void stats_common(const struct sk_admin_request *req, struct sk_admin_response *resp,
			 enum sk_stats_format format)
{
	struct sk_stats_query q = {.format = format};
	char *filter = NULL, *fmt = NULL, *type = NULL, *body;
	char err[256];

	q.usedonly = sk_admin_query_param(req, "usedonly", NULL);
	if (sk_admin_query_param(req, "filter", &filter) && filter[0])
		q.filter = filter;
	if (format == SK_STATS_TEXT && sk_admin_query_param(req, "format", &fmt)) {
		if (strcmp(fmt, "json") == 0) {
			q.format = SK_STATS_JSON;
		} else if (strcmp(fmt, "prometheus") == 0) {
			q.format = SK_STATS_PROMETHEUS;
		} else if (strcmp(fmt, "text") != 0) {
			sk_admin_respond(resp, 400, SK_CT_TEXT, "usage: /stats?format=(text|json|prometheus)\n");
			goto out;
		}
	}
	if (sk_admin_query_param(req, "type", &type))
		q.type = type;
	sk_server_sync_stats(req->server);
	body = sk_stats_render(req->server->stats, &q, err, sizeof(err));
	if (body == NULL)
		sk_admin_respond(resp, 400, SK_CT_TEXT, "Invalid re2 regex: %s\n", err);
	else
		sk_admin_respond_owned(resp, 200, q.format == SK_STATS_JSON ? SK_CT_JSON : SK_CT_TEXT, body);
out:
	free(filter);
	free(fmt);
	free(type);
}

static void stats(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	stats_common(req, resp, SK_STATS_TEXT);
}

static void stats_prometheus(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	stats_common(req, resp, SK_STATS_PROMETHEUS);
}

static const char *address_text(const Envoy__Config__Core__V3__Address *a, char *buf, size_t len)
{
	if (a == NULL)
		snprintf(buf, len, "(none)");
	else if (a->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE)
		snprintf(buf, len, "%s", a->pipe->path);
	else if (a->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
		snprintf(buf, len, strchr(a->socket_address->address, ':') ? "[%s]:%u" : "%s:%u",
			 a->socket_address->address, a->socket_address->port_value);
	else
		snprintf(buf, len, "envoy://internal");
	return buf;
}

static bool wants_json(const struct sk_admin_request *req)
{
	char *fmt = NULL;
	bool json = sk_admin_query_param(req, "format", &fmt) && strcmp(fmt, "json") == 0;

	free(fmt);
	return json;
}

static void listeners(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr =
		req->server->bootstrap->static_resources;
	size_t i, n = sr ? sr->n_listeners : 0;
	char addr[160];

	if (wants_json(req)) {
		json_t *arr = json_array(), *root = json_object();

		for (i = 0; i < n; i++) {
			json_t *st = json_object();
			json_t *la = sk_pbjson_encode(&sr->listeners[i]->address->base, NULL);

			json_object_set_new(st, "name", json_string(sr->listeners[i]->name));
			json_object_set_new(st, "local_address", la);
			json_array_append_new(arr, st);
		}
		json_object_set_new(root, "listener_statuses", arr);
		sk_admin_respond_json(resp, 200, root);
		return;
	}
	{
		char *out = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);

		for (i = 0; f && i < n; i++)
			fprintf(f, "%s::%s\n", sr->listeners[i]->name,
				address_text(sr->listeners[i]->address, addr, sizeof(addr)));
		if (f)
			fclose(f);
		sk_admin_respond_owned(resp, 200, SK_CT_TEXT, out ? out : strdup(""));
	}
}

/* name::<label>::max_*::N for one priority, from the cluster's translated thresholds. */
static void print_thresholds(FILE *f, const struct sk_cluster_config *cc, int prio, const char *label)
{
	const struct sk_circuit_breakers *t = &cc->cb[prio];

	fprintf(f, "%s::%s::max_connections::%u\n", cc->name, label, t->max_connections);
	fprintf(f, "%s::%s::max_pending_requests::%u\n", cc->name, label, t->max_pending_requests);
	fprintf(f, "%s::%s::max_requests::%u\n", cc->name, label, t->max_requests);
	fprintf(f, "%s::%s::max_retries::%u\n", cc->name, label, t->max_retries);
}

static const char *health_flags(enum sk_health h)
{
	switch (h) {
	case SK_HEALTH_UNHEALTHY:
		return "/failed_eds_health";
	case SK_HEALTH_DRAINING:
		return "/pending_dynamic_removal";
	case SK_HEALTH_DEGRADED:
		return "/degraded_eds_health";
	case SK_HEALTH_TIMEOUT:
		return "/failed_eds_health";
	default:
		return "healthy";
	}
}

static const char *eds_health(enum sk_health h)
{
	static const char *const names[] = {"UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED"};

	return names[h];
}

static void host_text(FILE *f, const char *cluster, const struct sk_host *h)
{
	const char *k = h->key;

	fprintf(f, "%s::%s::cx_active::%u\n", cluster, k, (unsigned)atomic_load(&h->cx_active));
	fprintf(f, "%s::%s::cx_connect_fail::%llu\n", cluster, k,
		(unsigned long long)atomic_load(&h->cx_connect_fail));
	fprintf(f, "%s::%s::cx_total::%llu\n", cluster, k, (unsigned long long)atomic_load(&h->cx_total));
	fprintf(f, "%s::%s::rq_active::0\n%s::%s::rq_error::0\n%s::%s::rq_success::0\n"
		   "%s::%s::rq_timeout::0\n%s::%s::rq_total::0\n", cluster, k, cluster, k, cluster, k,
		cluster, k, cluster, k);
	fprintf(f, "%s::%s::hostname::%s\n", cluster, k, h->hostname ? h->hostname : "");
	fprintf(f, "%s::%s::health_flags::%s\n", cluster, k, health_flags(h->health));
	fprintf(f, "%s::%s::weight::%u\n", cluster, k, h->weight);
	fprintf(f, "%s::%s::region::\n%s::%s::zone::\n%s::%s::sub_zone::\n", cluster, k, cluster, k,
		cluster, k);
	fprintf(f, "%s::%s::canary::false\n", cluster, k);
	fprintf(f, "%s::%s::priority::%u\n", cluster, k, h->priority);
	fprintf(f, "%s::%s::success_rate::-1\n%s::%s::local_origin_success_rate::-1\n", cluster, k,
		cluster, k);
}

static json_t *host_json(const struct sk_host *h)
{
	json_t *o = json_object(), *addr = json_object(), *sa = json_object(), *stats = json_array();
	json_t *hs = json_object();
	char ip[SK_ADDR_TEXT_MAX], num[24];
	const char *colon;

	/* "ip:port" / "[ip]:port" back into address and port_value */
	snprintf(ip, sizeof(ip), "%s", h->key[0] == '[' ? h->key + 1 : h->key);
	colon = strrchr(ip, ':');
	if (colon)
		ip[colon - ip - (h->key[0] == '[')] = '\0';
	json_object_set_new(sa, "address", json_string(ip));
	json_object_set_new(sa, "port_value", json_integer(sk_addr_port(&h->addr)));
	json_object_set_new(addr, "socket_address", sa);
	json_object_set_new(o, "address", addr);
#define STAT(name, v)                                                                     \
	do {                                                                              \
		json_t *st = json_object();                                               \
		snprintf(num, sizeof(num), "%llu", (unsigned long long)(v));             \
		json_object_set_new(st, "name", json_string(name));                       \
		json_object_set_new(st, "value", json_string(num));                       \
		json_array_append_new(stats, st);                                         \
	} while (0)
	STAT("cx_connect_fail", atomic_load(&h->cx_connect_fail));
	STAT("cx_total", atomic_load(&h->cx_total));
	STAT("cx_active", atomic_load(&h->cx_active));
#undef STAT
	json_object_set_new(o, "stats", stats);
	json_object_set_new(hs, "eds_health_status", json_string(eds_health(h->health)));
	json_object_set_new(o, "health_status", hs);
	json_object_set_new(o, "weight", json_integer(h->weight));
	if (h->hostname && h->hostname[0])
		json_object_set_new(o, "hostname", json_string(h->hostname));
	json_object_set_new(o, "priority", json_integer(h->priority));
	return o;
}

/* /clusters: every cluster with its circuit-breaker thresholds and live hosts (counters
 * from the data plane), in Envoy's text format (name::key::value) or as
 * envoy.admin.v3.Clusters JSON. */
static void clusters(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	struct sk_snapshot *snap = req->server->snapshot;
	bool json = wants_json(req);
	json_t *statuses = json_array();
	char *out = NULL;
	size_t len = 0, i, k;
	FILE *f = json ? NULL : open_memstream(&out, &len);

	for (i = 0; snap && i < snap->n_clusters; i++) {
		struct sk_cluster *c = snap->clusters[i];
		const struct sk_cluster_config *cc = c->config;
		struct sk_host_set *hs = sk_cluster_hosts(c);

		if (f) {
			fprintf(f, "%s::observability_name::%s\n", cc->name, cc->stat_name);
			print_thresholds(f, cc, 0, "default_priority");
			print_thresholds(f, cc, 1, "high_priority");
			fprintf(f, "%s::added_via_api::%s\n", cc->name, c->added_via_api ? "true" : "false");
			for (k = 0; hs && k < hs->n_hosts; k++)
				host_text(f, cc->name, &hs->hosts[k]);
		} else {
			json_t *st = json_object(), *hosts = json_array();

			for (k = 0; hs && k < hs->n_hosts; k++)
				json_array_append_new(hosts, host_json(&hs->hosts[k]));
			json_object_set_new(st, "name", json_string(cc->name));
			json_object_set_new(st, "observability_name", json_string(cc->stat_name));
			if (c->added_via_api)
				json_object_set_new(st, "added_via_api", json_true());
			json_object_set_new(st, "host_statuses", hosts);
			json_array_append_new(statuses, st);
		}
		sk_host_set_unref(hs);
	}
	if (json) {
		json_t *root = json_object();

		json_object_set_new(root, "cluster_statuses", statuses);
		sk_admin_respond_json(resp, 200, root);
		return;
	}
	json_decref(statuses);
	if (f)
		fclose(f);
	sk_admin_respond_owned(resp, 200, SK_CT_TEXT, out ? out : strdup(""));
}

static char *logging_list(void)
{
	char *out = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "active loggers:\n");
	for (i = 0; i < SK_LOG_COMPONENTS; i++)
		fprintf(f, "  %s: %s\n", sk_log_component_name((enum sk_log_component)i),
			sk_log_level_name(sk_log_get_level((enum sk_log_component)i)));
	fclose(f);
	return out;
}

/* GET lists the loggers; POST ?level=L sets all, ?<logger>=L one, ?paths=a:l,b:l several. */
static void logging(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	char *value = NULL, err[256];
	bool post = strcmp(req->method, "POST") == 0;
	size_t i;

	if (req->query[0] == '\0') {
		sk_admin_respond_owned(resp, 200, SK_CT_TEXT, logging_list());
		return;
	}
	if (!post) {
		sk_admin_respond(resp, 405, SK_CT_TEXT, "This endpoint requires POST\n");
		return;
	}
	if (sk_admin_query_param(req, "level", &value)) {
		int l = sk_log_level_parse(value);

		free(value);
		if (l < 0) {
			sk_admin_respond(resp, 400, SK_CT_TEXT, "error: unknown logger level\n");
			return;
		}
		sk_log_set_level_all((enum sk_log_level)l);
		sk_admin_respond_owned(resp, 200, SK_CT_TEXT, logging_list());
		return;
	}
	if (sk_admin_query_param(req, "paths", &value)) {
		int rc = sk_log_set_component_levels(value, err, sizeof(err));

		free(value);
		if (rc < 0) {
			sk_admin_respond(resp, 400, SK_CT_TEXT, "error: %s\n", err);
			return;
		}
		sk_admin_respond_owned(resp, 200, SK_CT_TEXT, logging_list());
		return;
	}
	for (i = 0; i < SK_LOG_COMPONENTS; i++) {
		if (sk_admin_query_param(req, sk_log_component_name((enum sk_log_component)i), &value)) {
			int l = sk_log_level_parse(value);

			free(value);
			if (l < 0) {
				sk_admin_respond(resp, 400, SK_CT_TEXT, "error: unknown logger level\n");
				return;
			}
			sk_log_set_level((enum sk_log_component)i, (enum sk_log_level)l);
			sk_admin_respond_owned(resp, 200, SK_CT_TEXT, logging_list());
			return;
		}
	}
	sk_admin_respond(resp, 404, SK_CT_TEXT, "error: unknown logger name\n");
}

static void memory(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	struct sk_memory mem;
	json_t *j = json_object();
	char buf[32];

	(void)req;
	sk_server_memory(&mem);
	/* envoy.admin.v3.Memory: uint64 fields, written as strings in proto3 JSON */
#define U64(key, v) (snprintf(buf, sizeof(buf), "%zu", (size_t)(v)), json_object_set_new(j, key, json_string(buf)))
	U64("allocated", mem.allocated);
	U64("heap_size", mem.heap_size);
	U64("pageheap_unmapped", 0);
	U64("pageheap_free", mem.free_bytes);
	U64("total_thread_cache", 0);
	U64("total_physical_bytes", mem.heap_size);
#undef U64
	sk_admin_respond_json(resp, 200, j);
}

static void healthcheck_fail(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	sk_server_set_healthcheck_failed(req->server, true);
	sk_admin_respond(resp, 200, SK_CT_TEXT, "OK\n");
}

static void healthcheck_ok(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	sk_server_set_healthcheck_failed(req->server, false);
	sk_admin_respond(resp, 200, SK_CT_TEXT, "OK\n");
}

static void quitquitquit(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	sk_log_info(SK_LOG_ADMIN, "shutting down from admin handle");
	sk_server_request_shutdown(req->server);
	sk_admin_respond(resp, 200, SK_CT_TEXT, "OK\n");
}

/* pilot-agent's termination step: stop accepting (?inboundonly: only INBOUND listeners),
 * let open connections finish within --drain-time-s. ?graceful is accepted: skiff's drain
 * is always the graceful kind for TCP (nothing is cut before the drain time). */
static void drain_listeners(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	sk_lm_drain(req->server, sk_admin_query_param(req, "inboundonly", NULL), false);
	sk_admin_respond(resp, 200, SK_CT_TEXT, "OK\n");
}

static void certs(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	json_t *j = json_object();

	(void)req;
	json_object_set_new(j, "certificates", json_array());
	sk_admin_respond_json(resp, 200, j);
}

static void runtime(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	json_t *j = json_object();

	(void)req;
	json_object_set_new(j, "entries", json_object());
	json_object_set_new(j, "layers", json_array());
	sk_admin_respond_json(resp, 200, j);
}

static void hot_restart_version(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	(void)req;
	sk_admin_respond(resp, 200, SK_CT_TEXT, "disabled\n");
}

const struct sk_admin_endpoint sk_admin_endpoints[] = {
	{"/", "print out list of admin commands", help, false},
	{"/certs", "print certs on machine", certs, false},
	{"/clusters", "upstream cluster status", clusters, false},
	{"/config_dump", "dump current Envoy configs", sk_admin_config_dump, false},
	{"/drain_listeners", "drain listeners", drain_listeners, true},
	{"/healthcheck/fail", "cause the server to fail health checks", healthcheck_fail, true},
	{"/healthcheck/ok", "cause the server to pass health checks", healthcheck_ok, true},
	{"/help", "print out list of admin commands", help, false},
	{"/hot_restart_version", "print the hot restart compatibility version", hot_restart_version, false},
	{"/listeners", "print listener info", listeners, false},
	{"/logging", "query/change logging levels", logging, false},
	{"/memory", "print current allocation/heap usage", memory, false},
	{"/quitquitquit", "exit the server", quitquitquit, true},
	{"/ready", "print server state, return 200 if LIVE, otherwise return 503", ready, false},
	{"/runtime", "print runtime values", runtime, false},
	{"/server_info", "print server version/status information", server_info, false},
	{"/stats", "print server stats", stats, false},
	{"/stats/prometheus", "print server stats in prometheus format", stats_prometheus, false},
};

const size_t sk_admin_endpoint_count = sizeof(sk_admin_endpoints) / sizeof(sk_admin_endpoints[0]);
