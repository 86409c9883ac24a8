/*
 * Return-value test for pam_redirector, in the style of Linux-PAM's
 * tst-*-retval.c.  It needs neither root nor Docker: every case writes a
 * service file into a temporary confdir that names the module by absolute
 * path, forks a tiny UNIX-socket server in a temporary directory (so the
 * module runs with server_uid=<our uid>), and drives pam_start_confdir() +
 * pam_authenticate() with a scripted conversation.  It asserts the exact
 * return code, what the server received, how often the conversation was
 * called and how long the call took.
 *
 * usage: tst-pam_redirector-retval /abs/path/to/pam_redirector.so
 * Prints one line per check; exits non-zero if any check fails.
 */

/*
 * Shared with modules/pam_transient_token/tst-pam_transient_token-retval.c, on purpose as a
 * copy: the harness (rc_name, die, now_s, show, the temporary confdir and its
 * removal, write_service, fill_address, the listening socket, wait_fd,
 * send_all, the forked server and its stop, the scripted conversation,
 * report).  It is not moved into a common file because the module folder is
 * a standalone drop-in: `make test` in this folder alone (copied anywhere,
 * no root, no Docker) builds and runs this test against the module.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <security/pam_appl.h>

#define REQUEST      "alice\nsecret\n"
#define ANY          (-1)
#define RECORD_WAIT_MS  300     /* how long to wait for a server's record */
#define SERVER_IO_MS    3000    /* every socket operation of the server */
#define WATCHDOG_S      120

enum server_kind {
	SRV_NONE = 0,     /* no server process */
	SRV_REPLY,        /* read request, send reply, close */
	SRV_SPLIT,        /* read request, send reply a byte at a time, close */
	SRV_HANG,         /* read request, never answer */
	SRV_REPLY_HANG,   /* read request, send reply, never close */
	SRV_EARLY,        /* send reply at once, close without reading */
};

enum path_kind {
	PATH_SOCKET = 0,  /* a proper socket, mode 0600, owned by us */
	PATH_MISSING,     /* nothing at the path */
	PATH_REGULAR,     /* a regular file */
	PATH_SYMLINK,     /* a symlink to a proper socket */
	PATH_WORLD,       /* a socket with mode 0666 */
	PATH_FOREIGN,     /* socket file chowned to 12345 (root only) */
	PATH_BACKLOG,     /* listener whose backlog is full, nobody accepts */
};

enum recv_check {
	RECV_ANY = 0,
	RECV_NOTHING,     /* the server must not have received a byte */
	RECV_EXACT,       /* exactly REQUEST (or .expect_recv) */
};

struct server_spec {
	enum server_kind kind;
	const char *reply;
	size_t reply_len;  /* 0: strlen(reply) */
};

struct tcase {
	const char *name;
	const char *stack;         /* service file; @MOD@ @SOCK@ @SOCK2@ @UID@ @LONG@ */
	enum path_kind path;
	struct server_spec srv, srv2;
	const char *user;          /* NULL: "alice" */
	const char *password;      /* conversation's answer; NULL: "secret" */
	int conv_fails;
	int flags;                 /* pam_authenticate flags */
	int expect_rc;
	enum recv_check recv, recv2;
	const char *expect_recv;   /* NULL: REQUEST */
	int expect_calls;          /* conversation calls, ANY to skip */
	int expect_msgs;           /* error/info messages, ANY to skip */
	double min_s, max_s;       /* bounds on pam_authenticate's duration */
	int root_only;
};

struct conv_state {
	const char *password;
	int fail;
	int calls;
	int messages;
};

static const char *module_path;
static char tmpdir[64];
static char confdir[128];
static char sock1[128], sock2[128];
static int checks, failures, skipped;

/* ----------------------------------------------------------------- utils */

