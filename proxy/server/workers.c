/* workers: see workers.h. Each worker owns its loop and its stats shard; the main thread
 * talks to a worker only through its ev_async. */
#include "proxy/server/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "proxy/log/log.h"
#include "proxy/stats/stats.h"

#define WORKER_START_TIMEOUT_S 5

struct worker {
	struct sk_workers *owner;
	uint32_t index;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async stop;
	struct sk_stats_shard *shard;
	int started;                 /* thread created (join on stop) */
};

struct sk_workers {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	uint32_t running;
	uint32_t n;
	struct worker w[];
};

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)a;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sk_workers *ws = w->owner;
	char name[16];

	snprintf(name, sizeof(name), "wrk:worker_%u", w->index);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&ws->lock);
	ws->running++;
	pthread_cond_signal(&ws->ready);
	pthread_mutex_unlock(&ws->lock);
	sk_log_debug(SK_LOG_MAIN, "worker_%u started", w->index);
	ev_run(w->loop, 0);
	return NULL;
}

struct sk_workers *sk_workers_start(struct sk_stats_store *stats, uint32_t n, char *err,
				    size_t errlen)
{
	struct sk_workers *ws = calloc(1, sizeof(*ws) + n * sizeof(struct worker));
	struct timespec deadline;
	uint32_t i;

	if (ws == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->ready, NULL);
	ws->n = n;
	for (i = 0; i < n; i++) {
		struct worker *w = &ws->w[i];
		int rc;

		w->owner = ws;
		w->index = i;
		w->loop = ev_loop_new(EVFLAG_AUTO);
		w->shard = sk_stats_shard_new(stats);
		if (w->loop == NULL || w->shard == NULL) {
			snprintf(err, errlen, "worker_%u: cannot create its event loop", i);
			sk_workers_stop(ws);
			return NULL;
		}
		/* Started before the thread exists, so a stop can never be missed. */
		ev_async_init(&w->stop, on_stop);
		ev_async_start(w->loop, &w->stop);
		rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc != 0) {
			snprintf(err, errlen, "worker_%u: pthread_create: %s", i, strerror(rc));
			sk_workers_stop(ws);
			return NULL;
		}
		w->started = 1;
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WORKER_START_TIMEOUT_S;
	pthread_mutex_lock(&ws->lock);
	while (ws->running < n)
		if (pthread_cond_timedwait(&ws->ready, &ws->lock, &deadline) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&ws->lock);
	return ws;
}

uint32_t sk_workers_running(const struct sk_workers *ws)
{
	uint32_t n;

	pthread_mutex_lock((pthread_mutex_t *)&ws->lock);
	n = ws->running;
	pthread_mutex_unlock((pthread_mutex_t *)&ws->lock);
	return n;
}

void sk_workers_stop(struct sk_workers *ws)
{
	uint32_t i;

	if (ws == NULL)
		return;
	for (i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		if (w->started) {
			ev_async_send(w->loop, &w->stop);
			pthread_join(w->thread, NULL);
		}
		if (w->loop)
			ev_loop_destroy(w->loop);
	}
	pthread_cond_destroy(&ws->ready);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}
