/* yaml_json: see yaml_json.h. Anchors and aliases are supported; merge keys ("<<") are not. */
#include "xds/yaml_json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define YAML_MAX_DEPTH 100
#define YAML_MAX_ANCHORS 1024

struct anchor {
	char *name;
	json_t *value;
};

struct yparse {
	yaml_parser_t parser;
	struct anchor anchors[YAML_MAX_ANCHORS];
	size_t n_anchors;
	char *err;
	size_t errlen;
	int depth;
};

static void set_err(struct yparse *p, const yaml_mark_t *mark, const char *what)
{
	snprintf(p->err, p->errlen, "line %zu column %zu: %s", mark->line + 1, mark->column + 1,
		 what);
}

static bool next_event(struct yparse *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(&p->parser, ev))
		return true;
	snprintf(p->err, p->errlen, "line %zu column %zu: %s", p->parser.problem_mark.line + 1,
		 p->parser.problem_mark.column + 1,
		 p->parser.problem ? p->parser.problem : "syntax error");
	return false;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static json_t *plain_scalar(const char *s, size_t len)
{
	char *end;

	if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	    strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	if ((s[0] >= '0' && s[0] <= '9') || ((s[0] == '-' || s[0] == '+') && len > 1)) {
		long long v;
		double d;
		int base = 10;
		const char *digits = s;

		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
			base = s[1] == 'x' ? 16 : 8;
			digits = s + 2;
		}
		errno = 0;
		v = strtoll(digits, &end, base);
		if (*end == '\0' && errno == 0 && end != digits)
			return json_integer(v);
		if (base == 10) {
			d = strtod(s, &end);
			if (*end == '\0' && errno == 0 && strpbrk(s, "xXnN") == NULL)
				return json_real(d);
			/* An integer too large for 64 bits stays text: uint64 fields parse it. */
		}
	}
	if (strcasecmp(s, ".inf") == 0 || strcasecmp(s, "+.inf") == 0)
		return json_string("Infinity");
	if (strcasecmp(s, "-.inf") == 0)
		return json_string("-Infinity");
	if (strcasecmp(s, ".nan") == 0)
		return json_string("NaN");
	return json_stringn(s, len);
}

static json_t *parse_node(struct yparse *p, yaml_event_t *ev);

static void remember(struct yparse *p, const yaml_char_t *anchor, json_t *v)
{
	if (anchor == NULL || p->n_anchors == YAML_MAX_ANCHORS)
		return;
	p->anchors[p->n_anchors].name = strdup((const char *)anchor);
	p->anchors[p->n_anchors].value = json_incref(v);
	p->n_anchors++;
}

static json_t *parse_sequence(struct yparse *p, const yaml_char_t *anchor)
{
	json_t *arr = json_array();

	for (;;) {
		yaml_event_t ev;
		json_t *v;

		if (!next_event(p, &ev))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		v = parse_node(p, &ev);
		yaml_event_delete(&ev);
		if (v == NULL)
			goto fail;
		json_array_append_new(arr, v);
	}
	remember(p, anchor, arr);
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

static json_t *parse_mapping(struct yparse *p, const yaml_char_t *anchor)
{
	json_t *obj = json_object();

	for (;;) {
		yaml_event_t ev;
		json_t *k, *v;

		if (!next_event(p, &ev))
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			set_err(p, &ev.start_mark, "mapping keys must be scalars");
			yaml_event_delete(&ev);
			goto fail;
		}
		k = json_stringn((const char *)ev.data.scalar.value, ev.data.scalar.length);
		yaml_event_delete(&ev);
		if (!next_event(p, &ev)) {
			json_decref(k);
			goto fail;
		}
		v = parse_node(p, &ev);
		yaml_event_delete(&ev);
		if (v == NULL || k == NULL) {
			json_decref(k);
			json_decref(v);
			goto fail;
		}
		json_object_set_new(obj, json_string_value(k), v);
		json_decref(k);
	}
	remember(p, anchor, obj);
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

static json_t *parse_node(struct yparse *p, yaml_event_t *ev)
{
	json_t *v = NULL;
	size_t i;

	if (++p->depth > YAML_MAX_DEPTH) {
		set_err(p, &ev->start_mark, "nesting too deep");
		p->depth--;
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		size_t len = ev->data.scalar.length;

		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.plain_implicit)
			v = plain_scalar(s, len);
		else
			v = json_stringn(s, len);
		remember(p, ev->data.scalar.anchor, v);
		break;
	}
	case YAML_SEQUENCE_START_EVENT:
		v = parse_sequence(p, ev->data.sequence_start.anchor);
		break;
	case YAML_MAPPING_START_EVENT:
		v = parse_mapping(p, ev->data.mapping_start.anchor);
		break;
	case YAML_ALIAS_EVENT:
		/* The latest definition of an anchor name is the one in force. */
		for (i = p->n_anchors; i-- > 0;) {
			if (strcmp(p->anchors[i].name, (const char *)ev->data.alias.anchor) == 0) {
				v = json_deep_copy(p->anchors[i].value);
				break;
			}
		}
		if (v == NULL)
			set_err(p, &ev->start_mark, "unknown alias");
		break;
	default:
		set_err(p, &ev->start_mark, "unexpected YAML event");
		break;
	}
	p->depth--;
	return v;
}

json_t *sk_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct yparse *p = calloc(1, sizeof(*p));
	json_t *root = NULL;
	yaml_event_t ev;
	size_t i;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->err = err;
	p->errlen = errlen;
	yaml_parser_initialize(&p->parser);
	yaml_parser_set_input_string(&p->parser, (const unsigned char *)text, len);
	/* STREAM-START, DOCUMENT-START, node, DOCUMENT-END */
	while (next_event(p, &ev)) {
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			root = json_object(); /* an empty document is an empty config */
			yaml_event_delete(&ev);
			break;
		}
		root = parse_node(p, &ev);
		yaml_event_delete(&ev);
		break;
	}
	for (i = 0; i < p->n_anchors; i++) {
		free(p->anchors[i].name);
		json_decref(p->anchors[i].value);
	}
	yaml_parser_delete(&p->parser);
	free(p);
	return root;
}
