"""Stack audit: does a real PAM stack fail open when its socket module's server misbehaves?

:func:`plan` reads the stack (a ``pam.d`` file with its includes, or a ``pam.conf``),
finds the socket module line and prepares the files the lab container gets:

- includes resolve in the stack file's directory (or ``include_dirs``): libpam looks
  in ``/etc/pam.d``, and the container's ``/etc/pam.d`` holds exactly these files;
- every other path (an absolute include, a name climbing with ``..``, a symlink) is
  resolved inside the audited tree ``root`` as if it were ``/`` of the target host
  (:class:`TreeSource`): the audit never reads a file elsewhere on this host;
- a file that is not a PAM configuration (fewer than half of its lines start with a
  PAM type: ``/etc/shadow`` named by an include, say) is never echoed: each of its
  lines without a PAM type becomes the placeholder ``NOT_A_PAM_LINE``, which libpam
  treats the same way (a line with an illegal type fails when reached), and the
  console shows only how many lines and where (:func:`screen`);
- the socket module line (``pam_redirector``/``pam_transient_token``, or the line
  given) becomes the lab's reference ``pam_redirector.so`` pointed at the socket of
  each server state, its flags (``use_first_pass`` ...) kept;
- a module the lab image lacks (``pam_systemd``, ``pam_sss`` ...) becomes a stand-in:
  ``pam_debug.so`` returning ``PAM_IGNORE`` (or the code given) from every function —
  the audit asks what the stack does when the socket module decides, not what an
  unknown module would.  Modules the image has run for real (``pam_unix`` sees the
  auth-server password, not the Unix one).

:func:`pamconform.lab.stack_audit.run` then, per server state (grant, deny, down, hung,
garbage), runs the stack's primitive through pamdrive in the lab (one batch per state,
every other module line probed alone with ``[default=ok]`` to learn its code), and
:func:`judge` evaluates the same files with the model fed those codes, so each verdict
comes with the path through the stack.  A state other than ``grant`` in which the stack
returns ``PAM_SUCCESS`` is FAIL-OPEN.  This module is pure: no lab, no Docker.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pamconform.core.errors import UsageError
from pamconform.model import codes
from pamconform.model.linux_pam import run as model_run
from pamconform.model.modules import SOCKET_MODULES
from pamconform.model.parser import (
    FACILITIES,
    MODULE_DIR,
    Config,
    DictSource,
    Handler,
    Layout,
    NestedTooDeep,
    assemble,
    load,
    module_offset,
    tokenize,
)
from pamconform.model.trace import Outcome, Step, pamdrive_results

PRIMITIVE = {"auth": "authenticate", "account": "acct_mgmt", "session": "open_session",
             "password": "chauthtok"}
_KEEP_FLAGS = ("use_first_pass", "try_first_pass", "debug", "no_warn")
_DEBUG_EVENTS = ("auth", "cred", "acct", "open_session", "close_session", "prechauthtok",
                 "chauthtok")


#: The largest file the audit reads (a PAM configuration is a few KiB).
MAX_FILE = 1 << 20
#: What a line with no PAM type becomes in a file that is not a PAM configuration.
PLACEHOLDER = "NOT_A_PAM_LINE"
_SYMLINK_HOPS = 40


class TreeSource:
    """Reads the container's paths from the audited tree, never from elsewhere on this host.

    ``root`` stands for ``/`` of the target host; ``pam_d`` (if given) for its
    ``/etc/pam.d``, tried in order.  Paths are normalised and symlinks followed the way
    the target's kernel would: an absolute link target and ``..`` stay inside the tree.
    """

    def __init__(self, service_path: str, stack: Path, root: Path, pam_d: Sequence[Path] = (),
                 *, single_file: bool = False, service: str = "") -> None:
        self.service_path = service_path
        self.stack = stack
        self.root = root
        self.pam_d = list(pam_d)
        self.single_file = single_file
        self.service = service
        self.read_files: dict[str, bytes] = {}
        self.not_pam: dict[str, str] = {}
        #: the container's path -> the file of the audited tree it was read from
        self.host_paths: dict[str, str] = {}

    def read(self, path: str) -> bytes | None:
        """The file as screened (:func:`screen`), or None when the tree has none there."""
        norm = "/" + posixpath.normpath("/" + path).lstrip("/")
        if norm in self.read_files:
            return self.read_files[norm]
        if norm == self.service_path:
            data, host = _read(self.stack, norm), self.stack
        else:
            data, host = next(((d, h) for h in self.candidates(norm)
                               if (d := _read(h, norm)) is not None), (None, self.stack))
        if data is None:
            return None
        self.host_paths[norm] = str(host)
        columned = self.single_file and norm == self.service_path
        data, note = screen(data, columned=columned, service=self.service)
        if note:
            self.not_pam[norm] = note
        self.read_files[norm] = data
        return data

    def candidates(self, vpath: str) -> list[Path]:
        """The host paths ``vpath`` can name, one per ``/etc/pam.d`` directory (or root)."""
        out = [p for d in self.pam_d if (p := self.host_path(vpath, d)) is not None]
        if not self.pam_d or not _under(vpath, "/etc/pam.d"):
            host = self.host_path(vpath, None)
            if host is not None:
                out.append(host)
        return out

    def host_path(self, vpath: str, pam_d: Path | None) -> Path | None:
        """``vpath`` on the target as a path in the tree, symlinks resolved (None: a loop)."""
        todo = [p for p in vpath.split("/") if p]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = self._map("/" + "/".join([*done, part]), pam_d)
            if here.is_symlink():
                hops += 1
                if hops > _SYMLINK_HOPS:
                    return None
                try:
                    target = os.readlink(here)
                except OSError:
                    return None
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
                continue
            done.append(part)
        return self._map("/" + "/".join(done), pam_d)

    def _map(self, vpath: str, pam_d: Path | None) -> Path:
        if pam_d is not None and _under(vpath, "/etc/pam.d"):
            return pam_d / vpath[len("/etc/pam.d"):].lstrip("/")
        return self.root / vpath.lstrip("/")


def _under(vpath: str, prefix: str) -> bool:
    return vpath == prefix or vpath.startswith(prefix + "/")


def _read(path: Path, shown: str) -> bytes | None:
    """A regular file's bytes (None: missing, not regular, unreadable); over MAX_FILE: exit 2."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        data = fh.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise UsageError(f"{shown}: larger than {MAX_FILE >> 20} MiB: not a PAM configuration")
    return data


