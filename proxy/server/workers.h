/* workers: the --concurrency worker threads, one libev loop each, started once the server
 * is initialized (listener_manager.workers_started). The data plane hands its listeners to
 * them; until then they idle. Owned by the server. */
#ifndef SKIFF_PROXY_WORKERS_H
#define SKIFF_PROXY_WORKERS_H

#include <stddef.h>
#include <stdint.h>

struct sk_stats_store;
struct sk_workers;

/* Starts n threads and waits (at most a few seconds) until every loop runs.
 * Returns NULL with err set when a thread cannot be created. */
struct sk_workers *sk_workers_start(struct sk_stats_store *stats, uint32_t n, char *err,
				    size_t errlen);

uint32_t sk_workers_running(const struct sk_workers *w);

/* Stops every loop and joins the threads. NULL is a no-op. */
void sk_workers_stop(struct sk_workers *w);

#endif
