"""PAM stacks: a parser and models of Linux-PAM's and OpenPAM's chain evaluation.

- :mod:`~pamconform.model.parser` — ``/etc/pam.d`` files and ``/etc/pam.conf`` as
  libpam 1.5 reads them (handler chains, problems with file and line).
- :mod:`~pamconform.model.linux_pam` — the dispatch model: a chain's result from
  each module's return code, with the trace of decisions.
- :mod:`~pamconform.model.openpam` — OpenPAM's rules, a second model.
- :mod:`~pamconform.lab.stack` / :mod:`~pamconform.lab.stack_differential` — real
  libpam in the lab, and generated stacks run by both.
- :mod:`~pamconform.model.audit` — ``pamconform audit``: a user's stack against
  every auth-server state.

>>> from pamconform.model.parser import load_text
>>> from pamconform.model.linux_pam import run
>>> cfg = load_text("auth required pam_permit.so\\nauth sufficient pam_x.so\\n")
>>> run(cfg, lambda h, f: 0 if h.module_name == "pam_permit" else 9).results()
[('authenticate', 'PAM_SUCCESS')]
"""
