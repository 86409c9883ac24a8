"""A saved redirector finding replayed as a regression case against a server target."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pamconform.core.context import CaseContext, ServerTarget
from pamconform.core.outcome import Fail, Skip
from pamconform.core.redaction import MissingLogin, render_template
from pamconform.fuzz import finding_files
from pamconform.protocols.redirector.client import request
from pamconform.protocols.redirector.fuzz_items import Finding
from pamconform.protocols.redirector.fuzz_oracle import Oracle
from pamconform.protocols.redirector.fuzz_replay import attempt

#: Case ids of regression files: this prefix and the hash in the file's name.
PREFIX = "redir.server.regression-"


def requirement(data: dict[str, Any]) -> str:
    after = " after the valid logins" if data.get("setup_hex") else ""
    return (f"Sent b'{_sent(data)}'{after}, the server gives {data.get('expected', '')} "
            f"(it once gave {data.get('observed', '')}).")


def _sent(data: dict[str, Any], limit: int = 60) -> str:
    """What a saved finding sends, escaped, passwords as markers."""
    chunks = data.get("chunks_hex") or []
    shown = "".join(render_template(c) for c in chunks if isinstance(c, str | list))
    return shown if len(shown) <= limit else shown[:limit] + "..."


def file_hash(data: dict[str, Any]) -> str:
    blob = json.dumps([data.get(k) for k in (*finding_files.BYTE_LISTS, "kind")]).encode()
    return hashlib.sha256(blob).hexdigest()


def check(data: dict[str, Any], name: str, ctx: CaseContext) -> None:
    """Replay the saved finding against the target; FAIL if it still reproduces."""
    t: ServerTarget = ctx.target
    try:
        finding = Finding.from_dict(finding_files.from_file(data, t.credentials))
    except MissingLogin:
        users = ", ".join(finding_files.logins_needed(data))
        raise Skip(f"{name} was recorded with logins the target was not given ({users})"
                   ) from None
    valid = {request(u, p) for u, p in t.credentials}
    missing = [s for s in finding.setup if s not in valid]
    if finding.kind == "valid-denied" and finding.exec.payload not in valid:
        missing.append(finding.exec.payload)
    if missing:
        users = ", ".join(sorted({m.split(b"\n", 1)[0].decode("utf-8", "replace")
                                  for m in missing}))
        raise Skip(f"{name} was recorded with logins the target was not given ({users})")
    ctx.note(f"replaying {name}: {finding.kind} found with seed {finding.seed} "
             f"({finding.exec.generator or 'corpus'})")
    got = attempt(str(t.socket), finding.kind, finding.exec, Oracle(t.credentials), t.timeout,
                  setup=finding.setup, concurrent=finding.concurrent, log=ctx.log)
    if got.reproduces:
        raise Fail(finding.expected, got.text, f"fuzz regression {name} reproduces")


class RedirectorRegressions:
    """The fuzz model's ``regressions``."""

    prefix = PREFIX

    def requirement(self, data: dict[str, Any]) -> str:
        return requirement(data)

    def file_hash(self, data: dict[str, Any]) -> str:
        return file_hash(data)

    def check(self, data: dict[str, Any], name: str, ctx: Any) -> None:
        check(data, name, ctx)
