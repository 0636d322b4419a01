/* Envoy's load balancers over one flat host set (no priorities or localities here; the
 * caller passes the hosts it wants balanced). Sources followed: Envoy's
 * load_balancing_policies/{round_robin,least_request,random,ring_hash,maglev} and
 * common/{load_balancer_impl,thread_aware_lb_impl}.cc. Where skiff differs it says why. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/upstream/lb.h"

#define DEFAULT_CHOICE_COUNT 2
#define DEFAULT_RING_MIN 1024
#define DEFAULT_RING_MAX 8388608       /* also the proto's upper bound for both sizes */
#define DEFAULT_MAGLEV_SIZE 65537
#define MAX_MAGLEV_SIZE 5000011        /* the proto's bound (lte) */

/* Whole re-picks before a policy falls back to scanning the non-excluded hosts. Envoy stops
 * after host_selection_retry_max_attempts and then returns the last (excluded) host; skiff
 * never returns an excluded host when another exists. */
#define PICK_ATTEMPTS 5
/* Ring entries walked past excluded hosts (Envoy's retry `attempt` offset) before the
 * fallback scan; bounds a pick's cost when nearly every host is excluded. */
#define RING_WALK_MAX 4096
/* Smooth weighted schedules start this many picks in at most (seeded), bounding the
 * O(n * picks) start-up cost of a per-worker balancer for very large weight sums. */
#define PREPICK_WORK_MAX (1u << 20)

struct ring_entry {
	uint64_t hash;
	uint32_t host;
};

/* Shared, immutable after sk_lb_table_new. */
struct sk_lb_table {
	enum sk_lb_policy policy;
	uint32_t choice_count;
	size_t n;
	uint32_t *weight;               /* [n] */
	uint64_t total_weight;
	bool equal_weights;
	struct ring_entry *ring;        /* RING_HASH, sorted by (hash, host) */
	size_t ring_len;
	uint32_t *maglev;               /* MAGLEV: [maglev_size] host indices */
	uint64_t maglev_size;
};

/* One per worker; owned by that worker. */
struct sk_lb {
	const struct sk_lb_table *t;
	uint64_t rng;                   /* splitmix64 state */
	uint64_t rr_index;              /* ROUND_ROBIN with equal weights */
	int64_t *rr_current;            /* ROUND_ROBIN weighted: smooth WRR credit per host */
	double *lr_current;             /* LEAST_REQUEST weighted: same, with dynamic weights */
};

/* ---- xxHash64 (from the public XXH64 specification) ---- */

#define XXP1 0x9E3779B185EBCA87ULL
#define XXP2 0xC2B2AE3D27D4EB4FULL
#define XXP3 0x165667B19E3779F9ULL
#define XXP4 0x85EBCA77C2B2AE63ULL
#define XXP5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t xx_round(uint64_t acc, uint64_t lane)
{
	acc += lane * XXP2;
	acc = rotl64(acc, 31);
	return acc * XXP1;
}

static inline uint64_t xx_merge(uint64_t h, uint64_t v)
{
	h ^= xx_round(0, v);
	return h * XXP1 + XXP4;
}

static uint64_t xxh64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data, *end = p + len;
	uint64_t h;

	if (len >= 32) {
		uint64_t v1 = seed + XXP1 + XXP2, v2 = seed + XXP2, v3 = seed, v4 = seed - XXP1;

		do {
			v1 = xx_round(v1, le64(p));
			v2 = xx_round(v2, le64(p + 8));
			v3 = xx_round(v3, le64(p + 16));
			v4 = xx_round(v4, le64(p + 24));
			p += 32;
		} while (end - p >= 32);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		h = xx_merge(h, v1);
		h = xx_merge(h, v2);
		h = xx_merge(h, v3);
		h = xx_merge(h, v4);
	} else {
		h = seed + XXP5;
	}
	h += (uint64_t)len;
	while (end - p >= 8) {
		h ^= xx_round(0, le64(p));
		h = rotl64(h, 27) * XXP1 + XXP4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)le32(p) * XXP1;
		h = rotl64(h, 23) * XXP2 + XXP3;
		p += 4;
	}
	while (p < end) {
		h ^= (uint64_t)*p * XXP5;
		h = rotl64(h, 11) * XXP1;
		p++;
	}
	h ^= h >> 33;
	h *= XXP2;
	h ^= h >> 29;
	h *= XXP3;
	h ^= h >> 32;
	return h;
}

