/* store: the resources a test / local xDS server serves, loaded from proto3 JSON or YAML
 * files and kept serialized (type URL, name, bytes, content version). A store is immutable
 * once loaded; the server owns the one it serves (sk_xds_store_free). */
#ifndef SKIFF_XDS_SERVER_STORE_H
#define SKIFF_XDS_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xds/resource.h"

struct sk_xds_res {
	char *type_url;
	char *name;
	uint8_t *bytes;                          /* the serialized resource (Any.value) */
	size_t len;
	char version[SK_XDS_VERSION_HEX_LEN];    /* Delta: a hash of the bytes */
};

struct sk_xds_store {
	struct sk_xds_res *res;                  /* sorted by (type_url, name) */
	size_t n;
	char *version;                           /* SotW version_info of this snapshot */
};

/* Loads files. Each holds (JSON or YAML):
 *   - a list of resources, each an object with "@type" (a Cluster, ClusterLoadAssignment,
 *     Listener, RouteConfiguration, Secret, ... in proto3 JSON), or {"resources": [...]};
 *     an entry {"@type": URL, "@name": NAME, "@bytes": BASE64} is served as those raw bytes
 *     (to test what a client does with a resource it cannot decode);
 *   - anything else, e.g. an admin config dump: every object whose "@type" is a Cluster,
 *     ClusterLoadAssignment, Listener, RouteConfiguration or Secret, outside "static_*" and
 *     "bootstrap" members.
 * `lenient` tolerates fields outside skiff's proto subset. Duplicate (type, name) pairs are an
 * error. Returns 0 and *out, or -EINVAL with "file: path: what" in err. */
int sk_xds_store_load(const char *const *paths, size_t n, const char *version, bool lenient,
		      struct sk_xds_store **out, char *err, size_t errlen);

/* The resources of one type: [*first, *first + *count). */
void sk_xds_store_range(const struct sk_xds_store *s, const char *type_url, size_t *first, size_t *count);

/* One resource, or NULL. */
const struct sk_xds_res *sk_xds_store_find(const struct sk_xds_store *s, const char *type_url, const char *name);

void sk_xds_store_free(struct sk_xds_store *s);

#endif
