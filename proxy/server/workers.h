/* workers: the --concurrency worker threads, one libev loop each, started once the server
 * is initialized (listener_manager.workers_started). The main thread talks to a worker only
 * by posting tasks (run on the worker's loop, in order). Owned by the server. */
#ifndef SKIFF_PROXY_WORKERS_H
#define SKIFF_PROXY_WORKERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct sk_stats_store;
struct sk_stats_shard;
struct sk_workers;
struct sk_snapshot;
struct sk_conn;
struct sk_worker;

typedef void (*sk_worker_task_fn)(struct sk_worker *w, void *arg);

struct sk_worker_task {
	sk_worker_task_fn fn;
	void *arg;
	struct sk_worker_task *next;
};

/* A listening socket a worker accepts on. */
struct sk_worker_listen {
	struct sk_worker *w;
	struct sk_listener *l;           /* from the worker's snapshot */
	int fd;
	bool owns_fd;                    /* SO_REUSEPORT sockets are per worker; pipes are shared */
	ev_io io;
	struct sk_worker_listen *next;
};

/* Everything below is touched by the worker's thread only, except the task queue. */
struct sk_worker {
	uint32_t index;
	char name[24];                   /* "worker_0" */
	struct sk_workers *owner;
	pthread_t thread;
	int started;
	struct ev_loop *loop;
	struct sk_stats_shard *shard;
	ev_async wake;                   /* tasks posted, or stop */
	pthread_mutex_t lock;
	struct sk_worker_task *tasks, *tasks_tail;
	bool stopping;
	struct sk_snapshot *snapshot;    /* referenced: what new connections use */
	struct sk_worker_listen *listens;
	struct sk_conn *conns;           /* open connections (drain closes them) */
	uint64_t n_conns;
	ev_idle reaper;                  /* frees closed connections outside their callbacks */
	ev_timer accept_resume;          /* accepting again after descriptors ran out */
	struct sk_conn *dead;
};

/* Starts n threads and waits (at most a few seconds) until every loop runs.
 * Returns NULL with err set when a thread cannot be created. */
struct sk_workers *sk_workers_start(struct sk_stats_store *stats, uint32_t n, char *err,
				    size_t errlen);

uint32_t sk_workers_running(const struct sk_workers *w);
uint32_t sk_workers_count(const struct sk_workers *w);
struct sk_worker *sk_workers_get(struct sk_workers *w, uint32_t i);

/* Runs fn(w, arg) on the worker's loop. Any thread. Returns -ENOMEM on failure. */
int sk_worker_post(struct sk_worker *w, sk_worker_task_fn fn, void *arg);

/* Stops every loop (after the tasks already posted) and joins the threads. NULL: no-op. */
void sk_workers_stop(struct sk_workers *w);

#endif