uint64_t sk_lb_hash(const void *data, size_t len)
{
	return xxh64(data, len, 0);
}

/* ---- randomness: splitmix64, one state per worker ---- */

static inline uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* ---- building the shared table ---- */

static bool is_prime(uint64_t v)
{
	if (v < 2)
		return false;
	if (v % 2 == 0)
		return v == 2;
	for (uint64_t d = 3; d * d <= v; d += 2)
		if (v % d == 0)
			return false;
	return true;
}

static int cmp_ring_entry(const void *a, const void *b)
{
	const struct ring_entry *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->host > y->host) - (x->host < y->host);
}

/* Envoy's RingHashLoadBalancer::Ring: with weights normalized to sum 1, scale the ring so
 * the lightest host gets a whole number of hashes (at least min_size in total), capped at
 * max_size; then walk the hosts in order keeping running sums, giving each host the hashes
 * xxHash64("<key>_<i>") for i = 0, 1, ... until the running count reaches its target. */
static int build_ring(struct sk_lb_table *t, const struct sk_lb_host *hosts, uint64_t min_size,
		      uint64_t max_size)
{
	double min_w = 1.0, scale, current = 0.0, target = 0.0;
	size_t count = 0, maxkey = 0, at = 0;
	char *buf;

	for (size_t i = 0; i < t->n; i++) {
		double w = (double)t->weight[i] / (double)t->total_weight;

		if (w < min_w)
			min_w = w;
		size_t kl = strlen(hosts[i].key);
		if (kl > maxkey)
			maxkey = kl;
	}
	scale = fmin(ceil(min_w * (double)min_size) / min_w, (double)max_size);

	/* Count first (same arithmetic as the fill below), so the ring is allocated once. */
	for (size_t i = 0; i < t->n; i++) {
		target += scale * ((double)t->weight[i] / (double)t->total_weight);
		while (current < target) {
			current += 1.0;
			count++;
		}
	}
	t->ring = malloc((count ? count : 1) * sizeof(*t->ring));
	buf = malloc(maxkey + 2 + 20 + 1);
	if (t->ring == NULL || buf == NULL) {
		free(buf);
		return -ENOMEM;
	}
	current = target = 0.0;
	for (size_t i = 0; i < t->n; i++) {
		size_t kl = strlen(hosts[i].key);

		memcpy(buf, hosts[i].key, kl);
		buf[kl] = '_';
		target += scale * ((double)t->weight[i] / (double)t->total_weight);
		for (uint64_t r = 0; current < target; r++) {
			int dl = snprintf(buf + kl + 1, 21, "%llu", (unsigned long long)r);

			t->ring[at].hash = xxh64(buf, kl + 1 + (size_t)dl, 0);
			t->ring[at].host = (uint32_t)i;
			at++;
			current += 1.0;
		}
	}
	free(buf);
	t->ring_len = at;
	qsort(t->ring, t->ring_len, sizeof(*t->ring), cmp_ring_entry);
	return 0;
}

struct maglev_build {
	const char *key;
	uint32_t host;
	uint64_t offset, skip, next;
	double weight, target;
};

static int cmp_maglev_key(const void *a, const void *b)
{
	const struct maglev_build *x = a, *y = b;
	int c = strcmp(x->key, y->key);   /* bytewise, as std::string_view's compare */

	if (c != 0)
		return c;
	return (x->host > y->host) - (x->host < y->host);
}

