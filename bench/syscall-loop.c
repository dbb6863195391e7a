// Per-syscall cost probe for `npm run bench`: N rounds of a small write and a
// read on (tcp) a loopback TCP connection or (pipe) a pipe, in one thread, or
// (getppid) two calls of a syscall Gearbox does not watch; or (pingpong) N
// request/response exchanges on a loopback TCP connection: the client writes
// a request, the server reads it and writes a response, the client reads it
// (every call opens a message, as in HTTP); or (rpc) the same with the client
// and the server in two processes.
// Prints nanoseconds per syscall (write and read each count as one).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s tcp|pingpong|rpc|pipe|getppid rounds\n", argv[0]);
		return 2;
	}
	long rounds = atol(argv[2]);
	if (strcmp(argv[1], "getppid") == 0) {
		long sink = 0;
		for (long i = 0; i < rounds / 10; i++)
			sink += getppid();
		double t0 = now_ns();
		for (long i = 0; i < rounds; i++)
			sink += getppid() + getppid();
		double t1 = now_ns();
		printf("%.1f\n", (t1 - t0) / (2.0 * rounds) + (sink == 42 ? 1e-9 : 0));
		return 0;
	}
	int wfd, rfd;
	if (strcmp(argv[1], "pipe") == 0) {
		int p[2];
		if (pipe(p) != 0)
			return 1;
		rfd = p[0];
		wfd = p[1];
	} else {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t al = sizeof(a);
		if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
		    getsockname(l, (struct sockaddr *)&a, &al))
			return 1;
		wfd = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(wfd, (struct sockaddr *)&a, sizeof(a)))
			return 1;
		rfd = accept(l, NULL, NULL);
	}
	char buf[64];
	memset(buf, 'x', sizeof(buf));
	if (strcmp(argv[1], "rpc") == 0) {
		/* A client process and a server process: every request is a new
		 * trace (the client serves nothing), as between two services. */
		int one = 1;
		setsockopt(rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pid_t server = fork();
		if (server < 0)
			return 1;
		if (server == 0) {
			close(wfd);
			while (read(rfd, buf, sizeof(buf)) > 0)
				if (write(rfd, buf, sizeof(buf)) != sizeof(buf))
					return 1;
			return 0;
		}
		close(rfd);
		double t0 = 0;
		for (long i = -rounds / 10; i < rounds; i++) { /* the first tenth warms up */
			if (i == 0)
				t0 = now_ns();
			if (write(wfd, buf, sizeof(buf)) != sizeof(buf) || read(wfd, buf, sizeof(buf)) <= 0)
				return 1;
		}
		double t1 = now_ns();
		close(wfd);
		int status;
		waitpid(server, &status, 0);
		printf("%.1f\n", (t1 - t0) / (4.0 * rounds));
		return 0;
	}
	if (strcmp(argv[1], "pingpong") == 0) {
		int one = 1;
		setsockopt(rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		double t0 = 0;
		for (long i = -rounds / 10; i < rounds; i++) { /* the first tenth warms up */
			if (i == 0)
				t0 = now_ns();
			if (write(wfd, buf, sizeof(buf)) != sizeof(buf) || read(rfd, buf, sizeof(buf)) <= 0 ||
			    write(rfd, buf, sizeof(buf)) != sizeof(buf) || read(wfd, buf, sizeof(buf)) <= 0)
				return 1;
		}
		printf("%.1f\n", (now_ns() - t0) / (4.0 * rounds));
		return 0;
	}
	for (long i = 0; i < rounds / 10; i++) { /* warm up */
		if (write(wfd, buf, sizeof(buf)) != sizeof(buf) || read(rfd, buf, sizeof(buf)) <= 0)
			return 1;
	}
	double t0 = now_ns();
	for (long i = 0; i < rounds; i++) {
		if (write(wfd, buf, sizeof(buf)) != sizeof(buf) || read(rfd, buf, sizeof(buf)) <= 0)
			return 1;
	}
	double t1 = now_ns();
	printf("%.1f\n", (t1 - t0) / (2.0 * rounds));
	return 0;
}