static const char *
rc_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "PAM_SUCCESS";
	case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
	case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
	case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
	case PAM_CONV_ERR: return "PAM_CONV_ERR";
	case PAM_BUF_ERR: return "PAM_BUF_ERR";
	case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
	case PAM_IGNORE: return "PAM_IGNORE";
	case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
	case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
	case PAM_ABORT: return "PAM_ABORT";
	case PAM_INCOMPLETE: return "PAM_INCOMPLETE";
	default: return "PAM_?";
	}
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tst-pam_redirector-retval: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, ": %s\n", strerror(errno));
	va_end(ap);
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* printable rendering of bytes, for messages */
static const char *
show(const char *buf, size_t len)
{
	static char out[4][256];
	static int slot;
	char *o = out[slot++ % 4];
	size_t i, n = 0;

	for (i = 0; i < len && n + 5 < sizeof(out[0]); i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n')
			n += (size_t)snprintf(o + n, sizeof(out[0]) - n, "\\n");
		else if (c >= 0x20 && c < 0x7f)
			o[n++] = (char)c;
		else
			n += (size_t)snprintf(o + n, sizeof(out[0]) - n, "\\x%02x", c);
	}
	o[n] = '\0';
	return o;
}

static int
unlink_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void
remove_tmpdir(void)
{
	if (tmpdir[0] != '\0')
		nftw(tmpdir, unlink_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Replace @MOD@ @SOCK@ @SOCK2@ @UID@ @LONG@ in a service-file template. */
static void
expand(char *out, size_t outlen, const char *tmpl, const char *sockarg)
{
	char uid[32], longpath[160];
	size_t o = 0;

	snprintf(uid, sizeof(uid), "%lu", (unsigned long)getuid());
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';

	while (*tmpl != '\0' && o + 1 < outlen) {
		const char *with = NULL;
		size_t skip = 0;

		if (strncmp(tmpl, "@MOD@", 5) == 0)
			with = module_path, skip = 5;
		else if (strncmp(tmpl, "@SOCK2@", 7) == 0)
			with = sock2, skip = 7;
		else if (strncmp(tmpl, "@SOCK@", 6) == 0)
			with = sockarg, skip = 6;
		else if (strncmp(tmpl, "@UID@", 5) == 0)
			with = uid, skip = 5;
		else if (strncmp(tmpl, "@LONG@", 6) == 0)
			with = longpath, skip = 6;
		if (with != NULL) {
			o += (size_t)snprintf(out + o, outlen - o, "%s", with);
			if (o >= outlen)
				o = outlen - 1;
			tmpl += skip;
		} else {
			out[o++] = *tmpl++;
		}
	}
	out[o] = '\0';
}

static void
write_service(const char *service, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", confdir, service);
	f = fopen(path, "w");
	if (f == NULL)
		die("fopen %s", path);
	fputs(text, f);
	if (fclose(f) != 0)
		die("fclose %s", path);
}

/* ------------------------------------------------------------ the server */

static void
fill_address(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (len >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		die("%s", path);
	}
	memcpy(sa->sun_path, path, len + 1);
}

static int
make_listener(const char *path, int backlog, mode_t mode)
{
	struct sockaddr_un sa;
	int fd;

	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	fill_address(&sa, path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("bind %s", path);
	if (chmod(path, mode) != 0)
		die("chmod %s", path);
	if (listen(fd, backlog) != 0)
		die("listen");
	return fd;
}

static int
wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	return n;
}

static void
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Child side: one connection, scripted by spec; what was read goes to rec. */
static void
serve(int lfd, const struct server_spec *spec, int rec)
{
	char buf[4096];
	size_t got = 0, reply_len;
	int cfd, newlines = 0;

	reply_len = spec->reply_len ? spec->reply_len :
		    (spec->reply ? strlen(spec->reply) : 0);

	if (wait_fd(lfd, POLLIN, 10 * SERVER_IO_MS) <= 0)
		_exit(0);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		_exit(1);

	if (spec->kind == SRV_EARLY) {
		send_all(cfd, spec->reply, reply_len);
		close(cfd);
		_exit(0);
	}

	while (got < sizeof(buf) && newlines < 2) {
		ssize_t n, i;

		if (wait_fd(cfd, POLLIN, SERVER_IO_MS) <= 0)
			break;
		n = read(cfd, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			if (buf[got + (size_t)i] == '\n')
				newlines++;
		got += (size_t)n;
	}
	if (got > 0 && write(rec, buf, got) != (ssize_t)got)
		_exit(1);
	close(rec);

	switch (spec->kind) {
	case SRV_REPLY:
		send_all(cfd, spec->reply, reply_len);
		break;
	case SRV_SPLIT:
		for (size_t i = 0; i < reply_len; i++) {
			send_all(cfd, spec->reply + i, 1);
			poll(NULL, 0, 50);
		}
		break;
	case SRV_REPLY_HANG:
		send_all(cfd, spec->reply, reply_len);
		/* fall through */
	case SRV_HANG:
		for (;;)
			pause();
	default:
		break;
	}
	close(cfd);
	_exit(0);
}

struct server {
	pid_t pid;
	int rec;          /* read end of the record pipe */
	char got[4096];
	size_t got_len;
};

static void
start_server(struct server *s, int lfd, const struct server_spec *spec)
{
	int p[2];
	pid_t parent = getpid();

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	s->rec = -1;
	if (spec->kind == SRV_NONE)
		return;
	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe2");
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0)
		die("fork");
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		close(p[0]);
		serve(lfd, spec, p[1]);
		_exit(0);
	}
	close(p[1]);
	s->rec = p[0];
}

/* Give the server a moment to file its record, then kill, reap, collect. */
static void
stop_server(struct server *s)
{
	if (s->pid <= 0)
		return;
	wait_fd(s->rec, POLLIN, RECORD_WAIT_MS);
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	for (;;) {
		ssize_t n = read(s->rec, s->got + s->got_len,
				 sizeof(s->got) - s->got_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		s->got_len += (size_t)n;
	}
	close(s->rec);
	s->pid = -1;
}

/* ------------------------------------------------------ the conversation */

static int
conversation(int n, const struct pam_message **msg,
	     struct pam_response **resp, void *data)
{
	struct conv_state *st = data;
	struct pam_response *r;
	int i;

	st->calls++;
	if (st->fail || n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			r[i].resp = strdup(st->password);
			if (r[i].resp == NULL)
				goto fail;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			st->messages++;
			break;
		default:
			goto fail;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < n; i++)
		free(r[i].resp);
	free(r);
	return PAM_CONV_ERR;
}

/* ------------------------------------------------------------- checking */

static void
report(const char *name, const char *problem, int rc, double took)
{
	checks++;
	if (problem[0] == '\0') {
		printf("ok   - %s (%s, %.3f s)\n", name, rc_name(rc), took);
	} else {
		failures++;
		printf("FAIL - %s: %s\n", name, problem);
	}
	fflush(stdout);
}

static void
check_received(char *problem, size_t plen, const char *which,
	       enum recv_check check, const char *want, const struct server *s)
{
	size_t used = strlen(problem);

	if (check == RECV_NOTHING && s->got_len != 0)
		snprintf(problem + used, plen - used,
			 "%s received \"%s\", expected nothing; ", which,
			 show(s->got, s->got_len));
	if (check == RECV_EXACT &&
	    (s->got_len != strlen(want) || memcmp(s->got, want, s->got_len) != 0))
		snprintf(problem + used, plen - used,
			 "%s received \"%s\", expected \"%s\"; ", which,
			 show(s->got, s->got_len), show(want, strlen(want)));
}

static void
run_case(const struct tcase *tc)
{
	static int serial;
	char service[32], text[4096], problem[1024] = "";
	const char *sockarg = sock1;
	char other[128];
	struct conv_state st = {
		.password = tc->password ? tc->password : "secret",
		.fail = tc->conv_fails,
	};
	struct pam_conv conv = { conversation, &st };
	struct server s1, s2;
	pam_handle_t *pamh = NULL;
	int lfd = -1, lfd2 = -1, fillers[16], nfill = 0, rc, i;
	double t0, took;
	const char *want = tc->expect_recv ? tc->expect_recv : REQUEST;

	if (tc->root_only && getuid() != 0) {
		skipped++;
		printf("skip - %s (needs root)\n", tc->name);
		return;
	}

	snprintf(service, sizeof(service), "tcase%03d", ++serial);
	unlink(sock1);
	unlink(sock2);
	snprintf(other, sizeof(other), "%s/other-path", tmpdir);
	unlink(other);

	/* what sits at the path the module is given */
	switch (tc->path) {
	case PATH_SOCKET:
		lfd = make_listener(sock1, 8, 0600);
		break;
	case PATH_MISSING:
		sockarg = other;
		break;
	case PATH_REGULAR: {
		int fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

		if (fd < 0)
			die("open %s", other);
		close(fd);
		sockarg = other;
		break;
	}
	case PATH_SYMLINK:
		lfd = make_listener(sock1, 8, 0600);
		if (symlink(sock1, other) != 0)
			die("symlink");
		sockarg = other;
		break;
	case PATH_WORLD:
		lfd = make_listener(sock1, 8, 0666);
		break;
	case PATH_FOREIGN:
		lfd = make_listener(sock1, 8, 0600);
		if (chown(sock1, 12345, (gid_t)-1) != 0)
			die("chown");
		break;
	case PATH_BACKLOG: {
		struct sockaddr_un sa;

		lfd = make_listener(sock1, 0, 0600);
		fill_address(&sa, sock1);
		for (nfill = 0; nfill < 16; nfill++) {
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
					SOCK_CLOEXEC, 0);

			if (fd < 0)
				die("socket");
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
				close(fd);
				break;
			}
			fillers[nfill] = fd;
		}
		break;
	}
	}
	if (tc->srv2.kind != SRV_NONE)
		lfd2 = make_listener(sock2, 8, 0600);

	start_server(&s1, lfd, &tc->srv);
	start_server(&s2, lfd2, &tc->srv2);

	expand(text, sizeof(text), tc->stack, sockarg);
	write_service(service, text);

	rc = pam_start_confdir(service, tc->user ? tc->user : "alice", &conv,
			       confdir, &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_start_confdir: %s\n", rc_name(rc));
		exit(2);
	}
	t0 = now_s();
	rc = pam_authenticate(pamh, tc->flags);
	took = now_s() - t0;
	pam_end(pamh, rc);

	stop_server(&s1);
	stop_server(&s2);
	for (i = 0; i < nfill; i++)
		close(fillers[i]);
	if (lfd >= 0)
		close(lfd);
	if (lfd2 >= 0)
		close(lfd2);

	if (rc != tc->expect_rc)
		snprintf(problem, sizeof(problem), "rc=%s, expected %s; ",
			 rc_name(rc), rc_name(tc->expect_rc));
	check_received(problem, sizeof(problem), "server", tc->recv, want, &s1);
	check_received(problem, sizeof(problem), "server 2", tc->recv2, REQUEST, &s2);
	if (tc->expect_calls != ANY && st.calls != tc->expect_calls) {
		size_t u = strlen(problem);

		snprintf(problem + u, sizeof(problem) - u,
			 "conversation called %d times, expected %d; ",
			 st.calls, tc->expect_calls);
	}
	if (tc->expect_msgs != ANY && st.messages != tc->expect_msgs) {
		size_t u = strlen(problem);

		snprintf(problem + u, sizeof(problem) - u,
			 "%d messages shown, expected %d; ",
			 st.messages, tc->expect_msgs);
	}
	if (took > (tc->max_s > 0 ? tc->max_s : 5.0) || took < tc->min_s) {
		size_t u = strlen(problem);

		snprintf(problem + u, sizeof(problem) - u,
			 "took %.3f s, expected %.1f..%.1f s; ", took, tc->min_s,
			 tc->max_s > 0 ? tc->max_s : 5.0);
	}
	report(tc->name, problem, rc, took);
}

