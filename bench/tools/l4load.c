/* l4load: the L4 load tool of ./run bench (bench/l4.sh). One binary, a server and three
 * clients; the first byte a client sends picks what the server does with the connection.
 *
 *   l4load serve PORT             single-threaded epoll server on 127.0.0.1:PORT
 *       'S' sink: read and discard; at EOF answer the byte count (8 bytes, little endian)
 *       'E' echo: send back every byte
 *       '@' idle: answer one byte "k", then hold the connection until the peer closes
 *           ('@' is neither a TLS record type nor an HTTP token character, so Envoy's
 *           tls_inspector and http_inspector decide "not TLS, not HTTP" from it at once)
 *   l4load bulk  HOST:PORT BYTES  stream BYTES through one connection; prints MB/s, timed
 *                                 from connect to the server's count (so the proxy's
 *                                 buffers are drained, and the count is checked)
 *   l4load rtt   HOST:PORT N [FILE]  1-byte ping-pong over one connection (TCP_NODELAY),
 *                                 WARMUP untimed rounds then N timed; prints p50/p99/max in
 *                                 us, and appends every sample (us) to FILE, one a line
 *   l4load idle  HOST:PORT K      open K connections one after the other, each checked end
 *                                 to end ('@' then the server's "k"); prints "ready N" and
 *                                 holds them until stdin reaches EOF or a signal ends it
 *
 * Output is one line of key=value pairs for the script. Exit status 0 on success. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 * 1024)
#define WARMUP 1000 /* untimed ping-pong rounds before the timed ones */

static char buf[BUF];

static void die(const char *what)
{
	fprintf(stderr, "l4load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) {
		fprintf(stderr, "l4load: bad address %s (want HOST:PORT)\n", s);
		exit(2);
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "l4load: bad host %s\n", host);
		exit(2);
	}
}

/* A blocking connection with TCP_NODELAY, or -1 with errno. */
static int dial(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		c += w;
		n -= (size_t)w;
	}
}

static void read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read");
		if (r == 0) {
			fprintf(stderr, "l4load: unexpected EOF\n");
			exit(1);
		}
		c += r;
		n -= (size_t)r;
	}
}

/* ------------------------------------------------------------------ server */

struct sconn {
	char mode;      /* 0 until the first byte */
	uint64_t count; /* sink: bytes after the mode byte */
};

/* Nonblocking socket: waits for room (echo replies are small; this rarely waits). */
static int send_nb(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			poll(&pfd, 1, 1000);
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int serve(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct epoll_event ev, evs[256];
	struct sconn *conns;
	struct rlimit rl;
	int lfd, ep, one = 1;
	size_t nconns;

	raise_nofile();
	getrlimit(RLIMIT_NOFILE, &rl);
	nconns = rl.rlim_cur > 4000000 ? 4000000 : rl.rlim_cur;
	conns = calloc(nconns, sizeof(*conns));
	if (conns == NULL)
		die("calloc");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1), i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct sconn *c;
			ssize_t r;

			if (fd == lfd) {
				for (;;) {
					int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

					if (cfd < 0)
						break;
					if ((size_t)cfd >= nconns) {
						close(cfd);
						continue;
					}
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					memset(&conns[cfd], 0, sizeof(conns[cfd]));
					ev.events = EPOLLIN;
					ev.data.fd = cfd;
					epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
				}
				continue;
			}
			c = &conns[fd];
			/* sink connections drain until EAGAIN; the others handle one read */
			do {
				r = read(fd, buf, BUF);
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0 && errno == EAGAIN)
					break;
				if (r <= 0) {
					if (r == 0 && c->mode == 'S') {
						uint64_t le = c->count; /* x86/arm64 little endian */

						send_nb(fd, (const char *)&le, sizeof(le));
					}
					close(fd); /* also leaves the epoll set */
					break;
				}
				{
					const char *p = buf;
					size_t len = (size_t)r;

					if (c->mode == 0) {
						c->mode = *p++;
						len--;
						if (c->mode == '@' && send_nb(fd, "k", 1) < 0) {
							close(fd);
							break;
						}
					}
					if (c->mode == 'S')
						c->count += len;
					else if (c->mode == 'E' && len > 0 && send_nb(fd, p, len) < 0) {
						close(fd);
						break;
					}
				}
			} while (c->mode == 'S');
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ clients */

