/* xdsprobe: which configuration does traffic use right now? For bench/xds.sh.
 *
 *   xdsprobe HOST:PORT INTERVAL_US MAX_SECONDS OUT
 *
 * Every INTERVAL_US microseconds: a new TCP connection, "GET /probe", the answer read, the
 * connection reset (SO_LINGER 0: no TIME_WAIT, so thousands of them do not use up the
 * ephemeral ports). A new connection each time sees a replaced listener as soon as it takes
 * connections, not only once the old one has drained. A line is appended to OUT each time
 * the answer differs from the previous one: "SECONDS.MICROS BODY" (wall clock, as
 * skiff-xds-server --log-times writes it), BODY being the response body (up to 64 bytes, no
 * spaces or newlines), "status-NNN" for a non-200 answer or "error-WHAT" when no answer came.
 * Stops after MAX_SECONDS or on SIGTERM/SIGINT, with a last line "END requests=N errors=N". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const struct sockaddr_in *sa)
{
	struct timeval tv = {.tv_sec = 1};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request on fd; the answer's token into out. Returns 0, or -1 (out says why). */
static int ask(int fd, char *out, size_t outlen)
{
	static const char req[] = "GET /probe HTTP/1.1\r\nHost: bench\r\nUser-Agent: xdsprobe\r\n\r\n";
	char buf[8192], *eoh, *cl;
	size_t have = 0, need;
	long status, len = -1;
	ssize_t n;

	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		snprintf(out, outlen, "error-write");
		return -1;
	}
	for (;;) {
		buf[have] = '\0';
		if ((eoh = strstr(buf, "\r\n\r\n")) != NULL)
			break;
		if (have == sizeof(buf) - 1 || (n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0) {
			snprintf(out, outlen, "error-%s", have ? "head" : n == 0 ? "closed" : "read");
			return -1;
		}
		have += (size_t)n;
	}
	if (sscanf(buf, "HTTP/1.%*d %ld", &status) != 1) {
		snprintf(out, outlen, "error-status-line");
		return -1;
	}
	for (cl = buf; (cl = strcasestr(cl, "\r\ncontent-length:")) != NULL && cl < eoh; cl++)
		len = strtol(cl + 17, NULL, 10);
	if (len < 0 || len > 4096) {
		snprintf(out, outlen, "error-length");
		return -1;
	}
	need = (size_t)(eoh + 4 - buf) + (size_t)len;
	while (have < need) {
		if ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0) {
			snprintf(out, outlen, "error-body");
			return -1;
		}
		have += (size_t)n;
	}
	if (status != 200) {
		snprintf(out, outlen, "status-%ld", status);
	} else {
		size_t i, k = 0;
		const char *b = eoh + 4;

		for (i = 0; i < (size_t)len && k + 1 < outlen && k < 64; i++)
			if (b[i] > ' ' && b[i] < 127)
				out[k++] = b[i];
		out[k] = '\0';
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char host[64], last[80] = "", now[80];
	struct sigaction sig = {.sa_handler = on_signal};
	long long requests = 0, errors = 0;
	double end, interval;
	int port, fd;
	FILE *out;

	if (argc != 5 || sscanf(argv[1], "%63[^:]:%d", host, &port) != 2 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: xdsprobe HOST:PORT INTERVAL_US MAX_SECONDS OUT\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);
	interval = atof(argv[2]) / 1e6;
	end = mono() + atof(argv[3]);
	if ((out = fopen(argv[4], "a")) == NULL) {
		fprintf(stderr, "xdsprobe: %s: %s\n", argv[4], strerror(errno));
		return 1;
	}
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stop && mono() < end) {
		struct timespec wall, pause;

		if ((fd = dial(&sa)) < 0)
			snprintf(now, sizeof(now), "error-connect");
		else
			ask(fd, now, sizeof(now));
		if (fd >= 0)
			close(fd);
		if (stop)
			break; /* SIGTERM interrupted this request: not an answer */
		requests++;
		if (strncmp(now, "error-", 6) == 0 || strncmp(now, "status-", 7) == 0)
			errors++;
		if (strcmp(now, last) != 0) {
			clock_gettime(CLOCK_REALTIME, &wall);
			fprintf(out, "%lld.%06ld %s\n", (long long)wall.tv_sec, wall.tv_nsec / 1000, now);
			fflush(out);
			strcpy(last, now);
		}
		pause.tv_sec = (time_t)interval;
		pause.tv_nsec = (long)((interval - (double)pause.tv_sec) * 1e9);
		nanosleep(&pause, NULL);
	}
	fprintf(out, "END requests=%lld errors=%lld\n", requests, errors);
	fclose(out);
	return 0;
}
