/* dns: see dns.h. One resolver thread takes queries from a FIFO under a mutex, runs
 * getaddrinfo without the lock, and moves the answered query to a done list; an ev_async
 * wakes the loop, which pops answers one at a time and calls back. A query is always on
 * exactly one of: the work queue, the resolver thread (running), the done list, and its
 * state says which, so sk_dns_cancel knows who frees it:
 *   queued  -> cancel unlinks and frees it;
 *   running -> cancel marks it; the thread frees it when getaddrinfo returns;
 *   done    -> cancel unlinks and frees it (its callback never runs).
 *
 * getaddrinfo cannot be interrupted, so sk_dns_free waits for a running lookup to return
 * (at worst the resolv.conf timeout x attempts per nameserver): detaching the thread would
 * leak it and its query. */
#include "proxy/upstream/dns.h"
#include "proxy/container_of.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/upstream/dns_internal.h"


enum query_state { Q_QUEUED, Q_RUNNING, Q_DONE };

/* Owned by the resolver (the sk_dns) until its callback has run. */
struct sk_dns_query {
	struct sk_dns *dns;
	struct sk_dns_query *next, **pprev;     /* in the work queue or the done list */
	enum query_state state;
	bool cancelled;                         /* only while Q_RUNNING */
	enum sk_dns_family family;
	uint16_t port;
	sk_dns_cb cb;
	void *ctx;
	struct sk_dns_result result;
	char host[];
};

struct query_list {
	struct sk_dns_query *head, **tailp;
};

/* Owned by the caller of sk_dns_new. `mu` guards the lists, query states and `quit`;
 * `outstanding` is the loop thread's own. */
struct sk_dns {
	struct ev_loop *loop;
	ev_async async;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct query_list work, done;
	bool quit;
	size_t outstanding;     /* queries whose callback is still due; loop ref'd iff > 0 */
};

static void list_init(struct query_list *l)
{
	l->head = NULL;
	l->tailp = &l->head;
}

static void list_push(struct query_list *l, struct sk_dns_query *q)
{
	q->next = NULL;
	q->pprev = l->tailp;
	*l->tailp = q;
	l->tailp = &q->next;
}

static void list_remove(struct query_list *l, struct sk_dns_query *q)
{
	*q->pprev = q->next;
	if (q->next)
		q->next->pprev = q->pprev;
	else
		l->tailp = q->pprev;
}

static struct sk_dns_query *list_pop(struct query_list *l)
{
	struct sk_dns_query *q = l->head;

	if (q)
		list_remove(l, q);
	return q;
}

static void list_free(struct query_list *l)
{
	struct sk_dns_query *q;

	while ((q = list_pop(l)) != NULL)
		free(q);
}

static bool family_wanted(enum sk_dns_family f, int af)
{
	switch (f) {
	case SK_DNS_V4_ONLY:
		return af == AF_INET;
	case SK_DNS_V6_ONLY:
		return af == AF_INET6;
	default:
		return af == AF_INET || af == AF_INET6;
	}
}

/* Same address (the port of `a` is already set, that of `ai` is 0). */
static bool same_addr(const struct sockaddr_storage *a, const struct addrinfo *ai)
{
	if (a->ss_family != ai->ai_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
		      sizeof(struct in6_addr)) == 0 &&
	       ((const struct sockaddr_in6 *)a)->sin6_scope_id ==
		       ((const struct sockaddr_in6 *)ai->ai_addr)->sin6_scope_id;
}

static bool has_family(const struct addrinfo *res, int af)
{
	for (; res; res = res->ai_next)
		if (res->ai_family == af)
			return true;
	return false;
}

/* Envoy's families: AUTO prefers v6 and falls back to v4, V4_PREFERRED the other way
 * round, ALL keeps both. */
void sk__dns_collect(struct sk_dns_result *out, const struct addrinfo *res,
		     enum sk_dns_family family, uint16_t port)
{
	const struct addrinfo *ai;
	int af = 0;
	size_t i;

	if (family == SK_DNS_AUTO)
		af = has_family(res, AF_INET6) ? AF_INET6 : AF_INET;
	else if (family == SK_DNS_V4_PREFERRED)
		af = has_family(res, AF_INET) ? AF_INET : AF_INET6;
	out->n = 0;
	for (ai = res; ai && out->n < sizeof(out->addrs) / sizeof(out->addrs[0]);
	     ai = ai->ai_next) {
		if ((af && ai->ai_family != af) || !family_wanted(family, ai->ai_family) ||
		    ai->ai_addrlen > sizeof(out->addrs[0]))
			continue;
		for (i = 0; i < out->n; i++)
			if (same_addr(&out->addrs[i], ai))
				break;
		if (i < out->n)
			continue;
		memset(&out->addrs[out->n], 0, sizeof(out->addrs[0]));
		memcpy(&out->addrs[out->n], ai->ai_addr, ai->ai_addrlen);
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)&out->addrs[out->n])->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&out->addrs[out->n])->sin6_port = htons(port);
		out->n++;
	}
	out->error = out->n ? 0 : EAI_NONAME;
}

/* Runs on the resolver thread. One AF_UNSPEC lookup answers AUTO, V4_PREFERRED and ALL
 * (glibc asks A and AAAA together), then sk__dns_collect applies the preference.
 * AI_ADDRCONFIG only narrows AF_UNSPEC lookups: with an explicit family glibc would also
 * refuse loopback and numeric addresses on a host without a non-loopback address of that
 * family. */
