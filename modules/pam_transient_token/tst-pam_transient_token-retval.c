/*
 * Return-value test for pam_transient_token, in the style of Linux-PAM's
 * tst-*-retval.c.  It needs neither root nor Docker: PAM_USER is the user
 * running the test (getpwuid(getuid())), so tokens name our own uid; every
 * case writes a service file into a temporary confdir that names the module
 * by absolute path with socket_dir=<a private temporary directory>, forks a
 * tiny token server there, and drives pam_start_confdir() +
 * pam_authenticate() with a scripted conversation.  It asserts the exact
 * return code, what the server received, how often the conversation was
 * called, how long the call took, and that nothing the module logged
 * (caught by this program's own syslog functions) holds the token's secret.
 *
 * usage: tst-pam_transient_token-retval /abs/path/to/pam_transient_token.so
 * Prints one line per check; exits non-zero if any check fails.  Checks that
 * need root (a socket owned by, or served by, another uid) are skipped
 * otherwise.
 */

/*
 * Shared with modules/pam_redirector/tst-pam_redirector-retval.c, on purpose as a
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
#include <grp.h>
#include <ftw.h>
#include <poll.h>
#include <pwd.h>
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

#define AUTH        "AbCdEfGhIjKlMnOpQrStUvWxYz012+/9"   /* 32 base64 chars */
#define OTHER_UID   12345
#define ANY         (-1)
#define SERVER_IO_MS 3000
#define WATCHDOG_S  120

enum server_kind {
	SRV_NONE = 0,     /* no server process */
	SRV_REPLY,        /* read the token, send the reply, close */
	SRV_SPLIT,        /* read the token, send the reply a byte at a time */
	SRV_HANG,         /* read the token, never answer */
	SRV_REPLY_HANG,   /* read the token, send the reply, never close */
};

enum path_kind {
	PATH_SOCKET = 0,  /* a socket we own, mode 0600 */
	PATH_MISSING,     /* nothing at the path */
	PATH_REGULAR,     /* a regular file */
	PATH_SYMLINK,     /* a symlink to a proper socket */
	PATH_MODE,        /* a socket with .mode */
	PATH_DEAD,        /* a socket file nobody listens on */
	PATH_BACKLOG,     /* listener whose backlog is full, nobody accepts */
	PATH_FOREIGN,     /* socket file chowned to OTHER_UID (root only) */
	PATH_FOREIGN_PEER,/* our socket file, served by OTHER_UID (root only) */
};

enum recv_check {
	RECV_ANY = 0,
	RECV_NOTHING,     /* the server must not have received a byte */
	RECV_TOKEN,       /* exactly the token, no newline */
};

struct tcase {
	const char *name;
	const char *args;          /* module arguments; @DIR@ is the socket dir */
	const char *stack;         /* whole service file instead (@MOD@ @DIR@) */
	enum path_kind path;
	mode_t mode;
	enum server_kind srv;
	const char *reply;
	size_t reply_len;          /* 0: strlen(reply) */
	const char *token;         /* template (@TOKEN@ @UID@ @UID1@ @PID@ @AUTH@); NULL: @TOKEN@ */
	const char *user;          /* NULL: our own user */
	int conv_fails;
	int expect_rc;
	enum recv_check recv;
	int expect_calls;          /* conversation calls, ANY to skip */
	double min_s, max_s;       /* bounds on pam_authenticate's duration */
	int root_only;
};

struct conv_state {
	const char *answer;
	int fail;
	int calls;
};

static const char *module_path;
static char tmpdir[64], confdir[128], sockdir[128];
static char user_name[256];
static unsigned long my_uid;
static int checks, failures, skipped;

/* ------------------------------------------------- syslog, caught in here */

static char logged[65536];
static size_t logged_len;
static int logging_on;

static void
catch_log(const char *fmt, va_list ap)
{
	int n;

	if (!logging_on || logged_len + 2 >= sizeof(logged))
		return;
	n = vsnprintf(logged + logged_len, sizeof(logged) - logged_len - 1, fmt, ap);
	if (n > 0)
		logged_len += (size_t)n < sizeof(logged) - logged_len - 1 ?
			      (size_t)n : sizeof(logged) - logged_len - 2;
	logged[logged_len++] = '\n';
	logged[logged_len] = '\0';
}

