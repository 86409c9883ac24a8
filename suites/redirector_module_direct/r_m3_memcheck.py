"""R-M3: the module makes no memory error and never ends the host process, whatever the
server does and whatever is at the socket path. Each server behaviour of the direct suite
and each unusable socket path is replayed under valgrind memcheck and, where the module
builds with -fsanitize=address, under AddressSanitizer; the verdict is
``pamconform.drivers.memcheck.judge_memcheck`` (docs/module.md#memcheck): any valgrind
error but a leak, any ASan report, a crash, an exit or a hang FAILS; definite leaks are
INFORMATIONAL unless they grow with the number of attempts in one process."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.memcheck import AsanModule, MemcheckRun, judge_memcheck
from pamconform.lab.asan_build import build_asan
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    UNUSABLE_PATHS,
    direct,
    every_behaviour,
    prepare_unusable_path,
    probe_service,
    record,
)

case = case_factory(protocol="redirector", kind="module", exclusive="valgrind")

#: The probe stack with the ASan build of the module.
ASAN_PROBE = "pc-probe-asan"

def _asan(ctx, d, service, socket):
    """The ASan build's stack beside ``service`` (same arguments), or why there is none."""
    runner = getattr(d, "runner", None)
    if runner is not None and not hasattr(runner, "box"):
        return AsanModule(None, "the ASan build runs in the lab only")
    build = build_asan(d.target)
    if build.module is None:
        ctx.extra["asan_build"] = build.log
        return AsanModule(None, build.why_not)
    # the same stack, naming the ASan build by its absolute path
    text = d.service_texts[service]
    asan_text = text.replace(f"] {d.target.spec.so}", f"] {build.module}", 1)
    if asan_text == text:
        raise RuntimeError(f"cannot name the ASan build in the probe stack:\n{text}")
    asan_service = d.install_service(ASAN_PROBE, asan_text)  # in a lane, the lane's name

    def rewrite(request):
        argv = list(request["argv"])
        argv[argv.index(service)] = asan_service
        return dict(request, argv=argv, env={"LD_PRELOAD": build.libasan})

    return AsanModule(rewrite)


def _judge(ctx, d, what, socket=None):
    service = probe_service(d, socket=socket)
    judge_memcheck(ctx, MemcheckRun(
        request=d.request(service, passwords=[PASSWORD], valgrind=True),
        run=lambda reqs: d.run(reqs, jobs=2),  # valgrind and ASan side by side
        record=partial(record, ctx),
        asan=_asan(ctx, d, service, socket),
        what=what,
    ))


def _memcheck(scenario, args, ctx):
    d = direct(ctx)
    d.scenario(scenario, **args)
    _judge(ctx, d, f"a login while the server plays {scenario}")


def _memcheck_path(prepare, what, ctx):
    d = direct(ctx)
    path = prepare_unusable_path(d, prepare)
    _judge(ctx, d, f"a login with {what} at the socket path", socket=path)


for _name, _scenario, _args in every_behaviour():
    case(
        f"redir.module.memcheck-{_name}",
        rule="R-M3",
        severity=Severity.MUST,
        title=f"Memory clean when the server does {_name}",
        requirement=f"With the server playing {_name}, valgrind memcheck reports no error "
        "but leaks, AddressSanitizer reports nothing, the process neither crashes nor exits, "
        "and no definite leak grows with the number of attempts.",
    )(partial(_memcheck, _scenario, _args))

for _name, _prepare, _what in UNUSABLE_PATHS:
    case(
        f"redir.module.memcheck-path-{_name}",
        exclusive="lab-server",  # one path for all: /run/pc-path
        rule="R-M3",
        severity=Severity.MUST,
        title=f"Memory clean, process alive, with {_what} at the socket path",
        requirement=f"With {_what} at the socket path, the module neither ends the process "
        "(exit(), abort(), a signal) nor makes a memory error (valgrind memcheck, ASan).",
    )(partial(_memcheck_path, _prepare, _what))
