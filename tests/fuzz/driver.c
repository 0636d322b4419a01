/* driver: runs a libFuzzer target without libFuzzer, as a bounded regression test in the
 * sanitized build. It replays the seed corpus, then a fixed number of deterministic
 * mutations of it (SKIFF_FUZZ_RUNS, default 4000). A crash or sanitizer report fails the
 * test (no summary line); a clean run counts as one passed case. With clang, the same
 * targets link against libFuzzer instead (meson -Dfuzz=true, ./run fuzz). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 256
#define MAX_SEED_BYTES (1 << 20)

struct seed {
	uint8_t *data;
	size_t len;
};

static struct seed seeds[MAX_SEEDS];
static size_t n_seeds;
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (f == NULL || n_seeds == MAX_SEEDS) {
		if (f)
			fclose(f);
		return;
	}
	buf = malloc(MAX_SEED_BYTES);
	n = fread(buf, 1, MAX_SEED_BYTES, f);
	fclose(f);
	seeds[n_seeds].data = buf;
	seeds[n_seeds].len = n;
	n_seeds++;
}

static void add_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), i;

	for (i = 0; i < n; i++) {
		char path[1024];

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			add_file(path);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

static const char *const tokens[] = {
	"{", "}", "[", "]", "\"", ":", ",", "\r\n", "\n", " ", "null", "true", "-", "0", "1e999",
	"18446744073709551616", "\"@type\"", "\"type.googleapis.com/envoy.config.cluster.v3.Cluster\"",
	"%", "%00", "\\u0000", "- ", ": ", "&a", "*a", "\t", "\xff", "\x08\x96\x01",
};

/* One to eight edits: flip, insert, delete, duplicate a range, or splice in a token. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
	int edits = 1 + (int)(next() % 8), e;

	for (e = 0; e < edits; e++) {
		size_t pos = len ? next() % (len + 1) : 0, n;

		switch (next() % 5) {
		case 0:
			if (len)
				buf[pos % len] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1:
			if (len < cap) {
				memmove(buf + pos + 1, buf + pos, len - pos);
				buf[pos] = (uint8_t)next();
				len++;
			}
			break;
		case 2:
			n = len - pos ? 1 + next() % (len - pos) : 0;
			n = n > 16 ? 16 : n;
			memmove(buf + pos, buf + pos + n, len - pos - n);
			len -= n;
			break;
		case 3:
			n = len - pos < 32 ? len - pos : 32;
			if (len + n <= cap) {
				memmove(buf + pos + n, buf + pos, len - pos);
				len += n;
			}
			break;
		default: {
			const char *t = tokens[next() % (sizeof(tokens) / sizeof(tokens[0]))];

			n = strlen(t);
			if (len + n <= cap) {
				memmove(buf + pos + n, buf + pos, len - pos);
				memcpy(buf + pos, t, n);
				len += n;
			}
			break;
		}
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	const char *runs_env = getenv("SKIFF_FUZZ_RUNS");
	long runs = runs_env ? atol(runs_env) : 4000, i;
	size_t cap = MAX_SEED_BYTES + 4096, s;
	uint8_t *buf = malloc(cap);
	const char *conf = getenv("SKIFF_CONFORMANCE");
	int a;

	add_dir(FUZZ_CORPUS);
#ifdef FUZZ_CONFORMANCE_SUBDIR
	if (conf) {
		char dir[1024];

		snprintf(dir, sizeof(dir), "%s/%s", conf, FUZZ_CONFORMANCE_SUBDIR);
		add_dir(dir);
	}
#else
	(void)conf;
#endif
	for (a = 1; a < argc; a++)
		add_file(argv[a]);
	for (s = 0; s < n_seeds; s++)
		LLVMFuzzerTestOneInput(seeds[s].data, seeds[s].len);
	for (i = 0; i < runs && n_seeds; i++) {
		const struct seed *sd = &seeds[next() % n_seeds];
		size_t len = sd->len;

		memcpy(buf, sd->data, len);
		len = mutate(buf, len, cap);
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("%zu seeds, %ld mutated inputs\n", n_seeds, i);
	printf("%s\n", n_seeds ? "1 passed, 0 failed" : "0 passed, 1 failed (no seed corpus)");
	for (s = 0; s < n_seeds; s++)
		free(seeds[s].data);
	free(buf);
	return n_seeds ? 0 : 1;
}