/* libpam's pam_syslog() ends in one of these; -rdynamic makes ours win. */
void vsyslog(int pri, const char *fmt, va_list ap);
void syslog(int pri, const char *fmt, ...);
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap);
void __syslog_chk(int pri, int flag, const char *fmt, ...);

void
vsyslog(int pri, const char *fmt, va_list ap)
{
	(void)pri;
	catch_log(fmt, ap);
}

void
syslog(int pri, const char *fmt, ...)
{
	va_list ap;

	(void)pri;
	va_start(ap, fmt);
	catch_log(fmt, ap);
	va_end(ap);
}

void
__vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	(void)pri; (void)flag;
	catch_log(fmt, ap);
}

void
__syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)pri; (void)flag;
	va_start(ap, fmt);
	catch_log(fmt, ap);
	va_end(ap);
}

/* ----------------------------------------------------------------- utils */

static const char *
rc_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "PAM_SUCCESS";
	case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
	case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
	case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
	case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
	case PAM_AUTHTOK_ERR: return "PAM_AUTHTOK_ERR";
	case PAM_CONV_ERR: return "PAM_CONV_ERR";
	case PAM_BUF_ERR: return "PAM_BUF_ERR";
	case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
	case PAM_IGNORE: return "PAM_IGNORE";
	case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
	case PAM_INCOMPLETE: return "PAM_INCOMPLETE";
	default: return "PAM_?";
	}
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tst-pam_transient_token-retval: ");
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

