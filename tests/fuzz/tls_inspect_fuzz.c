/* tls_inspect_fuzz: tls_inspector on arbitrary bytes, fed as the peeked prefix grows. No
 * read outside the bytes given; a DONE answer is well-formed (SNI of at most 255 lowercase
 * bytes, non-empty ALPN names); and a decision, once made, is the one every longer prefix
 * gets (Envoy never revisits it either). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/listener/inspector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_done(const struct sk_tls_hello *h)
{
	size_t i, n = strnlen(h->sni, sizeof(h->sni));

	if (n > 255 || h->n_alpn > SK_TLS_MAX_ALPN)
		abort();
	for (i = 0; i < n; i++)
		if (h->sni[i] >= 'A' && h->sni[i] <= 'Z')
			abort();
	for (i = 0; i < h->n_alpn; i++)
		if (h->alpn[i][0] == '\0' || strnlen(h->alpn[i], 256) > 255)
			abort();
}

static enum sk_inspect_result run(const uint8_t *data, size_t n, struct sk_tls_hello *h)
{
	uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
	enum sk_inspect_result r;

	if (n > 0)
		memcpy(copy, data, n);
	r = sk_tls_inspect(copy, n, h);
	free(copy);
	if (r == SK_INSPECT_DONE)
		check_done(h);
	if (r == SK_INSPECT_ERROR && n < SK_TLS_MAX_CLIENT_HELLO)
		abort(); /* ERROR is only the size limit */
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sk_tls_hello first, h;
	enum sk_inspect_result decided = SK_INSPECT_NEED_MORE, r;
	size_t step = size <= 512 ? 1 : size / 128, n;

	for (n = 0;; n += step) {
		if (n > size)
			n = size;
		r = run(data, n, &h);
		if (decided == SK_INSPECT_NEED_MORE && r != SK_INSPECT_NEED_MORE) {
			decided = r;
			first = h;
		} else if (decided != SK_INSPECT_NEED_MORE && decided != SK_INSPECT_ERROR) {
			if (r != decided)
				abort();
			if (r == SK_INSPECT_DONE && (strcmp(first.sni, h.sni) != 0 ||
						     first.n_alpn != h.n_alpn))
				abort();
		}
		if (n == size)
			break;
	}
	return 0;
}
