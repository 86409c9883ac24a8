"""The nslcd protocol (pam_ldap to nslcd/pynslcd) as a plug-in.

It has no reference server or module of its own: its targets are Debian's packages in
the nslcd lab (the hooks' ``lab_packages``) or a daemon's socket on the host.
"""

from pamconform.protocols import Protocol, register

PROTOCOL = register(Protocol(
    name="nslcd",
    title="nslcd (pam_ldap)",
    rules=("N-S", "N-M"),
    suites={"server": ("nslcd_server",), "module": ("nslcd_module",)},
    hooks="pamconform.protocols.nslcd.hooks",
    fuzz_model="pamconform.protocols.nslcd.fuzz_model:MODEL",
    extra={
        # the module files `pamconform audit` recognises as this protocol's socket module
        "pam_modules": ("pam_ldap.so",),
        # how the audit runs such a stack: the real module against each daemon state
        "stack_audit": "pamconform.protocols.nslcd.stack_audit",
    },
))
