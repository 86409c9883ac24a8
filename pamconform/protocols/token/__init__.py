"""The transient-token protocol: the whole token in, ``PASS\\n\\0`` or ``FAIL\\n\\0`` out."""