static void resolve(struct sk_dns_query *q)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc;

	switch (q->family) {
	case SK_DNS_V4_ONLY:
		hints.ai_family = AF_INET;
		break;
	case SK_DNS_V6_ONLY:
		hints.ai_family = AF_INET6;
		break;
	default:
		hints.ai_family = AF_UNSPEC;
		hints.ai_flags = AI_ADDRCONFIG;
		break;
	}
	rc = getaddrinfo(q->host, NULL, &hints, &res);
	if (rc != 0) {
		q->result.n = 0;
		q->result.error = rc;
		return;
	}
	sk__dns_collect(&q->result, res, q->family, q->port);
	freeaddrinfo(res);
}

static void *resolver_main(void *arg)
{
	struct sk_dns *dns = arg;
	struct sk_dns_query *q;

	pthread_mutex_lock(&dns->mu);
	for (;;) {
		while (!dns->quit && dns->work.head == NULL)
			pthread_cond_wait(&dns->cv, &dns->mu);
		if (dns->quit)
			break;
		q = list_pop(&dns->work);
		q->state = Q_RUNNING;
		pthread_mutex_unlock(&dns->mu);

		resolve(q);

		pthread_mutex_lock(&dns->mu);
		if (q->cancelled) {
			free(q);
			continue;
		}
		q->state = Q_DONE;
		list_push(&dns->done, q);
		/* Thread-safe; `dns` outlives this thread (sk_dns_free joins first). */
		ev_async_send(dns->loop, &dns->async);
	}
	pthread_mutex_unlock(&dns->mu);
	return NULL;
}

/* The loop thread owns `outstanding`. The async watcher stays started (starting and
 * stopping it would race with ev_async_send on its `sent` flag) but holds a reference
 * on the loop only while a callback is due, so an idle resolver does not keep ev_run
 * from returning. */
static void outstanding_inc(struct sk_dns *dns)
{
	if (dns->outstanding++ == 0)
		ev_ref(dns->loop);
}

static void outstanding_dec(struct sk_dns *dns)
{
	if (--dns->outstanding == 0)
		ev_unref(dns->loop);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct sk_dns *dns = container_of(w, struct sk_dns, async);
	struct sk_dns_query *q;

	(void)loop;
	(void)revents;
	/* One at a time, unlocked around the callback: it may resolve or cancel others. */
	for (;;) {
		pthread_mutex_lock(&dns->mu);
		q = list_pop(&dns->done);
		pthread_mutex_unlock(&dns->mu);
		if (q == NULL)
			break;
		outstanding_dec(dns);
		q->cb(q->ctx, &q->result);
		free(q);
	}
}

struct sk_dns *sk_dns_new(struct ev_loop *loop)
{
	struct sk_dns *dns = calloc(1, sizeof(*dns));

	if (dns == NULL)
		return NULL;
	dns->loop = loop;
	list_init(&dns->work);
	list_init(&dns->done);
	ev_async_init(&dns->async, async_cb);
	if (pthread_mutex_init(&dns->mu, NULL) != 0)
		goto fail_mu;
	if (pthread_cond_init(&dns->cv, NULL) != 0)
		goto fail_cv;
	if (pthread_create(&dns->thread, NULL, resolver_main, dns) != 0)
		goto fail_thread;
	ev_async_start(loop, &dns->async);
	ev_unref(loop);
	return dns;

fail_thread:
	pthread_cond_destroy(&dns->cv);
fail_cv:
	pthread_mutex_destroy(&dns->mu);
fail_mu:
	free(dns);
	return NULL;
}

void sk_dns_free(struct sk_dns *dns)
{
	if (dns == NULL)
		return;
	pthread_mutex_lock(&dns->mu);
	dns->quit = true;
	list_free(&dns->work);
	list_free(&dns->done);
	pthread_cond_signal(&dns->cv);
	pthread_mutex_unlock(&dns->mu);
	pthread_join(dns->thread, NULL);
	/* A query that was running when quit was set went to the done list; nobody will
	 * deliver it now. */
	list_free(&dns->done);
	if (dns->outstanding == 0)
		ev_ref(dns->loop);      /* undo the unref before stopping, as libev asks */
	ev_async_stop(dns->loop, &dns->async);
	pthread_cond_destroy(&dns->cv);
	pthread_mutex_destroy(&dns->mu);
	free(dns);
}

struct sk_dns_query *sk_dns_resolve(struct sk_dns *dns, const char *host, uint16_t port,
				    enum sk_dns_family family, sk_dns_cb cb, void *ctx)
{
	size_t len = strlen(host);
	struct sk_dns_query *q = calloc(1, sizeof(*q) + len + 1);

	if (q == NULL)
		return NULL;
	q->dns = dns;
	q->family = family;
	q->port = port;
	q->cb = cb;
	q->ctx = ctx;
	memcpy(q->host, host, len + 1);
	outstanding_inc(dns);
	pthread_mutex_lock(&dns->mu);
	q->state = Q_QUEUED;
	list_push(&dns->work, q);
	pthread_cond_signal(&dns->cv);
	pthread_mutex_unlock(&dns->mu);
	return q;
}

void sk_dns_cancel(struct sk_dns_query *q)
{
	struct sk_dns *dns;

	if (q == NULL)
		return;
	dns = q->dns;
	pthread_mutex_lock(&dns->mu);
	switch (q->state) {
	case Q_QUEUED:
		list_remove(&dns->work, q);
		free(q);
		break;
	case Q_RUNNING:
		q->cancelled = true;    /* the resolver thread frees it */
		break;
	case Q_DONE:
		list_remove(&dns->done, q);
		free(q);
		break;
	}
	pthread_mutex_unlock(&dns->mu);
	outstanding_dec(dns);
}
