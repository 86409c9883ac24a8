"""Running a server child whose SIGTERM lands on a helper thread, not the main one.

Such a signal does not interrupt the main thread's select(): its Python handler runs
only once select() returns.  The same happens, by chance, to a signal that lands just
before select() starts; the helper thread makes that race certain.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

_KILLER = (
    "import os as _os, signal as _signal, threading as _threading, time as _time\n"
    "def _kill_from_here(path):\n"
    "    while not _os.path.exists(path):\n"
    "        _time.sleep(0.01)\n"
    "    _time.sleep(0.3)\n"
    "    _signal.pthread_kill(_threading.get_ident(), _signal.SIGTERM)\n"
    "_threading.Thread(target=_kill_from_here, args=(WATCHED,), daemon=True).start()\n")


def run_with_stray_sigterm(setup: str, run: str, *, env: Mapping[str, str] | None = None,
                           timeout: float = 20) -> tuple[int, bytes]:
    """Run ``setup`` (which sets ``WATCHED``, the path that appears once the server
    listens), SIGTERM it from a helper thread, then ``run`` (an expression giving the
    exit status) in the main thread; return the exit status and the error output."""
    program = f"{setup}\n{_KILLER}import sys as _sys\n_sys.exit({run})\n"
    proc = subprocess.Popen([sys.executable, "-c", program], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    return proc.returncode, err