/* Envoy's OriginalMaglevTable: hosts sorted by key (so the fill order is stable), each with
 * offset = xxHash64(key, 0) % M and skip = xxHash64(key, 1) % (M - 1) + 1; rounds fill the
 * table, a host of normalized weight w taking a slot in round k when k * w >= its target,
 * the target growing by the largest normalized weight each time it takes one. */
static int build_maglev(struct sk_lb_table *t, const struct sk_lb_host *hosts, uint64_t m)
{
	struct maglev_build *b;
	double max_w = 0.0;
	uint64_t filled = 0;

	t->maglev_size = m;
	t->maglev = malloc(m * sizeof(*t->maglev));
	b = malloc((t->n ? t->n : 1) * sizeof(*b));
	if (t->maglev == NULL || b == NULL) {
		free(b);
		return -ENOMEM;
	}
	for (uint64_t s = 0; s < m; s++)
		t->maglev[s] = UINT32_MAX;
	for (size_t i = 0; i < t->n; i++) {
		size_t kl = strlen(hosts[i].key);

		b[i] = (struct maglev_build){
			.key = hosts[i].key,
			.host = (uint32_t)i,
			.offset = xxh64(hosts[i].key, kl, 0) % m,
			.skip = xxh64(hosts[i].key, kl, 1) % (m - 1) + 1,
			.weight = (double)t->weight[i] / (double)t->total_weight,
		};
		if (b[i].weight > max_w)
			max_w = b[i].weight;
	}
	qsort(b, t->n, sizeof(*b), cmp_maglev_key);
	for (uint32_t round = 1; t->n > 0 && filled < m; round++) {
		for (size_t i = 0; i < t->n && filled < m; i++) {
			struct maglev_build *e = &b[i];
			uint64_t c;

			if ((double)round * e->weight < e->target)
				continue;
			e->target += max_w;
			c = (e->offset + e->skip * e->next) % m;
			while (t->maglev[c] != UINT32_MAX) {
				e->next++;
				c = (e->offset + e->skip * e->next) % m;
			}
			t->maglev[c] = e->host;
			e->next++;
			filled++;
		}
	}
	free(b);
	return 0;
}