def _is_pam_line(text: str, columned: bool) -> bool:
    """Does the logical line start with a PAM type (after the service column in pam.conf)?"""
    rest: int | None = 0
    if columned:
        _service, rest = tokenize(text, rest)
    tok, _rest = tokenize(text, rest)
    word = (tok or "").lower().removeprefix("-")
    return word in FACILITIES or word == "@include"


def screen(data: bytes, *, columned: bool = False, service: str = "") -> tuple[bytes, str | None]:
    """A file as the audit may show it, and a note when it is not a PAM configuration.

    A file in which at least half of the lines start with a PAM type is kept as is.
    Otherwise every line without a PAM type becomes :data:`PLACEHOLDER` (in pam.conf
    form only the lines of ``service`` or ``other`` are kept, their service column
    first: libpam skips the others); comments and continuations are dropped, line
    numbers kept.
    libpam treats the placeholder like the line it replaces: an illegal type, a handler
    that fails when reached (only a control word in the second column of a non-PAM line
    is lost: the placeholder's failure is always ``bad``).

    >>> screen(b"root:$6$x:1:0:::\\nbob:*:1:0:::\\n")[1]
    'not a PAM configuration: 2 of 2 lines have no PAM type (first at line 1); not shown'
    """
    text = data.decode("latin-1")
    raws, error = assemble(text)
    bad = [r for r in raws if not _is_pam_line(r.text, columned)]
    if len(bad) * 2 <= len(raws):
        return data, None
    physical = [""] * (text.count("\n") + 1)
    for r in raws:
        if r not in bad:
            physical[r.line - 1] = r.text
        elif columned:
            name, _rest = tokenize(r.text, 0)
            if name and name.lower() in (service.lower(), "other"):
                physical[r.line - 1] = f"{name} {PLACEHOLDER}"
        else:
            physical[r.line - 1] = PLACEHOLDER
    if error is not None:  # keep libpam's read error: the file ends inside a continuation
        physical.append(f"{PLACEHOLDER} \\")
    note = (f"not a PAM configuration: {len(bad)} of {len(raws)} lines have no PAM type "
            f"(first at line {bad[0].line}); not shown")
    return "\n".join(physical).encode("latin-1"), note


