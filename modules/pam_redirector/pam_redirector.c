/*
 * pam_redirector -- delegate a password check to a local UNIX-socket server
 *
 * Purpose
 *   The module takes the user name and password of a PAM transaction, sends
 *   them to an authentication server listening on a local UNIX stream socket,
 *   and grants only if the server answers with an explicit "allow".  It is
 *   wire-compatible with the original pam_redirector: the request is
 *   "<user>\n<password>\n", the reply is "0" (grant) or a non-zero decimal
 *   number (deny), after which the server closes the connection.
 *
 * Management groups provided
 *   auth      pam_sm_authenticate  talks to the server (see below)
 *             pam_sm_setcred       PAM_SUCCESS (no credentials to set)
 *   account, session, password: not provided.  Their entry points exist only
 *   so that a stray line does no harm; they return PAM_IGNORE, so a stack in
 *   which this module is the only member still fails.
 *
 * Sample /etc/pam.d line
 *   auth required pam_redirector.so /var/run/pam_redirector/socket
 *
 * Options (parsed in one pass over argv)
 *   PATH               first argument without '=' that is not a flag below:
 *                      the absolute path of the server socket
 *   socket=PATH        the same, spelled as an option
 *   timeout=SECONDS    overall bound on connect, send and reply, decimal and
 *                      possibly fractional (0.5); 0.001 <= SECONDS <= 3600;
 *                      default 10
 *   server_uid=UID     uid that must own the socket file and run the server
 *                      process (checked with SO_PEERCRED); default 0
 *   use_first_pass     use the password of an earlier module; never prompt
 *   try_first_pass     use the password of an earlier module, else prompt
 *   debug              log progress at LOG_DEBUG (never the password)
 *   no_warn            do not show warnings to the user
 *   Without either *_first_pass flag a password set by an earlier module is
 *   used, and the module prompts only when there is none (so the original's
 *   "auth optional pam_unix.so" + "auth required pam_redirector.so" stack
 *   keeps working).  Any other argument is a configuration error.
 *
 * Return codes of pam_sm_authenticate
 *   PAM_SUCCESS           the complete reply was exactly "0" or "0\n"
 *   PAM_AUTH_ERR          the server denied; the reply was malformed, empty,
 *                         too long or cut by a reset; the user name or the
 *                         password holds a line break, is over-long, the user
 *                         name is empty; use_first_pass without a password;
 *                         an empty password with PAM_DISALLOW_NULL_AUTHTOK
 *   PAM_AUTHINFO_UNAVAIL  the socket is missing, is not a socket, is a
 *                         symbolic link, has the wrong owner or is writable
 *                         by others; the server's uid is not server_uid;
 *                         connect refused; the timeout expired
 *   PAM_SERVICE_ERR       bad module arguments (unknown option, no socket
 *                         path, path too long, bad timeout or uid)
 *   PAM_CONV_ERR, PAM_BUF_ERR, ...  from the conversation or libpam
 *
 * The module fails closed: every outcome other than a well-formed grant
 * reply, received in full before the server closed the connection, denies.
 *
 * Shared with modules/pam_transient_token/pam_transient_token.c, on purpose
 * as a copy: the deadline helpers (compute_deadline, remaining_ms, wait_for),
 * the socket file check (check_socket_file), the bounded non-blocking
 * connect (open_connection), the SO_PEERCRED check (verify_peer),
 * parse_timeout, the escaping of replies for the log, and the PAM_IGNORE
 * entry points.  They are not moved into a common file because each module
 * folder is a standalone drop-in: `pamconform module DIR` copies the folder
 * alone into the lab and builds it with `make`, as it does a user's module,
 * and an administrator builds and installs it in place of the original
 * module from this folder alone.  A fix to one of them must be checked in
 * the other.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
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

#define DEFAULT_TIMEOUT   10.0
#define MAX_TIMEOUT       3600.0
#define MIN_TIMEOUT       0.001  /* a shorter wait is a typo, not a setting */
#define MAX_FIELD         4096   /* bytes of user name or password */
#define MAX_REPLY         16     /* a longer reply is malformed */
#define CONNECT_RETRY_MS  10     /* backlog full: retry connect this often */

struct options {
	const char *socket_path;
	double timeout;
	uid_t server_uid;
	int debug;
	int no_warn;
	int use_first_pass;
	int try_first_pass;
};

enum reply_kind {
	REPLY_GRANT,
	REPLY_DENY,
	REPLY_MALFORMED,
};

/* ---------------------------------------------------------------- options */

