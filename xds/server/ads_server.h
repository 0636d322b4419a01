/* ads_server: a small xDS server on gRPC core's server API — ADS (StreamAggregatedResources,
 * DeltaAggregatedResources) and SDS (StreamSecrets, DeltaSecrets) — serving a store of
 * resources, for tests and the local control plane. It answers subscriptions, pushes a new
 * store to open streams (only what changed), and writes one line per event to its log, e.g.
 *   REQUEST stream=1 mode=sotw type=<url> version= nonce= names=a,b node=<id>
 *   SEND stream=1 mode=sotw type=<url> version=v1 nonce=1 resources=a,b removed=
 *   ACK stream=1 mode=sotw type=<url> version=v1 nonce=1
 *   NACK stream=1 mode=sotw type=<url> version=v1 nonce=2 code=3 error_detail=<message>
 * It is single-threaded: the owner calls sk_xds_server_poll from one thread (its own process
 * or a test thread), and every other function from that same thread. */
#ifndef SKIFF_XDS_SERVER_ADS_SERVER_H
#define SKIFF_XDS_SERVER_ADS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "xds/server/store.h"

struct sk_xds_server;

struct sk_xds_server_opts {
	const char *const *listen;  /* gRPC addresses: "unix:/path", "127.0.0.1:15010" (":0" picks) */
	size_t n_listen;
	FILE *log;                  /* the event lines; NULL: none */
	bool log_times;             /* prefix each line with the wall-clock time, "SECONDS.MICROS " */
};

/* Writes the time prefix of a log line when o->log_times asked for it (for the server's own
 * lines, e.g. READY, written by its owner). */
void sk_xds_log_time(FILE *f);

/* Binds and starts. NULL with err when an address cannot be bound. */
struct sk_xds_server *sk_xds_server_create(const struct sk_xds_server_opts *o, char *err, size_t errlen);

/* The TCP port the i-th listen address got (for ":0"), 0 for unix sockets. */
int sk_xds_server_port(const struct sk_xds_server *srv, size_t i);

/* Serves `store` from now on (takes ownership; frees the previous one) and pushes what
 * changed to every open stream. */
void sk_xds_server_set_store(struct sk_xds_server *srv, struct sk_xds_store *store);

/* Handles gRPC events for at most timeout_ms. Returns the number handled. */
int sk_xds_server_poll(struct sk_xds_server *srv, int timeout_ms);

/* Test hooks, on every open stream: a message that does not decode as a response (its type
 * URL and nonce "garbage-N" are readable on the wire), and a response of a type URL nobody
 * knows (nonce "unknown-N"). */
void sk_xds_server_send_garbage(struct sk_xds_server *srv);
void sk_xds_server_send_unknown_type(struct sk_xds_server *srv);

/* Open streams. */
size_t sk_xds_server_streams(const struct sk_xds_server *srv);

/* Cancels every stream, shuts gRPC down (grpc_shutdown), frees the store. NULL: no-op. */
void sk_xds_server_destroy(struct sk_xds_server *srv);

#endif