/* One primitive other than pam_authenticate against a one-line stack. */
static void
run_primitive(const char *name, const char *line, int which, int expect_rc,
	      int must_differ)
{
	static int serial;
	char service[32], text[1024], problem[256] = "";
	struct conv_state st = { .password = "secret" };
	struct pam_conv conv = { conversation, &st };
	pam_handle_t *pamh = NULL;
	int rc;
	double t0 = now_s();

	snprintf(service, sizeof(service), "prim%03d", ++serial);
	expand(text, sizeof(text), line, sock1);
	write_service(service, text);
	if (pam_start_confdir(service, "alice", &conv, confdir, &pamh) != PAM_SUCCESS)
		die("pam_start_confdir");
	switch (which) {
	case 0: rc = pam_setcred(pamh, PAM_ESTABLISH_CRED); break;
	case 1: rc = pam_acct_mgmt(pamh, 0); break;
	case 2: rc = pam_open_session(pamh, 0); break;
	default: rc = pam_chauthtok(pamh, 0); break;
	}
	pam_end(pamh, rc);
	if (must_differ ? rc == expect_rc : rc != expect_rc)
		snprintf(problem, sizeof(problem), "rc=%s, expected %s%s",
			 rc_name(rc), must_differ ? "anything but " : "",
			 rc_name(expect_rc));
	if (st.calls != 0) {
		size_t u = strlen(problem);

		snprintf(problem + u, sizeof(problem) - u,
			 "%sconversation called", u ? "; " : "");
	}
	report(name, problem, rc, now_s() - t0);
}

