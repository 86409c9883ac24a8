"""PAM return codes (Linux-PAM numbering) and the lower-case tokens of ``[value=action]``.

>>> name(7)
'PAM_AUTH_ERR'
>>> code("PAM_IGNORE"), code("ignore"), token(25)
(25, 25, 'ignore')
"""

from __future__ import annotations

#: Code number -> ``PAM_*`` name, in Linux-PAM's numbering (``_pam_types.h``).
NAMES: tuple[str, ...] = (
    "PAM_SUCCESS", "PAM_OPEN_ERR", "PAM_SYMBOL_ERR", "PAM_SERVICE_ERR", "PAM_SYSTEM_ERR",
    "PAM_BUF_ERR", "PAM_PERM_DENIED", "PAM_AUTH_ERR", "PAM_CRED_INSUFFICIENT",
    "PAM_AUTHINFO_UNAVAIL", "PAM_USER_UNKNOWN", "PAM_MAXTRIES", "PAM_NEW_AUTHTOK_REQD",
    "PAM_ACCT_EXPIRED", "PAM_SESSION_ERR", "PAM_CRED_UNAVAIL", "PAM_CRED_EXPIRED",
    "PAM_CRED_ERR", "PAM_NO_MODULE_DATA", "PAM_CONV_ERR", "PAM_AUTHTOK_ERR",
    "PAM_AUTHTOK_RECOVERY_ERR", "PAM_AUTHTOK_LOCK_BUSY", "PAM_AUTHTOK_DISABLE_AGING",
    "PAM_TRY_AGAIN", "PAM_IGNORE", "PAM_ABORT", "PAM_AUTHTOK_EXPIRED", "PAM_MODULE_UNKNOWN",
    "PAM_BAD_ITEM", "PAM_CONV_AGAIN", "PAM_INCOMPLETE",
)

#: How many return codes there are (the size of a line's action table).
COUNT = len(NAMES)

#: The tokens a ``[value=action]`` control and ``pam_debug`` arguments use, in code order.
#: (PAM_AUTHTOK_RECOVERY_ERR's token is ``authtok_recover_err``, without the y.)
TOKENS: tuple[str, ...] = (
    "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err",
    "perm_denied", "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown",
    "maxtries", "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail",
    "cred_expired", "cred_err", "no_module_data", "conv_err", "authtok_err",
    "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging", "try_again",
    "ignore", "abort", "authtok_expired", "module_unknown", "bad_item", "conv_again",
    "incomplete",
)

SUCCESS = 0
SERVICE_ERR = 3
SYSTEM_ERR = 4
PERM_DENIED = 6
AUTH_ERR = 7
AUTHINFO_UNAVAIL = 9
NEW_AUTHTOK_REQD = 12
MODULE_UNKNOWN = 28
IGNORE = 25
ABORT = 26
INCOMPLETE = 31

_BY_NAME = {n: i for i, n in enumerate(NAMES)} | {t: i for i, t in enumerate(TOKENS)}


def name(rc: int | None) -> str:
    """``PAM_*`` name of a code (``PAM_RC_<n>`` for a number outside the table)."""
    if rc is None:
        return "none"
    return NAMES[rc] if 0 <= rc < COUNT else f"PAM_RC_{rc}"


def token(rc: int) -> str:
    """The lower-case token of a code, as ``[value=action]`` spells it."""
    return TOKENS[rc]


def code(text: str) -> int:
    """A code from its ``PAM_*`` name, its token, or its number."""
    if text.isdigit():
        return int(text)
    try:
        return _BY_NAME[text]
    except KeyError:
        raise ValueError(f"unknown PAM return code {text!r}") from None
