"""What the lab's modules return, so the model can evaluate stacks made of them.

Measured in the lab (Debian 12, Linux-PAM 1.5.2) and checked by ``tests/test_chain_lab.py``:

==============  ============  ==========  ==========  ============  ============
module          authenticate  setcred     acct_mgmt   open/close    chauthtok
==============  ============  ==========  ==========  ============  ============
pam_permit      SUCCESS       SUCCESS     SUCCESS     SUCCESS       SUCCESS
pam_deny        AUTH_ERR      CRED_ERR    AUTH_ERR    SESSION_ERR   AUTHTOK_ERR
pam_debug       auth=         cred=       acct=       open_session= prechauthtok=
                                                      close_session= chauthtok=
pam_redirector  server state  SUCCESS     IGNORE      IGNORE        IGNORE
==============  ============  ==========  ==========  ============  ============

pam_debug returns the code named by its argument (the token of ``[value=action]``,
e.g. ``auth=authinfo_unavail``), ``PAM_SUCCESS`` without one; only the first argument
for the function counts.  pam_redirector's code depends on the server behind the
socket named by its first argument (:data:`STATE_CODES` for the reference module).
A module that is not installed returns ``PAM_MODULE_UNKNOWN``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pamconform.model import codes
from pamconform.model.parser import MODULE_DIR, Handler

#: The server states the lab can put behind a socket.
STATES = ("grant", "deny", "down", "hung", "garbage")

#: What the reference pam_redirector returns in each state (R-M1: fails closed).
STATE_CODES: dict[str, int] = {
    "grant": codes.SUCCESS,
    "deny": codes.AUTH_ERR,
    "down": codes.AUTHINFO_UNAVAIL,
    "hung": codes.AUTHINFO_UNAVAIL,
    "garbage": codes.AUTH_ERR,
}

#: Modules the socket module can be (recognised by name in user stacks).
SOCKET_MODULES = ("pam_redirector", "pam_transient_token")

_DENY = {"authenticate": codes.AUTH_ERR, "setcred": 17, "acct_mgmt": codes.AUTH_ERR,
         "open_session": 14, "close_session": 14, "chauthtok_prelim": 20,
         "chauthtok_update": 20}
_DEBUG_ARG = {"authenticate": "auth", "setcred": "cred", "acct_mgmt": "acct",
              "open_session": "open_session", "close_session": "close_session",
              "chauthtok_prelim": "prechauthtok", "chauthtok_update": "chauthtok"}
#: The lab image's modules that the stacks here use (the rest may be probed).
LAB_MODULES = ("pam_permit", "pam_deny", "pam_debug", "pam_redirector")


def deny_code(function: str) -> int:
    """pam_deny's return code for ``function``."""
    return _DENY[function]


class UnknownModule(KeyError):
    """The model has no return code for this module (probe it in the lab)."""


def debug_code(args: Iterable[str], function: str) -> int:
    """pam_debug's return code for ``function`` given its arguments.

    >>> debug_code(["auth=ignore", "auth=success"], "authenticate")
    25
    """
    event = _DEBUG_ARG[function]
    for arg in args:
        if arg.startswith(event) and arg[len(event):len(event) + 1] == "=":
            value = arg[len(event) + 1:]
            return codes.TOKENS.index(value) if value in codes.TOKENS else codes.SUCCESS
    return codes.SUCCESS


_FLAGS = ("debug", "no_warn", "use_first_pass", "try_first_pass")
_DECIMAL = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX = re.compile(r"0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")


def _seconds(text: str) -> float | None:
    if _DECIMAL.fullmatch(text):
        return float(text)
    if _HEX.fullmatch(text):
        return float.fromhex(text if "p" in text.lower() else text + "p0")
    return None


#: The reference module's shortest ``timeout=`` (a shorter wait is refused as a typo).
MIN_TIMEOUT_S = 0.001


def socket_arg(args: Iterable[str]) -> str | None:
    """The socket path a pam_redirector line names; None if its arguments are invalid.

    Mirrors the reference module's option parsing (README): flags, ``socket=``,
    ``timeout=`` (0.001 <= t <= 3600), ``server_uid=``, one bare absolute path; anything
    else makes it return ``PAM_SERVICE_ERR``.

    >>> socket_arg(["/run/s", "timeout=0.5"]), socket_arg(["/run/s", "timeout=0.5\\r"])
    ('/run/s', None)
    """
    path: str | None = None
    for arg in args:
        if arg in _FLAGS:
            continue
        if arg.startswith("timeout="):
            t = _seconds(arg[8:])
            if t is None or not MIN_TIMEOUT_S <= t <= 3600:
                return None
        elif arg.startswith("server_uid="):
            if not arg[11:].isdigit() or not arg[11:].isascii():
                return None
        elif arg.startswith("socket=") or ("=" not in arg and path is None):
            value = arg[7:] if arg.startswith("socket=") else arg
            if path is not None or not value.startswith("/") or len(value.encode()) >= 108:
                return None
            path = value
        else:
            return None
    return path


@dataclass
class LabModules:
    """Return codes of the lab's modules: ``module_codes(handler, function)``.

    ``sockets`` maps a socket path to the pam_redirector code behind it (a path not
    listed returns ``default_socket``); ``installed`` lists the module files present
    (None: the four lab modules); ``extra`` gives fixed codes for other modules by
    name (``{"pam_unix": {"authenticate": 7}}``), e.g. probed in the lab.
    """

    sockets: Mapping[str, int] = field(default_factory=dict)
    default_socket: int = codes.AUTHINFO_UNAVAIL
    installed: frozenset[str] | None = None
    module_dir: str = MODULE_DIR
    extra: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    by_line: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def exists(self, handler: Handler) -> bool:
        path = handler.module_path(self.module_dir)
        if path is None:
            return False
        if self.installed is not None:
            return path in self.installed
        return path in {f"{self.module_dir}/{m}.so" for m in LAB_MODULES}

    def __call__(self, handler: Handler, function: str) -> int:
        if not self.exists(handler):
            return codes.MODULE_UNKNOWN
        line = self.by_line.get(handler.origin.where)
        if line is not None and function in line:
            return line[function]
        name = handler.module_name
        if name in self.extra and function in self.extra[name]:
            return self.extra[name][function]
        if name == "pam_permit":
            return codes.SUCCESS
        if name == "pam_deny":
            return _DENY[function]
        if name == "pam_debug":
            return debug_code(handler.args, function)
        if name in SOCKET_MODULES:
            if function == "authenticate":
                sock = socket_arg(handler.args)
                if sock is None:
                    return codes.SERVICE_ERR
                return self.sockets.get(sock, self.default_socket)
            return codes.SUCCESS if function == "setcred" else codes.IGNORE
        raise UnknownModule(f"no model of {handler.module} {function}()")


ModuleCodes = Callable[[Handler, str], int]