/* ----------------------------------------------------------------- cases */

#define LINE(args)  "auth required @MOD@ " args "\n"
#define STD         "@SOCK@ server_uid=@UID@"

#define REPLY(s)      { SRV_REPLY, s, 0 }
#define REPLYN(s, n)  { SRV_REPLY, s, n }

static const struct tcase cases[] = {
	/* grant and deny */
	{ .name = "reply \"0\" grants; server got exactly user\\npassword\\n",
	  .stack = LINE(STD), .srv = REPLY("0"), .expect_rc = PAM_SUCCESS,
	  .recv = RECV_EXACT, .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "reply \"0\\n\" grants",
	  .stack = LINE(STD), .srv = REPLY("0\n"), .expect_rc = PAM_SUCCESS,
	  .recv = RECV_EXACT, .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "reply \"0\\n\" sent a byte at a time grants",
	  .stack = LINE(STD), .srv = { SRV_SPLIT, "0\n", 0 },
	  .expect_rc = PAM_SUCCESS, .recv = RECV_EXACT,
	  .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "socket=PATH spelling grants",
	  .stack = LINE("socket=@SOCK@ server_uid=@UID@ debug"), .srv = REPLY("0"),
	  .expect_rc = PAM_SUCCESS, .recv = RECV_EXACT,
	  .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "default server_uid=0 accepts a root server",
	  .stack = LINE("@SOCK@"), .srv = REPLY("0"), .expect_rc = PAM_SUCCESS,
	  .recv = RECV_EXACT, .expect_calls = ANY, .expect_msgs = ANY,
	  .root_only = 1 },
	{ .name = "reply \"1\" denies",
	  .stack = LINE(STD), .srv = REPLY("1"), .expect_rc = PAM_AUTH_ERR,
	  .recv = RECV_EXACT, .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "reply \"1\\n\" denies",
	  .stack = LINE(STD), .srv = REPLY("1\n"), .expect_rc = PAM_AUTH_ERR,
	  .recv = RECV_EXACT, .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "reply \"10\" denies",
	  .stack = LINE(STD), .srv = REPLY("10"), .expect_rc = PAM_AUTH_ERR,
	  .recv = RECV_EXACT, .expect_calls = ANY, .expect_msgs = ANY },

	/* malformed replies (R-M1) */
#define MALFORMED(label, bytes, n) \
	{ .name = "malformed reply " label " -> PAM_AUTH_ERR", \
	  .stack = LINE(STD), .srv = REPLYN(bytes, n), .expect_rc = PAM_AUTH_ERR, \
	  .recv = RECV_EXACT, .expect_calls = ANY, .expect_msgs = 0 }
	MALFORMED("\"00\"", "00", 0),
	MALFORMED("\" 0\"", " 0", 0),
	MALFORMED("empty (close without reply)", "", 0),
	MALFORMED("\"0x\"", "0x", 0),
	MALFORMED("\"PASS\"", "PASS", 0),
	MALFORMED("\"-0\"", "-0", 0),
	MALFORMED("\"+0\"", "+0", 0),
	MALFORMED("\"0\\r\\n\"", "0\r\n", 0),
	MALFORMED("\"0\\n\\n\"", "0\n\n", 0),
	MALFORMED("\"0\\0\"", "0\0", 2),
	MALFORMED("\"01\"", "01", 0),
	MALFORMED("\"\\n\"", "\n", 0),
	MALFORMED("of 32 zeros (too long)", "00000000000000000000000000000000", 0),
	{ .name = "reply \"0\" before the request, close unread -> PAM_AUTH_ERR",
	  .stack = LINE(STD), .srv = { SRV_EARLY, "0", 0 },
	  .expect_rc = PAM_AUTH_ERR, .expect_calls = ANY, .expect_msgs = ANY },

	/* unreachable or untrusted server (R-M1, R-M5) */
	{ .name = "missing socket -> PAM_AUTHINFO_UNAVAIL, warns the user",
	  .stack = LINE(STD), .path = PATH_MISSING,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 2, .expect_msgs = 1 },
	{ .name = "missing socket, PAM_SILENT: no message",
	  .stack = LINE(STD), .path = PATH_MISSING, .flags = PAM_SILENT,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "missing socket, no_warn: no message",
	  .stack = LINE(STD " no_warn"), .path = PATH_MISSING,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "regular file at the path -> PAM_AUTHINFO_UNAVAIL",
	  .stack = LINE(STD), .path = PATH_REGULAR,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "symlink to a good socket -> PAM_AUTHINFO_UNAVAIL, nothing sent",
	  .stack = LINE(STD), .path = PATH_SYMLINK, .srv = REPLY("0"),
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING,
	  .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "wrong server_uid=12345 -> PAM_AUTHINFO_UNAVAIL, nothing sent",
	  .stack = LINE("@SOCK@ server_uid=12345"), .srv = REPLY("0"),
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING,
	  .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "world-writable socket -> PAM_AUTHINFO_UNAVAIL, nothing sent",
	  .stack = LINE(STD), .path = PATH_WORLD, .srv = REPLY("0"),
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING,
	  .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "file owner ok but peer uid wrong (SO_PEERCRED) -> "
		  "PAM_AUTHINFO_UNAVAIL, nothing sent",
	  .stack = LINE("@SOCK@ server_uid=12345"), .path = PATH_FOREIGN,
	  .srv = REPLY("0"), .expect_rc = PAM_AUTHINFO_UNAVAIL,
	  .recv = RECV_NOTHING, .expect_calls = ANY, .expect_msgs = ANY,
	  .root_only = 1 },

	/* bounded waits (R-M2) */
	{ .name = "server never answers, timeout=0.5 -> PAM_AUTHINFO_UNAVAIL in ~0.5 s",
	  .stack = LINE(STD " timeout=0.5"), .srv = { SRV_HANG, NULL, 0 },
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_EXACT,
	  .expect_calls = ANY, .expect_msgs = ANY, .min_s = 0.4, .max_s = 1.2 },
	{ .name = "\"0\" but no end of stream, timeout=0.5 -> denied in ~0.5 s",
	  .stack = LINE(STD " timeout=0.5"), .srv = { SRV_REPLY_HANG, "0", 0 },
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_EXACT,
	  .expect_calls = ANY, .expect_msgs = ANY, .min_s = 0.4, .max_s = 1.2 },
	{ .name = "listen backlog full, timeout=0.5 -> connect gives up in ~0.5 s",
	  .stack = LINE(STD " timeout=0.5"), .path = PATH_BACKLOG,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = ANY,
	  .expect_msgs = ANY, .min_s = 0.4, .max_s = 1.2 },

	/* configuration errors fail closed */
#define BADCONF(label, args) \
	{ .name = label " -> PAM_SERVICE_ERR", .stack = LINE(args), \
	  .srv = REPLY("0"), .expect_rc = PAM_SERVICE_ERR, .recv = RECV_NOTHING, \
	  .expect_calls = 0, .expect_msgs = 0 }
	BADCONF("missing argument", ""),
	BADCONF("only flags, no socket", "debug use_first_pass"),
	BADCONF("unknown option", STD " frobnicate"),
	BADCONF("unknown key=value option", STD " allow=all"),
	BADCONF("relative socket path", "pam_redirector.sock server_uid=@UID@"),
	BADCONF("socket path given twice", STD " socket=@SOCK@"),
	BADCONF("socket path longer than sun_path", "@LONG@ server_uid=@UID@"),
	BADCONF("timeout=0", STD " timeout=0"),
	BADCONF("timeout=-1", STD " timeout=-1"),
	BADCONF("timeout=abc", STD " timeout=abc"),
	BADCONF("timeout=1s", STD " timeout=1s"),
	BADCONF("timeout=nan", STD " timeout=nan"),
	BADCONF("timeout=3601", STD " timeout=3601"),
	BADCONF("timeout=0x10", STD " timeout=0x10"),
	BADCONF("timeout=1e0", STD " timeout=1e0"),
	BADCONF("timeout=0.0001", STD " timeout=0.0001"),
	BADCONF("timeout=.", STD " timeout=."),
	BADCONF("timeout=0,5", STD " timeout=0,5"),
	BADCONF("timeout=1.5.0", STD " timeout=1.5.0"),
	BADCONF("server_uid=-1", "@SOCK@ server_uid=-1"),
	BADCONF("server_uid=root", "@SOCK@ server_uid=root"),
	BADCONF("server_uid=4294967295", "@SOCK@ server_uid=4294967295"),

	/* credentials that cannot be framed (R-M6) */
	{ .name = "\\n in password -> PAM_AUTH_ERR, nothing sent",
	  .stack = LINE(STD), .srv = REPLY("0"), .password = "sec\nret",
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING,
	  .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "\\r in password -> PAM_AUTH_ERR, nothing sent",
	  .stack = LINE(STD), .srv = REPLY("0"), .password = "secret\r",
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING,
	  .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "\\n in user name -> PAM_AUTH_ERR, nothing sent, no prompt",
	  .stack = LINE(STD), .srv = REPLY("0"), .user = "alice\n0",
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING,
	  .expect_calls = 0, .expect_msgs = 0 },
	{ .name = "empty user name -> PAM_AUTH_ERR, nothing sent",
	  .stack = LINE(STD), .srv = REPLY("0"), .user = "",
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING,
	  .expect_calls = ANY, .expect_msgs = ANY },
	{ .name = "empty password is sent as an empty line; server decides",
	  .stack = LINE(STD), .srv = REPLY("1"), .password = "",
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_EXACT,
	  .expect_recv = "alice\n\n", .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "empty password + PAM_DISALLOW_NULL_AUTHTOK -> PAM_AUTH_ERR, nothing sent",
	  .stack = LINE(STD), .srv = REPLY("0"), .password = "",
	  .flags = PAM_DISALLOW_NULL_AUTHTOK, .expect_rc = PAM_AUTH_ERR,
	  .recv = RECV_NOTHING, .expect_calls = 1, .expect_msgs = 0 },

	/* obtaining the password (R-M4) */
	{ .name = "use_first_pass without a token -> PAM_AUTH_ERR, no conversation",
	  .stack = LINE(STD " use_first_pass"), .srv = REPLY("0"),
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING,
	  .expect_calls = 0, .expect_msgs = 0 },
	{ .name = "try_first_pass without a token prompts once",
	  .stack = LINE(STD " try_first_pass"), .srv = REPLY("0"),
	  .expect_rc = PAM_SUCCESS, .recv = RECV_EXACT,
	  .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "conversation failure -> PAM_CONV_ERR, nothing sent",
	  .stack = LINE(STD), .srv = REPLY("0"), .conv_fails = 1,
	  .expect_rc = PAM_CONV_ERR, .recv = RECV_NOTHING,
	  .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "stacked: second module with use_first_pass reuses the token",
	  .stack = "auth optional @MOD@ " STD "\n"
		   "auth required @MOD@ @SOCK2@ server_uid=@UID@ use_first_pass\n",
	  .srv = REPLY("1"), .srv2 = REPLY("0"), .expect_rc = PAM_SUCCESS,
	  .recv = RECV_EXACT, .recv2 = RECV_EXACT,
	  .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "stacked: second module with try_first_pass reuses the token",
	  .stack = "auth optional @MOD@ " STD "\n"
		   "auth required @MOD@ @SOCK2@ server_uid=@UID@ try_first_pass\n",
	  .srv = REPLY("1"), .srv2 = REPLY("0"), .expect_rc = PAM_SUCCESS,
	  .recv = RECV_EXACT, .recv2 = RECV_EXACT,
	  .expect_calls = 1, .expect_msgs = 0 },
	{ .name = "stacked drop-in (no flag): second module uses the set token",
	  .stack = "auth required @MOD@ " STD "\n"
		   "auth required @MOD@ @SOCK2@ server_uid=@UID@\n",
	  .srv = REPLY("0"), .srv2 = REPLY("1"), .expect_rc = PAM_AUTH_ERR,
	  .recv = RECV_EXACT, .recv2 = RECV_EXACT,
	  .expect_calls = 1, .expect_msgs = 0 },
};