struct sk_lb_table *sk_lb_table_new(const struct sk_lb_config *cfg, const struct sk_lb_host *hosts,
				    size_t n, char *err, size_t errlen)
{
	struct sk_lb_table *t;
	uint64_t ring_min = cfg->ring_min_size ? cfg->ring_min_size : DEFAULT_RING_MIN;
	uint64_t ring_max = cfg->ring_max_size ? cfg->ring_max_size : DEFAULT_RING_MAX;
	uint64_t maglev_size = cfg->maglev_table_size ? cfg->maglev_table_size : DEFAULT_MAGLEV_SIZE;
	uint32_t choice_count = cfg->choice_count ? cfg->choice_count : DEFAULT_CHOICE_COUNT;
	bool hashed = cfg->policy == SK_LB_RING_HASH || cfg->policy == SK_LB_MAGLEV;
	uint64_t sum = 0;

	if (err && errlen)
		err[0] = '\0';
	switch (cfg->policy) {
	case SK_LB_ROUND_ROBIN:
	case SK_LB_RANDOM:
		break;
	case SK_LB_LEAST_REQUEST:
		if (choice_count < 2) {
			snprintf(err, errlen, "least_request_lb_config.choice_count: %u must be >= 2",
				 choice_count);
			return NULL;
		}
		break;
	case SK_LB_RING_HASH:
		if (ring_min > DEFAULT_RING_MAX || ring_max > DEFAULT_RING_MAX) {
			snprintf(err, errlen, "ring_hash_lb_config: ring sizes must be <= %d",
				 DEFAULT_RING_MAX);
			return NULL;
		}
		if (ring_min > ring_max) {
			snprintf(err, errlen,
				 "ring_hash_lb_config: minimum_ring_size (%llu) > maximum_ring_size (%llu)",
				 (unsigned long long)ring_min, (unsigned long long)ring_max);
			return NULL;
		}
		break;
	case SK_LB_MAGLEV:
		if (maglev_size > MAX_MAGLEV_SIZE) {
			snprintf(err, errlen, "maglev_lb_config.table_size: %llu must be <= %d",
				 (unsigned long long)maglev_size, MAX_MAGLEV_SIZE);
			return NULL;
		}
		if (!is_prime(maglev_size)) {
			snprintf(err, errlen, "maglev_lb_config.table_size: %llu is not a prime number",
				 (unsigned long long)maglev_size);
			return NULL;
		}
		break;
	default:
		snprintf(err, errlen, "lb_policy: unknown policy %d", (int)cfg->policy);
		return NULL;
	}
	if (n > (size_t)INT_MAX) {
		snprintf(err, errlen, "hosts: too many (%zu)", n);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (hosts[i].weight == 0) {
			snprintf(err, errlen, "hosts[%zu].load_balancing_weight: must be >= 1", i);
			return NULL;
		}
		if (hashed && (hosts[i].key == NULL || hosts[i].key[0] == '\0')) {
			snprintf(err, errlen, "hosts[%zu]: empty hash key", i);
			return NULL;
		}
		sum += hosts[i].weight;
	}
	/* Envoy validates this too (validateEndpoints): weights sum within uint32. */
	if (sum > UINT32_MAX) {
		snprintf(err, errlen, "hosts: sum of load_balancing_weight %llu exceeds %u",
			 (unsigned long long)sum, UINT32_MAX);
		return NULL;
	}

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto nomem;
	t->policy = cfg->policy;
	t->choice_count = choice_count;
	t->n = n;
	t->total_weight = sum;
	t->equal_weights = true;
	t->weight = malloc((n ? n : 1) * sizeof(*t->weight));
	if (t->weight == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		t->weight[i] = hosts[i].weight;
		if (hosts[i].weight != hosts[0].weight)
			t->equal_weights = false;
	}
	if (n > 0 && cfg->policy == SK_LB_RING_HASH && build_ring(t, hosts, ring_min, ring_max) != 0)
		goto nomem;
	if (cfg->policy == SK_LB_MAGLEV && build_maglev(t, hosts, maglev_size) != 0)
		goto nomem;
	return t;
nomem:
	snprintf(err, errlen, "out of memory building the load balancer");
	sk_lb_table_free(t);
	return NULL;
}

void sk_lb_table_free(struct sk_lb_table *t)
{
	if (t == NULL)
		return;
	free(t->weight);
	free(t->ring);
	free(t->maglev);
	free(t);
}

/* ---- smooth weighted round robin ---- */

/* One nginx-style step over the hosts not excluded: each gains its weight, the one with the
 * most credit (first on ties) is picked and pays the total. Over any run of W picks (W the
 * total weight) host i is picked exactly weight[i] times, evenly spread. Excluded hosts sit
 * the step out without gaining credit, so the rest stay smooth among themselves. */
static int swrr_step(struct sk_lb *lb, const bool *excluded)
{
	const struct sk_lb_table *t = lb->t;
	int64_t total = 0;
	int best = -1;

	for (size_t i = 0; i < t->n; i++) {
		if (excluded && excluded[i])
			continue;
		lb->rr_current[i] += t->weight[i];
		total += t->weight[i];
		if (best < 0 || lb->rr_current[i] > lb->rr_current[best])
			best = (int)i;
	}
	if (best >= 0)
		lb->rr_current[best] -= total;
	return best;
}

/* The same scheme for weighted least request, with Envoy's dynamic weight
 * weight / (active + 1)^active_request_bias (bias 1.0). Envoy uses an EDF scheduler that
 * re-reads a host's weight when it is picked; here every host's weight is re-read at every
 * pick, so a host that just got busy loses share immediately. O(n) per pick. */