@dataclass
class Plan:
    """What the audit runs: the container's files per state, the socket line, the primitive."""

    stack: Path
    service: str
    single_file: bool
    config: Config
    socket: Handler
    primitive: str
    files: dict[str, bytes]
    stand_ins: dict[str, str] = field(default_factory=dict)  # where -> original module
    stand_in_code: str = "ignore"
    probes: list[Handler] = field(default_factory=list)
    #: the host directories that stand for /etc/pam.d
    include_dirs: list[Path] = field(default_factory=list)
    #: files that are not PAM configurations (path -> what the console may say)
    not_pam: dict[str, str] = field(default_factory=dict)
    #: the container's path -> the user's file it was read from
    user_paths: dict[str, str] = field(default_factory=dict)

    def user_file(self, path: str) -> str:
        """The user's file a container path was read from (the path itself if none)."""
        return self.user_paths.get(path, path)

    def user_where(self, h: Handler) -> str:
        """``FILE:LINE`` of a handler in the user's tree."""
        return f"{self.user_file(h.origin.file)}:{h.origin.line}"

    def shown_problems(self) -> list[str]:
        """libpam's complaints, one line per file that is not a PAM configuration
        (each naming the user's file and line)."""
        out = [f"{self.user_file(p.file)}:{p.line}: {p.message}" for p in self.config.problems
               if p.line and p.file not in self.not_pam]
        return out + [f"{self.user_file(path)}: {note}" for path, note in self.not_pam.items()]

    def missing_includes(self) -> list[str]:
        """One line per include the tree lacks (see :func:`missing_includes`)."""
        return missing_includes(self.config, self.user_paths, self.include_dirs)

    @property
    def layout(self) -> Layout:
        return Layout.single_file() if self.single_file else Layout()

    def files_for(self, socket_args: str) -> dict[str, bytes]:
        """The container's files with the socket line given ``socket_args`` (a state's)."""
        out = dict(self.files)
        path = self.socket.origin.file
        out[path] = _rewrite(out[path], self.socket.origin.line,
                             self.socket_text(socket_args), self.columned(path))
        return out

    def columned(self, path: str) -> bool:
        """Does this file have the service column (the pam.conf itself)?"""
        return self.single_file and path == "/etc/pam.conf"

    def socket_text(self, socket_args: str) -> str:
        """The lab's reference socket module with ``socket_args``, the line's flags kept."""
        flags = [a for a in self.socket.args if a in _KEEP_FLAGS]
        return " ".join(["pam_redirector.so", socket_args, *flags])

    def own_probe_line(self, files: dict[str, bytes], h: Handler) -> str:
        """``h`` alone with ``[default=ok]``, its own module kept (no stand-in for the
        socket module); ``use_first_pass``/``try_first_pass`` dropped, as alone it has
        no earlier password and must ask for one."""
        words = [w for w in _probe_module(files, h, self).split()
                 if w not in ("use_first_pass", "try_first_pass")]
        return f"{h.facility} [default=ok] {' '.join(words)}"

    def probe_line(self, files: dict[str, bytes], h: Handler, socket_args: str) -> str:
        """A one-line stack running ``h`` alone with ``[default=ok]`` (to learn its code)."""
        module = (self.socket_text(socket_args) if h is self.socket
                  else _probe_module(files, h, self))
        return f"{h.facility} [default=ok] {module}"


def missing_includes(config: Config, user_paths: Mapping[str, str],
                     looked: Sequence[Path]) -> list[str]:
    """One line per include the tree lacks: the user's file and line, the missing name,
    where it was looked for."""
    return [f"{user_paths.get(p.file, p.file)}:{p.line}: include {p.message.split()[-1]} "
            f"not found (looked in {', '.join(str(d) for d in looked)})"
            for p in config.problems if "unable to open config for" in p.message]


