/* skiff-xds-server: serves resource files over ADS and SDS (SotW and Delta) for tests and
 * demos. Signals drive it: SIGHUP re-reads the files and pushes what changed as version
 * v<N+1>; SIGUSR1 sends every stream a message that is not a response; SIGUSR2 a response of
 * an unknown type URL; SIGTERM / SIGINT stop it cleanly. Events go to the log (stdout or
 * --log FILE), one line each (see xds/server/ads_server.h). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xds/server/ads_server.h"

#define MAX_FILES 64

static volatile sig_atomic_t got_hup, got_usr1, got_usr2, got_term;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else if (sig == SIGUSR2)
		got_usr2 = 1;
	else
		got_term = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: skiff-xds-server --listen ADDR [--listen ADDR] [--log FILE] [--log-times] [--lenient] FILE...\n"
		   "  ADDR: unix:/path/to/socket, 127.0.0.1:PORT (PORT 0 picks one)\n"
		   "  FILE: JSON or YAML, a list of resources with \"@type\" or a config dump\n"
		   "  --log-times: each log line starts with the wall-clock time, \"SECONDS.MICROS \"\n"
		   "  SIGHUP reloads (new version), SIGUSR1 sends garbage, SIGUSR2 an unknown type\n");
}

struct args {
	const char *listen[8];
	size_t n_listen;
	const char *files[MAX_FILES];
	size_t n_files;
	const char *log;
	bool lenient;
	bool log_times;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"log", required_argument, NULL, 'o'},
		{"lenient", no_argument, NULL, 'n'},
		{"log-times", no_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:o:nth", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (a->n_listen == sizeof(a->listen) / sizeof(a->listen[0]))
				return -1;
			a->listen[a->n_listen++] = optarg;
			break;
		case 'o':
			a->log = optarg;
			break;
		case 'n':
			a->lenient = true;
			break;
		case 't':
			a->log_times = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	for (; optind < argc && a->n_files < MAX_FILES; optind++)
		a->files[a->n_files++] = argv[optind];
	return a->n_listen > 0 && optind == argc ? 0 : -1;
}

/* Loads the files as version v<gen>; NULL (reported on the log) when they do not load. */
static struct sk_xds_store *load(const struct args *a, unsigned gen, FILE *log)
{
	struct sk_xds_store *s;
	char version[32], err[1024];

	snprintf(version, sizeof(version), "v%u", gen);
	if (sk_xds_store_load(a->files, a->n_files, version, a->lenient, &s, err, sizeof(err)) < 0) {
		if (a->log_times)
			sk_xds_log_time(log);
		fprintf(log, "LOAD_FAILED version=%s error=%s\n", version, err);
		fflush(log);
		return NULL;
	}
	return s;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Serves until SIGTERM, acting on the other signals between polls. */
static void serve(struct sk_xds_server *srv, const struct args *a, FILE *log)
{
	unsigned gen = 1;
	struct sk_xds_store *s;

	while (!got_term) {
		sk_xds_server_poll(srv, 50);
		if (got_hup) {
			got_hup = 0;
			if ((s = load(a, gen + 1, log)) != NULL) {
				gen++;
				sk_xds_server_set_store(srv, s);
			}
		}
		if (got_usr1) {
			got_usr1 = 0;
			sk_xds_server_send_garbage(srv);
		}
		if (got_usr2) {
			got_usr2 = 0;
			sk_xds_server_send_unknown_type(srv);
		}
	}
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct sk_xds_server_opts o = {0};
	struct sk_xds_server *srv;
	struct sk_xds_store *s;
	FILE *log = stdout;
	char err[512];
	size_t i;

	if (parse_args(argc, argv, &a) < 0) {
		usage(stderr);
		return 2;
	}
	if (a.log && (log = fopen(a.log, "a")) == NULL) {
		fprintf(stderr, "skiff-xds-server: %s: %s\n", a.log, strerror(errno));
		return 1;
	}
	if ((s = load(&a, 1, log)) == NULL)
		return 1;
	install_signals();
	o.listen = a.listen;
	o.n_listen = a.n_listen;
	o.log = log;
	o.log_times = a.log_times;
	if ((srv = sk_xds_server_create(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "skiff-xds-server: %s\n", err);
		sk_xds_store_free(s);
		return 1;
	}
	sk_xds_server_set_store(srv, s);
	for (i = 0; i < a.n_listen; i++) {
		if (a.log_times)
			sk_xds_log_time(log);
		fprintf(log, "READY listen=%s port=%d\n", a.listen[i], sk_xds_server_port(srv, i));
	}
	fflush(log);
	serve(srv, &a, log);
	sk_xds_server_destroy(srv);
	if (a.log_times)
		sk_xds_log_time(log);
	fprintf(log, "EXIT\n");
	if (log != stdout)
		fclose(log);
	return 0;
}
