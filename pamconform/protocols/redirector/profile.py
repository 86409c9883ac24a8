"""The pam_redirector protocol as a plug-in: its rules, suites and reference targets."""

from pamconform.protocols import Protocol, ReferenceModule, register

PROTOCOL = register(Protocol(
    name="redirector",
    title="pam_redirector",
    rules=("R-S", "R-M", "STACK-"),
    suites={
        "server": ("redirector_server",),
        "module": ("redirector_module_e2e", "redirector_module_direct"),
        "stack": ("pam_chain",),
    },
    hooks="pamconform.protocols.redirector.hooks",
    fuzz_model="pamconform.protocols.redirector.fuzz_model:MODEL",
    reference_server="redirector_server.py",
    reference_module=ReferenceModule(
        folder="pam_redirector", so="pam_redirector.so", args="{socket}",
        default_timeout=10.0, run_args="{socket} timeout=3"),
    # the module files `pamconform audit` recognises as this protocol's socket module
    extra={"pam_modules": ("pam_redirector.so",),
           # `module --no-lab`: the socket belongs to the invoking user, not root
           "rootless_module_args": "server_uid={uid}"},
))