def plan(stack: Path, *, service: str | None = None, include_dirs: Sequence[Path] = (),
         module_line: int | None = None, installed: set[str] | None = None,
         stand_in: str = "ignore", root: Path | None = None,
         socket_modules: Sequence[str] = SOCKET_MODULES) -> Plan:
    """Read and check the stack; raise UsageError (exit 2) on bad input.

    Includes resolve in ``include_dirs`` (standing for ``/etc/pam.d``), every other
    path inside ``root`` (default: the stack's directory; see :class:`TreeSource`).
    ``socket_modules`` are the module names (``pam_ldap``, no ``.so``) a socket module
    line may name: the command line takes them from the protocol registry.
    """
    _check_stack(stack)
    if root is not None and not root.is_dir():
        raise UsageError(f"--root {root}: not a directory")
    if stand_in not in codes.TOKENS:
        raise UsageError(f"--stand-in {stand_in!r}: give a return code token, e.g. ignore")
    single = stack.name == "pam.conf"
    if single and not service:
        raise UsageError(f"{stack}: a pam.conf holds many services: give --service NAME")
    name = service or stack.name
    if "/" in name or not name:
        raise UsageError(f"--service {name!r}: not a service name")
    here = stack.resolve().parent
    dirs = list(include_dirs) or ([] if root is not None else [here])
    service_path = "/etc/pam.conf" if single else f"/etc/pam.d/{name}"
    source = TreeSource(service_path, stack.resolve(), (root or here).resolve(), dirs,
                        single_file=single, service=name)
    layout = Layout.single_file() if single else Layout()
    try:
        config = load(name, source, layout)
    except NestedTooDeep as exc:
        raise UsageError(user_text(str(exc), _as_given(stack, source.host_paths))) from None
    if config.crash:
        shown = user_text(config.crash, _as_given(stack, source.host_paths))
        raise UsageError(f"{stack}: libpam would crash on this configuration: {shown}")
    looked = [d.resolve() for d in dirs] or [(root or here).resolve()]
    if config.start_error:
        missing = missing_includes(config, source.host_paths, looked)
        raise UsageError(missing[0] + ": libpam cannot start the service" if missing else
                         f"{stack}: libpam cannot use this configuration: "
                         f"{config.start_error}")
    socket = _find_socket(config, service_path, module_line, socket_modules)
    result = Plan(stack, name, single, config, socket, PRIMITIVE[socket.facility],
                  dict(source.read_files), stand_in_code=stand_in,
                  not_pam=dict(source.not_pam), user_paths=_as_given(stack, source.host_paths),
                  include_dirs=looked)
    apply_stand_ins(result, installed)
    result.probes = [h for h in config.chain(socket.facility)
                     if h.kind == "module" and h.index != socket.index]
    return result


def user_text(text: str, user_paths: Mapping[str, str]) -> str:
    """``text`` with every container path the user's tree was read into spelled as the
    user's file (one pass, longest path first, whole paths only)."""
    if not user_paths:
        return text
    paths = "|".join(re.escape(p) for p in sorted(user_paths, key=len, reverse=True))
    return re.sub(f"(?:{paths})(?![^\\s:])", lambda m: user_paths[m.group()], text)


def _as_given(stack: Path, host_paths: Mapping[str, str]) -> dict[str, str]:
    """The files read, spelled from the stack's path as the user gave it."""
    here = stack.resolve().parent
    out = {}
    for vpath, host in host_paths.items():
        path = Path(host)
        out[vpath] = (str(stack.parent / path.relative_to(here)) if path.is_relative_to(here)
                      else host)
    return out


def _check_stack(stack: Path) -> None:
    try:
        st = stack.stat()
    except FileNotFoundError:
        raise UsageError(f"{stack}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{stack}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{stack}: is a directory: give the stack's file (e.g. "
                         f"{stack}/sshd)")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{stack}: not a regular file")
    if st.st_size > MAX_FILE:
        raise UsageError(f"{stack}: larger than {MAX_FILE >> 20} MiB: not a PAM configuration")
    if not os.access(stack, os.R_OK):
        raise UsageError(f"{stack}: cannot read: permission denied")


def _find_socket(config: Config, service_path: str, line: int | None,
                 socket_modules: Sequence[str]) -> Handler:
    handlers = [h for f in FACILITIES for h in config.conf.get(f, []) if h.kind == "module"]
    if line is not None:
        found = [h for h in handlers
                 if h.origin.file == service_path and h.origin.line <= line <= max(
                     h.origin.line, h.origin.last)]
        if not found:
            raise UsageError(f"--module-line {line}: no module line there in the stack file")
        return found[0]
    for h in handlers:
        if h.module_name in socket_modules:
            return h
    names = " or ".join(socket_modules) or "none known"
    raise UsageError(f"no socket module line ({names}) in the stack: name it with "
                     "--module-line N")


