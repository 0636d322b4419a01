/* bootstrap: loads an Envoy v3 Bootstrap from a JSON or YAML file, merges the
 * --config-yaml overlay over it (proto merge) and validates it as Envoy does.
 * The returned Bootstrap belongs to the caller (sk_bootstrap_free). */
#ifndef SKIFF_XDS_BOOTSTRAP_H
#define SKIFF_XDS_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>

#include "skiff_protos.h"
#include "xds/pbjson.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap sk_bootstrap_pb;

struct sk_bootstrap_load_opts {
	const char *path;          /* -c FILE; may be NULL when only config_yaml is given */
	const char *config_yaml;   /* --config-yaml overlay (YAML or JSON text), may be NULL */
	bool allow_unknown;        /* --allow-unknown-static-fields */
	sk_pbjson_warn_cb warn;    /* one call per tolerated unknown field */
	void *warn_ctx;
};

/* Loads and validates. Returns 0 and *out, or -EINVAL with a message naming the file and
 * the JSON path of what was wrong. *unknown_fields counts tolerated unknown fields. */
int sk_bootstrap_load(const struct sk_bootstrap_load_opts *opts, sk_bootstrap_pb **out,
		      unsigned *unknown_fields, char *err, size_t errlen);

/* Semantic checks (names, addresses, cluster types, ADS references). 0 or -EINVAL. */
int sk_bootstrap_validate(const sk_bootstrap_pb *b, char *err, size_t errlen);

/* A whole file, NUL-terminated (*len without the NUL); NULL with err ("PATH: cannot open:
 * ...", "PATH: larger than MAX bytes", "PATH: read error"). The caller frees it. */
char *sk_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Parses text as JSON, or as YAML when it is not JSON (or when yaml is true). */
json_t *sk_config_text_parse(const char *text, size_t len, bool yaml, char *err, size_t errlen);

void sk_bootstrap_free(sk_bootstrap_pb *b);

#endif
