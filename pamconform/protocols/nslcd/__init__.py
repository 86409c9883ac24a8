"""The nslcd protocol: what pam_ldap (nss-pam-ldapd) says to nslcd/pynslcd over a UNIX socket.

``codec`` encodes requests and decodes replies (pure, bounded); ``client`` makes one
exchange on a socket with a deadline. Both use only the standard library, so the lab can
copy this package into a container and run it on a bare ``python3``. ``lab`` (Docker glue)
is not imported here.
"""
