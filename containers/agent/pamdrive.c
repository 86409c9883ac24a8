/*
 * pamdrive: drive one PAM transaction through libpam, report it as one JSON line.
 *
 * It runs the life cycle of a PAM application (pam_start, pam_set_item, then the
 * chosen primitives, then pam_end) against one service, answering prompts from
 * the command line, and prints what happened: every step's return code, its name
 * and duration, every prompt and message of the conversation, and pam_end's code.
 *
 *   pamdrive --service S [--user U] [--confdir DIR] [--password P ...]
 *            [--authtok P] [--rhost H] [--ruser U] [--tty T]
 *            [--flags silent,disallow_null,change_expired]
 *            [--steps authenticate,acct_mgmt,chauthtok,setcred,open_session,
 *                     close_session,delete_cred,reinitialize_cred,refresh_cred | all]
 *            [--keep-going] [--conv-fail]
 *
 * --confdir uses pam_start_confdir() (service files there, modules by absolute
 * path); without it pam_start() reads /etc/pam.d (meant for containers only).
 * Each --password answers the next PROMPT_ECHO_OFF/ON prompt; when none is left,
 * or with --conv-fail, the conversation returns PAM_CONV_ERR.
 *
 * Steps run in the order given (default: authenticate) and stop at the first one
 * that does not return PAM_SUCCESS, unless --keep-going.  "setcred" is
 * pam_setcred(PAM_ESTABLISH_CRED), "delete_cred" pam_setcred(PAM_DELETE_CRED).
 * PAM_NEW_AUTHTOK_REQD from acct_mgmt does not stop the run when chauthtok comes
 * next; that chauthtok gets PAM_CHANGE_EXPIRED_AUTHTOK.  "all" is the whole life
 * cycle: authenticate, acct_mgmt, chauthtok (only if acct_mgmt asks for it),
 * setcred, open_session, close_session, delete_cred.
 *
 * --authtok: Linux-PAM refuses PAM_AUTHTOK from an application (PAM_BAD_ITEM; the
 * attempt is still made and reported under "items"), so pamdrive also puts
 * PAMDRIVE_AUTHTOK=P into the PAM environment; the companion module
 * pam_pamdrive_authtok.so (built from this file with -DPAMDRIVE_AUTHTOK_MODULE),
 * stacked first as "auth optional /abs/path/pam_pamdrive_authtok.so", moves it
 * into PAM_AUTHTOK and removes it from the environment.
 *
 * Output, one line on stdout:
 *   {"pam_start": 0, "pam_start_name": "PAM_SUCCESS",
 *    "items": [{"item": "PAM_RHOST", "rc": 0, "name": "PAM_SUCCESS"}],
 *    "steps": [{"step": "authenticate", "rc": 7, "name": "PAM_AUTH_ERR", "ms": 1.234}],
 *    "prompts": [{"style": "PROMPT_ECHO_OFF", "msg": "Password: ", "step": "authenticate",
 *                 "answered": true}],
 *    "messages": [{"style": "TEXT_INFO", "msg": "...", "step": "authenticate"}],
 *    "pam_end": 0}
 * plus "fail_delay_us": N when a module asked for a delay after a failure (pam_fail_delay:
 * recorded, not slept).
 * If a module calls exit(), an atexit handler prints the same object with the steps
 * finished so far, "exit_called": true, "in_step": STEP and "pam_end": null.
 * Strings are JSON-escaped; bytes that are not UTF-8 become U+FFFD; a message is cut
 * at 4096 bytes and at most 256 prompts and 256 messages are kept ("truncated": true).
 *
 * Exit status: 0 when the run reached its end (whatever the PAM codes), 2 for bad
 * usage, 1 if the report could not be built (out of memory).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <security/pam_appl.h>
#include <security/pam_modules.h>

#ifndef PAMDRIVE_AUTHTOK_MODULE

#include <getopt.h>

#define MAX_ENTRIES 256
#define MAX_MSG 4096
#define MAX_STEPS 64
#define AUTHTOK_ENV "PAMDRIVE_AUTHTOK"

/* ------------------------------------------------------------------ names */

struct code_name {
	int code;
	const char *name;
};

