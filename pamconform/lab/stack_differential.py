"""Differential testing: generated stacks, run by real libpam in the lab and by the model.

A generated stack is made of ``pam_permit``, ``pam_deny``, ``pam_debug`` with random
codes, the socket module (server state grant or deny), a missing module, random
control flags (keywords in any case, ``[value=action]`` with jumps), ``include`` and
``substack`` of extra files, and random syntax (tabs, continuations, comments).
:func:`check_batch` writes a whole batch as separate service files into one confdir
(one tar), runs ONE agent batch (``pamdrive --steps`` every primitive,
``--keep-going``) and compares each transaction with :func:`linux_pam.run`.
In single-file mode the batch becomes one ``/etc/pam.conf`` (service column, random
case) in a container without ``/etc/pam.d``.

The strategies need ``hypothesis`` (a development dependency).
"""

from __future__ import annotations

import json
import posixpath
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from pamconform.lab.stack import ALL_STEPS, STACK_ROOT, StackLab, module_args, socket_path
from pamconform.model import codes
from pamconform.model.linux_pam import run
from pamconform.model.modules import LabModules
from pamconform.model.parser import DictSource, Layout, load
from pamconform.model.trace import Run, pamdrive_results

#: The ``other`` service of every batch: distinct codes, so a fallback shows.
OTHER_LINES = (
    ("auth", "required", "pam_debug.so auth=maxtries cred=cred_expired"),
    ("account", "required", "pam_debug.so acct=acct_expired"),
    ("session", "required", "pam_debug.so open_session=bad_item close_session=no_module_data"),
    ("password", "required", "pam_debug.so prechauthtok=try_again chauthtok=authtok_lock_busy"),
)
PLACEHOLDER = "@DIR@"

_CODE_TOKENS = [t for t in codes.TOKENS if t != "incomplete"]  # incomplete: not modelled
_COMMON = ["success", "ignore", "auth_err", "authinfo_unavail", "perm_denied",
           "new_authtok_reqd", "user_unknown", "cred_err", "session_err", "abort"]
_DEBUG_ARGS = ("auth", "cred", "acct", "open_session", "close_session", "prechauthtok",
               "chauthtok")


@dataclass(frozen=True)
class GenLine:
    """One generated line, before rendering."""

    facility: str  # a facility, or a misspelt one
    control: str  # keyword, [value=action ...], include or substack
    module: str  # permit, deny, debug, socket, missing, or "inc<k>" for include/substack
    args: tuple[str, ...] = ()
    dash: bool = False
    absolute: bool = False


@dataclass(frozen=True)
class Style:
    """How a stack is spelt: the same meaning, different bytes."""

    upper: bool = False
    tabs: bool = False
    continuation: int = -1  # line split with a backslash after its control
    comments: bool = False
    noise: int = 0  # one of NOISES (0: none), applied to line ``noise_line``
    noise_line: int = 0


#: Rarer spellings, each applied to one line: what libpam makes of them is the question.
NOISES = (
    "none",
    "spaces-in-brackets",  # [success = ok ...]
    "upper-brackets",  # [SUCCESS=ok]: a syntax error, every code bad
    "misspelt-control",  # requird: parsed as [value=action], an error
    "bare-value-action",  # success=ok without brackets
    "crlf",  # \r before the newline: part of the last token
    "comment-in-continuation",  # a comment line between the halves of a line
    "no-module",  # the module name missing
    "empty-brackets",  # []
    "escaped-bracket",  # [success=ok \] default=bad]
    "long-line",  # a physical line over 1023 bytes
    "trailing-backslash",  # the file ends with a continuation
)


@dataclass(frozen=True)
class GenStack:
    """A generated service: its lines, its include files, the socket module's state."""

    lines: tuple[GenLine, ...]
    includes: tuple[tuple[GenLine, ...], ...] = ()
    state: str = "grant"
    style: Style = field(default_factory=Style)


# --------------------------------------------------------------------------- strategies
# Lines are drawn from precomputed tables (one draw per control, one per module): cheap
# to generate, and the simplest entries come first, which is where shrinking goes.