static const char *
show(const char *buf, size_t len)
{
	static char out[4][256];
	static int slot;
	char *o = out[slot++ % 4];
	size_t i, n = 0;

	for (i = 0; i < len && n + 5 < sizeof(out[0]); i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c >= 0x20 && c < 0x7f)
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

/* Replace @NAME@ placeholders of a template. */
static void
expand(char *out, size_t outlen, const char *tmpl, unsigned long pid)
{
	char uid[32], uid1[32], pids[32], token[128], longdir[120];
	size_t o = 0;

	snprintf(uid, sizeof(uid), "%lu", my_uid);
	snprintf(uid1, sizeof(uid1), "%lu", my_uid + 1);
	snprintf(pids, sizeof(pids), "%lu", pid);
	snprintf(token, sizeof(token), "TTK%lu:%lu:%s", my_uid, pid, AUTH);
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';

	while (*tmpl != '\0' && o + 1 < outlen) {
		static const char *const names[] = {
			"@MOD@", "@DIR@", "@TOKEN@", "@UID1@", "@UID@", "@PID@",
			"@AUTH@", "@LONGDIR@",
		};
		const char *with[8];
		size_t k, skip = 0;
		const char *w = NULL;

		with[0] = module_path; with[1] = sockdir; with[2] = token;
		with[3] = uid1; with[4] = uid; with[5] = pids; with[6] = AUTH;
		with[7] = longdir;
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			if (strncmp(tmpl, names[k], strlen(names[k])) == 0) {
				w = with[k];
				skip = strlen(names[k]);
				break;
			}
		}
		if (w != NULL) {
			o += (size_t)snprintf(out + o, outlen - o, "%s", w);
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

/* bind (and listen unless backlog < 0) a socket at path with mode */
static int
make_socket(const char *path, int backlog, mode_t mode)
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
	if (backlog >= 0 && listen(fd, backlog) != 0)
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

struct server {
	pid_t pid;
	int rec;          /* read end of the record pipe */
	char got[512];
	size_t got_len;
};

/*
 * Child side: accept one connection, read up to want bytes (or until the
 * client stops), file what was read in rec BEFORE replying (so the record is
 * there once the module returns), then reply as scripted.
 */
static void
serve(int lfd, const struct tcase *tc, size_t want, int rec)
{
	char buf[512];
	size_t got = 0, reply_len, i;
	int cfd;

	reply_len = tc->reply_len ? tc->reply_len : (tc->reply ? strlen(tc->reply) : 0);
	if (wait_fd(lfd, POLLIN, 10 * SERVER_IO_MS) <= 0)
		_exit(0);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		_exit(1);
	while (got < want && got < sizeof(buf)) {
		ssize_t n;

		if (wait_fd(cfd, POLLIN, got ? 300 : SERVER_IO_MS) <= 0)
			break;
		n = read(cfd, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got > 0 && write(rec, buf, got) != (ssize_t)got)
		_exit(1);
	close(rec);

	switch (tc->srv) {
	case SRV_REPLY:
		send_all(cfd, tc->reply, reply_len);
		break;
	case SRV_SPLIT:
		for (i = 0; i < reply_len; i++) {
			send_all(cfd, tc->reply + i, 1);
			poll(NULL, 0, 30);
		}
		break;
	case SRV_REPLY_HANG:
		send_all(cfd, tc->reply, reply_len);
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

static void
start_server(struct server *s, int lfd, const struct tcase *tc, size_t want,
	     int as_other)
{
	int p[2], ready[2];
	pid_t parent = getpid();
	char c;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	s->rec = -1;
	if (tc->srv == SRV_NONE)
		return;
	if (pipe2(p, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0)
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
		close(ready[0]);
		if (as_other) {
			/* SO_PEERCRED reports whoever called listen() */
			if (setgroups(0, NULL) != 0 || setgid(OTHER_UID) != 0 ||
			    setuid(OTHER_UID) != 0)
				_exit(3);
			if (listen(lfd, 8) != 0)
				_exit(3);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		close(ready[1]);
		serve(lfd, tc, want, p[1]);
		_exit(0);
	}
	close(p[1]);
	close(ready[1]);
	/* listening (and, for as_other, switched uid) before the module connects */
	if (wait_fd(ready[0], POLLIN, SERVER_IO_MS) <= 0 || read(ready[0], &c, 1) != 1) {
		errno = EPROTO;
		die("the test server did not start");
	}
	close(ready[0]);
	s->rec = p[0];
}

/* The record is filed before any reply: a short grace, then kill and collect. */
static void
stop_server(struct server *s)
{
	if (s->pid <= 0)
		return;
	wait_fd(s->rec, POLLIN, 20);
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	for (;;) {
		ssize_t n = read(s->rec, s->got + s->got_len, sizeof(s->got) - s->got_len);

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
			r[i].resp = strdup(st->answer);
			if (r[i].resp == NULL)
				goto fail;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
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
append(char *problem, size_t plen, const char *fmt, ...)
{
	size_t used = strlen(problem);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem + used, plen - used, fmt, ap);
	va_end(ap);
}

static void
run_case(const struct tcase *tc)
{
	static int serial;
	char service[32], text[2048], problem[1024] = "", answer[512];
	char sock[160], other[160], tmpl[600];
	struct conv_state st = { .answer = answer, .fail = tc->conv_fails };
	struct pam_conv conv = { conversation, &st };
	struct server srv;
	pam_handle_t *pamh = NULL;
	int lfd = -1, fillers[16], nfill = 0, rc, i;
	unsigned long pid;
	double t0, took;

	if (tc->root_only && getuid() != 0) {
		skipped++;
		printf("skip - %s (needs root)\n", tc->name);
		return;
	}
	pid = 4000 + (unsigned long)++serial;
	snprintf(service, sizeof(service), "tcase%03d", serial);
	snprintf(sock, sizeof(sock), "%s/transient-token-%lu-%lu", sockdir, my_uid, pid);
	snprintf(other, sizeof(other), "%s/elsewhere", tmpdir);
	unlink(other);
	expand(answer, sizeof(answer), tc->token ? tc->token : "@TOKEN@", pid);

	switch (tc->path) {
	case PATH_SOCKET:
		lfd = make_socket(sock, 8, 0600);
		break;
	case PATH_MISSING:
		break;
	case PATH_REGULAR: {
		int fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

		if (fd < 0)
			die("open %s", sock);
		close(fd);
		break;
	}
	case PATH_SYMLINK:
		lfd = make_socket(other, 8, 0600);
		if (symlink(other, sock) != 0)
			die("symlink");
		break;
	case PATH_MODE:
		lfd = make_socket(sock, 8, tc->mode);
		break;
	case PATH_DEAD:
		close(make_socket(sock, -1, 0600));
		break;
	case PATH_BACKLOG: {
		struct sockaddr_un sa;

		lfd = make_socket(sock, 0, 0600);
		fill_address(&sa, sock);
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
	case PATH_FOREIGN:
		lfd = make_socket(sock, 8, 0600);
		if (chown(sock, OTHER_UID, (gid_t)-1) != 0)
			die("chown");
		break;
	case PATH_FOREIGN_PEER:
		lfd = make_socket(sock, -1, 0600);  /* the child listens as OTHER_UID */
		break;
	}

	start_server(&srv, lfd, tc, strlen(answer) ? strlen(answer) : 64,
		     tc->path == PATH_FOREIGN_PEER);

	if (tc->stack != NULL)
		expand(text, sizeof(text), tc->stack, pid);
	else {
		snprintf(tmpl, sizeof(tmpl), "auth required @MOD@ %s\n",
			 tc->args ? tc->args : "socket_dir=@DIR@ timeout=2 debug");
		expand(text, sizeof(text), tmpl, pid);
	}
	write_service(service, text);

	rc = pam_start_confdir(service, tc->user ? tc->user : user_name, &conv,
			       confdir, &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_start_confdir: %s\n", rc_name(rc));
		exit(2);
	}
	t0 = now_s();
	rc = pam_authenticate(pamh, 0);
	took = now_s() - t0;
	pam_end(pamh, rc);

	stop_server(&srv);
	for (i = 0; i < nfill; i++)
		close(fillers[i]);
	if (lfd >= 0)
		close(lfd);
	unlink(sock);

	if (rc != tc->expect_rc)
		append(problem, sizeof(problem), "rc=%s, expected %s; ", rc_name(rc),
		       rc_name(tc->expect_rc));
	if (tc->recv == RECV_NOTHING && srv.got_len != 0)
		append(problem, sizeof(problem), "server received \"%s\", expected "
		       "nothing; ", show(srv.got, srv.got_len));
	if (tc->recv == RECV_TOKEN &&
	    (srv.got_len != strlen(answer) || memcmp(srv.got, answer, srv.got_len) != 0))
		append(problem, sizeof(problem), "server received \"%s\", expected the "
		       "token \"%s\" (no newline); ", show(srv.got, srv.got_len),
		       show(answer, strlen(answer)));
	if (tc->expect_calls != ANY && st.calls != tc->expect_calls)
		append(problem, sizeof(problem), "conversation called %d times, "
		       "expected %d; ", st.calls, tc->expect_calls);
	if (tc->max_s > 0 && took > tc->max_s)
		append(problem, sizeof(problem), "took %.3f s, expected at most %.1f s; ",
		       took, tc->max_s);
	if (tc->min_s > 0 && took < tc->min_s)
		append(problem, sizeof(problem), "took %.3f s, expected at least %.1f s; ",
		       took, tc->min_s);
	report(tc->name, problem, rc, took);
}

static void
run_primitive(const char *name, const char *stack, int which, int expect_rc,
	      int negate)
{
	static int serial;
	char service[32], text[1024], problem[256] = "";
	struct conv_state st = { .answer = "x" };
	struct pam_conv conv = { conversation, &st };
	pam_handle_t *pamh = NULL;
	int rc;

	snprintf(service, sizeof(service), "prim%02d", ++serial);
	expand(text, sizeof(text), stack, 1);
	write_service(service, text);
	if (pam_start_confdir(service, user_name, &conv, confdir, &pamh) != PAM_SUCCESS)
		die("pam_start_confdir");
	switch (which) {
	case 0: rc = pam_setcred(pamh, PAM_ESTABLISH_CRED); break;
	case 1: rc = pam_acct_mgmt(pamh, 0); break;
	case 2: rc = pam_open_session(pamh, 0); break;
	default: rc = pam_chauthtok(pamh, 0); break;
	}
	pam_end(pamh, rc);
	if (negate ? rc == expect_rc : rc != expect_rc)
		snprintf(problem, sizeof(problem), "rc=%s, expected %s%s", rc_name(rc),
			 negate ? "anything but " : "", rc_name(expect_rc));
	report(name, problem, rc, 0.0);
}

/* ------------------------------------------------------------- the cases */

#define STD "socket_dir=@DIR@ timeout=2 debug"
/* a server that answers the grant, or the given bytes */
#define GRANTS .srv = SRV_REPLY, .reply = "PASS\n", .reply_len = 6
#define REPLYN(s, n) .srv = SRV_REPLY, .reply = s, .reply_len = n

static const struct tcase cases[] = {
	/* the grant */
	{ .name = "valid token, PASS\\n\\0 -> PAM_SUCCESS; token sent whole, no newline",
	  GRANTS, .expect_rc = PAM_SUCCESS,
	  .recv = RECV_TOKEN, .expect_calls = 1 },
	{ .name = "reply in six one-byte writes -> PAM_SUCCESS",
	  .srv = SRV_SPLIT, .reply = "PASS\n", .reply_len = 6,
	  .expect_rc = PAM_SUCCESS, .recv = RECV_TOKEN, .expect_calls = 1 },
	{ .name = "PASS\\n\\0 and more: only six bytes are read -> PAM_SUCCESS",
	  REPLYN("PASS\n\0junk", 10), .expect_rc = PAM_SUCCESS,
	  .recv = RECV_TOKEN, .expect_calls = 1 },
	{ .name = "stacked: use_first_pass takes the token of the line above, no 2nd prompt",
	  .stack = "auth optional @MOD@ socket_dir=@DIR@/none\n"
		   "auth required @MOD@ " STD " use_first_pass\n",
	  GRANTS, .expect_rc = PAM_SUCCESS,
	  .recv = RECV_TOKEN, .expect_calls = 1 },
	{ .name = "use_first_pass without a token -> PAM_AUTH_ERR, no prompt, nothing sent",
	  .args = STD " use_first_pass", GRANTS,
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING, .expect_calls = 0 },

	/* refusals and malformed replies (T-M1) */
#define DENIED(label, bytes, n) \
	{ .name = "reply " label " -> PAM_AUTH_ERR", REPLYN(bytes, n), \
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_TOKEN, .expect_calls = 1 }
	DENIED("FAIL\\n\\0", "FAIL\n\0", 6),
	DENIED("PASS\\n (5 bytes, then close)", "PASS\n", 5),
	DENIED("empty (close without reply)", "", 0),
	DENIED("pass\\n\\0", "pass\n\0", 6),
	DENIED("PASS\\0\\0", "PASS\0\0", 6),
	DENIED("PASS\\r\\n", "PASS\r\n", 6),
	DENIED("PASS\\n\\x01", "PASS\n\1", 6),
	DENIED("0 (the redirector's grant)", "0", 1),
	DENIED("PASSPASS", "PASSPASS", 8),

	/* bounded waits (T-M1) */
	{ .name = "server never answers, timeout=0.5 -> PAM_AUTHINFO_UNAVAIL in ~0.5 s",
	  .args = "socket_dir=@DIR@ timeout=0.5", .srv = SRV_HANG,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_TOKEN, .expect_calls = 1,
	  .min_s = 0.4, .max_s = 1.5 },
	{ .name = "\"PASS\" and silence, timeout=0.5 -> PAM_AUTHINFO_UNAVAIL in ~0.5 s",
	  .args = "socket_dir=@DIR@ timeout=0.5", .srv = SRV_REPLY_HANG, .reply = "PASS",
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_TOKEN, .expect_calls = 1,
	  .min_s = 0.4, .max_s = 1.5 },
	{ .name = "listen backlog full, timeout=0.5 -> PAM_AUTHINFO_UNAVAIL in ~0.5 s",
	  .args = "socket_dir=@DIR@ timeout=0.5", .path = PATH_BACKLOG,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 1,
	  .min_s = 0.4, .max_s = 1.5 },

	/* no socket, or one that is not the user's (T-M1, T-M2) */
	{ .name = "missing socket -> PAM_AUTHINFO_UNAVAIL",
	  .path = PATH_MISSING, .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 1 },
	{ .name = "socket nobody listens on -> PAM_AUTHINFO_UNAVAIL",
	  .path = PATH_DEAD, .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 1 },
	{ .name = "regular file at the path -> PAM_AUTHINFO_UNAVAIL",
	  .path = PATH_REGULAR, .expect_rc = PAM_AUTHINFO_UNAVAIL, .expect_calls = 1 },
	{ .name = "symlink to a good socket -> PAM_AUTHINFO_UNAVAIL, nothing sent",
	  .path = PATH_SYMLINK, GRANTS,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING, .expect_calls = 1 },
#define MODE(m, label) \
	{ .name = "socket mode " label " -> PAM_AUTHINFO_UNAVAIL, nothing sent", \
	  .path = PATH_MODE, .mode = m, GRANTS, \
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING, .expect_calls = 1 }
	MODE(0666, "0666"),
	MODE(0660, "0660"),
	MODE(0602, "0602"),
	MODE(0604, "0604"),
	{ .name = "socket mode 0700 -> still the user's only: PAM_SUCCESS",
	  .path = PATH_MODE, .mode = 0700, GRANTS,
	  .expect_rc = PAM_SUCCESS, .recv = RECV_TOKEN, .expect_calls = 1 },
	{ .name = "socket file owned by another uid (planted) -> PAM_AUTHINFO_UNAVAIL, "
		  "nothing sent",
	  .path = PATH_FOREIGN, GRANTS,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING, .expect_calls = 1,
	  .root_only = 1 },
	{ .name = "file owner right but served by another uid (SO_PEERCRED) -> "
		  "PAM_AUTHINFO_UNAVAIL, nothing sent",
	  .path = PATH_FOREIGN_PEER, GRANTS,
	  .expect_rc = PAM_AUTHINFO_UNAVAIL, .recv = RECV_NOTHING, .expect_calls = 1,
	  .root_only = 1 },

	/* tokens that are not for this user (T-M1) */
	{ .name = "token for another uid -> PAM_AUTH_ERR, nothing sent",
	  .token = "TTK@UID1@:@PID@:@AUTH@", GRANTS,
	  .expect_rc = PAM_AUTH_ERR, .recv = RECV_NOTHING, .expect_calls = 1 },
	{ .name = "unknown user -> PAM_USER_UNKNOWN, nothing sent",
	  .user = "pc-no-such-user-x", GRANTS,
	  .expect_rc = PAM_USER_UNKNOWN, .recv = RECV_NOTHING, .expect_calls = 1 },
	{ .name = "user name with a line break -> PAM_USER_UNKNOWN, logged escaped",
	  .user = "pc-no-such\nFORGED log line", GRANTS,
	  .expect_rc = PAM_USER_UNKNOWN, .recv = RECV_NOTHING, .expect_calls = 1 },

	/* malformed tokens (T-M1): refused before anything is sent */
#define BADTOKEN(label, tmpl) \
	{ .name = "token " label " -> PAM_AUTH_ERR, nothing sent", .token = tmpl, \
	  GRANTS, .expect_rc = PAM_AUTH_ERR, \
	  .recv = RECV_NOTHING, .expect_calls = 1 }
	BADTOKEN("empty", ""),
	BADTOKEN("TTK alone", "TTK"),
	BADTOKEN("lower-case ttk", "ttk@UID@:@PID@:@AUTH@"),
	BADTOKEN("with a plus sign on the uid", "TTK+@UID@:@PID@:@AUTH@"),
	BADTOKEN("with a minus sign on the uid", "TTK-@UID@:@PID@:@AUTH@"),
	BADTOKEN("with a blank before the uid", "TTK @UID@:@PID@:@AUTH@"),
	BADTOKEN("with a leading zero on the uid", "TTK0@UID@:@PID@:@AUTH@"),
	BADTOKEN("with uid 4294967296 (overflow)", "TTK4294967296:@PID@:@AUTH@"),
	BADTOKEN("with uid 4294967295 ((uid_t)-1)", "TTK4294967295:@PID@:@AUTH@"),
	BADTOKEN("with an 11-digit uid", "TTK00000000001:@PID@:@AUTH@"),
	BADTOKEN("with pid 0", "TTK@UID@:0:@AUTH@"),
	BADTOKEN("with a leading zero on the pid", "TTK@UID@:0@PID@:@AUTH@"),
	BADTOKEN("with pid 2147483648 (overflow)", "TTK@UID@:2147483648:@AUTH@"),
	BADTOKEN("with a 31-character secret", "TTK@UID@:@PID@:AbCdEfGhIjKlMnOpQrStUvWxYz012+/"),
	BADTOKEN("with a 33-character secret", "@TOKEN@A"),
	BADTOKEN("with the URL-safe alphabet", "TTK@UID@:@PID@:AbCdEfGhIjKlMnOpQrStUvWxYz012-_9"),
	BADTOKEN("with base64 padding", "TTK@UID@:@PID@:AbCdEfGhIjKlMnOpQrStUvWxYz012+/="),
	BADTOKEN("with a trailing newline", "@TOKEN@\n"),
	BADTOKEN("with a leading blank", " @TOKEN@"),
	BADTOKEN("with ';' separators", "TTK@UID@;@PID@;@AUTH@"),
	BADTOKEN("with an extra ':'", "@TOKEN@:"),
	BADTOKEN("without the secret", "TTK@UID@:@PID@:"),
	BADTOKEN("the secret alone", "@AUTH@"),
	BADTOKEN("a plain password", "hunter2"),

	/* configuration errors fail closed, before any prompt */
#define BADCONF(label, a) \
	{ .name = label " -> PAM_SERVICE_ERR", .args = a, GRANTS, \
	  .expect_rc = PAM_SERVICE_ERR, .recv = RECV_NOTHING, \
	  .expect_calls = 0 }
	BADCONF("unknown option", STD " frobnicate"),
	BADCONF("unknown key=value option", STD " socket=/tmp/x"),
	BADCONF("relative socket_dir", "socket_dir=tmp"),
	BADCONF("empty socket_dir", "socket_dir="),
	BADCONF("socket_dir too long for sun_path", "socket_dir=@LONGDIR@"),
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

	/* the conversation */
	{ .name = "conversation failure -> PAM_AUTHTOK_ERR (pam_get_authtok), nothing sent",
	  .conv_fails = 1, GRANTS,
	  .expect_rc = PAM_AUTHTOK_ERR, .recv = RECV_NOTHING, .expect_calls = 1 },
};

int
main(int argc, char **argv)
{
	struct passwd *pw;
	size_t i;
	char *hit;

	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: %s /abs/path/to/pam_transient_token.so\n", argv[0]);
		return 2;
	}
	module_path = argv[1];
	if (access(module_path, R_OK) != 0)
		die("%s", module_path);
	my_uid = (unsigned long)getuid();
	pw = getpwuid(getuid());
	if (pw == NULL || strlen(pw->pw_name) >= sizeof(user_name)) {
		errno = ENOENT;
		die("no passwd entry for uid %lu", my_uid);
	}
	strcpy(user_name, pw->pw_name);

	signal(SIGPIPE, SIG_IGN);
	alarm(WATCHDOG_S);      /* a hang kills the test, and fails it */
	umask(077);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tst-pam_tt.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp");
	atexit(remove_tmpdir);
	snprintf(confdir, sizeof(confdir), "%s/pam.d", tmpdir);
	snprintf(sockdir, sizeof(sockdir), "%s/s", tmpdir);
	if (mkdir(confdir, 0700) != 0 || mkdir(sockdir, 0755) != 0)
		die("mkdir");
	/* the root-only cases have a child running as OTHER_UID reach the dir */
	if (chmod(tmpdir, 0755) != 0)
		die("chmod");

	logging_on = 1;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);

	run_primitive("pam_setcred -> PAM_SUCCESS",
		      "auth required @MOD@\n", 0, PAM_SUCCESS, 0);
	run_primitive("account: module ignores, the stack does not succeed",
		      "account required @MOD@\n", 1, PAM_SUCCESS, 1);
	run_primitive("session: module ignores, the stack does not succeed",
		      "session required @MOD@\n", 2, PAM_SUCCESS, 1);
	run_primitive("password: module ignores, the stack does not succeed",
		      "password required @MOD@\n", 3, PAM_SUCCESS, 1);
	logging_on = 0;

	/* the module's log: caught, and never holding the token's secret */
	{
		char problem[512] = "";

		if (strstr(logged, "<secret>") == NULL)
			snprintf(problem, sizeof(problem), "no debug line was caught "
				 "(is the test linked with -rdynamic?)");
		hit = strstr(logged, AUTH);
		if (hit == NULL)
			hit = strstr(logged, "hunter2");
		if (hit != NULL)
			snprintf(problem, sizeof(problem), "the log holds a secret: ...%.60s",
				 hit > logged + 20 ? hit - 20 : logged);
		report("the module never logs the token's secret (or a password)", problem,
		       PAM_SUCCESS, 0.0);
	}
	{
		char problem[512] = "";

		if (strstr(logged, "\nFORGED log line") != NULL)
			snprintf(problem, sizeof(problem), "a line break in the user name "
				 "reached the log raw");
		else if (strstr(logged, "pc-no-such\\x0aFORGED") == NULL)
			snprintf(problem, sizeof(problem), "the escaped user name was not logged");
		report("the module logs a user name with its control bytes escaped", problem,
		       PAM_SUCCESS, 0.0);
	}

	printf("%d checks, %d failed, %d skipped\n", checks, failures, skipped);
	return failures ? 1 : 0;
}
