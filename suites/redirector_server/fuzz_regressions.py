"""Fuzz regressions: every finding saved in ``regressions/*.json`` is a MUST case.

``pamconform fuzz server ... --save-regressions suites/redirector_server/regressions``
adds them; each is replayed as it was found (its setup logins first) and FAILs while
it still reproduces. Ids are ``redir.server.regression-<hash of what is sent>``.
"""

from pathlib import Path

from pamconform.core.registry import case_factory
from pamconform.fuzz.regressions import register_directory

# a finding's request is often a known user's login gone wrong (``alice\na\n``): one at a
# time with the other cases that send the first login wrong passwords
case = case_factory(protocol="redirector", kind="server", exclusive="first-login")

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
CASE_IDS = register_directory(REGRESSIONS, case)
