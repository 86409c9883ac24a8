# Sourced by scripts/setup, scripts/test and scripts/conformance (from the checkout's top).
# pamconform_python: the Python the scripts use. $PYTHON when set; else the checkout's
# .venv when scripts/setup made one; else python3.
pamconform_python() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif [ -x .venv/bin/python ]; then
        echo "$PWD/.venv/bin/python"
    else
        echo python3
    fi
}

# pamconform_pip_ok PY: whether `PY -m pip install` may install here (pip present, and
# not a distribution's Python that refuses it, PEP 668: Debian 12's python3 does).
pamconform_pip_ok() {
    "$1" -m pip --version >/dev/null 2>&1 || return 1
    "$1" - <<'PY'
import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(1 if managed and sys.prefix == sys.base_prefix else 0)
PY
}
