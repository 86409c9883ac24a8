"""Protocol plug-ins: one package per wire protocol (codec, client, profile)."""
