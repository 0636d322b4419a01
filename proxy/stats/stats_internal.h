/* stats internals shared by stats.c (store, hot path), tags.c (tag extraction) and render.c
 * (admin output). Private to proxy/stats/; everything here is owned by the store. */
#ifndef SKIFF_PROXY_STATS_INTERNAL_H
#define SKIFF_PROXY_STATS_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "proxy/stats/stats.h"

/* Slot storage: a stat id is the index of its first uint64 slot. Each shard has a fixed table
 * of block pointers, so adding blocks never moves memory a worker is writing. */
#define SK__STATS_BLOCK_SHIFT 10
#define SK__STATS_BLOCK_SLOTS (1u << SK__STATS_BLOCK_SHIFT)
#define SK__STATS_BLOCK_MASK (SK__STATS_BLOCK_SLOTS - 1)
#define SK__STATS_MAX_BLOCKS 4096 /* 4M slots per shard */

/* Histogram layout: bucket counts (not cumulative), overflow, count, sum, min+1 (0: none), max. */
#define SK__HIST_BUCKETS 19
#define SK__HIST_OVERFLOW SK__HIST_BUCKETS
#define SK__HIST_COUNT (SK__HIST_BUCKETS + 1)
#define SK__HIST_SUM (SK__HIST_BUCKETS + 2)
#define SK__HIST_MINP1 (SK__HIST_BUCKETS + 3)
#define SK__HIST_MAX (SK__HIST_BUCKETS + 4)
#define SK__HIST_SLOTS (SK__HIST_BUCKETS + 5)

#define SK__QUANTILES 10
extern const double sk__hist_bounds[SK__HIST_BUCKETS];
extern const double sk__quantiles[SK__QUANTILES];

#define SK__MAX_TAGS 32

struct sk__stats_block {
	uint64_t v[SK__STATS_BLOCK_SLOTS];
	uint8_t used[SK__STATS_BLOCK_SLOTS];
};

struct sk_stats_shard {
	struct sk_stats_store *store;
	struct sk__stats_block *blocks[SK__STATS_MAX_BLOCKS];
};

struct sk__tag {
	const char *name;
	const char *value;
};

/* One registered stat (main thread only). */
struct sk__stat {
	char *name;
	enum sk_stat_type type;
	enum sk_gauge_mode mode;
	sk_stat_id id;
	const char *tag_extracted;    /* interned */
	struct sk__tag *tags;         /* the array is the stat's; the strings are interned */
	size_t n_tags;
};

enum sk__extractor_kind { SK__EXTRACT_REGEX, SK__EXTRACT_TOKENS, SK__EXTRACT_FIXED };

/* A compiled tag extractor, as Envoy's TagExtractor{Re2,StdRegex,Tokens,Fixed}Impl. */
struct sk__extractor {
	enum sk__extractor_kind kind;
	char *name;
	char *prefix;         /* first token the name must start with; "" = try on every name */
	pcre2_code *re;       /* REGEX */
	uint32_t n_groups;
	char *substr;         /* REGEX: skip unless the name contains it ("" = always) */
	char *negative;       /* REGEX: a value that does not count as a match ("" = none) */
	char **tokens;        /* TOKENS: pattern split on '.' */
	size_t n_tokens;
	size_t match_index;   /* TOKENS: index of "$" */
	char *fixed_value;    /* FIXED */
	bool other_same_name; /* another extractor has this name: first match wins */
};

struct sk__matcher_pattern {
	enum sk_name_match_kind kind;
	char *value;
	bool ignore_case;
	pcre2_code *re;
};

struct sk_stats_store {
	/* Registered stats; index 0 is the sink. */
	struct sk__stat *stats;
	size_t n_stats, cap_stats;
	/* slot -> index in stats (only the first slot of each stat is meaningful). */
	uint32_t *slot_stat;
	size_t cap_slot_stat;
	uint32_t next_slot;
	uint32_t n_blocks;

	/* Open-addressing index (type, name) -> stats index + 1; 0 = empty. */
	uint32_t *index;
	uint64_t *index_hash;
	size_t index_cap;

	struct sk_stats_shard **shards;
	size_t n_shards, cap_shards;

	bool reject_all;
	bool inclusion;
	struct sk__matcher_pattern *patterns;
	size_t n_patterns;

	struct sk__extractor *extractors;
	size_t n_extractors;

	char **namespaces;
	size_t n_namespaces;

	pcre2_match_data *md; /* main thread scratch */

	/* Tag strings (tag-extracted names, tag names and values) are shared by every stat that
	 * has them: "cluster.upstream_rq_total" once, a cluster's name once per tag. */
	char **interned;      /* open addressing, NULL = empty */
	size_t n_interned, cap_interned;
};

/* tags.c */
int sk__tags_init(struct sk_stats_store *store, const struct sk_stats_config *config, char *err,
		  size_t errlen);
void sk__tags_free(struct sk_stats_store *store);
/* Fills the stat's tag_extracted/tags (strings interned: owned by the store, not the stat).
 * Returns 0 or -ENOMEM. */
int sk__tags_assign(struct sk_stats_store *store, struct sk__stat *stat);
/* The store's one copy of s[0..n) (NUL-terminated); NULL when out of memory. */
const char *sk__intern(struct sk_stats_store *store, const char *s, size_t n);
void sk__intern_free(struct sk_stats_store *store);

/* stats.c: summed reads used by render.c. */
uint64_t sk__slot_sum(const struct sk_stats_store *store, uint32_t slot);
uint64_t sk__slot_main(const struct sk_stats_store *store, uint32_t slot);
bool sk__slot_used(const struct sk_stats_store *store, uint32_t slot);
void sk__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A histogram's cumulative view summed across shards. */
struct sk__hist_snapshot {
	uint64_t buckets[SK__HIST_BUCKETS]; /* cumulative: count of values <= bound */
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	double quantiles[SK__QUANTILES]; /* NaN when count is 0 */
};
void sk__hist_snapshot(const struct sk_stats_store *store, sk_stat_id id, struct sk__hist_snapshot *out);

#endif
