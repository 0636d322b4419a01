/* tcp_proxy: Envoy's envoy.filters.network.tcp_proxy on one downstream connection: choose
 * the cluster (or a weighted one), check its circuit breaker, pick a host, connect with the
 * cluster's connect_timeout and up to max_connect_attempts, send what the inspectors read,
 * then relay bytes both ways until both sides are done or the idle timeout fires.
 * Owned by its connection (sk_conn); runs on the connection's worker. */
#ifndef SKIFF_PROXY_NETWORK_TCP_PROXY_H
#define SKIFF_PROXY_NETWORK_TCP_PROXY_H

struct sk_conn;
struct sk_tcp_proxy;

/* Starts proxying c (its chain is a tcp_proxy). May close c before returning. */
void sk_tcp_proxy_start(struct sk_conn *c);

/* Stops everything and closes the upstream side (called from sk_conn_close). */
void sk_tcp_proxy_free(struct sk_tcp_proxy *tp);

#endif
