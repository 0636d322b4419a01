/* stats store: registration, name index, stats_matcher, shard storage and the hot path.
 * Tag extraction lives in tags.c and admin output in render.c. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/stats/stats_internal.h"

/* Envoy's default histogram bucket bounds (ms). */
const double sk__hist_bounds[SK__HIST_BUCKETS] = {
	0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	300000, 600000, 1800000, 3600000,
};
/* The same bounds as integer "le" limits: a recorded value v (integer) lands in bucket i
 * when v <= sk__hist_bounds[i], which for integers is v <= hist_le[i]. */
static const uint64_t hist_le[SK__HIST_BUCKETS] = {
	0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	300000, 600000, 1800000, 3600000,
};
const double sk__quantiles[SK__QUANTILES] = { 0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1 };

void sk__err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- shard storage ---- */

static struct sk__stats_block *block_new(void)
{
	struct sk__stats_block *b = aligned_alloc(64, sizeof(*b));
	if (b)
		memset(b, 0, sizeof(*b));
	return b;
}

static void shard_free(struct sk_stats_shard *shard)
{
	if (!shard)
		return;
	for (size_t i = 0; i < SK__STATS_MAX_BLOCKS && shard->blocks[i]; i++)
		free(shard->blocks[i]);
	free(shard);
}

static struct sk_stats_shard *shard_alloc(struct sk_stats_store *store)
{
	struct sk_stats_shard *shard = calloc(1, sizeof(*shard));
	if (!shard)
		return NULL;
	shard->store = store;
	for (uint32_t i = 0; i < store->n_blocks; i++) {
		if (!(shard->blocks[i] = block_new())) {
			shard_free(shard);
			return NULL;
		}
	}
	if (store->n_shards == store->cap_shards) {
		size_t cap = store->cap_shards ? store->cap_shards * 2 : 8;
		struct sk_stats_shard **s = realloc(store->shards, cap * sizeof(*s));
		if (!s) {
			shard_free(shard);
			return NULL;
		}
		store->shards = s;
		store->cap_shards = cap;
	}
	store->shards[store->n_shards++] = shard;
	return shard;
}

/* Makes blocks [0, n) exist in every shard. A block is fully zeroed before its pointer is
 * published (release), so a worker that sees the pointer sees zeroed memory. */
static int ensure_blocks(struct sk_stats_store *store, uint32_t n)
{
	if (n > SK__STATS_MAX_BLOCKS)
		return -ENOSPC;
	for (uint32_t b = store->n_blocks; b < n; b++) {
		for (size_t s = 0; s < store->n_shards; s++) {
			struct sk_stats_shard *shard = store->shards[s];
			if (shard->blocks[b])
				continue;
			struct sk__stats_block *blk = block_new();
			if (!blk)
				return -ENOMEM;
			__atomic_store_n(&shard->blocks[b], blk, __ATOMIC_RELEASE);
		}
		store->n_blocks = b + 1;
	}
	return 0;
}

static inline struct sk__stats_block *shard_block(const struct sk_stats_shard *shard, uint32_t slot)
{
	return __atomic_load_n(&shard->blocks[slot >> SK__STATS_BLOCK_SHIFT], __ATOMIC_ACQUIRE);
}

uint64_t sk__slot_sum(const struct sk_stats_store *store, uint32_t slot)
{
	uint64_t sum = 0;
	for (size_t s = 0; s < store->n_shards; s++) {
		struct sk__stats_block *b = shard_block(store->shards[s], slot);
		sum += __atomic_load_n(&b->v[slot & SK__STATS_BLOCK_MASK], __ATOMIC_RELAXED);
	}
	return sum;
}

uint64_t sk__slot_main(const struct sk_stats_store *store, uint32_t slot)
{
	struct sk__stats_block *b = shard_block(store->shards[0], slot);
	return __atomic_load_n(&b->v[slot & SK__STATS_BLOCK_MASK], __ATOMIC_RELAXED);
}