def apply_stand_ins(p: Plan, installed: set[str] | None) -> None:
    """Replace the lines naming modules not in ``installed`` by the stand-in."""
    if installed is None:
        return
    args = " ".join(f"{e}={p.stand_in_code}" for e in _DEBUG_EVENTS)
    for h in p.config.handlers():
        if h.kind != "module" or h.index == p.socket.index:
            continue
        path = h.module_path(MODULE_DIR)
        if path in installed:
            continue
        key = f"{h.origin.file}:{h.origin.line}"
        if key in p.stand_ins:
            continue
        p.stand_ins[key] = h.module or "?"
        p.files[h.origin.file] = _rewrite(p.files[h.origin.file], h.origin.line,
                                          f"pam_debug.so {args}", p.columned(h.origin.file))


def _rewrite(data: bytes, line: int, module_text: str, single_file: bool) -> bytes:
    """Replace the module and arguments of the logical line starting at ``line``."""
    text = data.decode("latin-1")
    raws, _err = assemble(text)
    raw = next(r for r in raws if r.line == line)
    offset = module_offset(raw.text, service_column=single_file)
    head = raw.text[:offset] if offset is not None else raw.text
    physical = text.split("\n")
    physical[raw.line - 1] = " ".join(head.split()) + " " + module_text
    for k in range(raw.line, max(raw.line, raw.last)):
        physical[k] = ""
    return "\n".join(physical).encode("latin-1")


# --------------------------------------------------------------------------- running


@dataclass
class StateResult:
    """One server state: what the socket module returned, libpam's result, the model's."""

    state: str
    module_code: int | None
    real: dict[str, Any]
    model: Outcome | None
    start: str = ""
    result: str = ""
    #: whether the daemon gives a valid grant in this state (None: only ``grant`` does)
    valid_grant: bool | None = None
    #: a grant counts as fail-open only if the path asked the server (the account
    #: phase, :func:`grant_needs_server`); whether the model's path asked it
    needs_server: bool = False
    asked_server: bool = True

    @property
    def granted(self) -> bool:
        return self.result == "PAM_SUCCESS"

    @property
    def grant_state(self) -> bool:
        """A state in which the server grants: the stack should grant too."""
        return self.state == "grant" if self.valid_grant is None else self.valid_grant

    @property
    def fail_open(self) -> bool:
        return self.granted and not self.grant_state and (
            self.asked_server or not self.needs_server)

    @property
    def model_agrees(self) -> bool:
        return self.model is not None and self.model.name == self.result


@dataclass
class AuditResult:
    plan: Plan
    states: list[StateResult]

    @property
    def fail_open(self) -> list[StateResult]:
        return [s for s in self.states if s.fail_open]


def line_key(h: Handler) -> str:
    """``file:line`` of a handler: how probe codes are keyed."""
    return f"{h.origin.file}:{h.origin.line}"


def judge(p: Plan, files: dict[str, bytes], state: str, module_code: int,
          real: dict[str, Any], probe_codes: dict[str, int], *,
          valid_grant: bool | None = None) -> StateResult:
    """One state's result: libpam's (``real``, pamdrive's report) beside the model's."""
    start, steps = pamdrive_results(real.get("result"))
    result = steps[0][1] if steps else (real.get("status") or "?")
    if start not in ("PAM_SUCCESS", "no report") and not steps:
        result = start
    model = evaluate(p, files, module_code, probe_codes)
    return StateResult(state, module_code, real, model, start, result, valid_grant,
                       needs_server=grant_needs_server(p),
                       asked_server=model is None or asked_server(p, model))


def grant_needs_server(p: Plan) -> bool:
    """Is a grant fail-open only when the stack asked the server (docs/audit.md#account)?

    In the account phase: ``pam_acct_mgmt`` gives no login without authentication, and a
    path that never reaches the socket module (``pam_unix`` vouching for an account it
    holds, jumping over it) grants the same whatever the server's state, so the server's
    refusal or outage opened nothing.  In every other phase any grant counts."""
    return p.primitive == "acct_mgmt"


