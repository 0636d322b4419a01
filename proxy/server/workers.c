/* workers: see workers.h. Each worker owns its loop and its stats shard; the main thread
 * posts tasks through a mutex-protected queue and the worker's ev_async. */
#include "proxy/server/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/log/log.h"
#include "proxy/stats/stats.h"

#define WORKER_START_TIMEOUT_S 5

struct sk_workers {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	uint32_t running;
	uint32_t n;
	struct sk_worker w[];
};

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	struct sk_worker *w = a->data;
	struct sk_worker_task *t;
	bool stop;

	(void)revents;
	pthread_mutex_lock(&w->lock);
	t = w->tasks;
	w->tasks = w->tasks_tail = NULL;
	stop = w->stopping;
	pthread_mutex_unlock(&w->lock);
	while (t != NULL) {
		struct sk_worker_task *next = t->next;

		t->fn(w, t->arg);
		free(t);
		t = next;
	}
	if (stop)
		ev_break(loop, EVBREAK_ALL);
}

int sk_worker_post(struct sk_worker *w, sk_worker_task_fn fn, void *arg)
{
	struct sk_worker_task *t = malloc(sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tasks_tail)
		w->tasks_tail->next = t;
	else
		w->tasks = t;
	w->tasks_tail = t;
	pthread_mutex_unlock(&w->lock);
	ev_async_send(w->loop, &w->wake);
	return 0;
}

static void *worker_main(void *arg)
{
	struct sk_worker *w = arg;
	struct sk_workers *ws = w->owner;
	char name[16]; /* the kernel's limit */

	snprintf(name, sizeof(name), "wrk:%.11s", w->name);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&ws->lock);
	ws->running++;
	pthread_cond_signal(&ws->ready);
	pthread_mutex_unlock(&ws->lock);
	sk_log_debug(SK_LOG_MAIN, "%s started", w->name);
	ev_run(w->loop, 0);
	return NULL;
}

struct sk_workers *sk_workers_start(struct sk_stats_store *stats, uint32_t n, char *err,
				    size_t errlen)
{
	struct sk_workers *ws = calloc(1, sizeof(*ws) + n * sizeof(struct sk_worker));
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
		struct sk_worker *w = &ws->w[i];
		int rc;

		w->owner = ws;
		w->index = i;
		snprintf(w->name, sizeof(w->name), "worker_%u", i);
		pthread_mutex_init(&w->lock, NULL);
		w->loop = ev_loop_new(EVFLAG_AUTO);
		w->shard = sk_stats_shard_new(stats);
		if (w->loop == NULL || w->shard == NULL) {
			snprintf(err, errlen, "worker_%u: cannot create its event loop", i);
			sk_workers_stop(ws);
			return NULL;
		}
		/* Started before the thread exists, so a post can never be missed. */
		ev_async_init(&w->wake, on_wake);
		w->wake.data = w;
		ev_async_start(w->loop, &w->wake);
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

uint32_t sk_workers_count(const struct sk_workers *ws)
{
	return ws ? ws->n : 0;
}

struct sk_worker *sk_workers_get(struct sk_workers *ws, uint32_t i)
{
	return ws && i < ws->n ? &ws->w[i] : NULL;
}

void sk_workers_stop(struct sk_workers *ws)
{
	uint32_t i;

	if (ws == NULL)
		return;
	for (i = 0; i < ws->n; i++) {
		struct sk_worker *w = &ws->w[i];

		if (w->started) {
			pthread_mutex_lock(&w->lock);
			w->stopping = true;
			pthread_mutex_unlock(&w->lock);
			ev_async_send(w->loop, &w->wake);
			pthread_join(w->thread, NULL);
		}
		while (w->tasks) {
			struct sk_worker_task *t = w->tasks;

			w->tasks = t->next;
			free(t);
		}
		if (w->loop)
			ev_loop_destroy(w->loop);
		pthread_mutex_destroy(&w->lock);
	}
	pthread_cond_destroy(&ws->ready);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}