bool sk__slot_used(const struct sk_stats_store *store, uint32_t slot)
{
	for (size_t s = 0; s < store->n_shards; s++) {
		struct sk__stats_block *b = shard_block(store->shards[s], slot);
		if (__atomic_load_n(&b->used[slot & SK__STATS_BLOCK_MASK], __ATOMIC_RELAXED))
			return true;
	}
	return false;
}

/* ---- hot path: one writer per shard, so load + store instead of a locked RMW ---- */

static inline void mark_used(struct sk__stats_block *b, uint32_t i)
{
	if (!__atomic_load_n(&b->used[i], __ATOMIC_RELAXED))
		__atomic_store_n(&b->used[i], 1, __ATOMIC_RELAXED);
}

static inline void slot_add(struct sk_stats_shard *shard, sk_stat_id id, uint64_t n)
{
	struct sk__stats_block *b = shard_block(shard, id);
	uint32_t i = id & SK__STATS_BLOCK_MASK;
	__atomic_store_n(&b->v[i], __atomic_load_n(&b->v[i], __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
	mark_used(b, i);
}

void sk_stat_inc(struct sk_stats_shard *shard, sk_stat_id id)
{
	slot_add(shard, id, 1);
}

void sk_stat_add(struct sk_stats_shard *shard, sk_stat_id id, uint64_t n)
{
	slot_add(shard, id, n);
}

void sk_stat_sub(struct sk_stats_shard *shard, sk_stat_id id, uint64_t n)
{
	/* Per-shard values wrap below zero; the sum over shards is still right. */
	slot_add(shard, id, (uint64_t)0 - n);
}

void sk_stat_set(struct sk_stats_shard *shard, sk_stat_id id, uint64_t v)
{
	struct sk__stats_block *b = shard_block(shard, id);
	uint32_t i = id & SK__STATS_BLOCK_MASK;
	__atomic_store_n(&b->v[i], v, __ATOMIC_RELAXED);
	mark_used(b, i);
}

void sk_stat_record(struct sk_stats_shard *shard, sk_stat_id id, uint64_t v)
{
	/* Histograms never span blocks (see alloc_slots), so one block holds all slots. */
	struct sk__stats_block *b = shard_block(shard, id);
	uint64_t *h = &b->v[id & SK__STATS_BLOCK_MASK];
	size_t bucket = SK__HIST_OVERFLOW;
	for (size_t i = 0; i < SK__HIST_BUCKETS; i++) {
		if (v <= hist_le[i]) {
			bucket = i;
			break;
		}
	}
#define BUMP(k, n) __atomic_store_n(&h[k], __atomic_load_n(&h[k], __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
	BUMP(bucket, 1);
	BUMP(SK__HIST_COUNT, 1);
	BUMP(SK__HIST_SUM, v);
#undef BUMP
	uint64_t minp1 = __atomic_load_n(&h[SK__HIST_MINP1], __ATOMIC_RELAXED);
	if (v != UINT64_MAX && (minp1 == 0 || v + 1 < minp1))
		__atomic_store_n(&h[SK__HIST_MINP1], v + 1, __ATOMIC_RELAXED);
	if (v > __atomic_load_n(&h[SK__HIST_MAX], __ATOMIC_RELAXED))
		__atomic_store_n(&h[SK__HIST_MAX], v, __ATOMIC_RELAXED);
	mark_used(b, id & SK__STATS_BLOCK_MASK);
}

/* ---- reading ---- */

static struct sk__stat *stat_of(struct sk_stats_store *store, sk_stat_id id)
{
	if (id == SK_STAT_NONE || id >= store->next_slot)
		return NULL;
	uint32_t idx = store->slot_stat[id];
	if (idx == 0 || idx >= store->n_stats || store->stats[idx].id != id)
		return NULL;
	return &store->stats[idx];
}

uint64_t sk_stats_value(struct sk_stats_store *store, sk_stat_id id)
{
	struct sk__stat *st = stat_of(store, id);
	if (!st)
		return 0;
	switch (st->type) {
	case SK_STAT_COUNTER:
		return sk__slot_sum(store, id);
	case SK_STAT_GAUGE:
		return st->mode == SK_GAUGE_MAIN_ONLY ? sk__slot_main(store, id) : sk__slot_sum(store, id);
	case SK_STAT_HISTOGRAM:
		return sk__slot_sum(store, id + SK__HIST_COUNT);
	}
	return 0;
}

bool sk_stats_used(struct sk_stats_store *store, sk_stat_id id)
{
	return stat_of(store, id) && sk__slot_used(store, id);
}

/* Value at quantile q from cumulative bucket counts: linear interpolation inside the bucket
 * that holds rank q*count, clamped to the recorded [min, max]. */
static double hist_quantile(const struct sk__hist_snapshot *h, const uint64_t *counts, double q)
{
	if (h->count == 0)
		return NAN;
	if (q <= 0)
		return (double)h->min;
	if (q >= 1)
		return (double)h->max;
	double rank = q * (double)h->count;
	uint64_t prev = 0;
	for (size_t i = 0; i <= SK__HIST_BUCKETS; i++) {
		uint64_t cum = prev + counts[i];
		if (counts[i] > 0 && (double)cum >= rank) {
			double lo = i == 0 ? 0 : sk__hist_bounds[i - 1];
			double hi = i == SK__HIST_BUCKETS ? (double)h->max : sk__hist_bounds[i];
			if (lo < (double)h->min)
				lo = (double)h->min;
			if (hi > (double)h->max)
				hi = (double)h->max;
			if (hi < lo)
				hi = lo;
			double v = lo + (hi - lo) * ((rank - (double)prev) / (double)counts[i]);
			return v;
		}
		prev = cum;
	}
	return (double)h->max;
}

void sk__hist_snapshot(const struct sk_stats_store *store, sk_stat_id id, struct sk__hist_snapshot *out)
{
	uint64_t counts[SK__HIST_BUCKETS + 1];
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i <= SK__HIST_BUCKETS; i++)
		counts[i] = sk__slot_sum(store, id + (uint32_t)i);
	out->count = sk__slot_sum(store, id + SK__HIST_COUNT);
	out->sum = sk__slot_sum(store, id + SK__HIST_SUM);
	uint64_t min = UINT64_MAX, max = 0;
	for (size_t s = 0; s < store->n_shards; s++) {
		struct sk__stats_block *b = shard_block(store->shards[s], id);
		const uint64_t *h = &b->v[id & SK__STATS_BLOCK_MASK];
		uint64_t minp1 = __atomic_load_n(&h[SK__HIST_MINP1], __ATOMIC_RELAXED);
		uint64_t mx = __atomic_load_n(&h[SK__HIST_MAX], __ATOMIC_RELAXED);
		if (minp1 && minp1 - 1 < min)
			min = minp1 - 1;
		if (minp1 && mx > max)
			max = mx;
	}
	/* Workers may be mid-update: make the count agree with the buckets we read. */
	uint64_t total = 0;
	for (size_t i = 0; i <= SK__HIST_BUCKETS; i++) {
		total += counts[i];
		if (i < SK__HIST_BUCKETS)
			out->buckets[i] = total;
	}
	out->count = total;
	out->min = total ? min : 0;
	out->max = total ? max : 0;
	if (out->min > out->max)
		out->min = out->max;
	for (size_t q = 0; q < SK__QUANTILES; q++)
		out->quantiles[q] = hist_quantile(out, counts, sk__quantiles[q]);
}

/* ---- stats_matcher ---- */

static bool pattern_matches(struct sk_stats_store *store, const struct sk__matcher_pattern *p,
			    const char *name)
{
	size_t n = strlen(name), m = strlen(p->value);
	switch (p->kind) {
	case SK_NAME_EXACT:
		return p->ignore_case ? strcasecmp(name, p->value) == 0 : strcmp(name, p->value) == 0;
	case SK_NAME_PREFIX:
		return n >= m && (p->ignore_case ? strncasecmp(name, p->value, m) == 0
						 : memcmp(name, p->value, m) == 0);
	case SK_NAME_SUFFIX:
		return n >= m && (p->ignore_case ? strcasecmp(name + n - m, p->value) == 0
						 : memcmp(name + n - m, p->value, m) == 0);
	case SK_NAME_CONTAINS:
		return (p->ignore_case ? strcasestr(name, p->value) : strstr(name, p->value)) != NULL;
	case SK_NAME_REGEX:
		return pcre2_match(p->re, (PCRE2_SPTR)name, n, 0, 0, store->md, NULL) >= 0;
	}
	return false;
}

static bool name_accepted(struct sk_stats_store *store, const char *name)
{
	if (store->reject_all)
		return false;
	if (store->n_patterns == 0)
		return !store->inclusion;
	for (size_t i = 0; i < store->n_patterns; i++) {
		if (pattern_matches(store, &store->patterns[i], name))
			return store->inclusion;
	}
	return !store->inclusion;
}

static int matcher_init(struct sk_stats_store *store, const struct sk_stats_config *c, char *err,
			size_t errlen)
{
	store->reject_all = c->reject_all;
	store->inclusion = c->inclusion;
	if (c->n_patterns == 0)
		return 0;
	store->patterns = calloc(c->n_patterns, sizeof(*store->patterns));
	if (!store->patterns)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_patterns; i++) {
		const struct sk_name_pattern *in = &c->patterns[i];
		struct sk__matcher_pattern *p = &store->patterns[i];
		p->kind = in->kind;
		p->ignore_case = in->ignore_case;
		p->value = strdup(in->value ? in->value : "");
		store->n_patterns = i + 1;
		if (!p->value)
			return -ENOMEM;
		if (p->kind == SK_NAME_REGEX) {
			/* safe_regex in a StringMatcher is a full match. */
			int ec;
			PCRE2_SIZE off;
			uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | (p->ignore_case ? PCRE2_CASELESS : 0);
			p->re = pcre2_compile((PCRE2_SPTR)p->value, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
			if (!p->re) {
				PCRE2_UCHAR msg[160];
				pcre2_get_error_message(ec, msg, sizeof(msg));
				sk__err(err, errlen, "stats_matcher.patterns[%zu].safe_regex: %s at offset %zu",
					i, (const char *)msg, (size_t)off);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* ---- name index ---- */

static uint64_t name_hash(enum sk_stat_type type, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	h = (h ^ (uint64_t)type) * 0x100000001b3ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

static int index_grow(struct sk_stats_store *store)
{
	size_t cap = store->index_cap ? store->index_cap * 2 : 1024;
	uint32_t *idx = calloc(cap, sizeof(*idx));
	uint64_t *hs = calloc(cap, sizeof(*hs));
	if (!idx || !hs) {
		free(idx);
		free(hs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < store->index_cap; i++) {
		if (!store->index[i])
			continue;
		size_t j = store->index_hash[i] & (cap - 1);
		while (idx[j])
			j = (j + 1) & (cap - 1);
		idx[j] = store->index[i];
		hs[j] = store->index_hash[i];
	}
	free(store->index);
	free(store->index_hash);
	store->index = idx;
	store->index_hash = hs;
	store->index_cap = cap;
	return 0;
}

/* Returns the slot in the index where (type, name) is or would go. */
static size_t index_find(const struct sk_stats_store *store, enum sk_stat_type type, const char *name,
			 uint64_t h)
{
	size_t mask = store->index_cap - 1, j = h & mask;
	while (store->index[j]) {
		const struct sk__stat *st = &store->stats[store->index[j] - 1];
		if (store->index_hash[j] == h && st->type == type && strcmp(st->name, name) == 0)
			break;
		j = (j + 1) & mask;
	}
	return j;
}

/* ---- registration ---- */

static int alloc_slots(struct sk_stats_store *store, uint32_t n, uint32_t *first)
{
	uint32_t slot = store->next_slot;
	if ((slot & SK__STATS_BLOCK_MASK) + n > SK__STATS_BLOCK_SLOTS)
		slot = (slot | SK__STATS_BLOCK_MASK) + 1; /* keep a histogram inside one block */
	uint64_t end = (uint64_t)slot + n;
	if (end > (uint64_t)SK__STATS_MAX_BLOCKS * SK__STATS_BLOCK_SLOTS)
		return -ENOSPC;
	int rc = ensure_blocks(store, (uint32_t)((end + SK__STATS_BLOCK_MASK) >> SK__STATS_BLOCK_SHIFT));
	if (rc)
		return rc;
	if (end > store->cap_slot_stat) {
		size_t cap = store->cap_slot_stat ? store->cap_slot_stat : 1024;
		while (cap < end)
			cap *= 2;
		uint32_t *m = realloc(store->slot_stat, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		memset(m + store->cap_slot_stat, 0, (cap - store->cap_slot_stat) * sizeof(*m));
		store->slot_stat = m;
		store->cap_slot_stat = cap;
	}
	*first = slot;
	store->next_slot = (uint32_t)end;
	return 0;
}

static sk_stat_id stat_register(struct sk_stats_store *store, const char *name, enum sk_stat_type type,
				enum sk_gauge_mode mode)
{
	if (!store || !name)
		return SK_STAT_NONE;
	uint64_t h = name_hash(type, name);
	size_t j = index_find(store, type, name, h);
	if (store->index[j])
		return store->stats[store->index[j] - 1].id;
	if (!name_accepted(store, name))
		return SK_STAT_NONE;

	if ((store->n_stats + 1) * 10 > store->index_cap * 7) {
		if (index_grow(store))
			return SK_STAT_NONE;
		j = index_find(store, type, name, h);
	}
	if (store->n_stats == store->cap_stats) {
		size_t cap = store->cap_stats * 2;
		struct sk__stat *s = realloc(store->stats, cap * sizeof(*s));
		if (!s)
			return SK_STAT_NONE;
		store->stats = s;
		store->cap_stats = cap;
	}
	struct sk__stat *st = &store->stats[store->n_stats];
	memset(st, 0, sizeof(*st));
	st->type = type;
	st->mode = mode;
	if (!(st->name = strdup(name)))
		return SK_STAT_NONE;
	uint32_t slot;
	if (sk__tags_assign(store, st) ||
	    alloc_slots(store, type == SK_STAT_HISTOGRAM ? SK__HIST_SLOTS : 1, &slot)) {
		free(st->name);
		free(st->tags);
		return SK_STAT_NONE;
	}
	st->id = slot;
	store->slot_stat[slot] = (uint32_t)store->n_stats;
	store->index[j] = (uint32_t)store->n_stats + 1;
	store->index_hash[j] = h;
	store->n_stats++;
	return slot;
}

sk_stat_id sk_stats_counter(struct sk_stats_store *store, const char *name)
{
	return stat_register(store, name, SK_STAT_COUNTER, SK_GAUGE_SUM);
}

sk_stat_id sk_stats_gauge(struct sk_stats_store *store, const char *name, enum sk_gauge_mode mode)
{
	return stat_register(store, name, SK_STAT_GAUGE, mode);
}

sk_stat_id sk_stats_histogram(struct sk_stats_store *store, const char *name)
{
	return stat_register(store, name, SK_STAT_HISTOGRAM, SK_GAUGE_SUM);
}

static sk_stat_id register_v(struct sk_stats_store *store, enum sk_stat_type type, enum sk_gauge_mode mode,
			     const char *fmt, va_list ap)
{
	char buf[512];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	sk_stat_id id = SK_STAT_NONE;
	if (n < 0) {
		/* nothing */
	} else if ((size_t)n < sizeof(buf)) {
		id = stat_register(store, buf, type, mode);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big) {
			vsnprintf(big, (size_t)n + 1, fmt, ap2);
			id = stat_register(store, big, type, mode);
			free(big);
		}
	}
	va_end(ap2);
	return id;
}

sk_stat_id sk_stats_counterf(struct sk_stats_store *store, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sk_stat_id id = register_v(store, SK_STAT_COUNTER, SK_GAUGE_SUM, fmt, ap);
	va_end(ap);
	return id;
}

sk_stat_id sk_stats_gaugef(struct sk_stats_store *store, enum sk_gauge_mode mode, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sk_stat_id id = register_v(store, SK_STAT_GAUGE, mode, fmt, ap);
	va_end(ap);
	return id;
}

int sk_stats_register_namespace(struct sk_stats_store *store, const char *ns)
{
	for (size_t i = 0; i < store->n_namespaces; i++) {
		if (strcmp(store->namespaces[i], ns) == 0)
			return 0;
	}
	char **n = realloc(store->namespaces, (store->n_namespaces + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	store->namespaces = n;
	if (!(n[store->n_namespaces] = strdup(ns)))
		return -ENOMEM;
	store->n_namespaces++;
	return 0;
}

/* ---- store lifetime ---- */

struct sk_stats_store *sk_stats_store_new(const struct sk_stats_config *config, char *err, size_t errlen)
{
	static const struct sk_stats_config defaults = { .use_all_default_tags = true };
	if (!config)
		config = &defaults;
	struct sk_stats_store *store = calloc(1, sizeof(*store));
	if (!store) {
		sk__err(err, errlen, "out of memory");
		return NULL;
	}
	store->md = pcre2_match_data_create(16, NULL);
	store->cap_stats = 256;
	store->stats = calloc(store->cap_stats, sizeof(*store->stats));
	if (!store->md || !store->stats || index_grow(store) || !shard_alloc(store)) {
		sk__err(err, errlen, "out of memory");
		goto fail;
	}
	int rc = matcher_init(store, config, err, errlen);
	if (rc == 0)
		rc = sk__tags_init(store, config, err, errlen);
	if (rc) {
		if (rc == -ENOMEM)
			sk__err(err, errlen, "out of memory");
		goto fail;
	}
	/* Index 0 / slots [0, SK__HIST_SLOTS): the sink that rejected names write to. */
	struct sk__stat *sink = &store->stats[0];
	sink->name = strdup("");
	sink->type = SK_STAT_HISTOGRAM;
	store->n_stats = 1;
	uint32_t slot;
	if (!sink->name || alloc_slots(store, SK__HIST_SLOTS, &slot)) {
		sk__err(err, errlen, "out of memory");
		goto fail;
	}
	return store;
fail:
	sk_stats_store_free(store);
	return NULL;
}

void sk_stats_store_free(struct sk_stats_store *store)
{
	if (!store)
		return;
	for (size_t i = 0; i < store->n_shards; i++)
		shard_free(store->shards[i]);
	free(store->shards);
	for (size_t i = 0; i < store->n_stats; i++) {
		struct sk__stat *st = &store->stats[i];
		free(st->name);
		free(st->tags);
	}
	sk__intern_free(store);
	free(store->stats);
	free(store->slot_stat);
	free(store->index);
	free(store->index_hash);
	for (size_t i = 0; i < store->n_patterns; i++) {
		free(store->patterns[i].value);
		pcre2_code_free(store->patterns[i].re);
	}
	free(store->patterns);
	sk__tags_free(store);
	for (size_t i = 0; i < store->n_namespaces; i++)
		free(store->namespaces[i]);
	free(store->namespaces);
	pcre2_match_data_free(store->md);
	free(store);
}

struct sk_stats_shard *sk_stats_main_shard(struct sk_stats_store *store)
{
	return store->shards[0];
}

struct sk_stats_shard *sk_stats_shard_new(struct sk_stats_store *store)
{
	return shard_alloc(store);
}