static int bulk(const struct sockaddr_in *sa, uint64_t bytes)
{
	uint64_t left = bytes, got;
	double t0, t1;
	int fd;

	memset(buf, 'x', sizeof(buf));
	t0 = now();
	fd = dial(sa);
	if (fd < 0)
		die("connect");
	write_all(fd, "S", 1);
	while (left > 0) {
		size_t chunk = left < BUF ? (size_t)left : BUF;

		write_all(fd, buf, chunk);
		left -= chunk;
	}
	shutdown(fd, SHUT_WR);
	read_all(fd, &got, sizeof(got));
	t1 = now();
	close(fd);
	if (got != bytes) {
		fprintf(stderr, "l4load: server counted %llu bytes, sent %llu\n",
			(unsigned long long)got, (unsigned long long)bytes);
		return 1;
	}
	printf("bytes=%llu secs=%.4f mbps=%.1f\n", (unsigned long long)bytes, t1 - t0,
	       (double)bytes / (t1 - t0) / 1e6);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int rtt(const struct sockaddr_in *sa, long n, const char *samples)
{
	double *lat = malloc((size_t)n * sizeof(double)), sum = 0;
	char b = 'p';
	long i;
	int fd;

	if (lat == NULL)
		die("malloc");
	fd = dial(sa);
	if (fd < 0)
		die("connect");
	write_all(fd, "E", 1);
	for (i = -WARMUP; i < n; i++) {
		double t0 = now();

		write_all(fd, &b, 1);
		read_all(fd, &b, 1);
		if (i >= 0) {
			lat[i] = (now() - t0) * 1e6;
			sum += lat[i];
		}
	}
	close(fd);
	if (samples != NULL) {
		FILE *f = fopen(samples, "a");

		if (f == NULL)
			die(samples);
		for (i = 0; i < n; i++)
			fprintf(f, "%.1f\n", lat[i]);
		fclose(f);
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	printf("n=%ld warmup=%d p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f\n", n, WARMUP, lat[n / 2],
	       lat[(size_t)((double)n * 0.99)], lat[n - 1], sum / (double)n);
	free(lat);
	return 0;
}

static int idle(const struct sockaddr_in *sa, long k)
{
	long i;
	char c;

	raise_nofile();
	for (i = 0; i < k; i++) {
		int fd = dial(sa);

		if (fd < 0) {
			fprintf(stderr, "l4load: connection %ld: connect: %s\n", i + 1, strerror(errno));
			break;
		}
		write_all(fd, "@", 1);
		if (read(fd, &c, 1) != 1 || c != 'k') {
			fprintf(stderr, "l4load: connection %ld: no answer through the path\n", i + 1);
			close(fd);
			break;
		}
	}
	printf("ready %ld\n", i);
	fflush(stdout);
	/* hold until the script closes our stdin (or kills us) */
	while (read(0, &c, 1) > 0)
		;
	return i == k ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;

	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]));
	if (argc != 4 && !(argc == 5 && strcmp(argv[1], "rtt") == 0)) {
		fprintf(stderr, "usage: l4load serve PORT | bulk HOST:PORT BYTES | rtt HOST:PORT N [FILE] | "
				"idle HOST:PORT K\n");
		return 2;
	}
	parse_addr(argv[2], &sa);
	if (strcmp(argv[1], "bulk") == 0)
		return bulk(&sa, strtoull(argv[3], NULL, 0));
	if (strcmp(argv[1], "rtt") == 0)
		return rtt(&sa, atol(argv[3]), argc == 5 ? argv[4] : NULL);
	if (strcmp(argv[1], "idle") == 0)
		return idle(&sa, atol(argv[3]));
	fprintf(stderr, "l4load: unknown mode %s\n", argv[1]);
	return 2;
}