#define CODE(c) { c, #c }
static const struct code_name codes[] = {
	CODE(PAM_SUCCESS), CODE(PAM_OPEN_ERR), CODE(PAM_SYMBOL_ERR),
	CODE(PAM_SERVICE_ERR), CODE(PAM_SYSTEM_ERR), CODE(PAM_BUF_ERR),
	CODE(PAM_PERM_DENIED), CODE(PAM_AUTH_ERR), CODE(PAM_CRED_INSUFFICIENT),
	CODE(PAM_AUTHINFO_UNAVAIL), CODE(PAM_USER_UNKNOWN), CODE(PAM_MAXTRIES),
	CODE(PAM_NEW_AUTHTOK_REQD), CODE(PAM_ACCT_EXPIRED), CODE(PAM_SESSION_ERR),
	CODE(PAM_CRED_UNAVAIL), CODE(PAM_CRED_EXPIRED), CODE(PAM_CRED_ERR),
	CODE(PAM_NO_MODULE_DATA), CODE(PAM_CONV_ERR), CODE(PAM_AUTHTOK_ERR),
	CODE(PAM_AUTHTOK_RECOVERY_ERR), CODE(PAM_AUTHTOK_LOCK_BUSY),
	CODE(PAM_AUTHTOK_DISABLE_AGING), CODE(PAM_TRY_AGAIN), CODE(PAM_IGNORE),
	CODE(PAM_ABORT), CODE(PAM_AUTHTOK_EXPIRED), CODE(PAM_MODULE_UNKNOWN),
	CODE(PAM_BAD_ITEM),
#ifdef PAM_CONV_AGAIN
	CODE(PAM_CONV_AGAIN),
#endif
#ifdef PAM_INCOMPLETE
	CODE(PAM_INCOMPLETE),
#endif
};

static const char *code_name(int rc)
{
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == rc)
			return codes[i].name;
	return "PAM_UNKNOWN_CODE";
}

static const char *style_name(int style)
{
	switch (style) {
	case PAM_PROMPT_ECHO_OFF: return "PROMPT_ECHO_OFF";
	case PAM_PROMPT_ECHO_ON: return "PROMPT_ECHO_ON";
	case PAM_ERROR_MSG: return "ERROR_MSG";
	case PAM_TEXT_INFO: return "TEXT_INFO";
#ifdef PAM_RADIO_TYPE
	case PAM_RADIO_TYPE: return "RADIO_TYPE";
#endif
#ifdef PAM_BINARY_PROMPT
	case PAM_BINARY_PROMPT: return "BINARY_PROMPT";
#endif
	default: return "UNKNOWN_STYLE";
	}
}

/* ------------------------------------------------------------------ JSON buffer */

struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = 1;
		return;
	}
	buf_add(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* Append s (n bytes) as a JSON string literal. */
static void buf_json_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len;
	char esc[8];

	buf_add(b, "\"", 1);
	while (i < n) {
		unsigned char c = u[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			buf_add(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_add(b, esc, 6);
			i++;
		} else if ((len = utf8_len(u + i, n - i)) == 0) {
			buf_add(b, "\\ufffd", 6);
			i++;
		} else {
			buf_add(b, s + i, len);
			i += len;
		}
	}
	buf_add(b, "\"", 1);
}

static void buf_json_cstr(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_add(b, "null", 4);
	else
		buf_json_str(b, s, strlen(s));
}

/* ------------------------------------------------------------------ the run */

enum step_kind {
	STEP_AUTHENTICATE, STEP_ACCT_MGMT, STEP_CHAUTHTOK, STEP_SETCRED,
	STEP_OPEN_SESSION, STEP_CLOSE_SESSION, STEP_DELETE_CRED,
	STEP_REINITIALIZE_CRED, STEP_REFRESH_CRED,
};

static const char *const step_names[] = {
	"authenticate", "acct_mgmt", "chauthtok", "setcred", "open_session",
	"close_session", "delete_cred", "reinitialize_cred", "refresh_cred",
};

struct step {
	enum step_kind kind;
	int only_if_asked;	/* chauthtok of "all": only after PAM_NEW_AUTHTOK_REQD */
};

struct run {
	const char **answers;
	int nanswers, next_answer;
	int conv_fail;
	const char *step;	/* the step (or "pam_start", "pam_end") in progress */
	int in_progress;	/* the atexit handler reports only while set */
	int pam_start_rc;
	int nprompts, nmessages, truncated;
	unsigned int fail_delay_us;	/* the longest pam_fail_delay() asked for */
	struct buf items, steps, prompts, messages;
};

static struct run R;

/*
 * libpam calls this instead of sleeping out a module's pam_fail_delay() (pam_unix asks
 * for 2 s, randomised up to 3): the driver records the delay and returns at once, so a
 * hang bound measures the module, not the delay it asked for.
 */
static void record_fail_delay(int status, unsigned int usec, void *appdata)
{
	(void)status;
	(void)appdata;
	if (usec > R.fail_delay_us)
		R.fail_delay_us = usec;
}

static void add_entry(struct buf *b, int *count, const struct pam_message *m, int prompt,
		      int answered)
{
	const char *msg = m->msg ? m->msg : "";
	size_t n = strlen(msg);

	if (*count >= MAX_ENTRIES) {
		R.truncated = 1;
		return;
	}
	if (n > MAX_MSG) {
		n = MAX_MSG;
		R.truncated = 1;
	}
	if ((*count)++ > 0)
		buf_add(b, ", ", 2);
	buf_printf(b, "{\"style\": \"%s\", \"msg\": ", style_name(m->msg_style));
	buf_json_str(b, msg, n);
	buf_add(b, ", \"step\": ", 10);
	buf_json_cstr(b, R.step);
	if (prompt)
		buf_printf(b, ", \"answered\": %s", answered ? "true" : "false");
	buf_add(b, "}", 1);
}

static void free_responses(struct pam_response *r, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
}

static int converse(int n, const struct pam_message **msg, struct pam_response **resp,
		    void *data)
{
	struct pam_response *r;
	int i, fail = 0;

	(void)data;
	*resp = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		const struct pam_message *m = msg[i];

		switch (m->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			if (fail || R.conv_fail || R.next_answer >= R.nanswers) {
				add_entry(&R.prompts, &R.nprompts, m, 1, 0);
				fail = 1;
				break;
			}
			r[i].resp = strdup(R.answers[R.next_answer++]);
			if (r[i].resp == NULL) {
				free_responses(r, n);
				return PAM_BUF_ERR;
			}
			add_entry(&R.prompts, &R.nprompts, m, 1, 1);
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			add_entry(&R.messages, &R.nmessages, m, 0, 0);
			break;
		default:
			/* Binary or unknown styles: recorded, never answered. */
			add_entry(&R.messages, &R.nmessages, m, 0, 0);
			fail = 1;
			break;
		}
	}
	if (fail || R.conv_fail) {
		free_responses(r, n);
		return PAM_CONV_ERR;
	}
	*resp = r;
	return PAM_SUCCESS;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void print_report(int pam_end_rc, int have_end, int exited)
{
	struct buf out = { 0 };

	buf_printf(&out, "{\"pam_start\": %d, \"pam_start_name\": \"%s\", \"items\": [",
		   R.pam_start_rc, code_name(R.pam_start_rc));
	if (R.items.p)
		buf_add(&out, R.items.p, R.items.len);
	buf_add(&out, "], \"steps\": [", 13);
	if (R.steps.p)
		buf_add(&out, R.steps.p, R.steps.len);
	buf_add(&out, "], \"prompts\": [", 15);
	if (R.prompts.p)
		buf_add(&out, R.prompts.p, R.prompts.len);
	buf_add(&out, "], \"messages\": [", 16);
	if (R.messages.p)
		buf_add(&out, R.messages.p, R.messages.len);
	buf_add(&out, "]", 1);
	if (R.truncated)
		buf_add(&out, ", \"truncated\": true", 19);
	if (R.fail_delay_us)
		buf_printf(&out, ", \"fail_delay_us\": %u", R.fail_delay_us);
	if (exited) {
		buf_add(&out, ", \"exit_called\": true, \"in_step\": ", 34);
		buf_json_cstr(&out, R.step);
	}
	if (have_end)
		buf_printf(&out, ", \"pam_end\": %d}\n", pam_end_rc);
	else
		buf_add(&out, ", \"pam_end\": null}\n", 19);
	if (out.failed || R.items.failed || R.steps.failed || R.prompts.failed ||
	    R.messages.failed) {
		fputs("pamdrive: out of memory building the report\n", stderr);
	} else {
		fwrite(out.p, 1, out.len, stdout);
		fflush(stdout);
	}
	free(out.p);
}

/* A module called exit(): report what happened so far (only while running). */
static void report_on_exit(void)
{
	if (!R.in_progress)
		return;
	R.in_progress = 0;
	fprintf(stderr, "pamdrive: exit() called during %s\n", R.step ? R.step : "?");
	print_report(0, 0, 1);
}

static void record_step(const char *name, int rc, double ms)
{
	if (R.steps.len > 0)
		buf_add(&R.steps, ", ", 2);
	buf_printf(&R.steps, "{\"step\": \"%s\", \"rc\": %d, \"name\": \"%s\", \"ms\": %.3f}",
		   name, rc, code_name(rc), ms);
}

static void set_item(pam_handle_t *pamh, int item, const char *name, const char *value)
{
	int rc = pam_set_item(pamh, item, value);

	if (R.items.len > 0)
		buf_add(&R.items, ", ", 2);
	buf_printf(&R.items, "{\"item\": \"%s\", \"rc\": %d, \"name\": \"%s\"}",
		   name, rc, code_name(rc));
}

static int run_step(pam_handle_t *pamh, enum step_kind kind, int flags, int expired)
{
	int silent = flags & PAM_SILENT;

	switch (kind) {
	case STEP_AUTHENTICATE:
		return pam_authenticate(pamh, flags);
	case STEP_ACCT_MGMT:
		return pam_acct_mgmt(pamh, flags);
	case STEP_CHAUTHTOK:
		return pam_chauthtok(pamh, silent | (flags & PAM_CHANGE_EXPIRED_AUTHTOK) |
				     (expired ? PAM_CHANGE_EXPIRED_AUTHTOK : 0));
	case STEP_SETCRED:
		return pam_setcred(pamh, silent | PAM_ESTABLISH_CRED);
	case STEP_OPEN_SESSION:
		return pam_open_session(pamh, silent);
	case STEP_CLOSE_SESSION:
		return pam_close_session(pamh, silent);
	case STEP_DELETE_CRED:
		return pam_setcred(pamh, silent | PAM_DELETE_CRED);
	case STEP_REINITIALIZE_CRED:
		return pam_setcred(pamh, silent | PAM_REINITIALIZE_CRED);
	case STEP_REFRESH_CRED:
		return pam_setcred(pamh, silent | PAM_REFRESH_CRED);
	}
	return PAM_SYSTEM_ERR;
}

/* ------------------------------------------------------------------ options */

static void usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage(const char *fmt, ...)
{
	va_list ap;

	fputs("pamdrive: usage error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nusage: pamdrive --service S [--user U] [--confdir DIR] [--password P ...]\n"
	      "         [--authtok P] [--rhost H] [--ruser U] [--tty T]\n"
	      "         [--flags silent,disallow_null,change_expired]\n"
	      "         [--steps STEP,... | all] [--keep-going] [--conv-fail]\n", stderr);
	exit(2);
}

static int parse_flags(const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	int flags = 0;

	if (copy == NULL)
		usage("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "silent") == 0) {
			flags |= PAM_SILENT;
		} else if (strcmp(tok, "disallow_null") == 0) {
			flags |= PAM_DISALLOW_NULL_AUTHTOK;
		} else if (strcmp(tok, "change_expired") == 0) {
			flags |= PAM_CHANGE_EXPIRED_AUTHTOK;
		} else {
			usage("unknown flag in --flags: %s", tok);
		}
	}
	free(copy);
	return flags;
}

