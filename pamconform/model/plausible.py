"""What the other modules of an audited stack may return, when no lab tells us.

The offline audit (:mod:`pamconform.model.audit_offline`) cannot run ``pam_unix`` or
``pam_succeed_if``: their codes depend on the host, the user and the password.  So each
line gets the set of codes it may plausibly return, and the audit tries every
combination:

- modules whose code is fixed by their arguments: ``pam_permit`` (success),
  ``pam_deny`` (its failure code), ``pam_debug`` (the code its argument names) —
  :mod:`pamconform.model.modules`, measured in the lab;
- modules that never decide ``pam_authenticate``: ``pam_env``, ``pam_warn``,
  ``pam_faildelay`` return ``PAM_IGNORE`` from it (Linux-PAM 1.5.2); ``pam_nologin``
  returns ``PAM_IGNORE`` without ``/etc/nologin`` (``PAM_SUCCESS`` with ``successok``)
  and ``PAM_AUTH_ERR`` with it;
- **authenticators** (``pam_unix``, ``pam_sss``, ``pam_krb5`` ..., and every registered
  protocol's socket module other than the audited one) verify a credential.  The
  attacker the audit asks about has none: in a state where the auth server does not
  grant, they may return any code *but* ``PAM_SUCCESS`` (a stack that grants because
  the local password was right is not failing open).  Where the server grants (the
  legitimate user's view) they may succeed too;
- ``pam_rootok`` succeeds only for a caller whose real uid is 0. In a service its
  caller runs as themselves (``su``, ``sudo``, ``passwd`` ...: :data:`CALLER_UID_SERVICES`)
  an attacker without credentials is not root, so there it is an authenticator (never
  ``PAM_SUCCESS`` where the server does not grant): Debian's ``su`` stack starts with
  ``auth sufficient pam_rootok.so`` and does not fail open by it. Elsewhere (sshd,
  login: a daemon running as root) it may return anything, ``PAM_SUCCESS`` included;
- every other module (``pam_succeed_if``, ``pam_access``, ``pam_faillock``, a module
  the audit has never heard of ...): any code.  Its result depends on context an
  attacker may choose (the user name, the time, the host), so the audit assumes the
  worst.

Codes the line's control treats alike (same action, both success or both not) lead to
the same verdict, so only one of each group is tried (:func:`distinct`): a ``required``
line has at most four groups (success, ``new_authtok_reqd``, ignore, the rest), a
``[success=1 default=ignore]`` line two.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pamconform.model import codes
from pamconform.model.modules import debug_code, deny_code
from pamconform.model.parser import Handler

#: Modules that verify a credential in ``pam_sm_authenticate``.
AUTHENTICATORS = frozenset({
    "pam_unix", "pam_sss", "pam_ldap", "pam_krb5", "pam_winbind", "pam_systemd_home",
    "pam_userdb", "pam_radius_auth", "pam_u2f", "pam_google_authenticator", "pam_oath",
    "pam_yubico", "pam_tacplus", "pam_fprintd", "pam_pkcs11", "pam_p11",
    "pam_ssh_agent_auth", "pam_pwdb", "pam_mysql", "pam_pgsql", "pam_duo",
})

#: Services whose application runs with the real uid of whoever asks (set-uid programs):
#: there ``pam_rootok`` grants only a caller who is root already.
CALLER_UID_SERVICES = frozenset({
    "su", "su-l", "sudo", "sudo-i", "passwd", "chfn", "chsh", "chpasswd", "newgrp",
    "runuser", "runuser-l", "pkexec", "polkit-1",
})

#: Modules whose ``pam_authenticate`` never decides (Linux-PAM 1.5.2 sources).
_AUTH_IGNORE = frozenset({"pam_env", "pam_warn", "pam_faildelay"})

#: The order codes are tried in (the first of a group names it in a witness).
_ORDER = (codes.SUCCESS, codes.AUTH_ERR, codes.IGNORE, codes.NEW_AUTHTOK_REQD,
          *(c for c in range(codes.COUNT) if c not in (
              codes.SUCCESS, codes.AUTH_ERR, codes.IGNORE, codes.NEW_AUTHTOK_REQD,
              codes.INCOMPLETE)))


def fixed(h: Handler, function: str) -> int | None:
    """The one code a line returns whatever the context, or None when it varies."""
    name = h.module_name
    if name == "pam_permit":
        return codes.SUCCESS
    if name == "pam_deny":
        return deny_code(function)
    if name == "pam_debug":
        return debug_code(h.args, function)
    if function == "authenticate" and name in _AUTH_IGNORE:
        return codes.IGNORE
    return None


def plausible(h: Handler, function: str, *, server_grants: bool,
              authenticators: Collection[str] = (), service: str = "") -> tuple[int, ...]:
    """Every code the line may return (see the module's docstring), in trying order."""
    one = fixed(h, function)
    if one is not None:
        return (one,)
    name = h.module_name
    if function == "authenticate" and name == "pam_nologin":
        return ((codes.SUCCESS if "successok" in h.args else codes.IGNORE), codes.AUTH_ERR)
    if (function == "authenticate" and not server_grants
            and (name in AUTHENTICATORS or name in authenticators
                 or rootok_checks_the_caller(h, service))):
        return tuple(c for c in _ORDER if c != codes.SUCCESS)
    return _ORDER


def rootok_checks_the_caller(h: Handler, service: str) -> bool:
    """A ``pam_rootok`` line in a service run as its caller (root only, then, succeeds)."""
    return h.module_name == "pam_rootok" and service in CALLER_UID_SERVICES


def distinct(h: Handler, candidates: Iterable[int]) -> tuple[int, ...]:
    """One code per group the line's control treats alike (the first of each)."""
    seen: set[tuple[int, bool, bool]] = set()
    out = []
    for c in candidates:
        key = (h.actions[c], c == codes.SUCCESS, c == codes.IGNORE)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return tuple(out)
