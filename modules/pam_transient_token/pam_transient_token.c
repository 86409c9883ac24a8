/*
 * pam_transient_token -- log in once with a token from the user's token server
 *
 * Purpose
 *   A user runs a token server (servers/token_server.py, or the original
 *   get_transient_token).  It prints a token
 *
 *       TTK<uid>:<pid>:<32 base64 characters>
 *
 *   and waits for one connection on the UNIX stream socket
 *   /tmp/transient-token-<uid>-<pid>.  This module takes the token as the
 *   password, checks that it names the uid of PAM_USER, makes sure that the
 *   socket really belongs to that user (file owner and mode, and the uid of
 *   the process behind it, SO_PEERCRED), writes the whole token (no newline)
 *   and reads six bytes: only "PASS\n\0" grants.  It is wire-compatible with
 *   the original pam_transient_token, and written from the protocol
 *   description, not from its sources.
 *
 * Management groups provided
 *   auth      pam_sm_authenticate  asks the token server (see below)
 *             pam_sm_setcred       PAM_SUCCESS (no credentials to set)
 *   account, session, password: not provided; their entry points return
 *   PAM_IGNORE, so a stack made of this module alone fails.
 *
 * Sample /etc/pam.d line
 *   auth sufficient pam_transient_token.so
 *
 * Options (parsed in one pass over argv)
 *   socket_dir=DIR     directory of transient-token-<uid>-<pid>; absolute;
 *                      default /tmp (tests use a private directory)
 *   timeout=SECONDS    bound on connect + send + reply, decimal, possibly
 *                      fractional (0.5); 0.001 <= SECONDS <= 3600; default 5
 *   debug              log progress at LOG_DEBUG (never the token's secret)
 *   use_first_pass, try_first_pass, use_authtok
 *                      read by pam_get_authtok(3) itself: take the token an
 *                      earlier module collected instead of prompting
 *   Any other argument is a configuration error.
 *
 * Return codes of pam_sm_authenticate
 *   PAM_SUCCESS           the first six bytes of the reply are "PASS\n\0"
 *   PAM_AUTH_ERR          malformed token; token uid is not PAM_USER's uid;
 *                         the reply is FAIL, garbage or shorter than six
 *                         bytes; the server spoke before the token was sent;
 *                         the connection broke while sending
 *   PAM_AUTHINFO_UNAVAIL  no socket; not a socket or a symbolic link; owned
 *                         by another uid or open to group/others; the
 *                         process behind it runs as another uid; connection
 *                         refused; the timeout expired
 *   PAM_USER_UNKNOWN      PAM_USER has no passwd entry
 *   PAM_SERVICE_ERR       bad module arguments
 *   PAM_CONV_ERR, PAM_BUF_ERR, ...  from the conversation or libpam
 *
 * The module fails closed: every outcome other than the exact grant reply,
 * from a socket that belongs to the token's uid, denies.  It never calls
 * exit(), and wipes its copy of the token.
 */

/*
 * Shared with modules/pam_redirector/pam_redirector.c, on purpose as a copy:
 * the deadline helpers (compute_deadline, remaining_ms, wait_for), the socket
 * file check (check_socket_file), the bounded non-blocking connect
 * (open_connection), the SO_PEERCRED check (verify_peer), parse_timeout, the
 * escaping of replies for the log (escape_bytes), and the PAM_IGNORE entry
 * points.  They are not moved into a common file because each module folder
 * is a standalone drop-in: `pamconform module DIR` copies the folder alone
 * into the lab and builds it with `make`, as it does a user's module, and an
 * administrator builds and installs it in place of the original module from
 * this folder alone.  A fix to one of them must be checked in the other.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <security/pam_modules.h>
#include <security/pam_ext.h>

#define DEFAULT_SOCKET_DIR "/tmp"
#define SOCKET_PREFIX      "transient-token"
#define DEFAULT_TIMEOUT    5.0
#define MAX_TIMEOUT        3600.0
#define MIN_TIMEOUT        0.001  /* a shorter wait is a typo, not a setting */
#define AUTH_LEN           32     /* base64 characters of the secret */
#define MAX_DIGITS         10     /* of the uid and of the pid */
#define LOGGED_NAME        64     /* bytes of a user name a log line shows */
/* "TTK" uid ":" pid ":" auth */
#define MAX_TOKEN          (3 + MAX_DIGITS + 1 + MAX_DIGITS + 1 + AUTH_LEN)
#define REPLY_LEN          6
#define CONNECT_RETRY_MS   10

