"""Shared steps and checkers of the direct-driver module suite (pamdrive in the lab, or on
the host as the invoking user: ``pamconform module --no-lab``)."""

from __future__ import annotations

from typing import Any

from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.drivers.direct import Attempt, DirectDriver, driver, expect_ran
from pamconform.lab.module_target import AUTH_PASSWORDS, SOCKET, ModuleTarget

#: The module in a probe stack: a PAM_IGNORE lets the optional pam_permit decide, so an
#: IGNORE shows as the grant it becomes in such stacks; a failure keeps its own code.
PROBE = "pc-probe"
#: The module alone, for conversation checks.
PLAIN = "pc-plain"
PASSWORD = AUTH_PASSWORDS["alice"]


# ---- the server behaviours of the direct suite (shared by the R-M1/R-M2 and memcheck cases)
#: (id part, scenario, args, what the server does)
BEHAVIOURS: list[tuple[str, str, dict[str, Any], str]] = [
    ("deny", "deny", {}, "replies 1"),
    ("close-before-read", "close-before-read", {}, "closes before reading the request"),
    ("close-after-request", "close-after-request", {}, "reads the request and closes silently"),
    ("partial-reply", "partial-reply", {}, "sends 1, pauses, then 0 (a partial reply)"),
    ("two-replies", "two-replies", {}, "replies 0 twice"),
    ("reset", "reset", {}, "resets the connection after reading"),
]

MALFORMED: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("00", b"00"),
    ("space-0", b" 0"),
    ("0x", b"0x"),
    ("minus-0", b"-0"),
    ("plus-0", b"+0"),
    ("0-crlf", b"0\r\n"),
    ("0-nul", b"0\0"),
    ("1", b"1"),
    ("2", b"2"),
    ("minus-1", b"-1"),
    ("pass", b"PASS"),
    ("4k-digits", b"0" * 4096),
    ("binary", bytes(range(256))[::4]),
]

HANGS: list[tuple[str, str, dict[str, Any], str]] = [
    ("silence", "silence", {}, "reads the request and never answers"),
    ("accept-no-read", "accept-no-read", {}, "accepts and never reads"),
    ("delay-over-timeout", "delay", {"seconds": 30, "reply": "30"},
     "answers 0 after 30 s (or 5 s past the hang bound when that is longer), after the "
     "module's timeout"),
]


#: Where the socket-path cases put what they test (one path for all: /run/pc-path).
UNUSABLE_PATH = "/run/pc-path/socket"
#: (id part, shell preparing the path ``{p}``, what is at it): an unusable socket path
#: (R-M1 checks the denial, R-M3 the module's memory and survival)
UNUSABLE_PATHS = [
    ("no-socket", "rm -rf {p}", "nothing"),
    ("regular-file", "rm -rf {p}; echo 0 > {p}; chmod 0600 {p}", "a regular file"),
    ("directory", "rm -rf {p}; mkdir -m 0700 {p}", "a directory"),
    ("fifo", "rm -rf {p}; mkfifo -m 0600 {p}", "a named pipe"),
]


def prepare_unusable_path(d: DirectDriver, prepare: str) -> str:
    """Put what ``prepare`` (of :data:`UNUSABLE_PATHS`) makes at the socket path, with a
    granting server elsewhere (it must not matter); returns the path as the stack names it."""
    d.scenario("grant")
    here = d.path(UNUSABLE_PATH)  # a private directory, no space or quote in it
    d.host.run(f"install -d -m 0700 {here.rsplit('/', 1)[0]}; " + prepare.format(p=here),
               timeout=10).check()
    return UNUSABLE_PATH


def every_behaviour() -> list[tuple[str, str, dict[str, Any]]]:
    """(id part, scenario, args) of every server behaviour the direct suite plays."""
    out: list[tuple[str, str, dict[str, Any]]] = [
        ("grant", "grant", {}), ("reply-before-request", "reply-before-request", {})]
    out += [(name, scenario, args) for name, scenario, args, _ in BEHAVIOURS + HANGS]
    out += [(f"reply-{name}", "malformed", {"reply": reply.hex()}) for name, reply in MALFORMED]
    return out


def target(ctx: CaseContext) -> ModuleTarget:
    return ctx.target  # type: ignore[no-any-return]


def direct(ctx: CaseContext) -> DirectDriver:
    """The target's direct driver; a case that does not hold the lab's server
    (``exclusive="lab-server"``) runs in a lane of its own (drivers/lanes.py)."""
    d = driver(target(ctx))
    if "lab-server" not in ctx.exclusive:
        ctx.on_end(d.lanes.enter())
    return d


def probe_service(d: DirectDriver, *, args: str | None = None, socket: str | None = None,
                  name: str = PROBE) -> str:
    """The probe stack: ``[success=ok ignore=ignore default=bad] MODULE`` + optional permit."""
    module = d.module_args(args, socket or SOCKET)
    text = (
        "# pamconform probe stack\n"
        f"auth [success=ok ignore=ignore default=bad] {module}\n"
        "auth optional pam_permit.so\n"
        "account required pam_permit.so\n"
    )
    return d.install_service(name, text)


def record(ctx: CaseContext, label: str, attempt: Attempt) -> None:
    ev: dict[str, Any] = {"label": label, "summary": attempt.summary(), "steps": attempt.steps}
    if attempt.prompts:
        ev["prompts"] = attempt.prompts
    if attempt.messages:
        ev["messages"] = attempt.messages
    if attempt.raw.get("stderr"):
        ev["stderr"] = str(attempt.raw["stderr"])[-1500:]
    if attempt.valgrind:
        ev["valgrind"] = attempt.valgrind
    ctx.extra.setdefault("attempts", []).append(ev)


def expect_denied(attempt: Attempt, what: str, bound: float) -> None:
    """R-M1: anything but PAM_SUCCESS; the process survived and returned in time."""
    expect_ran(attempt, what, bound)
    if attempt.auth == "PAM_SUCCESS":
        raise Fail(f"{what} to be denied", "PAM_SUCCESS: the module failed open (granted, or "
                   "returned PAM_IGNORE and let the rest of the stack decide)")


def expect_bounded_denial(ctx: CaseContext, attempt: Attempt, what: str, bound: float) -> None:
    """R-M2: denied within the hang bound; the measured time is evidence whatever the verdict
    (``ctx.extra["hang"]``)."""
    took = attempt.wall_s
    ctx.extra["hang"] = {"status": attempt.status, "auth": attempt.auth,
                         "seconds": round(took, 3), "bound_s": bound}
    if attempt.status == "hung":
        ctx.note(f"no return after {took:.1f} s (killed at the bound {bound:.1f} s)")
    else:
        ctx.note(f"{attempt.auth} after {took:.1f} s; bound {bound:.1f} s")
    expect_denied(attempt, what, bound)
    if took > bound:
        raise Fail(f"{what} to return within {bound:.1f} s", f"returned after {took:.1f} s")


def expect_success(attempt: Attempt, what: str, bound: float) -> None:
    expect_ran(attempt, what, bound)
    if attempt.auth != "PAM_SUCCESS":
        raise Fail(f"{what} to be granted (PAM_SUCCESS)", attempt.summary())


def received(log: list[dict[str, Any]]) -> bytes:
    return b"".join(bytes.fromhex(r.get("received_hex", "")) for r in log)