static int
set_socket_path(pam_handle_t *pamh, struct options *opt, const char *path)
{
	if (opt->socket_path != NULL) {
		pam_syslog(pamh, LOG_ERR, "socket path given twice: %s", path);
		return PAM_SERVICE_ERR;
	}
	if (path[0] != '/') {
		pam_syslog(pamh, LOG_ERR,
			   "socket path must be absolute (or unknown option): %s",
			   path);
		return PAM_SERVICE_ERR;
	}
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		pam_syslog(pamh, LOG_ERR, "socket path too long: %s", path);
		return PAM_SERVICE_ERR;
	}
	opt->socket_path = path;
	return PAM_SUCCESS;
}

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
parse_uid(pam_handle_t *pamh, struct options *opt, const char *value)
{
	char *end = NULL;
	unsigned long v;

	if (!(value[0] >= '0' && value[0] <= '9')) {
		pam_syslog(pamh, LOG_ERR, "bad server_uid: %s", value);
		return PAM_SERVICE_ERR;
	}
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' ||
	    (unsigned long)(uid_t)v != v || (uid_t)v == (uid_t)-1) {
		pam_syslog(pamh, LOG_ERR, "bad server_uid: %s", value);
		return PAM_SERVICE_ERR;
	}
	opt->server_uid = (uid_t)v;
	return PAM_SUCCESS;
}

static int
parse_options(pam_handle_t *pamh, int argc, const char **argv,
	      struct options *opt)
{
	int i, rc;

	memset(opt, 0, sizeof(*opt));
	opt->timeout = DEFAULT_TIMEOUT;
	opt->server_uid = 0;

	for (i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "debug") == 0)
			opt->debug = 1;
		else if (strcmp(arg, "no_warn") == 0)
			opt->no_warn = 1;
		else if (strcmp(arg, "use_first_pass") == 0)
			opt->use_first_pass = 1;
		else if (strcmp(arg, "try_first_pass") == 0)
			opt->try_first_pass = 1;
		else if (strncmp(arg, "socket=", 7) == 0) {
			if ((rc = set_socket_path(pamh, opt, arg + 7)) != PAM_SUCCESS)
				return rc;
		} else if (strncmp(arg, "timeout=", 8) == 0) {
			if ((rc = parse_timeout(pamh, opt, arg + 8)) != PAM_SUCCESS)
				return rc;
		} else if (strncmp(arg, "server_uid=", 11) == 0) {
			if ((rc = parse_uid(pamh, opt, arg + 11)) != PAM_SUCCESS)
				return rc;
		} else if (strchr(arg, '=') == NULL && opt->socket_path == NULL) {
			if ((rc = set_socket_path(pamh, opt, arg)) != PAM_SUCCESS)
				return rc;
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option: %s", arg);
			return PAM_SERVICE_ERR;
		}
	}

	if (opt->socket_path == NULL) {
		pam_syslog(pamh, LOG_ERR, "no socket path given");
		return PAM_SERVICE_ERR;
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

static long
elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - start->tv_sec) * 1000L +
	       (now.tv_nsec - start->tv_nsec) / 1000000L;
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

/* ------------------------------------------------------------ credentials */

/* A field must fit on one line of the request and stay reasonably short. */
static int
check_field(pam_handle_t *pamh, const char *what, const char *value)
{
	if (strpbrk(value, "\r\n") != NULL) {
		pam_syslog(pamh, LOG_ERR,
			   "%s contains a line break; not sending it", what);
		return 0;
	}
	if (strlen(value) > MAX_FIELD) {
		pam_syslog(pamh, LOG_ERR,
			   "%s longer than %d bytes; not sending it",
			   what, MAX_FIELD);
		return 0;
	}
	return 1;
}

static void
wipe_and_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int
obtain_password(pam_handle_t *pamh, const struct options *opt,
		const char **password)
{
	const void *item = NULL;
	char *answer = NULL;
	int rc;

	rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "cannot read PAM_AUTHTOK: %s",
			   pam_strerror(pamh, rc));
		return rc;
	}
	if (item != NULL) {
		*password = item;
		return PAM_SUCCESS;
	}
	if (opt->use_first_pass) {
		pam_syslog(pamh, LOG_NOTICE,
			   "use_first_pass given but no earlier module set a password");
		return PAM_AUTH_ERR;
	}

	rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "%s", "Password: ");
	if (rc != PAM_SUCCESS || answer == NULL) {
		wipe_and_free(answer);
		pam_syslog(pamh, LOG_ERR, "conversation failed: %s",
			   pam_strerror(pamh, rc));
		if (rc == PAM_CONV_AGAIN)
			return PAM_INCOMPLETE;
		if (rc == PAM_BUF_ERR)
			return PAM_BUF_ERR;
		return PAM_CONV_ERR;
	}

	/* hand the password on to later modules, as pam_unix does */
	rc = pam_set_item(pamh, PAM_AUTHTOK, answer);
	wipe_and_free(answer);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "cannot set PAM_AUTHTOK: %s",
			   pam_strerror(pamh, rc));
		return rc;
	}
	item = NULL;
	rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
	if (rc != PAM_SUCCESS || item == NULL)
		return rc != PAM_SUCCESS ? rc : PAM_AUTH_ERR;
	*password = item;
	return PAM_SUCCESS;
}