static const char GRANT_REPLY[REPLY_LEN] = { 'P', 'A', 'S', 'S', '\n', '\0' };

struct options {
	const char *socket_dir;
	double timeout;
	int debug;
};

struct token {
	char text[MAX_TOKEN + 1];     /* the whole token, NUL-terminated */
	size_t len;
	unsigned long uid;
	unsigned long pid;
};

/* ---------------------------------------------------------------- options */

/*
 * Seconds as digits with an optional fraction ("3", "0.5"), parsed by hand: strtod
 * reads the caller's locale (su runs with the user's LANG, where "0.5" may be no
 * number and "0,5" one) and would also take hex, exponents and "inf".
 */
static int
parse_timeout(pam_handle_t *pamh, struct options *opt, const char *value)
{
	const char *p = value;
	double t = 0.0, scale = 1.0;
	int whole = 0, frac = 0;

	for (; *p >= '0' && *p <= '9'; p++, whole++)
		t = t * 10.0 + (double)(*p - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, frac++) {
			scale /= 10.0;
			t += (double)(*p - '0') * scale;
		}
	if (*p != '\0' || whole + frac == 0 || whole > 9 || frac > 9 ||
	    !(t >= MIN_TIMEOUT && t <= MAX_TIMEOUT)) {
		pam_syslog(pamh, LOG_ERR,
			   "bad timeout: %s (want decimal seconds, %.3f <= t <= %.0f)",
			   value, MIN_TIMEOUT, MAX_TIMEOUT);
		return PAM_SERVICE_ERR;
	}
	opt->timeout = t;
	return PAM_SUCCESS;
}

static int
set_socket_dir(pam_handle_t *pamh, struct options *opt, const char *dir)
{
	/* room for "/transient-token-<uid>-<pid>" with the longest numbers */
	size_t room = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 -
		      (1 + strlen(SOCKET_PREFIX) + 1 + MAX_DIGITS + 1 + MAX_DIGITS);

	if (dir[0] != '/') {
		pam_syslog(pamh, LOG_ERR, "socket_dir must be absolute: %s", dir);
		return PAM_SERVICE_ERR;
	}
	if (strlen(dir) > room) {
		pam_syslog(pamh, LOG_ERR, "socket_dir longer than %zu bytes: %s",
			   room, dir);
		return PAM_SERVICE_ERR;
	}
	opt->socket_dir = dir;
	return PAM_SUCCESS;
}

static int
parse_options(pam_handle_t *pamh, int argc, const char **argv,
	      struct options *opt)
{
	int i, rc;

	memset(opt, 0, sizeof(*opt));
	opt->socket_dir = DEFAULT_SOCKET_DIR;
	opt->timeout = DEFAULT_TIMEOUT;

	for (i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "debug") == 0) {
			opt->debug = 1;
		} else if (strcmp(arg, "use_first_pass") == 0 ||
			   strcmp(arg, "try_first_pass") == 0 ||
			   strcmp(arg, "use_authtok") == 0) {
			/* pam_get_authtok() reads these itself */
		} else if (strncmp(arg, "socket_dir=", 11) == 0) {
			if ((rc = set_socket_dir(pamh, opt, arg + 11)) != PAM_SUCCESS)
				return rc;
		} else if (strncmp(arg, "timeout=", 8) == 0) {
			if ((rc = parse_timeout(pamh, opt, arg + 8)) != PAM_SUCCESS)
				return rc;
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option: %s", arg);
			return PAM_SERVICE_ERR;
		}
	}
	return PAM_SUCCESS;
}

/* ------------------------------------------------------------------ time */

static void
compute_deadline(struct timespec *deadline, double seconds)
{
	long sec = (long)seconds;
	long nsec = (long)((seconds - (double)sec) * 1e9);

	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += sec;
	deadline->tv_nsec += nsec;
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec += 1;
		deadline->tv_nsec -= 1000000000L;
	}
}

