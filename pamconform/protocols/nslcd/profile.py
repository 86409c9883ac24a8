"""The nslcd protocol (pam_ldap to nslcd/pynslcd) as a plug-in."""

from pamconform.protocols import Protocol, register

PROTOCOL = register(Protocol(
    name="nslcd",
    title="nslcd (pam_ldap)",
    rules=("N-S", "N-M"),
    suites={"server": ("nslcd_server",)},
    hooks="pamconform.protocols.nslcd.hooks",
    fuzz_model="pamconform.protocols.nslcd.fuzz_model:MODEL",
))