/* ----------------------------------------------------------------- socket */

static int
check_socket_file(pam_handle_t *pamh, const struct options *opt)
{
	struct stat st;

	if (lstat(opt->socket_path, &st) != 0) {
		int err = errno;

		pam_syslog(pamh, LOG_ERR, "cannot stat socket %s: %s",
			   opt->socket_path, strerror(err));
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (S_ISLNK(st.st_mode)) {
		pam_syslog(pamh, LOG_ERR,
			   "%s is a symbolic link, not a socket; refusing it",
			   opt->socket_path);
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (!S_ISSOCK(st.st_mode)) {
		pam_syslog(pamh, LOG_ERR, "%s is not a socket; refusing it",
			   opt->socket_path);
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (st.st_uid != opt->server_uid) {
		pam_syslog(pamh, LOG_ERR,
			   "socket %s is owned by uid %lu, not server_uid %lu: "
			   "possibly planted, refusing it",
			   opt->socket_path, (unsigned long)st.st_uid,
			   (unsigned long)opt->server_uid);
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (st.st_mode & S_IWOTH) {
		pam_syslog(pamh, LOG_ERR,
			   "socket %s is writable by others (mode %04o); refusing it",
			   opt->socket_path, (unsigned int)(st.st_mode & 07777));
		return PAM_AUTHINFO_UNAVAIL;
	}
	return PAM_SUCCESS;
}

static int
open_connection(pam_handle_t *pamh, const struct options *opt,
		const struct timespec *deadline, int *fdp)
{
	struct sockaddr_un sa;
	int fd, err, ms, w;
	socklen_t len;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* length checked in set_socket_path */
	memcpy(sa.sun_path, opt->socket_path, strlen(opt->socket_path) + 1);

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
		pam_syslog(pamh, LOG_ERR, "cannot connect to %s: %s",
			   opt->socket_path, strerror(err));
		close(fd);
		return PAM_AUTHINFO_UNAVAIL;
	}
	*fdp = fd;
	return PAM_SUCCESS;

timed_out:
	pam_syslog(pamh, LOG_ERR, "connect to %s timed out after %g s",
		   opt->socket_path, opt->timeout);
	close(fd);
	return PAM_AUTHINFO_UNAVAIL;
}

/* The process behind the socket must run as server_uid (R-M5). */
static int
verify_peer(pam_handle_t *pamh, const struct options *opt, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct pollfd pfd;

	memset(&cred, 0, sizeof(cred));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred)) {
		int err = errno;

		pam_syslog(pamh, LOG_ERR, "cannot read peer credentials on %s: %s",
			   opt->socket_path, strerror(err));
		return PAM_AUTHINFO_UNAVAIL;
	}
	if (cred.uid != opt->server_uid) {
		pam_syslog(pamh, LOG_ERR,
			   "server on %s runs as uid %lu (pid %ld), not server_uid "
			   "%lu: possibly planted socket, not sending credentials",
			   opt->socket_path, (unsigned long)cred.uid,
			   (long)cred.pid, (unsigned long)opt->server_uid);
		return PAM_AUTHINFO_UNAVAIL;
	}

	/* a server that speaks or hangs up before hearing the request is broken */
	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) > 0) {
		pam_syslog(pamh, LOG_ERR,
			   "server on %s sent data or closed before the request",
			   opt->socket_path);
		return PAM_AUTH_ERR;
	}
	return PAM_SUCCESS;
}

static int
send_request(pam_handle_t *pamh, const struct options *opt, int fd,
	     const char *user, const char *password,
	     const struct timespec *deadline)
{
	size_t ulen = strlen(user), plen = strlen(password);
	size_t len = ulen + 1 + plen + 1, off = 0;
	int rc = PAM_SUCCESS, w, err;
	char *buf;

	buf = malloc(len);
	if (buf == NULL) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		return PAM_BUF_ERR;
	}
	memcpy(buf, user, ulen);
	buf[ulen] = '\n';
	memcpy(buf + ulen + 1, password, plen);
	buf[len - 1] = '\n';

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

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
					   opt->socket_path, opt->timeout);
				rc = PAM_AUTHINFO_UNAVAIL;
				break;
			}
			err = errno;
		}
		pam_syslog(pamh, LOG_ERR, "cannot send request to %s: %s",
			   opt->socket_path, n == 0 ? "nothing written" : strerror(err));
		rc = PAM_AUTH_ERR;
		break;
	}

	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

