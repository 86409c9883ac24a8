"""Support for the ``pam_chain`` suite: a stack shape run in every server state, in one batch.

A :class:`Shape` is a stack with ``{module}`` where the socket module goes (it becomes
``pam_redirector.so <socket of the state> timeout=0.5``) and ``{dir}`` for the
directory of extra files (``include``/``substack`` targets).  :func:`check_shape`
writes one service per state, runs them as ONE agent batch, evaluates the same
files with the model, and records the stack, the model's trace and libpam's step
results as evidence.  A mismatch fails the case; a shape that grants without a
valid grant is reported (INFORMATIONAL) with the states where it fails open.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pamconform.core.outcome import Fail
from pamconform.lab.stack import STACK_ROOT, StackLab, module_args, socket_path
from pamconform.model import codes
from pamconform.model.linux_pam import run
from pamconform.model.modules import STATE_CODES, STATES, LabModules
from pamconform.model.parser import DictSource, Layout, load
from pamconform.model.trace import Run, pamdrive_results

_ids = itertools.count(1)


@dataclass(frozen=True)
class Shape:
    """A stack with ``{module}`` (the socket module) and ``{dir}`` placeholders."""

    lines: tuple[str, ...]
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    other: tuple[str, ...] = ()
    steps: tuple[str, ...] = ("authenticate", "setcred")

    def text(self, state: str | None = None, directory: str = "{dir}") -> str:
        return _fill(self.lines, state, directory)


def _fill(lines: Sequence[str], state: str | None, directory: str) -> str:
    module = (f"pam_redirector.so {module_args(state)}" if state
              else "pam_redirector.so <socket>")
    return "".join(line.replace("{module}", module).replace("{dir}", directory) + "\n"
                   for line in lines)


@dataclass
class StackTarget:
    """The target of the stack cases: a prepared lab container."""

    name: str
    lab: StackLab
    codes: Mapping[str, int] = field(default_factory=lambda: dict(STATE_CODES))

    def modules(self) -> LabModules:
        return LabModules(sockets={socket_path(s): c for s, c in self.codes.items()})


@dataclass
class ShapeResult:
    """What a shape did in each state, in libpam and in the model."""

    real: dict[str, dict[str, Any]]
    model: dict[str, Run]

    def granted(self) -> dict[str, bool]:
        out = {}
        for state, report in self.real.items():
            steps = pamdrive_results(report.get("result"))[1]
            out[state] = bool(steps) and steps[0][1] == "PAM_SUCCESS"
        return out

    def fail_open(self) -> list[str]:
        return [s for s, ok in self.granted().items() if ok and s != "grant"]

    def mismatches(self) -> list[str]:
        out = []
        for state, report in self.real.items():
            start, steps = pamdrive_results(report.get("result"))
            model = self.model[state]
            if report.get("status") != "ran" or start != codes.name(model.start) or \
                    steps != model.results():
                out.append(f"{state}: libpam {report.get('status')} {start} {steps}, "
                           f"model {model.results()}")
        return out


def _files(shape: Shape, state: str, directory: str, service: str) -> dict[str, str]:
    files = {f"{directory}/{service}": shape.text(state, directory)}
    for name, body in shape.files.items():
        files[f"{directory}/{name}"] = _fill(body, state, directory)
    files[f"{directory}/other"] = _fill(shape.other, state, directory)
    return files


def run_shapes(target: StackTarget, shapes: Mapping[str, Shape],
               states: Sequence[str] = STATES) -> dict[str, ShapeResult]:
    """Every state of every shape in ONE batch (a directory per shape and state)."""
    lab = target.lab
    all_files: dict[str, str] = {}
    requests = []
    layouts = {}
    for label, shape in shapes.items():
        tag = f"m{next(_ids)}"
        for state in states:
            directory = f"{STACK_ROOT}/{tag}-{state}"
            all_files.update(_files(shape, state, directory, "stack"))
            requests.append(lab.request("stack", confdir=directory, steps=shape.steps,
                                        rid=[label, state]))
            layouts[label, state] = Layout.confdir(directory)
    lab.put_files(all_files)
    results = iter(lab.run(requests))
    source = DictSource(all_files)
    out = {}
    for label, shape in shapes.items():
        real = {state: next(results) for state in states}
        model = {state: run(load("stack", source, layouts[label, state]), target.modules(),
                            shape.steps, keep_going=True)
                 for state in states}
        out[label] = ShapeResult(real, model)
    return out


def run_shape(target: StackTarget, shape: Shape,
              states: Sequence[str] = STATES) -> ShapeResult:
    """Every state of one shape, in one batch."""
    return run_shapes(target, {"": shape}, states)[""]


def check_shape(ctx: Any, shape: Shape, *, expect_fail_open: Sequence[str] | None = None
                ) -> list[str]:
    """The case body of a one-stack case (see :func:`check_shapes`)."""
    return check_shapes(ctx, {"": shape},
                        None if expect_fail_open is None else {"": expect_fail_open})[""]


def check_shapes(ctx: Any, shapes: Mapping[str, Shape],
                 expect_fail_open: Mapping[str, Sequence[str]] | None = None
                 ) -> dict[str, list[str]]:
    """The body of every stack case: libpam equals the model, in every state.

    All shapes run in one batch.  Evidence goes to ``ctx.extra`` (under each label when
    there are several shapes); returns the states in which each shape fails open, and
    fails the case if that differs from ``expect_fail_open`` (when given).
    """
    target: StackTarget = ctx.target
    results = run_shapes(target, shapes)
    opened_by: dict[str, list[str]] = {}
    mismatches: list[str] = []
    unexpected: list[str] = []
    for label, shape in shapes.items():
        result = results[label]
        extra: dict[str, Any] = ctx.extra if not label else {}
        if label:
            ctx.extra[label] = extra
        extra["stack"] = shape.text()
        if shape.files:
            extra["files"] = {n: _fill(body, None, "{dir}") for n, body in shape.files.items()}
        if shape.other:
            extra["other"] = _fill(shape.other, None, "{dir}")
        evidence = {}
        for state in STATES:
            start, steps = pamdrive_results(result.real[state].get("result"))
            evidence[state] = {
                "socket module returns": codes.name(target.codes[state]),
                "libpam": {"pam_start": start, "steps": steps,
                           "status": result.real[state].get("status")},
                "model": result.model[state].results(),
                "trace": result.model[state].render(),
            }
        extra["states"] = evidence
        where = f"{label}: " if label else ""
        mismatches += [where + m for m in result.mismatches()]
        opened = result.fail_open()
        extra["fail_open_states"] = opened
        opened_by[label] = opened
        want = None if expect_fail_open is None else expect_fail_open.get(label)
        if want is not None and sorted(opened) != sorted(want):
            unexpected.append(f"{where}grants in {opened or 'no state but grant'}, "
                              f"expected {sorted(want) or 'no state but grant'}")
        if opened:
            ctx.informational(f"{where}fails open (grants without a valid grant) when the "
                              "server is " + ", ".join(opened))
    if mismatches:
        raise Fail("libpam's result to equal the Linux-PAM model's in every server state",
                   "; ".join(mismatches))
    if unexpected:
        raise Fail("the known fail-open states", "; ".join(unexpected))
    ctx.note(f"libpam equals the model in all {len(STATES)} states of "
             f"{len(shapes)} stack(s)")
    return opened_by