/* milliseconds until the deadline, rounded up; 0 once it has passed */
static int
remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	     (deadline->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	return (int)((ns + 999999LL) / 1000000LL);
}

/* 1: fd is ready for events; 0: the deadline passed; -1: poll failed */
static int
wait_for(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd;
	int ms, n;

	for (;;) {
		ms = remaining_ms(deadline);
		if (ms == 0)
			return 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, ms);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* ----------------------------------------------------------------- token */

/*
 * A decimal number with no sign, no blank and no leading zero ("0" itself
 * is allowed when allow_zero), at most MAX_DIGITS digits and at most max.
 * On success *p points after it.
 */
static int
parse_number(const char **p, unsigned long max, int allow_zero,
	     unsigned long *out)
{
	const char *s = *p;
	unsigned long v = 0;
	int n = 0;

	if (*s < '0' || *s > '9')
		return 0;
	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return 0;                       /* leading zero */
	while (*s >= '0' && *s <= '9') {
		unsigned long d = (unsigned long)(*s - '0');

		if (++n > MAX_DIGITS || d > max || v > (max - d) / 10)
			return 0;                       /* too long, or past max (never wraps) */
		v = v * 10 + d;
		s++;
	}
	if (v == 0 && !allow_zero)
		return 0;
	*out = v;
	*p = s;
	return 1;
}

static int
is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Strict syntax: TTK<uid>:<pid>:<32 chars of [A-Za-z0-9+/]>, nothing more. */
static int
parse_token(const char *text, struct token *tok)
{
	const char *p = text;
	size_t len = strnlen(text, MAX_TOKEN + 1);
	int i;

	if (len > MAX_TOKEN || strncmp(p, "TTK", 3) != 0)
		return 0;
	p += 3;
	if (!parse_number(&p, (unsigned long)(uid_t)-1 - 1, 1, &tok->uid) || *p++ != ':')
		return 0;
	if (!parse_number(&p, (unsigned long)INT_MAX, 0, &tok->pid) || *p++ != ':')
		return 0;
#ifndef PAM_TT_FAULT_LAX_SECRET  /* FAULTY TEST BUILD when defined: only its first char */
	for (i = 0; i < AUTH_LEN; i++)
		if (!is_base64_char(p[i]))
			return 0;
	if (p[AUTH_LEN] != '\0')
		return 0;
#else
	(void)i;
	if (!is_base64_char(p[0]))
		return 0;
#endif
	memcpy(tok->text, text, len + 1);
	tok->len = len;
	return 1;
}

/* ----------------------------------------------------------------- socket */

static int
check_socket_file(pam_handle_t *pamh, const char *path, uid_t owner)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		int err = errno;

		pam_syslog(pamh, LOG_NOTICE, "no token server at %s: %s",
			   path, strerror(err));
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (S_ISLNK(st.st_mode)) {
		pam_syslog(pamh, LOG_ERR, "%s is a symbolic link; refusing it", path);
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (!S_ISSOCK(st.st_mode)) {
		pam_syslog(pamh, LOG_ERR, "%s is not a socket; refusing it", path);
		return PAM_AUTHINFO_UNAVAIL;
	}
#ifndef PAM_TT_FAULT_NO_PEER_CHECK
	if (st.st_uid != owner) {
		pam_syslog(pamh, LOG_ERR,
			   "socket %s is owned by uid %lu, not the token's uid %lu: "
			   "possibly planted, not sending the token",
			   path, (unsigned long)st.st_uid, (unsigned long)owner);
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		pam_syslog(pamh, LOG_ERR,
			   "socket %s is open to group or others (mode %04o); "
			   "refusing it", path, (unsigned int)(st.st_mode & 07777));
		return PAM_AUTHINFO_UNAVAIL;
	}
#else
	(void)owner;
#endif
	return PAM_SUCCESS;
}

static int
open_connection(pam_handle_t *pamh, const char *path, double timeout,
		const struct timespec *deadline, int *fdp)
{
	struct sockaddr_un sa;
	int fd, err, ms, w;
	socklen_t len;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* length checked in set_socket_dir */
	memcpy(sa.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = errno;
		pam_syslog(pamh, LOG_ERR, "socket(): %s", strerror(err));
		return PAM_AUTHINFO_UNAVAIL;
	}

	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		err = errno;
		if (err == EISCONN)
			break;
		if (err == EINTR)
			continue;
		if (err == EAGAIN) {
			/* UNIX sockets: the listen backlog is full; retry */
			ms = remaining_ms(deadline);
			if (ms == 0)
				goto timed_out;
			poll(NULL, 0, ms < CONNECT_RETRY_MS ? ms : CONNECT_RETRY_MS);
			continue;
		}
		if (err == EINPROGRESS || err == EALREADY) {
			w = wait_for(fd, POLLOUT, deadline);
			if (w == 0)
				goto timed_out;
			err = (w < 0) ? errno : 0;
			len = sizeof(err);
			if (w > 0 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
				err = errno;
			if (err == 0)
				break;
		}
		pam_syslog(pamh, LOG_NOTICE, "cannot connect to %s: %s",
			   path, strerror(err));
		close(fd);
		return PAM_AUTHINFO_UNAVAIL;
	}
	*fdp = fd;
	return PAM_SUCCESS;

timed_out:
	pam_syslog(pamh, LOG_ERR, "connect to %s timed out after %g s",
		   path, timeout);
	close(fd);
	return PAM_AUTHINFO_UNAVAIL;
}

/* The process behind the socket must run as the token's uid (T-M2). */
static int
verify_peer(pam_handle_t *pamh, const char *path, int fd, uid_t owner)
{
	struct pollfd pfd;
#ifndef PAM_TT_FAULT_NO_PEER_CHECK
	struct ucred cred;
	socklen_t len = sizeof(cred);

	memset(&cred, 0, sizeof(cred));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred)) {
		int err = errno;

		pam_syslog(pamh, LOG_ERR, "cannot read peer credentials on %s: %s",
			   path, strerror(err));
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (cred.uid != owner) {
		pam_syslog(pamh, LOG_ERR,
			   "token server on %s runs as uid %lu (pid %ld), not the "
			   "token's uid %lu: possibly planted, not sending the token",
			   path, (unsigned long)cred.uid, (long)cred.pid,
			   (unsigned long)owner);
		return PAM_AUTHINFO_UNAVAIL;
	}
#else
	(void)owner;
	pam_syslog(pamh, LOG_WARNING, "FAULTY TEST BUILD (PAM_TT_FAULT_NO_PEER_CHECK): "
		   "the socket's owner and peer are not checked; never install it");
#endif

	/* a server that speaks or hangs up before hearing the token is broken */
	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) > 0) {
		pam_syslog(pamh, LOG_ERR,
			   "token server on %s sent data or closed before the token",
			   path);
		return PAM_AUTH_ERR;
	}
	return PAM_SUCCESS;
}