static int lr_weighted_step(struct sk_lb *lb, const uint32_t *active, const bool *excluded)
{
	const struct sk_lb_table *t = lb->t;
	double total = 0.0;
	int best = -1;

	for (size_t i = 0; i < t->n; i++) {
		double w;

		if (excluded && excluded[i])
			continue;
		w = (double)t->weight[i] / ((active ? (double)active[i] : 0.0) + 1.0);
		lb->lr_current[i] += w;
		total += w;
		if (best < 0 || lb->lr_current[i] > lb->lr_current[best])
			best = (int)i;
	}
	if (best >= 0)
		lb->lr_current[best] -= total;
	return best;
}

struct sk_lb *sk_lb_new(const struct sk_lb_table *t, uint64_t seed)
{
	struct sk_lb *lb = calloc(1, sizeof(*lb));
	uint64_t prepicks = 0;

	if (lb == NULL)
		return NULL;
	lb->t = t;
	lb->rng = seed;
	/* Envoy starts each worker's rotation at a random point (seed_ from the random
	 * generator): the unweighted index starts there and the EDF schedule is built "with
	 * picks". skiff derives both from the seed. */
	lb->rr_index = next_random(&lb->rng);
	if (t->n > 1 && !t->equal_weights) {
		uint64_t span = t->total_weight, cap = PREPICK_WORK_MAX / t->n;

		if (cap == 0)
			cap = 1;
		if (span > cap)
			span = cap;
		prepicks = next_random(&lb->rng) % span;
	}
	if (t->policy == SK_LB_ROUND_ROBIN && t->n > 1 && !t->equal_weights) {
		lb->rr_current = calloc(t->n, sizeof(*lb->rr_current));
		if (lb->rr_current == NULL)
			goto fail;
		for (uint64_t i = 0; i < prepicks; i++)
			swrr_step(lb, NULL);
	}
	if (t->policy == SK_LB_LEAST_REQUEST && t->n > 1 && !t->equal_weights) {
		lb->lr_current = calloc(t->n, sizeof(*lb->lr_current));
		if (lb->lr_current == NULL)
			goto fail;
		for (uint64_t i = 0; i < prepicks; i++)
			lr_weighted_step(lb, NULL, NULL);
	}
	return lb;
fail:
	sk_lb_free(lb);
	return NULL;
}

void sk_lb_free(struct sk_lb *lb)
{
	if (lb == NULL)
		return;
	free(lb->rr_current);
	free(lb->lr_current);
	free(lb);
}

/* ---- picking ---- */

static inline bool is_excluded(const bool *excluded, size_t i)
{
	return excluded != NULL && excluded[i];
}

/* The r-th (mod count) host not excluded; `count` is how many there are (> 0). */
static int nth_allowed(const struct sk_lb_table *t, const bool *excluded, size_t count, uint64_t r)
{
	size_t want = (size_t)(r % count);

	for (size_t i = 0; i < t->n; i++)
		if (!is_excluded(excluded, i) && want-- == 0)
			return (int)i;
	return -1;
}

/* The first host not excluded at or after `start`, wrapping. */
static int scan_from(const struct sk_lb_table *t, const bool *excluded, uint64_t start)
{
	for (size_t k = 0; k < t->n; k++) {
		size_t i = (size_t)((start + k) % t->n);

		if (!is_excluded(excluded, i))
			return (int)i;
	}
	return -1;
}

/* Envoy's unweighted least request: choice_count hosts drawn at random (with replacement),
 * the one with fewest active requests wins, the earlier draw on ties. Draws come from the
 * allowed hosts only when `allowed` is nonzero (the fallback). */
static int p2c(struct sk_lb *lb, const uint32_t *active, const bool *excluded, size_t allowed)
{
	const struct sk_lb_table *t = lb->t;
	int best = -1;

	for (uint32_t c = 0; c < t->choice_count; c++) {
		uint64_t r = next_random(&lb->rng);
		int i = allowed ? nth_allowed(t, excluded, allowed, r) : (int)(r % t->n);

		if (best < 0 || (active && active[i] < active[best]))
			best = i;
	}
	return best;
}

