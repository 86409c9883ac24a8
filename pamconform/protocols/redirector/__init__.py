"""The pam_redirector protocol: `user\\npass\\n` in, `0` (grant) or non-zero out."""
