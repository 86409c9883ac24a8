/*
 * c_client_loop: the plainest redirector client loop, to measure the Python load
 * generator against (benchmarks/bench_servers.py compiles it with cc at run time).
 *
 *   c_client_loop SOCKET USER PASSWORD SECONDS CONCURRENCY
 *
 * CONCURRENCY processes each run, until SECONDS have passed: socket(), connect(),
 * one write of "USER\nPASSWORD\n", one read of the reply, close(). Each prints
 * "<round-trips> <errors> <sum of latencies in ns> <max latency in ns>"; the parent
 * adds them up and prints one line:
 *   "c_client_loop: N round-trips in S s: R/s, mean latency M ms, max X ms, E errors"
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* seconds each connect, send and read may take */
#define IO_TIMEOUT_S 5
/* the most client processes at once */
#define MAX_CONCURRENCY 1024

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one_round_trip(const struct sockaddr_un *addr, const char *req, size_t len)
{
	char reply[64];
	ssize_t n;
	struct timeval limit = { IO_TIMEOUT_S, 0 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	/* a server that never answers costs an error, not a child blocked for good */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit)) != 0 ||
	    connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	n = read(fd, reply, sizeof(reply));
	close(fd);
	return n > 0 ? 0 : -1;
}

static void child(const struct sockaddr_un *addr, const char *req, double until, int out)
{
	long count = 0, errors = 0;
	double sum = 0, max = 0;
	char line[128];
	int len;

	while (now_s() < until) {
		double t0 = now_s(), dt;

		if (one_round_trip(addr, req, strlen(req)) != 0) {
			errors++;
			continue;
		}
		dt = now_s() - t0;
		count++;
		sum += dt;
		if (dt > max)
			max = dt;
	}
	len = snprintf(line, sizeof(line), "%ld %ld %.0f %.0f\n", count, errors, sum * 1e9,
		       max * 1e9);
	if (write(out, line, (size_t)len) != len)
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr;
	char req[1024];
	double seconds, start, until;
	long count = 0, errors = 0;
	double sum = 0, max = 0;
	int conc, i, fds[2];
	pid_t pids[MAX_CONCURRENCY];
	FILE *in;

	if (argc != 6) {
		fprintf(stderr, "usage: %s SOCKET USER PASSWORD SECONDS CONCURRENCY\n", argv[0]);
		return 2;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strlen(argv[1]) >= sizeof(addr.sun_path) ||
	    snprintf(req, sizeof(req), "%s\n%s\n", argv[2], argv[3]) >= (int)sizeof(req)) {
		fprintf(stderr, "c_client_loop: argument too long\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	seconds = atof(argv[4]);
	conc = atoi(argv[5]);
	if (seconds <= 0 || conc < 1 || conc > MAX_CONCURRENCY || pipe(fds) != 0)
		return 2;
	start = now_s();
	until = start + seconds;
	for (i = 0; i < conc; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			while (i-- > 0)  /* the children already started, and only them */
				kill(pids[i], SIGTERM);
			return 1;
		}
		pids[i] = pid;
		if (pid == 0) {
			close(fds[0]);
			child(&addr, req, until, fds[1]);
		}
	}
	close(fds[1]);
	/* read the results before reaping: a full pipe would block the children */
	in = fdopen(fds[0], "r");
	if (!in)
		return 1;
	for (i = 0; i < conc; i++) {
		long c, e;
		double s, m;

		if (fscanf(in, "%ld %ld %lf %lf", &c, &e, &s, &m) != 4)
			return 1;
		count += c;
		errors += e;
		sum += s;
		if (m > max)
			max = m;
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	seconds = now_s() - start;
	printf("c_client_loop: %ld round-trips in %.2f s: %.1f/s, mean latency %.3f ms, "
	       "max %.3f ms, %ld errors\n", count, seconds, (double)count / seconds,
	       count ? sum / (double)count / 1e6 : 0.0, max / 1e6, errors);
	return 0;
}