int
main(int argc, char **argv)
{
	size_t i;

	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: %s /abs/path/to/pam_redirector.so\n", argv[0]);
		return 2;
	}
	module_path = argv[1];
	if (access(module_path, R_OK) != 0)
		die("%s", module_path);

	signal(SIGPIPE, SIG_IGN);
	alarm(WATCHDOG_S);      /* a hang kills the test, and fails it */
	umask(077);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tst-pam_redirector.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp");
	atexit(remove_tmpdir);
	snprintf(confdir, sizeof(confdir), "%s/pam.d", tmpdir);
	if (mkdir(confdir, 0700) != 0)
		die("mkdir %s", confdir);
	snprintf(sock1, sizeof(sock1), "%s/s1.sock", tmpdir);
	snprintf(sock2, sizeof(sock2), "%s/s2.sock", tmpdir);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);

	unlink(sock1);
	run_primitive("pam_setcred -> PAM_SUCCESS",
		      "auth required @MOD@ @SOCK@\n", 0, PAM_SUCCESS, 0);
	run_primitive("account: module ignores, the stack does not succeed",
		      "account required @MOD@ @SOCK@\n", 1, PAM_SUCCESS, 1);
	run_primitive("session: module ignores, the stack does not succeed",
		      "session required @MOD@ @SOCK@\n", 2, PAM_SUCCESS, 1);
	run_primitive("password: module ignores, the stack does not succeed",
		      "password required @MOD@ @SOCK@\n", 3, PAM_SUCCESS, 1);

	printf("%d checks, %d failed, %d skipped\n", checks, failures, skipped);
	return failures ? 1 : 0;
}
