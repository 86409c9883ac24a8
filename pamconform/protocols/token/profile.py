"""The transient-token protocol as a plug-in: its rules, suites and reference targets."""

from pamconform.protocols import Protocol, ReferenceModule, register

PROTOCOL = register(Protocol(
    name="transient-token",
    title="transient_token",
    rules=("T-S", "T-M"),
    suites={"server": ("token_server",), "module": ("token_module_e2e",)},
    hooks="pamconform.protocols.token.hooks",
    fuzz_model="pamconform.protocols.token.fuzz_model:MODEL",
    reference_server="token_server.py",
    reference_module=ReferenceModule(
        folder="pam_transient_token", so="pam_transient_token.so", args="",
        default_timeout=5.0),
    aliases=("token",),
    # the lab's module line adds these unless --args gives them (a short wait keeps it fast)
    extra={"lab_module_args": "timeout=3"},
))