def _bracket_table(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    actions = ["ok", "done", "bad", "die", "ignore", "reset", "1", "2", "3"]
    out = ["[success=ok default=bad]", "[success=done default=die]",
           "[success=1 default=ignore]", "[success=ok new_authtok_reqd=ok ignore=ignore "
           "default=bad]", "[default=ok]"]
    while len(out) < count:
        pairs = []
        for _ in range(rng.randint(1, 4)):
            value = rng.choice(_COMMON + _COMMON + _CODE_TOKENS + ["default", "default"])
            pairs.append(f"{value}={rng.choice(actions)}")
        out.append("[" + " ".join(pairs) + "]")
    return out


def _debug_table(count: int, seed: int = 2) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    out: list[tuple[str, ...]] = [("auth=success",), ("auth=ignore",), ("auth=auth_err",)]
    while len(out) < count:
        names = rng.sample(_DEBUG_ARGS, rng.randint(1, 3))
        if rng.random() < 0.7 and "auth" not in names:
            names[0] = "auth"
        out.append(tuple(f"{n}={rng.choice(_COMMON + _CODE_TOKENS)}" for n in names))
    return out


CONTROLS = ["required", "requisite", "sufficient", "optional", *_bracket_table(400)]
MODULES: list[tuple[str, tuple[str, ...]]] = [
    ("permit", ()), ("deny", ()), ("socket", ()), ("missing", ()),
    *(("debug", args) for args in _debug_table(300)),
]
INCLUDES = ("include", "substack", "@include")
_FACILITY = ("auth",) * 14 + ("account", "session", "password", "auht", "auth", "auth")


def controls() -> st.SearchStrategy[str]:
    """A keyword control, or a ``[value=action ...]`` one (jumps included)."""
    return st.sampled_from(CONTROLS)


def _line(facility: int, control: str, module: tuple[str, tuple[str, ...]],
          flags: int) -> GenLine:
    return GenLine(_FACILITY[facility], control, module[0], module[1], dash=flags == 1,
                   absolute=flags == 2)


def module_lines() -> st.SearchStrategy[GenLine]:
    """A line naming a module (no include)."""
    return st.builds(_line, st.integers(0, len(_FACILITY) - 1), controls(),
                     st.sampled_from(MODULES), st.integers(0, 9))


@st.composite
def stacks(draw: st.DrawFn, max_lines: int = 6) -> GenStack:
    """A service with up to two include/substack files (one level of nesting)."""
    n_inc = draw(st.integers(0, 2))
    includes: list[tuple[GenLine, ...]] = []
    for k in range(n_inc):
        body = list(draw(st.lists(module_lines(), min_size=1, max_size=3)))
        if k == 0 and n_inc == 2 and draw(st.booleans()):
            body.append(GenLine("auth", draw(st.sampled_from(INCLUDES)), "inc1"))
        includes.append(tuple(body))
    lines = list(draw(st.lists(module_lines(), min_size=0 if n_inc else 1, max_size=max_lines)))
    for k in range(n_inc):
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, GenLine("auth", draw(st.sampled_from(INCLUDES)), f"inc{k}"))
    spelling = draw(st.integers(0, 63))
    noise = draw(st.integers(0, 3 * len(NOISES)))
    style = Style(upper=spelling & 3 == 0, tabs=bool(spelling & 4),
                  continuation=(spelling >> 4) % (len(lines) + 1) - 1 if spelling & 8 else -1,
                  comments=bool(spelling & 32),
                  noise=noise if noise < len(NOISES) else 0,
                  noise_line=draw(st.integers(0, max(0, len(lines) - 1))))
    return GenStack(tuple(lines), tuple(includes), draw(st.sampled_from(["grant", "deny"])),
                    style)


# --------------------------------------------------------------------------- rendering


def _module_text(line: GenLine, state: str, directory: str, name: str) -> str:
    if line.module.startswith("inc"):
        return f"{directory}/{name}.{line.module}"
    so = {"permit": "pam_permit.so", "deny": "pam_deny.so", "debug": "pam_debug.so",
          "socket": "pam_redirector.so", "missing": "pam_pc_missing.so"}[line.module]
    if line.absolute:
        so = "/lib/x86_64-linux-gnu/security/" + so
    args = list(line.args)
    if line.module == "socket":
        args = module_args(state).split()
    return " ".join([so, *args])


