/* backoff: jittered exponential back-off for reconnecting xDS streams (Envoy's
 * JitteredExponentialBackOffStrategy shape: 500 ms doubling to 30 s). Plain data, no
 * allocation; owned by whoever embeds it. */
#ifndef SKIFF_XDS_BACKOFF_H
#define SKIFF_XDS_BACKOFF_H

#include <stdint.h>

struct sk_backoff {
	uint32_t base_ms;      /* first ceiling, e.g. 500 */
	uint32_t max_ms;       /* last ceiling, e.g. 30000 */
	uint32_t ceiling_ms;   /* the ceiling of the next delay */
	uint64_t rng;          /* xorshift state; never 0 */
};

/* Sets the bounds (0 picks 500 / 30000) and seeds the generator (0 picks a seed from the
 * clock and the pid). */
void sk_backoff_init(struct sk_backoff *b, uint32_t base_ms, uint32_t max_ms, uint64_t seed);

/* The next delay, in [ceiling/2, ceiling), then doubles the ceiling up to max_ms. Envoy draws
 * from [0, ceiling); the lower half is cut so that a dead control plane is never hammered
 * by near-zero delays. */
uint32_t sk_backoff_next_ms(struct sk_backoff *b);

/* Back to base_ms: called once a stream has delivered a message. */
void sk_backoff_reset(struct sk_backoff *b);

#endif
