"""The pytest plugin: the bundled suites as pytest items, and fixtures for cases of your own.

    pytest suites/redirector_server --server /run/auth.sock --credentials-file logins
    pytest suites/redirector_module_e2e --module path/to/module-src

Each ``--server SOCKET`` and ``--module SRC`` is one target, named ``server://SOCKET`` or
``module://SRC`` in item ids (``redir.server.grant-valid[server:///run/auth.sock]``). A case
runs only against targets of its kind and protocol; with none, its item skips and says which
option is missing. FAIL fails the item (showing the requirement and the wire log), SKIPPED
skips it, NON-STRICT passes with a warning (fails with ``--conformance-strict``), ERROR
fails it with the harness's traceback.

Fixtures for cases of your own (docs/custom-cases.md), broadest first:
``pamconform_engine`` (the container engine, session), ``pamconform_target`` (one target,
parametrised over those given) and ``pamconform_ctx`` (the context the bundled steps
take). A test marked ``@pytest.mark.pamconform_case(...)`` is graded like a bundled case.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pamconform.core import credentials, loader, resources
from pamconform.core.context import CaseContext
from pamconform.core.errors import HarnessError, UsageError
from pamconform.core.options import SECONDS
from pamconform.core.outcome import Fail
from pamconform.core.redaction import redact
from pamconform.core.registry import Case, all_cases, register
from pamconform.core.runner import CaseResult, run_case
from pamconform.core.verdicts import Severity, Verdict
from pamconform.protocols import DEFAULT, UnknownProtocol, all_protocols, get
from pamconform.protocols.hooks import foreign_server_option, hooks_of

if TYPE_CHECKING:
    from pamconform.lab.module_target import ModuleSpec, ModuleTarget

SERVER, MODULE = "server", "module"
#: The option that gives a target of each kind.
TARGET_OPTIONS = {SERVER: "--server SOCKET", MODULE: "--module SRC"}
MARKER = "pamconform_case"
#: Wire-log lines shown under a failure (the report keeps them all).
WIRE_LINES = 30


class NonStrictWarning(UserWarning):
    """A SHOULD-level requirement was not met."""


# ---- options -----------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pamconform", "pamconform conformance targets")
    group.addoption("--server", type=Path, action="append", default=[], metavar="SOCKET",
                    help="an auth server's socket: a server target (repeatable)")
    group.addoption("--module", type=Path, action="append", default=[], metavar="SRC",
                    help="a PAM module's source directory, built and checked in the lab: a "
                    "module target (repeatable; needs a Docker engine)")
    group.addoption("--protocol", metavar="NAME",
                    help="the targets' protocol (default: that of the collected cases; of "
                    f"several, {DEFAULT})")
    credentials.add_options(_Options(group))  # type: ignore[arg-type]
    group.addoption("--conformance-strict", action="store_true",
                    help="NON-STRICT verdicts fail")
    group.addoption("--reply-timeout", type=SECONDS, default=5.0, metavar="SECONDS")
    group.addoption("--idle-limit", type=SECONDS, default=10.0, metavar="SECONDS")
    group.addoption("--module-build", default="make", metavar="CMD",
                    help="build command run in SRC (default make)")
    group.addoption("--module-so", metavar="NAME",
                    help="the .so the build produces (default: the protocol's reference module)")
    group.addoption("--module-args", metavar="ARGS",
                    help="PAM module arguments, {socket} substituted (default: the protocol's "
                    "reference module's)")
    group.addoption("--collect-password", action="store_true",
                    help="stack 'auth optional pam_unix.so' before the module")
    group.addoption("--login-timeout", type=SECONDS, default=20.0, metavar="SECONDS")
    group.addoption("--hang-bound", type=SECONDS, default=None, metavar="SECONDS",
                    help="R-M2: how long a login may take while the server hangs")
    group.addoption("--distro", default=None, metavar="NAME",
                    help="Debian release of the lab container (default bookworm)")
    for protocol in all_protocols():
        hooks = hooks_of(protocol)
        hooks.add_server_options(_Options(group))  # type: ignore[arg-type]
        hooks.add_module_options(_Options(group))  # type: ignore[arg-type]


class _Options:
    """Lets code written for argparse (a protocol's hooks, the credentials options) add its
    options to pytest's ``pamconform`` group, under the same names as on the command line."""

    def __init__(self, group: pytest.OptionGroup) -> None:
        self.group = group

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Options:
        return self

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        self.group.addoption(*names, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    """Check the targets once, up front: bad input is a usage error (exit 4)."""
    config.addinivalue_line(
        "markers", f"{MARKER}(id, *, rule, severity, requirement, protocol, kind, title=None): "
        "grade this test as a conformance case of the given target kind and protocol")
    targets = Targets(config)
    try:
        targets.check()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_TARGETS] = targets
    config.add_cleanup(targets.close)


def pytest_report_header(config: pytest.Config) -> str | None:
    specs = _targets(config).specs
    return "pamconform targets: " + ", ".join(s.id for s in specs) if specs else None


# ---- targets -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """One target given on the command line: its kind and where it is."""

    kind: str
    where: Path

    @property
    def id(self) -> str:
        """How items name it, e.g. ``server:///run/auth.sock``."""
        return f"{self.kind}://{self.where}"


@dataclasses.dataclass(frozen=True)
class NoTarget:
    """Stands in for a target when a case has none in this run: its item skips."""

    reason: str
    id: str = "no-target"


Param = TargetSpec | NoTarget


class Targets:
    """The run's targets: checked up front, opened once the protocol is known, closed at the end.

    A server target is opened by its protocol's hooks (``server_target``), exactly as
    ``pamconform server`` opens it; a module target is built in a lab container on first use.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        given = [TargetSpec(SERVER, p) for p in config.getoption("--server")] + [
            TargetSpec(MODULE, p) for p in config.getoption("--module")]
        self.specs = list(dict.fromkeys(given))
        self.explicit: str | None = None
        #: kind -> the protocol its targets speak (set once collection is done)
        self.protocols: dict[str, str] = {}
        self._built: dict[TargetSpec, Any] = {}
        self._broken: dict[TargetSpec, tuple[bool, str]] = {}
        self._engine: Any = None
        self._no_engine: str | None = None
        self._stack = contextlib.ExitStack()

    def check(self) -> None:
        """Reject bad options before anything is collected or built."""
        name = self.config.getoption("--protocol")
        if name is not None:
            try:
                self.explicit = self.protocols[SERVER] = self.protocols[MODULE] = get(name).name
            except UnknownProtocol as exc:
                raise UsageError(f"--protocol: {exc}") from None
        for spec in self.specs:
            if spec.kind == MODULE and not spec.where.is_dir():
                raise UsageError(f"--module {spec.where}: not a directory")

    def params(self, kind: str | None, protocol: str | None) -> list[Param]:
        """What a case of ``kind`` and ``protocol`` runs against (any target if None)."""
        why = self.mismatch(kind, protocol)
        if why is not None:
            return [NoTarget(why)]
        return [s for s in self.specs if kind is None or s.kind == kind]

    def mismatch(self, kind: str | None, protocol: str | None,
                 spec: Param | None = None) -> str | None:
        """Why a case cannot run here (no target of its kind or protocol), or None."""
        if isinstance(spec, NoTarget):
            return spec.reason
        if not self.specs:
            return "no target: pass --server SOCKET (and a login) or --module SRC"
        if kind is None:
            return None
        if kind not in TARGET_OPTIONS:
            return (f"a {kind} case: the pytest plugin has server and module targets only "
                    "(`pamconform run` runs it)")
        given = ", ".join(s.id for s in self.specs)
        if spec is None and not any(s.kind == kind for s in self.specs):
            return f"a {kind} case needs {TARGET_OPTIONS[kind]}; the targets are {given}"
        if spec is not None and spec.kind != kind:
            return f"a {kind} case cannot run against the {spec.kind} target {spec.id}"
        speaks = self.protocols.get(kind)
        if protocol is not None and speaks is not None and protocol != speaks:
            return f"a {protocol} case; the {kind} targets speak {speaks} (--protocol)"
        return None

    def resolve(self, seen: dict[str, set[str]]) -> None:
        """Settle each kind of target's protocol: --protocol, else the one protocol of its
        collected cases, else the registry's default among them. Then open the server
        targets: a socket nothing listens on is a usage error here, before any case runs."""
        for kind, protocols in seen.items():
            if self.explicit is not None or not any(s.kind == kind for s in self.specs):
                continue
            if len(protocols) == 1:
                self.protocols[kind] = next(iter(protocols))
            elif DEFAULT in protocols:  # as `pamconform server` without --protocol
                self.protocols[kind] = DEFAULT
            else:
                raise UsageError(f"the collected {kind} cases are for several protocols "
                                 f"({', '.join(sorted(protocols))}): choose one with --protocol")
        if SERVER in self.protocols:
            self._foreign_options(self.protocols[SERVER])
        for spec in self.specs:
            if spec.kind not in self.protocols:
                continue
            if spec.kind == MODULE:
                self._module_spec(spec).validate()
            elif not self.config.option.collectonly:
                self._built[spec] = self._open_server(spec)

    def get(self, spec: Param) -> Any:
        """The target (a skip or a clean failure when it cannot be had)."""
        if isinstance(spec, NoTarget):
            pytest.skip(spec.reason)
        if spec in self._built:
            return self._built[spec]
        if spec in self._broken:
            skip, why = self._broken[spec]
            pytest.skip(why) if skip else pytest.fail(why, pytrace=False)
        if spec.kind not in self.protocols:
            pytest.fail(f"{spec.id}: which protocol? give --protocol", pytrace=False)
        if spec.kind == SERVER:
            try:
                opened = self._open_server(spec)
            except UsageError as exc:
                self._broken[spec] = (False, f"{spec.id}: {exc}")
                pytest.fail(self._broken[spec][1], pytrace=False)
        else:
            opened = self._module(spec)
        self._built[spec] = opened
        return opened

    def _open_server(self, spec: TargetSpec) -> Any:
        """The server target opened, and its login checked once, as ``pamconform server``
        does: a login the server refuses is one usage error, not a FAIL of every case."""
        opened = self._stack.enter_context(self._server_opener(spec))
        hooks_of(get(self.protocols[SERVER])).check_login(opened)
        return opened

    def _server_opener(self, spec: TargetSpec) -> contextlib.AbstractContextManager[Any]:
        opt = self.config.getoption
        args = argparse.Namespace(**vars(self.config.option))
        args.socket, args.name, args.protocol = spec.where, None, self.protocols[SERVER]
        args.timeout, args.idle_limit = opt("--reply-timeout"), opt("--idle-limit")
        return hooks_of(get(args.protocol)).server_target(args)

    def _foreign_options(self, protocol: str) -> None:
        if foreign := foreign_server_option(protocol, self.config.option):
            raise UsageError(f"{foreign[0]} need --protocol {foreign[1]}")

    def engine(self) -> Any:
        """The container engine's client (a skip when there is none)."""
        from pamconform.lab import EngineUnavailable, connect

        if self._no_engine is not None:  # asked once: every later item skips at once
            pytest.skip(self._no_engine)
        if self._engine is None:
            try:
                self._engine = connect(timeout=5)
            except EngineUnavailable as exc:
                self._no_engine = f"no container engine for the lab: {exc}"
                pytest.skip(self._no_engine)
            self._stack.callback(self._engine.close)
        return self._engine

    def _module_spec(self, spec: TargetSpec) -> ModuleSpec:
        from pamconform.lab.module_target import ModuleSpec

        opt = self.config.getoption
        reference = get(self.protocols[MODULE]).reference_module
        so, args = opt("--module-so"), opt("--module-args")
        if so is None and reference is None:
            raise UsageError(f"--module {spec.where}: give --module-so (the protocol "
                             f"{self.protocols[MODULE]} has no reference module)")
        return ModuleSpec(spec.where, opt("--module-build"),
                          so if so is not None else reference.so,  # type: ignore[union-attr]
                          args if args is not None else reference.args if reference else "",
                          self.protocols[MODULE], opt("--collect-password"),
                          hang_bound=opt("--hang-bound"))

    def _module(self, spec: TargetSpec) -> ModuleTarget:
        from pamconform.lab.module_run import module_lab

        self.engine()
        distro = self.config.getoption("--distro")
        lab = module_lab(self._module_spec(spec), name=str(spec.where),
                         login_timeout=self.config.getoption("--login-timeout"), say=self._say,
                         **({"distro": distro} if distro else {}))
        try:
            return self._stack.enter_context(lab)
        except (UsageError, HarnessError) as exc:  # a failed build is the module's
            self._broken[spec] = (False, f"{spec.id}: {exc}")
            pytest.fail(self._broken[spec][1], pytrace=False)

    def _say(self, text: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"pamconform: {redact(text)}")

    def run(self, item: pytest.Item, case: Case, spec: Param) -> None:
        """Check the case fits the target, run it, and turn its verdict into the item's."""
        why = self.mismatch(case.kind, case.protocol, spec)
        if why is not None:
            pytest.skip(why)
        target = self.get(spec)
        result = run_case(case, target, strict=self.config.getoption("--conformance-strict"))
        conclude(item, result)

    def close(self) -> None:
        self._stack.close()


_TARGETS = pytest.StashKey[Targets]()


def _targets(config: pytest.Config) -> Targets:
    return config.stash[_TARGETS]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Once the selection is final, settle each kind of target's protocol."""
    seen: dict[str, set[str]] = {}
    for item in items:
        found = _case_and_param(item)
        if found is not None and isinstance(found[1], TargetSpec):
            seen.setdefault(found[0].kind, set()).add(found[0].protocol)
    try:
        _targets(config).resolve(seen)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _case_and_param(item: pytest.Item) -> tuple[Case, Param] | None:
    if isinstance(item, CaseItem):
        return item.case, item.param
    if isinstance(item, pytest.Function) and item.get_closest_marker(MARKER) is not None:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("pamconform_target") if callspec else None
        case = marked_case(item)
        if param is not None and case is not None:
            return case, param
    return None


# ---- verdicts to pytest outcomes -----------------------------------------------------------
def conclude(item: pytest.Item, result: CaseResult) -> None:
    """Pass, skip, fail or warn the item as its case's verdict says."""
    case = result.case
    item.user_properties.append(("verdict", str(result.verdict)))
    item.user_properties.append(("rule", case.rule))
    if result.verdict is Verdict.SKIPPED:
        pytest.skip(redact(result.message))
    if result.verdict in (Verdict.FAIL, Verdict.ERROR):
        pytest.fail(failure_text(result), pytrace=False)
    if result.verdict is Verdict.NON_STRICT:
        warnings.warn(redact(f"{case.id}: {result.message}"), NonStrictWarning, stacklevel=1)


def failure_text(result: CaseResult) -> str:
    """The verdict, the requirement, the message, notes and wire log (secrets as markers)."""
    case = result.case
    lines = [f"{result.verdict} {case.id} [{case.rule} {case.severity}]",
             f"requirement: {case.requirement}", result.message]
    lines += [f"  note: {n}" for n in result.evidence.get("notes", [])]
    for e in result.evidence.get("wire", [])[:WIRE_LINES]:
        lines.append(f"  {e['t_ms']:9.1f} ms #{e['conn']} {e['event']} {e.get('data', '')}")
    if result.verdict is Verdict.ERROR and "traceback" in result.evidence:
        lines.append(result.evidence["traceback"].rstrip())
    return redact("\n".join(lines))


# ---- the bundled suites ----------------------------------------------------------------------
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    # the bundled suites only: another project's folder called "suites" is its own
    if (
        file_path.suffix == ".py"
        and file_path.resolve().is_relative_to(resources.suites_dir().resolve())
        and not file_path.name.startswith(("_", "test_", "conftest"))
    ):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """A suite file: each registered case becomes one item per target that fits it."""

    def collect(self) -> Iterator[CaseItem]:
        module = loader.load_file(self.path)
        suite = module.__name__.split(".", 1)[1]
        targets = _targets(self.config)
        for case in all_cases():
            if case.suite != suite:
                continue
            for param in targets.params(case.kind, case.protocol):
                name = case.id if isinstance(param, NoTarget) else f"{case.id}[{param.id}]"
                yield CaseItem.from_parent(self, name=name, case=case, param=param)


class CaseItem(pytest.Item):
    """One bundled case against one target."""

    def __init__(self, *, case: Case, param: Param, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.param = param

    def runtest(self) -> None:
        _targets(self.config).run(self, self.case, self.param)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.case.id} [{self.case.rule}]"


# ---- fixtures and cases of your own --------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pamconform_target" not in metafunc.fixturenames:
        return
    case = marked_case(metafunc.definition)
    if case is not None:
        try:
            register(case)
        except ValueError as exc:
            pytest.fail(f"{metafunc.definition.nodeid}: {exc}", pytrace=False)
    targets = _targets(metafunc.config)
    params = targets.params(case.kind, case.protocol) if case else targets.params(None, None)
    metafunc.parametrize("pamconform_target", params, ids=[p.id for p in params],
                         indirect=True, scope="session")


@pytest.fixture(scope="session")
def pamconform_engine(request: pytest.FixtureRequest) -> Any:
    """The container engine's client (Docker SDK); the test skips when there is none."""
    return _targets(request.config).engine()


@pytest.fixture(scope="session")
def pamconform_target(request: pytest.FixtureRequest) -> Any:
    """The target under test, typed by kind and protocol: what ``--server`` gives is opened
    by its protocol (a ``ServerTarget`` for login-based protocols), what ``--module`` gives
    is a ``ModuleTarget``, built once per session in a lab container."""
    param = getattr(request, "param", None)
    if param is None:
        pytest.skip("pamconform_target is given only to tests collected with the plugin")
    return _targets(request.config).get(param)


@pytest.fixture
def pamconform_ctx(request: pytest.FixtureRequest,
                   pamconform_target: Any) -> CaseContext:
    """What the bundled steps take: the target, a wire log, notes and soft verdicts."""
    return CaseContext(target=pamconform_target,
                       strict=request.config.getoption("--conformance-strict"))


def marked_case(node: pytest.Item) -> Case | None:
    """The case a ``pamconform_case`` mark declares on a test, or None when unmarked."""
    mark = node.get_closest_marker(MARKER)
    if mark is None:
        return None
    need = ("rule", "severity", "requirement", "protocol", "kind")
    missing = [k for k in need if k not in mark.kwargs]
    if len(mark.args) != 1 or missing:
        pytest.fail(f"{node.nodeid}: @pytest.mark.{MARKER}(ID, " + ", ".join(
            f"{k}=..." for k in need) + f") (missing: {', '.join(missing) or 'ID'})",
            pytrace=False)
    kw = mark.kwargs
    try:
        severity = Severity(str(kw["severity"]).upper())
        protocol = get(kw["protocol"]).name
    except (ValueError, UnknownProtocol) as exc:
        pytest.fail(f"{node.nodeid}: {exc}", pytrace=False)
    if kw["kind"] not in TARGET_OPTIONS:
        pytest.fail(f"{node.nodeid}: kind={kw['kind']!r}: choose {' or '.join(TARGET_OPTIONS)}",
                    pytrace=False)
    func = getattr(node, "obj", None)
    title = str(kw.get("title") or getattr(node, "originalname", node.name))
    return Case(mark.args[0], kw["rule"], severity, title,
                kw["requirement"], protocol, kw["kind"], func or (lambda ctx: None),
                node.module.__name__ if hasattr(node, "module") and node.module else "custom")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a marked test as a case: under the runner's watchdog, graded by its severity."""
    case = marked_case(pyfuncitem)
    if case is None:
        return None
    callspec = getattr(pyfuncitem, "callspec", None)
    if callspec is None or "pamconform_target" not in callspec.params:
        pytest.fail(f"{pyfuncitem.nodeid}: a {MARKER} test takes pamconform_ctx or "
                    "pamconform_target", pytrace=False)
    param = callspec.params["pamconform_target"]
    argnames = pyfuncitem._fixtureinfo.argnames

    def body(ctx: CaseContext) -> None:
        kwargs = {name: pyfuncitem.funcargs[name] for name in argnames}
        if "pamconform_ctx" in kwargs:
            kwargs["pamconform_ctx"] = ctx  # the runner's context, whose evidence is graded
        try:
            pyfuncitem.obj(**kwargs)
        except AssertionError as exc:
            raise Fail("the case's assertion to hold", str(exc) or "it did not") from None

    _targets(pyfuncitem.config).run(pyfuncitem, dataclasses.replace(case, func=body), param)
    return True