def _line_text(line: GenLine, stack: GenStack, directory: str, name: str, index: int,
               service: str | None) -> str:
    style = stack.style
    sep = "\t" if style.tabs else " "
    facility = ("-" if line.dash else "") + line.facility
    control = line.control
    if style.upper:
        facility = facility.upper()
        control = control if control.startswith("[") else control.capitalize()
    tail = _module_text(line, stack.state, directory, name)
    noise = NOISES[style.noise] if index == style.noise_line else "none"
    if noise == "spaces-in-brackets" and control.startswith("["):
        control = control.replace("=", " = ").replace("[", "[ ")
    elif noise == "upper-brackets" and control.startswith("["):
        control = control.upper()
    elif noise == "misspelt-control" and not control.startswith("["):
        control = control[:-2] + control[-1]
    elif noise == "bare-value-action":
        control = "success=ok"
    elif noise == "no-module":
        tail = ""
    elif noise == "empty-brackets":
        control = "[]"
    elif noise == "escaped-bracket" and control.startswith("["):
        control = control[:-1] + " \\] default=bad]"
    elif noise == "long-line":
        tail += " pad=" + "x" * 1030
    head = ([service] if service else []) + [facility, control]
    if control == "@include":
        head = ([service] if service else []) + ["@INCLUDE" if style.upper else "@include"]
    text = sep.join(head)
    if index == style.continuation:
        text += " \\\n" + ("# between\n" if noise == "comment-in-continuation" else "") + "    "
    else:
        text += sep
    text += tail
    if style.comments and index % 2 == 0:
        text += "  # generated"
    if noise == "crlf":
        text += "\r"
    elif noise == "trailing-backslash" and index == len(stack.lines) - 1:
        text += " \\"
    return text


def render(stack: GenStack, name: str, directory: str, *,
           service_column: bool = False) -> tuple[list[str], dict[str, str]]:
    """The service's lines (a pam.d file's, or pam.conf's with the service column) and
    its include files by path."""
    service = None
    if service_column:
        service = name.upper() if stack.style.upper else name
    lines = []
    if stack.style.comments:
        lines.append("# generated by pamconform")
    lines += [_line_text(line, stack, directory, name, i, service)
              for i, line in enumerate(stack.lines)]
    files = {}
    for k, body in enumerate(stack.includes):
        files[f"{directory}/{name}.inc{k}"] = "".join(
            _line_text(line, stack, directory, name, -2, None) + "\n" for line in body)
    return lines, files


def other_lines(service_column: bool) -> list[str]:
    prefix = "OTHER " if service_column else ""
    return [f"{prefix}{f} {c} {m}" for f, c, m in OTHER_LINES]


# --------------------------------------------------------------------------- checking


@dataclass
class Divergence:
    """A stack on which libpam and the model disagree."""

    name: str
    stack: GenStack
    files: dict[str, str]
    main: str
    model: Run
    real: dict[str, Any]

    def describe(self) -> str:
        start, steps = pamdrive_results(self.real.get("result"))
        model_start = codes.name(self.model.start)
        return (f"{self.name}: libpam {self.real.get('status')} {start} {steps}\n"
                f"  model {model_start} {self.model.results()}\n"
                f"--- {self.main}\n{self.files.get(self.main, '')}"
                + "".join(f"--- {p}\n{t}" for p, t in self.files.items() if p != self.main)
                + self.model.render())


@dataclass
class BatchResult:
    stacks: int
    divergences: list[Divergence]
    seconds: float = 0.0


def lab_modules() -> LabModules:
    return LabModules(sockets={socket_path("grant"): codes.SUCCESS,
                               socket_path("deny"): codes.AUTH_ERR})


def agrees(model: Run, real: dict[str, Any]) -> bool:
    """Does a pamdrive result equal the model's run?"""
    if model.crash is not None:
        return real.get("status") == "crashed"
    if real.get("status") != "ran":
        return False
    start, steps = pamdrive_results(real.get("result"))
    return start == codes.name(model.start) and steps == model.results()


def batch_files(stacks: Sequence[GenStack], directory: str, *,
                single_file: bool) -> tuple[dict[str, str], list[str]]:
    """Every file of a batch, and the service names (``s0``, ``s1`` ...)."""
    files: dict[str, str] = {}
    names = [f"s{i}" for i in range(len(stacks))]
    conf: list[str] = other_lines(True) if single_file else []
    for name, stack in zip(names, stacks, strict=True):
        lines, extra = render(stack, name, directory, service_column=single_file)
        files.update(extra)
        if single_file:
            conf += lines
        else:
            files[f"{directory}/{name}"] = "".join(line + "\n" for line in lines)
    if single_file:
        files["/etc/pam.conf"] = "".join(line + "\n" for line in conf)
    else:
        files[f"{directory}/other"] = "".join(line + "\n" for line in other_lines(False))
    return files, names


def check_batch(lab: StackLab, stacks: Sequence[GenStack], tag: str) -> BatchResult:
    """Run a batch in the lab (one tar, one agent batch) and compare with the model."""
    import time

    start = time.monotonic()
    directory = f"{STACK_ROOT}/{tag}"
    files, names = batch_files(stacks, directory, single_file=lab.single_file)
    lab.put_files(files)
    confdir = None if lab.single_file else directory
    results = lab.run([lab.request(name, confdir=confdir, rid=name) for name in names])
    layout = Layout.single_file() if lab.single_file else Layout.confdir(directory)
    source = DictSource(files)
    modules = lab_modules()
    divergences = []
    for name, stack, real in zip(names, stacks, results, strict=True):
        model = run(load(name, source, layout), modules, ALL_STEPS, keep_going=True)
        if not agrees(model, real):
            main = "/etc/pam.conf" if lab.single_file else f"{directory}/{name}"
            related = {p: t for p, t in files.items()
                       if p == main or posixpath.basename(p).startswith(name + ".")}
            divergences.append(Divergence(name, stack, related, main, model, real))
    return BatchResult(len(stacks), divergences, time.monotonic() - start)


