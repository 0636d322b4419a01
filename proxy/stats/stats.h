/* stats: Envoy-named counters, gauges and histograms, sharded per thread and summed on read.
 * The store (one per process) owns every stat; ids are stable for the process lifetime.
 * Registration and reading happen on the main thread; each worker writes only its shard. */
#ifndef SKIFF_PROXY_STATS_H
#define SKIFF_PROXY_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sk_stat_type {
	SK_STAT_COUNTER,
	SK_STAT_GAUGE,
	SK_STAT_HISTOGRAM,
};

/* How a gauge combines across shards: summed (active connections) or the main shard's
 * value only (server.state). Envoy's NeverImport/Accumulate distinction for hot restart is
 * not modelled. */
enum sk_gauge_mode {
	SK_GAUGE_SUM,
	SK_GAUGE_MAIN_ONLY,
};

typedef uint32_t sk_stat_id;     /* 0 is the "rejected by stats_matcher" id: writes vanish */
#define SK_STAT_NONE ((sk_stat_id)0)

struct sk_stats_store;
struct sk_stats_shard;            /* one per thread that writes stats (main + each worker) */

/* A stat-name matcher from the bootstrap's stats_config.stats_matcher: reject_all, or an
 * inclusion or exclusion list of string matchers (exact, prefix, suffix, contains,
 * safe_regex with PCRE2). */
enum sk_name_match_kind { SK_NAME_EXACT, SK_NAME_PREFIX, SK_NAME_SUFFIX, SK_NAME_CONTAINS, SK_NAME_REGEX };
struct sk_name_pattern {
	enum sk_name_match_kind kind;
	const char *value;
	bool ignore_case;
};

/* A tag extractor (stats_config.stats_tags): regex whose first capture group is removed
 * from the name and whose second capture group (or the last one when there is only one)
 * is the tag value; or a fixed_value tag added to every stat. */
struct sk_tag_spec {
	const char *name;
	const char *regex;        /* NULL when fixed_value is set */
	const char *fixed_value;
};

struct sk_stats_config {
	bool reject_all;
	bool inclusion;                          /* true: only matching names; false: exclusion */
	const struct sk_name_pattern *patterns;  /* copied by sk_stats_store_new */
	size_t n_patterns;
	const struct sk_tag_spec *tags;          /* copied */
	size_t n_tags;
	bool use_all_default_tags;               /* Envoy's built-in extractors first */
};

/* config may be NULL (accept everything, default tags). Returns NULL with err set on an
 * invalid regex. */
struct sk_stats_store *sk_stats_store_new(const struct sk_stats_config *config, char *err,
					  size_t errlen);
void sk_stats_store_free(struct sk_stats_store *store);

/* Shards: the main thread's shard exists from the start; workers get their own (created on the
 * main thread, freed with the store; NULL on allocation failure). */
struct sk_stats_shard *sk_stats_main_shard(struct sk_stats_store *store);
struct sk_stats_shard *sk_stats_shard_new(struct sk_stats_store *store);

/* Registers (or finds) a stat by full name. Same name and type returns the same id.
 * Returns SK_STAT_NONE when the stats_matcher rejects the name. Main thread only. */
sk_stat_id sk_stats_counter(struct sk_stats_store *store, const char *name);
sk_stat_id sk_stats_gauge(struct sk_stats_store *store, const char *name, enum sk_gauge_mode mode);
sk_stat_id sk_stats_histogram(struct sk_stats_store *store, const char *name);
/* printf-style helpers: sk_stats_counterf(store, "cluster.%s.upstream_cx_total", name). */
sk_stat_id sk_stats_counterf(struct sk_stats_store *store, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
sk_stat_id sk_stats_gaugef(struct sk_stats_store *store, enum sk_gauge_mode mode, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Hot path (any thread, its own shard): lock-free, never allocate. The id must come from the
 * matching registration function (a counter id passed to sk_stat_record is a caller bug). */
void sk_stat_inc(struct sk_stats_shard *shard, sk_stat_id id);
void sk_stat_add(struct sk_stats_shard *shard, sk_stat_id id, uint64_t n);
void sk_stat_sub(struct sk_stats_shard *shard, sk_stat_id id, uint64_t n);   /* gauges */
void sk_stat_set(struct sk_stats_shard *shard, sk_stat_id id, uint64_t v);   /* gauges */
void sk_stat_record(struct sk_stats_shard *shard, sk_stat_id id, uint64_t v); /* histograms (ms) */

/* Reading (main thread): values summed across shards (a MAIN_ONLY gauge reads the main shard;
 * a histogram reads its sample count). On a SUM gauge, sk_stat_set sets only the calling
 * shard's contribution. */
uint64_t sk_stats_value(struct sk_stats_store *store, sk_stat_id id);
bool sk_stats_used(struct sk_stats_store *store, sk_stat_id id); /* ever written (?usedonly) */

/* Admin output. `filter` is a PCRE2 regex or NULL; `usedonly` keeps stats ever written;
 * `type` is NULL or one of "Counters", "Gauges", "Histograms", "TextReadouts", "All".
 * The result is a malloc'd NUL-terminated string (caller frees), NULL with err on a bad
 * filter regex or an unknown type. Main thread. */
enum sk_stats_format { SK_STATS_TEXT, SK_STATS_JSON, SK_STATS_PROMETHEUS };
struct sk_stats_query {
	enum sk_stats_format format;
	const char *filter;
	bool usedonly;
	const char *type;
};
char *sk_stats_render(struct sk_stats_store *store, const struct sk_stats_query *q, char *err,
		      size_t errlen);

/* Registers a custom stat namespace (Envoy's CustomStatNamespaces, e.g. "istio"): in
 * Prometheus output a tag-extracted name "istio.istio_requests_total" is emitted as
 * "istio_requests_total", without the "envoy_" prefix. Returns 0 or -ENOMEM. Main thread. */
int sk_stats_register_namespace(struct sk_stats_store *store, const char *ns);

/* Tag extraction of one full name, as used for Prometheus: writes the tag-stripped name and
 * up to max_tags (name, value) pairs into out buffers (truncated to their sizes). Returns the
 * number of tags found. tag_extracted may be NULL. Main thread. Exposed for tests. */
struct sk_stat_tag {
	char name[64];
	char value[256];
};
size_t sk_stats_extract_tags(struct sk_stats_store *store, const char *full_name, char *tag_extracted,
			     size_t len, struct sk_stat_tag *tags, size_t max_tags);

#endif
