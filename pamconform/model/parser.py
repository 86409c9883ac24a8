"""Reads PAM configuration the way Linux-PAM 1.5 does: ``/etc/pam.d`` files and ``/etc/pam.conf``.

The result of :func:`load` is what libpam builds in ``pam_start()``: for one service,
the handler chains of each facility (``auth``, ``account``, ``session``,
``password``), once for the service and once for ``other`` (used for a facility
the service has no line for), plus every problem libpam would log.

Written from the Linux-PAM documentation and behaviour observed in the lab (Debian
12, Linux-PAM 1.5.2); every rule below was checked against real libpam:

- Line assembly works in a 1024-byte buffer: ``#`` ends a line (also inside a
  continued one), a trailing ``\\`` (before spaces, tabs or the newline) joins the
  next line with a space, blank and comment lines inside a continuation are
  skipped, a physical line longer than 1023 bytes is cut there and its tail read
  as a new line, a continued line longer than that, or a file ending inside a
  continuation, is a read error: ``pam_start()`` fails with ``PAM_ABORT`` (in an
  included file, the include fails).  Only space, tab and newline separate tokens
  (a ``\\r`` stays part of the token).
- Tokens: ``[...]`` is one token (brackets removed, ``\\]`` inside kept as ``]``);
  the module arguments are tokenised the same way.
- Type and the keyword controls are case-insensitive; the ``[value=action]`` form
  is not (``[SUCCESS=ok]`` is a syntax error).  A ``-`` before the type only
  silences the log when the module is missing: the line still runs and returns
  ``PAM_MODULE_UNKNOWN``.
- A bad line is not dropped: a bad type, a missing control or module, or a failed
  include becomes a handler that fails with ``PAM_PERM_DENIED`` when reached; a bad
  ``[...]`` control makes every return code ``bad``.
- ``include``/``substack`` take the lines of the named file whose type matches;
  relative names are looked up in ``/etc/pam.d`` then ``/usr/lib/pam.d`` — even
  under ``pam_start_confdir()`` (a 1.5.2 quirk: only the service file and
  ``other`` come from the confdir).  Substacks nest 15 deep (the 16th fails);
  includes do not nest-limit.  Two configurations crash libpam 1.5.2 in
  ``pam_start()`` (SIGSEGV), which :attr:`Config.crash` reports: an include cycle
  (unbounded recursion) and an ``include``/``substack``/``@include`` without a file
  name.
- Debian's ``@include FILE`` (any case, ``-`` allowed, extra words ignored) takes
  every line of FILE whose type is wanted (all types at the top, the enclosing
  include's type inside one), in place; when FILE cannot be read the line fails like
  a broken one *and* the file holding it fails to load (``PAM_ABORT`` at the top);
  ``@include`` without a file name crashes libpam.
- ``/etc/pam.conf`` has a leading service column (matched case-insensitively); lines
  of service ``other`` (any case) are the fallback; ``include`` there still looks in
  the ``pam.d`` directories (so only absolute includes work).

Not modelled: NUL bytes in a file (the line is cut at the NUL), ``$ISA`` in module
paths, jump counts above ``INT_MAX`` (wrapped as a C ``int``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pamconform.model import codes

FACILITIES = ("auth", "account", "session", "password")
#: libpam's line buffer (bytes, the terminating NUL included).
LINE_BUFFER = 1024
#: Substacks nest at most this deep (``PAM_SUBSTACK_MAX_LEVEL``).
SUBSTACK_LIMIT = 16
#: Files open at once (includes in includes) beyond which the model gives up: libpam
#: itself has no such limit, so the stack is refused (:class:`NestedTooDeep`), never
#: evaluated otherwise than libpam would.
MAX_OPEN_FILES = 100


class NestedTooDeep(ValueError):
    """The configuration nests includes deeper than :data:`MAX_OPEN_FILES`."""
#: The module directory of Debian's libpam (relative module names are joined to it).
MODULE_DIR = "/lib/x86_64-linux-gnu/security"

# Actions of a return code: a positive number is a jump over that many lines.
IGNORE, OK, DONE, BAD, DIE, RESET, UNDEF = 0, -1, -2, -3, -4, -5, -6
ACTION_WORDS = ("ignore", "ok", "done", "bad", "die", "reset")

_DELIMS = " \n\t"
_CSPACE = " \t\n\v\f\r"
_DIGITS = "0123456789"
_DEFAULT = codes.COUNT  # index of "default" in a [value=action] control


def action_name(action: int) -> str:
    """``ok``, ``bad``, ... or ``jump N``.

    >>> action_name(-2), action_name(3)
    ('done', 'jump 3')
    """
    if action > 0:
        return f"jump {action}"
    if -len(ACTION_WORDS) < action <= 0:
        return ACTION_WORDS[-action]
    return f"invalid({action})"


def _preset(success: int, new_authtok: int, ignore: int | None, rest: int) -> tuple[int, ...]:
    table = [rest] * codes.COUNT
    table[codes.SUCCESS] = success
    table[codes.NEW_AUTHTOK_REQD] = new_authtok
    if ignore is not None:
        table[codes.IGNORE] = ignore
    return tuple(table)


#: The keyword controls as action tables.
PRESETS: dict[str, tuple[int, ...]] = {
    "required": _preset(OK, OK, IGNORE, BAD),
    "requisite": _preset(OK, OK, IGNORE, DIE),
    "optional": _preset(OK, OK, None, IGNORE),
    "sufficient": _preset(DONE, DONE, None, IGNORE),
}
ALL_BAD: tuple[int, ...] = (BAD,) * codes.COUNT


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Problem:
    """Something libpam logs about a configuration line (and how it treats it)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Origin:
    """Where a handler comes from: file, first physical line, the logical line."""

    file: str
    line: int
    text: str
    last: int = 0

    @property
    def where(self) -> str:
        return f"{posixpath.basename(self.file)}:{self.line}"

    @property
    def short(self) -> str:
        """The line with runs of blanks collapsed."""
        return " ".join(self.text.split())