# --------------------------------------------------------------------------- regressions


def save_regression(div: Divergence, directory: Path, label: str) -> Path:
    """Keep a divergence as ``<label>.pam`` (+ include files) and ``<label>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    base = posixpath.dirname(div.main)
    text = _portable(div.files[div.main], base, div.name, label)
    if div.main == "/etc/pam.conf":
        text = "".join(ln + "\n" for ln in text.splitlines()
                       if ln.split()[:1] and ln.split()[0].lower() in (label, "other"))
    (directory / f"{label}.pam").write_bytes(text.encode("latin-1"))
    includes = {}
    for path, body in div.files.items():
        if path != div.main:
            suffix = posixpath.basename(path)[len(div.name):]
            includes[label + suffix] = _portable(body, base, div.name, label)
    start, steps = pamdrive_results(div.real.get("result"))
    meta = {
        "service": label,
        "single_file": div.main == "/etc/pam.conf",
        "steps": list(ALL_STEPS),
        "includes": includes,
        "expected": {"pam_start": start, "steps": steps, "status": div.real.get("status")},
        "model_said": {"pam_start": codes.name(div.model.start), "steps": div.model.results()},
        "stack": asdict(div.stack),
        "note": "found by differential testing; expected = real libpam",
    }
    out = directory / f"{label}.json"
    out.write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _portable(text: str, base: str, name: str, label: str) -> str:
    text = text.replace(f"{base}/{name}.", f"{PLACEHOLDER}/{label}.")
    return re.sub(rf"(?m)^(\s*){re.escape(name)}(\s)", rf"\g<1>{label}\g<2>", text)


@dataclass
class Regression:
    """A saved regression case: files to write under a directory, and what libpam said."""

    label: str
    text: str
    includes: dict[str, str]
    single_file: bool
    expected_start: str
    expected_steps: list[tuple[str, str]]
    steps: list[str]
    note: str
    expected_status: str = "ran"

    @classmethod
    def load(cls, json_path: Path) -> Regression:
        meta = json.loads(json_path.read_text())
        label = json_path.stem
        text = (json_path.parent / f"{label}.pam").read_bytes().decode("latin-1")
        return cls(label, text,
                   dict(meta.get("includes", {})), bool(meta.get("single_file")),
                   meta["expected"]["pam_start"],
                   [(s, r) for s, r in meta["expected"]["steps"]],
                   list(meta.get("steps", ALL_STEPS)), meta.get("note", ""),
                   meta["expected"].get("status") or "ran")

    def files(self, directory: str) -> dict[str, str]:
        """The regression's files with the directory filled in."""
        main = "/etc/pam.conf" if self.single_file else f"{directory}/{self.label}"
        out = {main: self.text.replace(PLACEHOLDER, directory)}
        for name, body in self.includes.items():
            out[f"{directory}/{name}"] = body.replace(PLACEHOLDER, directory)
        if not self.single_file:
            out.setdefault(f"{directory}/other",
                           "".join(line + "\n" for line in other_lines(False)))
        return out

    def model(self, directory: str) -> Run:
        files = self.files(directory)
        layout = Layout.single_file() if self.single_file else Layout.confdir(directory)
        return run(load(self.label, DictSource(files), layout), lab_modules(), self.steps,
                   keep_going=True)

    def matches(self, real: dict[str, Any]) -> bool:
        """Does a pamdrive result (agent report) equal the expected one?"""
        if self.expected_status != "ran":
            return real.get("status") == self.expected_status
        start, steps = pamdrive_results(real.get("result"))
        return real.get("status") == "ran" and (start, steps) == (
            self.expected_start, self.expected_steps)

    def model_matches(self, directory: str) -> bool:
        """Does the model, on the same files, say what libpam said?"""
        model = self.model(directory)
        if self.expected_status == "crashed":
            return model.crash is not None
        return (codes.name(model.start), model.results()) == (
            self.expected_start, self.expected_steps)


def load_regressions(directory: Path) -> list[Regression]:
    """Every saved regression case of a directory, in name order."""
    return [Regression.load(p) for p in sorted(directory.glob("*.json"))]