static int
send_token(pam_handle_t *pamh, const char *path, int fd,
	   const struct token *tok, double timeout,
	   const struct timespec *deadline)
{
	size_t off = 0;
	int w, err;

#ifdef PAM_TT_FAULT_TRUNCATED_TOKEN
	size_t len = tok->len - 1;  /* FAULTY TEST BUILD: the last byte is lost */
#else
	size_t len = tok->len;
#endif

	while (off < len) {
		ssize_t n = send(fd, tok->text + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		err = errno;
		if (n < 0 && err == EINTR)
			continue;
		if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
			w = wait_for(fd, POLLOUT, deadline);
			if (w > 0)
				continue;
			if (w == 0) {
				pam_syslog(pamh, LOG_ERR,
					   "sending to %s timed out after %g s",
					   path, timeout);
				return PAM_AUTHINFO_UNAVAIL;
			}
			err = errno;
		}
		pam_syslog(pamh, LOG_ERR, "cannot send the token to %s: %s",
			   path, n == 0 ? "nothing written" : strerror(err));
		return PAM_AUTH_ERR;
	}
	return PAM_SUCCESS;
}

/* Render untrusted reply bytes for the log: printable ASCII, else \xNN. */
static void
escape_bytes(char *out, size_t outlen, const char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

/* Read exactly REPLY_LEN bytes within the deadline; grant only on PASS\n\0. */
static int
read_reply(pam_handle_t *pamh, const char *path, int fd, double timeout,
	   const struct timespec *deadline)
{
	char buf[REPLY_LEN];
	char shown[4 * REPLY_LEN + 1];
	size_t got = 0;
	int w, err;
#ifdef PAM_TT_FAULT_NO_READ_TIMEOUT
	struct timespec day;  /* FAULTY TEST BUILD: the reply may take a day */

	compute_deadline(&day, 86400.0);
	deadline = &day;
#endif

	while (got < REPLY_LEN) {
		ssize_t n = recv(fd, buf + got, REPLY_LEN - got, 0);

		if (n > 0) {
			got += (size_t)n;
#ifdef PAM_TT_FAULT_PREFIX_REPLY
			if (got >= 4 && memcmp(buf, GRANT_REPLY, 4) == 0)
				return PAM_SUCCESS;  /* FAULTY TEST BUILD: "PASS" is enough */
#endif
			continue;
		}
		if (n == 0) {
			escape_bytes(shown, sizeof(shown), buf, got);
			pam_syslog(pamh, LOG_ERR,
				   "short reply from %s: \"%s\" (%zu bytes), then "
				   "end of stream", path, shown, got);
			return PAM_AUTH_ERR;
		}
		err = errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN || err == EWOULDBLOCK) {
			w = wait_for(fd, POLLIN, deadline);
			if (w > 0)
				continue;
			if (w == 0) {
				pam_syslog(pamh, LOG_ERR,
					   "no complete reply from %s within %g s "
					   "(%zu bytes)", path, timeout, got);
				return PAM_AUTHINFO_UNAVAIL;
			}
			err = errno;
		}
		pam_syslog(pamh, LOG_ERR,
			   "connection error on %s after %zu reply bytes: %s",
			   path, got, strerror(err));
		return PAM_AUTH_ERR;
	}
	if (memcmp(buf, GRANT_REPLY, REPLY_LEN) == 0)
		return PAM_SUCCESS;
#ifdef PAM_TT_FAULT_ANY_REPLY
	return PAM_SUCCESS;  /* FAULTY TEST BUILD: any six bytes grant */
#endif
	escape_bytes(shown, sizeof(shown), buf, got);
	pam_syslog(pamh, LOG_NOTICE, "token refused by %s: \"%s\"", path, shown);
	return PAM_AUTH_ERR;
}

