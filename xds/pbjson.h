/* pbjson: proto3 JSON <-> protobuf-c messages, one generic converter driven by descriptors.
 * Decoded messages belong to the caller (free with protobuf_c_message_free_unpacked(m, NULL));
 * encoded json_t values belong to the caller (json_decref). */
#ifndef SKIFF_XDS_PBJSON_H
#define SKIFF_XDS_PBJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <time.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#define SK_PBJSON_MAX_DEPTH 100

/* Called once per tolerated problem (unknown field in lenient mode, Any of an unknown type);
 * `path` is the JSON path of the offending value. */
typedef void (*sk_pbjson_warn_cb)(void *ctx, const char *path, const char *what);

struct sk_pbjson_decode_opts {
	bool allow_unknown;        /* unknown fields warn and count instead of failing */
	sk_pbjson_warn_cb warn;    /* may be NULL */
	void *warn_ctx;
	unsigned unknown_fields;   /* out: how many unknown fields were skipped */
};

struct sk_pbjson_encode_opts {
	bool redact;               /* replace private keys and other secrets by "[redacted]" */
	bool always_print_primitives; /* also scalars at their default and empty repeated
				       * fields (protobuf's always_print_primitive_fields, which
				       * Envoy's /server_info uses) */
	unsigned unknown_anys;     /* out: Any values of an unregistered type, kept as bytes */
};

/* Decodes `json` as a message of type `desc`. Returns NULL on error with "path: what" in
 * err (the path is empty for the top-level object). `opts` may be NULL (strict). */
ProtobufCMessage *sk_pbjson_decode(const ProtobufCMessageDescriptor *desc, json_t *json,
				   struct sk_pbjson_decode_opts *opts, char *err, size_t errlen);

/* Encodes a message as proto3 JSON with the original (snake_case) field names, as Envoy's
 * admin endpoints do. Returns NULL only when out of memory. `opts` may be NULL. */
json_t *sk_pbjson_encode(const ProtobufCMessage *msg, struct sk_pbjson_encode_opts *opts);

/* The JSON of an Any holding msg, as config dumps show resources: {"@type":
 * "type.googleapis.com/<full name>", ...its fields}, secrets redacted. */
json_t *sk_pbjson_any_json(const ProtobufCMessage *msg);
/* The same for a message of type d kept serialized; {"@type"} alone when it does not decode. */
json_t *sk_pbjson_any_json_bytes(const ProtobufCMessageDescriptor *d, const uint8_t *bytes, size_t len);
/* A time as a proto3 JSON Timestamp ("2026-11-26T20:15:51Z"), for last_updated fields. */
json_t *sk_pbjson_timestamp(time_t t);

/* Packs `msg` into a new google.protobuf.Any-compatible pair: the type URL
 * ("type.googleapis.com/<full name>") and serialized bytes. Both malloc'd, owned by the caller. */
int sk_pbjson_pack_any(const ProtobufCMessage *msg, char **type_url, ProtobufCBinaryData *value);

/* Proto merge of `overlay` into `base` (both of the same type), the semantics of
 * Message::MergeFrom: set scalars overwrite, repeated fields append, messages merge.
 * Returns a new message (caller owns) or NULL on failure. */
ProtobufCMessage *sk_pbjson_merge(const ProtobufCMessage *base, const ProtobufCMessage *overlay);

/* Formats a google.protobuf.Duration-like (seconds, nanos) pair as proto3 JSON ("1.500s"). */
void sk_pbjson_format_duration(int64_t seconds, int32_t nanos, char *buf, size_t len);

/* A google.protobuf.Duration in seconds, or dflt when it is absent (NULL). */
struct Google__Protobuf__Duration;
double sk_duration_seconds(const struct Google__Protobuf__Duration *d, double dflt);

/* Parses "1.5s"/"-0.250s" into seconds and nanos. Returns 0 or -EINVAL. */
int sk_pbjson_parse_duration(const char *s, int64_t *seconds, int32_t *nanos);

#endif