def asked_server(p: Plan, outcome: Outcome) -> bool:
    """Did the socket module run on this path through the stack?"""
    sock = (p.socket.origin.file, p.socket.origin.line)
    return any(st.ran and st.handler is not None
               and (st.handler.origin.file, st.handler.origin.line) == sock
               for st in outcome.steps)


def summary_line(s: StateResult) -> str:
    """The progress line of one state."""
    return f"  {s.state:<11} module {codes.name(s.module_code):<22} stack {s.result}"


def _probe_module(files: dict[str, bytes], h: Handler, p: Plan) -> str:
    """The module text of a line as the container has it (stand-ins included)."""
    raws, _ = assemble(files[h.origin.file])
    raw = next(r for r in raws if r.line == h.origin.line)
    offset = module_offset(raw.text, service_column=p.columned(h.origin.file))
    return raw.text[offset:].strip() if offset is not None else "pam_pc_missing.so"


def code_of(report: dict[str, Any]) -> int:
    """The code the first step of a pamdrive report returned (PAM_ABORT: none)."""
    steps = pamdrive_results(report.get("result"))[1]
    return codes.code(steps[0][1]) if steps else codes.ABORT


def evaluate(p: Plan, files: dict[str, bytes], module_code: int,
             probe_codes: dict[str, int]) -> Outcome | None:
    """The model's result of the stack's primitive: the socket line returning
    ``module_code``, every other line the code in ``probe_codes`` (by :func:`line_key`)."""
    config = load(p.service, DictSource(files), p.layout)
    sock = (p.socket.origin.file, p.socket.origin.line)

    def module_codes(h: Handler, function: str) -> int:
        if (h.origin.file, h.origin.line) == sock:
            return module_code
        return probe_codes.get(line_key(h), codes.MODULE_UNKNOWN)

    result = model_run(config, module_codes, (p.primitive,), keep_going=True)
    return result.outcomes[0] if result.outcomes else None


# --------------------------------------------------------------------------- explaining


def explain(p: Plan, s: StateResult) -> str:
    """Why the stack granted (or not) in one state, traced through the stack."""
    if s.model is None:
        return "no model trace"
    return explain_outcome(p, s.model, granted=s.granted)


def explain_outcome(p: Plan, model: Outcome, *, granted: bool) -> str:
    """Why the stack granted (or not), from the model's path through it."""
    where = p.user_where(p.socket)
    parts = []
    socket_steps = [st for st in model.steps if st.handler is not None
                    and st.handler.origin.file == p.socket.origin.file
                    and st.handler.origin.line == p.socket.origin.line]
    ran = [st for st in socket_steps if st.ran]
    if ran:
        st0 = ran[0]
        parts.append(f"the socket module ({where}, {p.socket.control_text}) returned "
                     f"{codes.name(st0.code)}: {st0.action} ({st0.effect})")
    elif socket_steps:
        parts.append(f"the socket module ({where}) never ran: {socket_steps[0].effect}")
    else:
        parts.append(f"the socket module ({where}) is not in the {p.primitive} chain")
    grantor = _grantor(model.steps)
    if granted and grantor is not None and grantor.handler is not None:
        parts.append(f"PAM_SUCCESS was set by {p.user_where(grantor.handler)} `{grantor.text}` "
                     f"({grantor.action})")
    return "; ".join(parts)


def _grantor(steps: list[Step]) -> Step | None:
    """The step that last turned the verdict into positive / PAM_SUCCESS."""
    last, before = None, (0, codes.PERM_DENIED)
    for st in steps:
        if not st.ran:
            continue
        now = (st.impression, st.status)
        if now == (1, codes.SUCCESS) and before != now:
            last = st
        before = now
    return last


def render_table(result: AuditResult) -> list[str]:
    width = max([8, *(len(s.state) for s in result.states)])
    lines = [f"{'state':<{width}} {'module returns':<22} {'stack (libpam)':<22} "
             f"{'model':<22} verdict"]
    for s in result.states:
        verdict = "FAIL-OPEN" if s.fail_open else (
            "grants" if s.granted else ("NEVER GRANTS" if s.grant_state else "denies"))
        model = s.model.name if s.model else "-"
        if not s.model_agrees:
            model += " (differs)"
        lines.append(f"{s.state:<{width}} {codes.name(s.module_code):<22} {s.result:<22} "
                     f"{model:<22} {verdict}")
    return lines


