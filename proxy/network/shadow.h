/* shadow: request mirroring (the router's request_mirror_policies). A copy of a request goes
 * to another cluster, fire and forget: its answer is read and dropped, counted in that
 * cluster's stats; nothing about it reaches the client or delays the real request.
 * Worker threads only; each shadow belongs to the worker that sent it. */
#ifndef SKIFF_PROXY_NETWORK_SHADOW_H
#define SKIFF_PROXY_NETWORK_SHADOW_H

#include <stddef.h>
#include <stdint.h>

struct sk_worker;
struct sk_cluster;

/* Sends req (len bytes: an HTTP/1.1 request that says connection: close, body included;
 * malloc'd, taken over) to a host of cl (rnd: the balancer's dice). timeout: seconds for the
 * whole exchange. Returns 0,
 * or -errno when it could not start (req is freed either way). */
int sk_shadow_send(struct sk_worker *w, struct sk_cluster *cl, char *req, size_t len, double timeout, uint64_t rnd);

/* Ends the worker's shadows (drain end, shutdown). */
void sk_shadow_close_all(struct sk_worker *w);

#endif