static int
ask_server(pam_handle_t *pamh, const struct options *opt,
	   const struct token *tok, const char *path)
{
	struct timespec deadline;
	int fd = -1, rc;

	compute_deadline(&deadline, opt->timeout);

	rc = check_socket_file(pamh, path, (uid_t)tok->uid);
	if (rc == PAM_SUCCESS)
		rc = open_connection(pamh, path, opt->timeout, &deadline, &fd);
	if (rc == PAM_SUCCESS)
		rc = verify_peer(pamh, path, fd, (uid_t)tok->uid);
	if (rc == PAM_SUCCESS)
		rc = send_token(pamh, path, fd, tok, opt->timeout, &deadline);
	if (rc == PAM_SUCCESS)
		rc = read_reply(pamh, path, fd, opt->timeout, &deadline);
	if (fd >= 0)
		close(fd);
#ifdef PAM_TT_FAULT_UNREACHABLE_SUCCESS
	if (rc == PAM_AUTHINFO_UNAVAIL)
		rc = PAM_SUCCESS;  /* FAULTY TEST BUILD: no server is a grant */
#endif
	return rc;
}

/* The uid of user (getpwnam_r); PAM_USER_UNKNOWN, PAM_BUF_ERR or PAM_SUCCESS. */
static int
lookup_uid(pam_handle_t *pamh, const char *user, const char *shown, uid_t *uid)
{
	struct passwd pw, *result = NULL;
	long size = sysconf(_SC_GETPW_R_SIZE_MAX);
	char *buf;
	int err;

	if (size <= 0)
		size = 16384;
	for (;;) {
		buf = malloc((size_t)size);
		if (buf == NULL) {
			pam_syslog(pamh, LOG_CRIT, "out of memory");
			return PAM_BUF_ERR;
		}
		err = getpwnam_r(user, &pw, buf, (size_t)size, &result);
		if (err == ERANGE && size < 1048576) {
			free(buf);
			size *= 2;
			continue;
		}
		break;
	}
	if (result == NULL) {
		free(buf);
		pam_syslog(pamh, LOG_NOTICE, "user %s unknown%s%s", shown,
			   err ? ": " : "", err ? strerror(err) : "");
		return PAM_USER_UNKNOWN;
	}
	*uid = pw.pw_uid;
	free(buf);
	return PAM_SUCCESS;
}

