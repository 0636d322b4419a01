/* yaml_json: YAML text -> jansson JSON tree (libyaml events), so that YAML and JSON configs go
 * through the same proto3 JSON converter. The caller owns the returned json_t. */
#ifndef SKIFF_XDS_YAML_JSON_H
#define SKIFF_XDS_YAML_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Parses one YAML document. Plain scalars follow the YAML 1.2 core schema (null, booleans,
 * integers, floats; everything else is a string); quoted scalars are always strings.
 * Returns NULL with "line L column C: what" in err on a syntax error. */
json_t *sk_yaml_parse(const char *text, size_t len, char *err, size_t errlen);

#endif
