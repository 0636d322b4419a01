/* ads_fuzz: arbitrary bytes as the message a control plane sends on an ADS stream, through
 * the whole client (xds/ads.c) in SotW and in Delta: decoding, type checks, apply, ACK/NACK
 * and the protocol-error path, over a transport that swallows the requests. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ev.h>

#include "xds/ads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int token;

static void *t_open(void *tctx, struct sk_ads *ads, const char *method)
{
	(void)tctx;
	(void)ads;
	(void)method;
	return &token;
}

static int t_send(void *tctx, void *stream, const uint8_t *d, size_t len)
{
	(void)tctx;
	(void)stream;
	(void)d;
	(void)len;
	return 0;
}

static void t_close(void *tctx, void *stream)
{
	(void)tctx;
	(void)stream;
}

/* Accepts, except updates with a resource named "bad"; subscribes EDS from CDS as Envoy. */
static int apply(void *ctx, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct sk_ads *ads = *(struct sk_ads **)ctx;
	const char *names[8];
	size_t i, n = 0;

	for (i = 0; i < u->n_resources; i++) {
		if (strcmp(u->resources[i].name, "bad") == 0) {
			snprintf(err, errlen, "'bad' rejected");
			return -1;
		}
		if (n < 8)
			names[n++] = u->resources[i].name;
	}
	if (strcmp(u->type_url, SK_TYPE_URL_CLUSTER) == 0)
		sk_ads_subscribe(ads, SK_TYPE_URL_ENDPOINT, names, n, false);
	return 0;
}

static void one(struct ev_loop *loop, enum sk_ads_api_type api, const uint8_t *data, size_t size)
{
	static const struct sk_ads_transport t = {.open = t_open, .send = t_send, .close = t_close};
	const char *eds[] = {"a"};
	struct sk_ads *ads = NULL;
	struct sk_ads_config cfg = {.api_type = api, .set_node_on_first_message_only = true, .transport = &t,
				    .apply = apply, .ctx = &ads, .backoff_seed = 1};
	char err[256];

	ads = sk_ads_create(loop, &cfg, err, sizeof(err));
	if (ads == NULL)
		return;
	sk_ads_subscribe(ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_subscribe(ads, SK_TYPE_URL_ENDPOINT, eds, 1, false);
	sk_ads_subscribe(ads, SK_TYPE_URL_LISTENER, NULL, 0, true);
	sk_ads_start(ads);
	sk_ads_transport_message(ads, data, size);
	sk_ads_transport_message(ads, data, size); /* the same again: versions and nonces now set */
	sk_ads_destroy(ads);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ev_loop *loop;

	if (loop == NULL)
		loop = ev_loop_new(EVFLAG_AUTO);
	one(loop, SK_ADS_SOTW, data, size);
	one(loop, SK_ADS_DELTA, data, size);
	return 0;
}
