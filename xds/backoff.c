/* backoff: jittered exponential back-off. See backoff.h. */
#include "xds/backoff.h"

#include <time.h>
#include <unistd.h>

void sk_backoff_init(struct sk_backoff *b, uint32_t base_ms, uint32_t max_ms, uint64_t seed)
{
	struct timespec ts;

	b->base_ms = base_ms ? base_ms : 500;
	b->max_ms = max_ms ? max_ms : 30000;
	if (b->max_ms < b->base_ms)
		b->max_ms = b->base_ms;
	b->ceiling_ms = b->base_ms;
	if (seed == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
	}
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* xorshift64: good enough to spread reconnects, no lock, no global state. */
static uint64_t next_random(struct sk_backoff *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

uint32_t sk_backoff_next_ms(struct sk_backoff *b)
{
	uint32_t ceiling = b->ceiling_ms, half = ceiling / 2;
	uint32_t delay = half + (uint32_t)(next_random(b) % (ceiling - half ? ceiling - half : 1));

	b->ceiling_ms = ceiling > b->max_ms / 2 ? b->max_ms : ceiling * 2;
	return delay;
}

void sk_backoff_reset(struct sk_backoff *b)
{
	b->ceiling_ms = b->base_ms;
}