static int parse_steps(const char *arg, struct step *steps)
{
	static const enum step_kind all[] = {
		STEP_AUTHENTICATE, STEP_ACCT_MGMT, STEP_CHAUTHTOK, STEP_SETCRED,
		STEP_OPEN_SESSION, STEP_CLOSE_SESSION, STEP_DELETE_CRED,
	};
	char *copy = strdup(arg), *tok, *save = NULL;
	int n = 0;
	size_t i;

	if (copy == NULL)
		usage("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "all") == 0) {
			for (i = 0; i < sizeof(all) / sizeof(all[0]) && n < MAX_STEPS; i++) {
				steps[n].kind = all[i];
				steps[n++].only_if_asked = all[i] == STEP_CHAUTHTOK;
			}
			continue;
		}
		for (i = 0; i < sizeof(step_names) / sizeof(step_names[0]); i++)
			if (strcmp(tok, step_names[i]) == 0)
				break;
		if (i == sizeof(step_names) / sizeof(step_names[0]))
			usage("unknown step in --steps: %s", tok);
		if (n >= MAX_STEPS)
			usage("more than %d steps", MAX_STEPS);
		steps[n].kind = (enum step_kind)i;
		steps[n++].only_if_asked = 0;
	}
	free(copy);
	if (n == 0)
		usage("--steps is empty");
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "service", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, 'u' },
		{ "confdir", required_argument, NULL, 'c' },
		{ "password", required_argument, NULL, 'p' },
		{ "authtok", required_argument, NULL, 'a' },
		{ "rhost", required_argument, NULL, 'R' },
		{ "ruser", required_argument, NULL, 'U' },
		{ "tty", required_argument, NULL, 'T' },
		{ "flags", required_argument, NULL, 'f' },
		{ "steps", required_argument, NULL, 'S' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "conv-fail", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *service = NULL, *user = NULL, *confdir = NULL, *authtok = NULL;
	const char *rhost = NULL, *ruser = NULL, *tty = NULL;
	struct step steps[MAX_STEPS];
	struct pam_conv conv = { converse, NULL };
	pam_handle_t *pamh = NULL;
	int nsteps = 1, flags = 0, keep_going = 0, opt, i, rc = PAM_SUCCESS, end_rc;
	int last_rc = PAM_SUCCESS, expired = 0;
	double t0;

	steps[0].kind = STEP_AUTHENTICATE;
	steps[0].only_if_asked = 0;
	R.answers = calloc((size_t)argc, sizeof(*R.answers));
	if (R.answers == NULL)
		usage("out of memory");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': service = optarg; break;
		case 'u': user = optarg; break;
		case 'c': confdir = optarg; break;
		case 'p': R.answers[R.nanswers++] = optarg; break;
		case 'a': authtok = optarg; break;
		case 'R': rhost = optarg; break;
		case 'U': ruser = optarg; break;
		case 'T': tty = optarg; break;
		case 'f': flags = parse_flags(optarg); break;
		case 'S': nsteps = parse_steps(optarg, steps); break;
		case 'k': keep_going = 1; break;
		case 'C': R.conv_fail = 1; break;
		case 'h': usage("help requested");
		default: usage("unknown option or missing argument: %s", argv[optind - 1]);
		}
	}
	if (optind != argc)
		usage("unexpected argument: %s", argv[optind]);
	if (service == NULL || *service == '\0')
		usage("--service is required");

	atexit(report_on_exit);
	R.in_progress = 1;
	R.step = "pam_start";
	if (confdir != NULL)
		R.pam_start_rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
	else
		R.pam_start_rc = pam_start(service, user, &conv, &pamh);
	if (R.pam_start_rc != PAM_SUCCESS) {
		R.in_progress = 0;
		print_report(0, 0, 0);
		free(R.answers);
		return 0;
	}

	R.step = "pam_set_item";
	(void)pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)record_fail_delay);
	if (rhost != NULL)
		set_item(pamh, PAM_RHOST, "PAM_RHOST", rhost);
	if (ruser != NULL)
		set_item(pamh, PAM_RUSER, "PAM_RUSER", ruser);
	if (tty != NULL)
		set_item(pamh, PAM_TTY, "PAM_TTY", tty);
	if (authtok != NULL) {
		char *env;

		set_item(pamh, PAM_AUTHTOK, "PAM_AUTHTOK", authtok);
		if (asprintf(&env, "%s=%s", AUTHTOK_ENV, authtok) < 0)
			usage("out of memory");
		rc = pam_putenv(pamh, env);
		explicit_bzero(env, strlen(env));
		free(env);
		if (R.items.len > 0)
			buf_add(&R.items, ", ", 2);
		buf_printf(&R.items, "{\"item\": \"env:%s\", \"rc\": %d, \"name\": \"%s\"}",
			   AUTHTOK_ENV, rc, code_name(rc));
	}

	for (i = 0; i < nsteps; i++) {
		const struct step *s = &steps[i];
		int want_chauthtok = i + 1 < nsteps && steps[i + 1].kind == STEP_CHAUTHTOK;

		if (s->only_if_asked && !expired)
			continue;
		R.step = step_names[s->kind];
		t0 = now_ms();
		rc = run_step(pamh, s->kind, flags, s->kind == STEP_CHAUTHTOK && expired);
		record_step(R.step, rc, now_ms() - t0);
		last_rc = rc;
		expired = s->kind == STEP_ACCT_MGMT && rc == PAM_NEW_AUTHTOK_REQD;
		if (expired && want_chauthtok)
			continue;
		if (rc != PAM_SUCCESS && !keep_going)
			break;
	}

	R.step = "pam_end";
	end_rc = pam_end(pamh, last_rc);
	R.in_progress = 0;
	print_report(end_rc, 1, 0);
	free(R.items.p);
	free(R.steps.p);
	free(R.prompts.p);
	free(R.messages.p);
	free(R.answers);
	return 0;
}

#else /* PAMDRIVE_AUTHTOK_MODULE */

/*
 * pam_pamdrive_authtok: moves PAMDRIVE_AUTHTOK from the PAM environment (set by
 * pamdrive --authtok) into PAM_AUTHTOK and deletes it from the environment.
 * Stack it first:  auth optional /abs/path/pam_pamdrive_authtok.so
 * Always returns PAM_IGNORE (it never decides anything).
 */

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *tok = pam_getenv(pamh, "PAMDRIVE_AUTHTOK");

	(void)flags;
	(void)argc;
	(void)argv;
	if (tok != NULL) {
		pam_set_item(pamh, PAM_AUTHTOK, tok);
		pam_putenv(pamh, "PAMDRIVE_AUTHTOK");
	}
	return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_IGNORE;
}

#endif /* PAMDRIVE_AUTHTOK_MODULE */