@dataclass(frozen=True)
class Handler:
    """One entry of a dispatch chain, as libpam builds it from one line."""

    index: int
    kind: str  # "module", "must_fail" (fails when reached) or "substack" (a marker)
    facility: str
    level: int  # substack depth
    actions: tuple[int, ...]
    module: str | None
    args: tuple[str, ...]
    silent: bool
    origin: Origin
    control: str
    reason: str = ""  # why a must_fail handler fails

    @property
    def control_text(self) -> str:
        """The control as written (``[...]`` restored around a value=action control)."""
        if self.control.lower() in (*PRESETS, "include", "substack", "@include", ""):
            return self.control
        return f"[{self.control}]"

    @property
    def module_name(self) -> str:
        """The module's file name without directory and ``.so`` (``pam_unix``)."""
        base = posixpath.basename(self.module or "")
        return base[:-3] if base.endswith(".so") else base

    def module_path(self, module_dir: str = MODULE_DIR) -> str | None:
        """The path libpam dlopen()s."""
        if self.module is None:
            return None
        if self.module.startswith("/"):
            return self.module
        return module_dir.rstrip("/") + "/" + self.module


@dataclass
class Config:
    """What ``pam_start()`` builds for one service."""

    service: str
    conf: dict[str, list[Handler]] = field(default_factory=dict)
    other: dict[str, list[Handler]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: pam_start() fails with PAM_ABORT, and why
    start_error: str | None = None
    #: libpam would crash while reading the configuration, and why
    crash: str | None = None
    module_dir: str = MODULE_DIR

    def chain(self, facility: str) -> list[Handler]:
        """The handlers dispatched for a facility: the service's, else ``other``'s."""
        return self.conf.get(facility) or self.other.get(facility) or []

    def uses_other(self, facility: str) -> bool:
        return not self.conf.get(facility) and bool(self.other.get(facility))

    def handlers(self) -> Iterator[Handler]:
        for table in (self.conf, self.other):
            for chain in table.values():
                yield from chain


# --------------------------------------------------------------------------- files


class Source(Protocol):
    """Where configuration files are read from."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None if it cannot be opened."""


@dataclass
class DictSource:
    """Files held in memory: absolute path -> text."""

    files: Mapping[str, str | bytes]

    def read(self, path: str) -> bytes | None:
        data = self.files.get(posixpath.normpath(path))
        if data is None:
            return None
        return data.encode("latin-1") if isinstance(data, str) else data


@dataclass
class DiskSource:
    """Files on this machine, optionally with absolute paths remapped (``{"/etc/pam.d": dir}``)."""

    remap: Mapping[str, str] = field(default_factory=dict)

    def host_path(self, path: str) -> str:
        norm = posixpath.normpath(path)
        for prefix, target in self.remap.items():
            if norm == prefix or norm.startswith(prefix.rstrip("/") + "/"):
                return os.path.join(target, norm[len(prefix):].lstrip("/"))
        return norm

    def read(self, path: str) -> bytes | None:
        try:
            return Path(self.host_path(path)).read_bytes()
        except OSError:
            return None


@dataclass(frozen=True)
class Layout:
    """Where libpam looks: service directories (empty: the single-file pam.conf form)."""

    service_dirs: tuple[str, ...] = ("/etc/pam.d", "/usr/lib/pam.d")
    include_dirs: tuple[str, ...] = ("/etc/pam.d", "/usr/lib/pam.d")
    pam_conf: str = "/etc/pam.conf"
    module_dir: str = MODULE_DIR

    @classmethod
    def confdir(cls, directory: str) -> Layout:
        """``pam_start_confdir(directory)``: service and ``other`` files from there only."""
        return cls(service_dirs=(directory,))

    @classmethod
    def single_file(cls, path: str = "/etc/pam.conf") -> Layout:
        """No ``pam.d`` directory: everything in one ``pam.conf``."""
        return cls(service_dirs=(), pam_conf=path)

    @property
    def is_single_file(self) -> bool:
        return not self.service_dirs


# --------------------------------------------------------------------------- lines


@dataclass(frozen=True)
class RawLine:
    """A logical line: its first (and last) physical line number and its text."""

    line: int
    text: str
    last: int = 0


def assemble(data: bytes | str) -> tuple[list[RawLine], tuple[int, str] | None]:
    """Split a file into logical lines as libpam 1.5 does; also a read error if any.

    The error is ``(line, message)``; libpam keeps the lines read before it.

    >>> assemble("auth required \\\\\\n  pam_permit.so # hi\\n")[0][0].text.split()
    ['auth', 'required', 'pam_permit.so']
    """
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    lines: list[RawLine] = []
    pos, lineno, n = 0, 1, len(text)
    while True:
        buf = ""
        first: int | None = None
        while True:
            room = LINE_BUFFER - len(buf)
            if room <= 1:
                return lines, (first or lineno, f"line longer than {LINE_BUFFER - 1} bytes "
                               "after joining continuations (read error)")
            if pos >= n:
                if first is not None:
                    return lines, (first, "file ends inside a continued line (read error)")
                return lines, None
            cut = text.find("\n", pos, pos + room - 1)
            end = cut + 1 if cut != -1 else min(n, pos + room - 1)
            chunk, chunk_line = text[pos:end], lineno
            pos = end
            if chunk.endswith("\n"):
                lineno += 1
            nul = chunk.find("\0")
            if nul != -1:
                chunk = chunk[:nul]
            i = 0
            while i < len(chunk) and chunk[i] in _DELIMS:
                i += 1
            if i >= len(chunk) or chunk[i] == "#":
                continue  # blank or comment: skipped, even inside a continuation
            if first is None:
                first = chunk_line
            hash_at = chunk.find("#", i)
            if hash_at != -1:
                buf += chunk[:hash_at]
                break
            j = len(chunk)
            while j - 1 > i and chunk[j - 1] in _DELIMS:
                j -= 1
            if chunk[j - 1] == "\\":
                buf += chunk[: j - 1] + " "
                continue
            buf += chunk
            break
        lines.append(RawLine(first, buf, lineno - 1 if pos and text[pos - 1] == "\n"
                             else lineno))


def tokenize(text: str, start: int | None) -> tuple[str | None, int | None]:
    """The next token from ``start`` and where the rest begins (None: nothing left).

    >>> tokenize("  [success=ok default=bad] pam_x.so", 0)
    ('success=ok default=bad', 26)
    """
    if start is None:
        return None, None
    n, i = len(text), start
    while i < n and text[i] in _DELIMS:
        i += 1
    if i >= n:
        return None, None
    if text[i] == "[":
        out: list[str] = []
        j = i + 1
        while j < n and text[j] != "]":
            if text[j] == "\\" and j + 1 < n and text[j + 1] == "]":
                j += 1
            out.append(text[j])
            j += 1
        token = "".join(out)
    else:
        j = i
        while j < n and text[j] not in _DELIMS:
            j += 1
        token = text[i:j]
    if j < n:
        j += 1  # the terminator
    return token, (j if j < n else None)


def module_offset(text: str, *, service_column: bool = False) -> int | None:
    """Where the module token of a logical line starts (None: no module token)."""
    rest: int | None = 0
    for _ in range(3 if service_column else 2):
        tok, rest = tokenize(text, rest)
        if tok is None:
            return None
    if rest is None:
        return None
    while rest < len(text) and text[rest] in _DELIMS:
        rest += 1
    return rest if rest < len(text) else None


def split_args(text: str, start: int | None) -> tuple[str, ...]:
    """All remaining tokens (module arguments)."""
    args: list[str] = []
    while True:
        tok, start = tokenize(text, start)
        if tok is None:
            return tuple(args)
        args.append(tok)


def _c_int(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def parse_control(text: str) -> tuple[tuple[int, ...], str | None]:
    """A ``[value=action ...]`` control (brackets already removed) as an action table.

    Unset codes are ``bad``.  On a syntax error every code is ``bad`` and the error
    message is returned too.  Return codes are matched as prefixes, in code order,
    and are case-sensitive; ``default`` only fills the codes not yet set.

    >>> table, err = parse_control("success=ok default=die")
    >>> action_name(table[0]), action_name(table[7]), err
    ('ok', 'die', None)
    """
    table = [UNDEF] * codes.COUNT
    names = (*codes.TOKENS, "default")
    i, n = 0, len(text)

    def skip(k: int) -> int:
        while k < n and text[k] in _CSPACE:
            k += 1
        return k

    while i < n:
        i = skip(i)
        if i >= n:
            break
        ret = next((r for r, word in enumerate(names) if text.startswith(word, i)), None)
        if ret is None or i + len(names[ret]) >= n:
            return ALL_BAD, f"expecting return value at {text[i:]!r}"
        i = skip(i + len(names[ret]))
        if i >= n or text[i] != "=":
            return ALL_BAD, f"expecting '=' at {text[i:]!r}"
        i = skip(i + 1)
        if i >= n:
            return ALL_BAD, "expecting action"
        word = next((w for w in ACTION_WORDS if text.startswith(w, i)), None)
        if word is not None:
            act = -ACTION_WORDS.index(word)
            i += len(word)
        else:
            if text[i] not in _DIGITS:
                return ALL_BAD, f"expecting jump number at {text[i:]!r}"
            act = 0
            while i < n and text[i] in _DIGITS:
                act = _c_int(act * 10 + int(text[i]))
                i += 1
            if act == 0:
                return ALL_BAD, "expecting non-zero jump"
        if ret == _DEFAULT:
            table = [act if a == UNDEF else a for a in table]
        else:
            table[ret] = act
    return tuple(BAD if a == UNDEF else a for a in table), None


# --------------------------------------------------------------------------- loading


class _Crash(Exception):
    pass


class _Loader:
    def __init__(self, service: str, source: Source, layout: Layout) -> None:
        self.service = service
        self.source = source
        self.layout = layout
        self.config = Config(service=service, module_dir=layout.module_dir)
        self.count = 0
        self.open: list[tuple[str, int]] = []  # files being read, with their substack level
        self.failed: list[bool] = []  # per file being read: an @include in it failed

    def problem(self, file: str, line: int, message: str) -> None:
        self.config.problems.append(Problem(file, line, message))

    def find(self, name: str, dirs: tuple[str, ...]) -> tuple[str, bytes] | None:
        if name.startswith("/"):
            data = self.source.read(name)
            return (name, data) if data is not None else None
        for d in dirs:
            path = posixpath.join(d, name)
            data = self.source.read(path)
            if data is not None:
                return path, data
        return None

    def load(self) -> Config:
        cfg = self.config
        try:
            if self.layout.is_single_file:
                data = self.source.read(self.layout.pam_conf)
                if data is None:
                    cfg.start_error = f"could not open {self.layout.pam_conf}"
                elif not self.parse(self.layout.pam_conf, data, None, None, 0):
                    cfg.start_error = f"error reading {self.layout.pam_conf}"
                return cfg
            ok, read_something = True, False
            found = self.find(self.service, self.layout.service_dirs)
            if found is not None:
                ok = read_something = self.parse(found[0], found[1], self.service, None, 0)
                if not ok:
                    cfg.start_error = f"error reading {found[0]}"
            if ok:
                other = self.find("other", self.layout.service_dirs)
                if other is None:
                    self.problem("other", 0, "no default config other")
                elif self.parse(other[0], other[1], "other", None, 0):
                    read_something = True
                else:
                    cfg.start_error = f"error reading {other[0]}"
                    return cfg
                if not read_something:
                    cfg.start_error = (f"no configuration for service {self.service!r} "
                                       "and no 'other'")
        except _Crash as exc:
            cfg.crash = str(exc)
        return cfg

    def parse(self, path: str, data: bytes, known: str | None, wanted: str | None,
              level: int) -> bool:
        self.config.files.append(path)
        self.open.append((path, level))
        self.failed.append(False)
        try:
            lines, error = assemble(data)
            for raw in lines:
                self.line(path, raw, known, wanted, level)
        finally:
            self.open.pop()
            failed = self.failed.pop()
        if error is not None:
            self.problem(path, error[0], error[1])
            return False
        return not failed

    def add(self, facility: str, other: bool, **fields: object) -> None:
        table = self.config.other if other else self.config.conf
        handler = Handler(index=self.count, facility=facility, **fields)  # type: ignore[arg-type]
        self.count += 1
        table.setdefault(facility, []).append(handler)
        if self.count > 200_000:
            raise _Crash("more than 200000 handlers (runaway substack recursion)")

    def line(self, path: str, raw: RawLine, known: str | None, wanted: str | None,
             level: int) -> None:
        text = raw.text
        rest: int | None = 0
        origin = Origin(path, raw.line, text, raw.last)
        if known is None:
            this, rest = tokenize(text, rest)
            this = this or ""
        else:
            this = known
        other = this.lower() == "other"
        if this.lower() != self.service.lower() and not other:
            return
        kind, silent, reason = "module", False, ""
        tok, rest = tokenize(text, rest)
        if tok is not None and (tok[1:] if tok.startswith("-") else tok).lower() == "@include":
            self.at_include(path, raw, rest, this, wanted, level, other, origin)
            return
        if tok is None:
            reason = "empty module type"
            facility, kind = wanted or "auth", "must_fail"
        else:
            if tok.startswith("-"):
                silent, tok = True, tok[1:]
            if tok.lower() in FACILITIES:
                facility = tok.lower()
            else:
                reason = f"illegal module type: {tok}"
                facility, kind = wanted or "auth", "must_fail"
        if reason:
            self.problem(path, raw.line, reason)
        if wanted is not None and facility != wanted:
            return
        control, rest = tokenize(text, rest)
        include = substack = False
        actions: tuple[int, ...] = ALL_BAD
        if control is None:
            reason = "no control flag supplied"
            self.problem(path, raw.line, reason)
            kind, control = "must_fail", ""
        elif control.lower() in PRESETS:
            actions = PRESETS[control.lower()]
        elif control.lower() in ("include", "substack"):
            include, substack = True, control.lower() == "substack"
        else:
            actions, error = parse_control(control)
            if error:
                self.problem(path, raw.line, f"bad control [{control}]: {error}; "
                             "every return code is 'bad'")
        target, rest = tokenize(text, rest)
        if include:
            if substack:
                self.add(facility, other, kind="substack", level=level,
                         actions=(UNDEF,) * codes.COUNT, module=target, args=(), silent=silent,
                         origin=origin, control=control, reason="")
            if self.include(path, raw.line, target, this, facility, level + substack):
                return
            reason = f"{control.lower()} {target} failed"
            self.add(facility, other, kind="must_fail", level=level, actions=ALL_BAD,
                     module=None, args=(), silent=silent, origin=origin, control=control,
                     reason=reason)
            return
        if target is None:
            reason = "no module name supplied"
            self.problem(path, raw.line, reason)
            kind = "must_fail"
        self.add(facility, other, kind=kind, level=level, actions=actions, module=target,
                 args=split_args(text, rest), silent=silent, origin=origin, control=control,
                 reason=reason)

    def at_include(self, path: str, raw: RawLine, rest: int | None, service: str,
                   wanted: str | None, level: int, other: bool, origin: Origin) -> None:
        """Debian's ``@include FILE``: every line of FILE whose type is wanted (all types at
        the top), in place; a failure also fails the file that holds it."""
        name, _rest = tokenize(raw.text, rest)
        if name is None:
            raise _Crash(f"{path}:{raw.line}: @include without a file name: libpam 1.5.2 "
                         "(Debian) crashes (SIGSEGV)")
        if self.include(path, raw.line, name, service, wanted, level):
            return
        self.failed[-1] = True
        self.problem(path, raw.line, f"@include {name} failed: {path} fails to load")
        self.add(wanted or "auth", other, kind="must_fail", level=level, actions=ALL_BAD,
                 module=None, args=(), silent=False, origin=origin, control="@include",
                 reason=f"@include {name} failed")

    def include(self, path: str, line: int, name: str | None, service: str,
                facility: str | None, level: int) -> bool:
        if level >= SUBSTACK_LIMIT:
            self.problem(path, line, "maximum level of substacks reached")
            return False
        if name is None:
            raise _Crash(f"{path}:{line}: include/substack without a file name: libpam 1.5.2 "
                         "passes NULL on and crashes (SIGSEGV)")
        found = self.find(name, self.layout.include_dirs)
        if found is None:
            self.problem(path, line, f"unable to open config for {name}")
            return False
        target, data = found
        if len(self.open) >= MAX_OPEN_FILES:
            raise NestedTooDeep(f"{path}:{line}: includes nested more than {MAX_OPEN_FILES} "
                                "files deep: pamconform does not evaluate such a stack")
        for opened, opened_level in self.open:
            if opened == target and opened_level == level:
                raise _Crash(f"{path}:{line}: include cycle through {target}: libpam 1.5.2 "
                             "recurses without bound and crashes (SIGSEGV)")
        return self.parse(target, data, service, facility, level)


def load(service: str, source: Source, layout: Layout | None = None) -> Config:
    """Build the handler chains ``pam_start(service)`` would build.

    >>> src = DictSource({"/etc/pam.d/login": "auth required pam_permit.so\\n"})
    >>> [h.module for h in load("login", src).chain("auth")]
    ['pam_permit.so']
    """
    return _Loader(service, source, layout or Layout()).load()


def load_text(text: str, service: str = "svc", *, files: Mapping[str, str] | None = None,
              layout: Layout | None = None) -> Config:
    """Convenience: one service file's text (plus extra files by absolute path)."""
    lay = layout or Layout()
    if lay.is_single_file:
        table: dict[str, str] = {lay.pam_conf: text}
    else:
        table = {posixpath.join(lay.service_dirs[0], service): text}
    table.update(files or {})
    return load(service, DictSource(table), lay)