static enum reply_kind
classify_reply(const char *buf, size_t len)
{
	size_t i;

	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len == 0)
		return REPLY_MALFORMED;
	for (i = 0; i < len; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return REPLY_MALFORMED;
	if (len == 1 && buf[0] == '0')
		return REPLY_GRANT;
	if (buf[0] == '0')
		return REPLY_MALFORMED;   /* "00", "01": not a canonical number */
	return REPLY_DENY;
}

/* Render untrusted reply bytes for the log: printable ASCII, else \xNN. */
static void
escape_reply(char *out, size_t outlen, const char *buf, size_t len)
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

static int
read_reply(pam_handle_t *pamh, const struct options *opt, int fd,
	   const struct timespec *deadline)
{
	char buf[MAX_REPLY + 1];
	char shown[4 * (MAX_REPLY + 1) + 1];
	size_t got = 0;
	int w, err;

	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);

		if (n > 0) {
			got += (size_t)n;
			if (got > MAX_REPLY) {
				pam_syslog(pamh, LOG_ERR,
					   "malformed reply from %s: longer than %d bytes",
					   opt->socket_path, MAX_REPLY);
				return PAM_AUTH_ERR;
			}
			continue;
		}
		if (n == 0)
			break;                 /* EOF: the reply is complete */
		err = errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN || err == EWOULDBLOCK) {
			w = wait_for(fd, POLLIN, deadline);
			if (w > 0)
				continue;
			if (w == 0) {
				escape_reply(shown, sizeof(shown), buf, got);
				pam_syslog(pamh, LOG_ERR,
					   "no complete reply from %s within %g s "
					   "(got \"%s\" and no end of stream); denying",
					   opt->socket_path, opt->timeout, shown);
				return PAM_AUTHINFO_UNAVAIL;
			}
			err = errno;
		}
		pam_syslog(pamh, LOG_ERR,
			   "malformed reply from %s: connection error after %zu "
			   "bytes: %s", opt->socket_path, got, strerror(err));
		return PAM_AUTH_ERR;
	}

	switch (classify_reply(buf, got)) {
	case REPLY_GRANT:
		return PAM_SUCCESS;
	case REPLY_DENY:
		return PAM_AUTH_ERR;
	case REPLY_MALFORMED:
	default:
		escape_reply(shown, sizeof(shown), buf, got);
		pam_syslog(pamh, LOG_ERR, "malformed reply from %s: \"%s\"",
			   opt->socket_path, shown);
		return PAM_AUTH_ERR;
	}
}

static int
ask_server(pam_handle_t *pamh, const struct options *opt,
	   const char *user, const char *password)
{
	struct timespec deadline;
	int fd = -1, rc;

	compute_deadline(&deadline, opt->timeout);

	rc = check_socket_file(pamh, opt);
	if (rc == PAM_SUCCESS)
		rc = open_connection(pamh, opt, &deadline, &fd);
	if (rc == PAM_SUCCESS)
		rc = verify_peer(pamh, opt, fd);
	if (rc == PAM_SUCCESS)
		rc = send_request(pamh, opt, fd, user, password, &deadline);
	if (rc == PAM_SUCCESS)
		rc = read_reply(pamh, opt, fd, &deadline);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* --------------------------------------------------------------- PAM API */

int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct options opt;
	struct timespec start;
	const char *user = NULL, *password = NULL;
	int rc;

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
		pam_syslog(pamh, LOG_NOTICE, "empty user name; not asking the server");
		return PAM_AUTH_ERR;
	}
	if (!check_field(pamh, "user name", user))
		return PAM_AUTH_ERR;

	rc = obtain_password(pamh, &opt, &password);
	if (rc != PAM_SUCCESS)
		return rc;
	if (!check_field(pamh, "password", password))
		return PAM_AUTH_ERR;
	if (password[0] == '\0' && (flags & PAM_DISALLOW_NULL_AUTHTOK)) {
		if (opt.debug)
			pam_syslog(pamh, LOG_DEBUG,
				   "empty password refused for user %s "
				   "(PAM_DISALLOW_NULL_AUTHTOK)", user);
		return PAM_AUTH_ERR;
	}

	if (opt.debug)
		pam_syslog(pamh, LOG_DEBUG, "asking %s about user %s",
			   opt.socket_path, user);
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = ask_server(pamh, &opt, user, password);
	if (opt.debug)
		pam_syslog(pamh, LOG_DEBUG, "user %s: %s after %ld ms",
			   user, pam_strerror(pamh, rc), elapsed_ms(&start));

	if (rc == PAM_AUTHINFO_UNAVAIL && !(flags & PAM_SILENT) && !opt.no_warn)
		pam_error(pamh, "%s", "The authentication service is unavailable.");
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