/* Ketama lookup as Envoy's Ring::chooseHost: the first entry whose hash is >= h, wrapping
 * to the start past the last entry. */
static size_t ring_find(const struct sk_lb_table *t, uint64_t h)
{
	size_t lo = 0, hi = t->ring_len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == t->ring_len ? 0 : lo;
}

static int pick_ring(struct sk_lb *lb, uint64_t h, const bool *excluded)
{
	const struct sk_lb_table *t = lb->t;
	size_t pos, walk;

	if (t->ring_len == 0)
		return -1;
	pos = ring_find(t, h);
	if (excluded == NULL)
		return (int)t->ring[pos].host;
	/* Envoy's retry attempt k takes the entry k places further on; walking to the next
	 * entry of a host not excluded sends a key exactly where it would go on a ring
	 * without the excluded hosts' entries. */
	walk = t->ring_len < RING_WALK_MAX ? t->ring_len : RING_WALK_MAX;
	for (size_t k = 0; k < walk; k++) {
		uint32_t host = t->ring[(pos + k) % t->ring_len].host;

		if (!excluded[host])
			return (int)host;
	}
	return scan_from(t, excluded, h);
}

static int pick_maglev(struct sk_lb *lb, uint64_t h, const bool *excluded)
{
	const struct sk_lb_table *t = lb->t;

	for (uint32_t attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
		/* Envoy's retry: flip most bits of the hash, h ^ (2^64 - attempt). */
		uint64_t hh = attempt ? h ^ (0 - (uint64_t)attempt) : h;
		uint32_t host = t->maglev[hh % t->maglev_size];

		if (!is_excluded(excluded, host))
			return (int)host;
	}
	return scan_from(t, excluded, h);
}

int sk_lb_pick(struct sk_lb *lb, uint64_t hash, bool has_hash, const uint32_t *active,
	       const bool *excluded)
{
	const struct sk_lb_table *t = lb->t;
	size_t allowed = t->n;

	if (t->n == 0)
		return -1;
	if (excluded) {
		allowed = 0;
		for (size_t i = 0; i < t->n; i++)
			allowed += !excluded[i];
		if (allowed == 0)
			return -1;
		if (allowed == t->n)
			excluded = NULL;
	}
	if (t->n == 1)
		return 0;

	switch (t->policy) {
	case SK_LB_ROUND_ROBIN:
		if (lb->rr_current)
			return swrr_step(lb, excluded);
		/* Envoy's unweighted path: hosts[index++ % n]; a rejected host costs a step, as
		 * Envoy's re-pick does. At most n steps reach an allowed host. */
		for (size_t k = 0; k < t->n; k++) {
			size_t i = (size_t)(lb->rr_index++ % t->n);

			if (!is_excluded(excluded, i))
				return (int)i;
		}
		return -1;
	case SK_LB_LEAST_REQUEST:
		if (lb->lr_current)
			return lr_weighted_step(lb, active, excluded);
		for (int a = 0; a < PICK_ATTEMPTS; a++) {
			int i = p2c(lb, active, NULL, 0);

			if (!is_excluded(excluded, (size_t)i))
				return i;
		}
		return p2c(lb, active, excluded, allowed);
	case SK_LB_RANDOM:
		/* Envoy's RandomLoadBalancer: hosts[random % n]; weights are not used. */
		for (int a = 0; a < PICK_ATTEMPTS; a++) {
			int i = (int)(next_random(&lb->rng) % t->n);

			if (!is_excluded(excluded, (size_t)i))
				return i;
		}
		return nth_allowed(t, excluded, allowed, next_random(&lb->rng));
	case SK_LB_RING_HASH:
		/* Without a hash Envoy uses a random one: effectively weighted random. */
		return pick_ring(lb, has_hash ? hash : next_random(&lb->rng), excluded);
	case SK_LB_MAGLEV:
		return pick_maglev(lb, has_hash ? hash : next_random(&lb->rng), excluded);
	}
	return -1;
}
