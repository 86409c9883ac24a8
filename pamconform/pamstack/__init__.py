"""PAM stacks: a parser and models of Linux-PAM's and OpenPAM's chain evaluation.

- :mod:`~pamconform.pamstack.parser` — ``/etc/pam.d`` files and ``/etc/pam.conf`` as
  libpam 1.5 reads them (handler chains, problems with file and line).
- :mod:`~pamconform.pamstack.linux_pam` — the dispatch model: a chain's result from
  each module's return code, with the trace of decisions.
- :mod:`~pamconform.pamstack.openpam` — OpenPAM's rules, a second model.
- :mod:`~pamconform.pamstack.lab` / :mod:`~pamconform.pamstack.differential` — real
  libpam in the lab, and generated stacks run by both.
- :mod:`~pamconform.pamstack.audit` — ``pamconform audit``: a user's stack against
  every auth-server state.

>>> from pamconform.pamstack.parser import load_text
>>> from pamconform.pamstack.linux_pam import run
>>> cfg = load_text("auth required pam_permit.so\\nauth sufficient pam_x.so\\n")
>>> run(cfg, lambda h, f: 0 if h.module_name == "pam_permit" else 9).results()
[('authenticate', 'PAM_SUCCESS')]
"""
