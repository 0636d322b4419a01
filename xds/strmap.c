/* strmap: open addressing with linear probing and backward-shift deletion. See strmap.h. */
#include "xds/strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return (size_t)(h ^ (h >> 29));
}

void sk_strmap_clear(struct sk_strmap *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++) {
		free(m->slots[i].key);
		free(m->slots[i].value);
	}
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

/* The slot holding key, or the empty slot where it would go. m->cap > 0. */
static size_t probe(const struct sk_strmap *m, const char *key)
{
	size_t mask = m->cap - 1, i = hash_str(key) & mask;

	while (m->slots[i].key != NULL && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & mask;
	return i;
}

static int grow(struct sk_strmap *m)
{
	struct sk_strmap old = *m;
	size_t i, j;

	m->cap = old.cap ? old.cap * 2 : 16;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (m->slots == NULL) {
		*m = old;
		return -ENOMEM;
	}
	for (i = 0; i < old.cap; i++) {
		if (old.slots[i].key == NULL)
			continue;
		j = probe(m, old.slots[i].key);
		m->slots[j] = old.slots[i];
	}
	free(old.slots);
	return 0;
}

int sk_strmap_put(struct sk_strmap *m, const char *key, const char *value)
{
	char *v = NULL, *k;
	size_t i;

	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -ENOMEM;
	if (value != NULL && (v = strdup(value)) == NULL)
		return -ENOMEM;
	i = probe(m, key);
	if (m->slots[i].key != NULL) {
		free(m->slots[i].value);
		m->slots[i].value = v;
		return 0;
	}
	if ((k = strdup(key)) == NULL) {
		free(v);
		return -ENOMEM;
	}
	m->slots[i].key = k;
	m->slots[i].value = v;
	m->n++;
	return 0;
}

const struct sk_strmap_entry *sk_strmap_find(const struct sk_strmap *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = probe(m, key);
	return m->slots[i].key ? &m->slots[i] : NULL;
}

bool sk_strmap_del(struct sk_strmap *m, const char *key)
{
	size_t mask, i, j, home;

	if (m->cap == 0)
		return false;
	mask = m->cap - 1;
	i = probe(m, key);
	if (m->slots[i].key == NULL)
		return false;
	free(m->slots[i].key);
	free(m->slots[i].value);
	m->slots[i].key = m->slots[i].value = NULL;
	m->n--;
	/* Backward shift: pull later entries of the run into the hole when their home allows. */
	for (j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
		home = hash_str(m->slots[j].key) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			m->slots[j].key = m->slots[j].value = NULL;
			i = j;
		}
	}
	return true;
}

const struct sk_strmap_entry *sk_strmap_next(const struct sk_strmap *m, size_t *i)
{
	while (*i < m->cap) {
		const struct sk_strmap_entry *e = &m->slots[(*i)++];

		if (e->key != NULL)
			return e;
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **sk_strmap_sorted_keys(const struct sk_strmap *m, size_t *n)
{
	const struct sk_strmap_entry *e;
	const char **keys;
	size_t i = 0, k = 0;

	*n = 0;
	if (m->n == 0 || (keys = malloc(m->n * sizeof(*keys))) == NULL)
		return NULL;
	while ((e = sk_strmap_next(m, &i)) != NULL)
		keys[k++] = e->key;
	qsort(keys, k, sizeof(*keys), cmp_str);
	*n = k;
	return keys;
}

int sk_strmap_copy(struct sk_strmap *dst, const struct sk_strmap *src)
{
	const struct sk_strmap_entry *e;
	size_t i = 0;

	sk_strmap_clear(dst);
	while ((e = sk_strmap_next(src, &i)) != NULL) {
		if (sk_strmap_put(dst, e->key, e->value) < 0) {
			sk_strmap_clear(dst);
			return -ENOMEM;
		}
	}
	return 0;
}
