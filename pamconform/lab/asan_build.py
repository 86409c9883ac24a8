"""A second build of the module under test with AddressSanitizer, beside the normal one.

The module's own build line runs again in a fresh copy of its source, with
``CFLAGS``/``LDFLAGS`` asking for ``-fsanitize=address``. The result counts as an ASan
build only if it is linked with libasan (a Makefile that ignores ``CFLAGS`` builds a
plain module, and saying "ASan clean" about it would be false). pamdrive is not
instrumented, so attempts preload the libasan the module links.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass

from pamconform.core.registry import Case
from pamconform.lab.images import Progress, quiet
from pamconform.lab.module_target import ModuleTarget, _tar_dir

ASAN_SRC = "/opt/target-src-asan"
ASAN_DIR = "/usr/local/lib/pamconform/asan"
ASAN_CFLAGS = "-O1 -g -fsanitize=address -fno-omit-frame-pointer -fPIC"
ASAN_LDFLAGS = "-fsanitize=address"


@dataclass
class AsanBuild:
    """The ASan build in the container: its module and libasan, or why there is none."""

    module: str | None = None
    libasan: str | None = None
    why_not: str = ""
    log: str = ""


_BUILDING = threading.Lock()


def build_asan(target: ModuleTarget) -> AsanBuild:
    """Build (once per target) the module with ``-fsanitize=address``."""
    with _BUILDING:  # cases running at once (--jobs) build it once, not side by side
        cached = getattr(target, "_asan_build", None)
        if cached is None:
            cached = _build(target)
            target._asan_build = cached  # type: ignore[attr-defined]
    return cached


def build_before(target: ModuleTarget, cases: list[Case], say: Progress = quiet) -> None:
    """Build the ASan variant now, before ``cases`` run, when any of them runs under
    valgrind (the memcheck cases, which run the ASan build beside it). Built inside the
    first of them, the build would hold valgrind slots that other cases wait for (on a
    loaded machine several seconds each). A failure to build is the cases' to report:
    they build again (only a build is kept) and say why."""
    if not any("valgrind" in case.exclusive for case in cases):
        return
    say("building the module with AddressSanitizer too, for the memcheck cases")
    with contextlib.suppress(Exception):
        build_asan(target)


def _build(target: ModuleTarget) -> AsanBuild:
    box, spec = target.box, target.spec
    box.run(["rm", "-rf", ASAN_SRC], timeout=20).check()
    box.run(["mkdir", "-p", ASAN_SRC], timeout=10).check()
    box.container.put_archive(ASAN_SRC, _tar_dir(spec.src))
    res = box.run('export CFLAGS="$1" LDFLAGS="$2"; eval "$3"',
                  args=[ASAN_CFLAGS, ASAN_LDFLAGS, spec.build], workdir=ASAN_SRC, timeout=300)
    log = (res.out + res.err)[-3000:]
    if not res.ok:
        return AsanBuild(why_not=f"the module does not build with {ASAN_CFLAGS!r} "
                         f"(exit {res.exit_code})", log=log)
    found = box.run(["find", ASAN_SRC, "-name", spec.so, "-type", "f"], timeout=20)
    built = next(iter(found.out.splitlines()), "").strip()
    if not built:
        return AsanBuild(why_not=f"the ASan build did not produce {spec.so}", log=log)
    libasan = re.search(r"libasan\S*\s+=>\s+(\S+)", box.run(["ldd", built], timeout=20).out)
    if not libasan:
        return AsanBuild(why_not="the build ignored CFLAGS/LDFLAGS: the module it made is "
                         "not linked with libasan", log=log)
    dest = f"{ASAN_DIR}/{spec.so}"
    box.run(["install", "-D", "-o", "root", "-g", "root", "-m", "0644", built, dest],
            timeout=20).check()
    return AsanBuild(module=dest, libasan=libasan.group(1), log=log)