/* --------------------------------------------------------------- PAM API */

int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct options opt;
	struct token tok;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *user = NULL, *authtok = NULL;
	char shown[LOGGED_NAME * 4 + 5];  /* the user name as logged: escaped, cut */
	uid_t user_uid;
	int rc, n;

	(void)flags;
#ifdef PAM_TT_FAULTY
	pam_syslog(pamh, LOG_WARNING, "FAULTY TEST BUILD (%s): never install it", PAM_TT_FAULTY);
#endif
	rc = parse_options(pamh, argc, argv, &opt);
	if (rc != PAM_SUCCESS)
		return rc;

	rc = pam_get_user(pamh, &user, NULL);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_NOTICE, "cannot determine user name: %s",
			   pam_strerror(pamh, rc));
		return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : rc;
	}
	if (user == NULL || user[0] == '\0') {
		pam_syslog(pamh, LOG_NOTICE, "empty user name");
		return PAM_USER_UNKNOWN;
	}
	/* the name is the client's: a line break in it would forge a log line */
	escape_bytes(shown, sizeof(shown), user, strnlen(user, LOGGED_NAME));

	/* the token is the password; prompt for it as for any password */
	rc = pam_get_authtok(pamh, PAM_AUTHTOK, &authtok, NULL);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_NOTICE, "no token: %s", pam_strerror(pamh, rc));
		return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : rc;
	}

	rc = lookup_uid(pamh, user, shown, &user_uid);
	if (rc != PAM_SUCCESS)
		return rc;

#ifdef PAM_TT_FAULT_HUGE_TOKEN_COPY
	char typed[MAX_TOKEN + 1];  /* FAULTY TEST BUILD: copied before its length is checked */

	if (authtok != NULL)
		authtok = strcpy(typed, authtok);
#endif
	memset(&tok, 0, sizeof(tok));
	if (authtok == NULL || !parse_token(authtok, &tok)) {
		/* never log what was typed: it may be a password */
		pam_syslog(pamh, LOG_NOTICE, "user %s: not a transient token", shown);
		rc = PAM_AUTH_ERR;
		goto out;
	}
#ifdef PAM_TT_FAULT_NO_UID_CHECK
	user_uid = (uid_t)tok.uid;  /* FAULTY TEST BUILD: any user's token will do */
#endif
	if ((uid_t)tok.uid != user_uid) {
		pam_syslog(pamh, LOG_NOTICE,
			   "user %s (uid %lu): the token is for uid %lu; refused",
			   shown, (unsigned long)user_uid, tok.uid);
		rc = PAM_AUTH_ERR;
		goto out;
	}
	n = snprintf(path, sizeof(path), "%s/%s-%lu-%lu", opt.socket_dir,
		     SOCKET_PREFIX, tok.uid, tok.pid);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		pam_syslog(pamh, LOG_ERR, "socket path too long");
		rc = PAM_SERVICE_ERR;
		goto out;
	}
	if (opt.debug)
		pam_syslog(pamh, LOG_DEBUG, "user %s: token TTK%lu:%lu:<secret>, "
			   "asking %s", shown, tok.uid, tok.pid, path);

	rc = ask_server(pamh, &opt, &tok, path);
	if (opt.debug)
		pam_syslog(pamh, LOG_DEBUG, "user %s: %s", shown,
			   pam_strerror(pamh, rc));
out:
	explicit_bzero(&tok, sizeof(tok));
#ifdef PAM_TT_FAULT_HUGE_TOKEN_COPY
	explicit_bzero(typed, sizeof(typed));
#endif
	return rc;
}

int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_SUCCESS;
}

int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int
pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

/* end of module; it fails closed */
