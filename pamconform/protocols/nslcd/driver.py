"""Make one nslcd exchange and print its outcome as one JSON line (run inside the lab).

    python3 -m <package>.driver --socket /run/nslcd/socket authc USER  < password
    python3 -m <package>.driver --socket S authz USER

The password comes on stdin (never in argv, which other processes can read); a trailing
newline is not stripped unless ``--strip-newline`` is given. The JSON holds codes, names and
messages, never the password. Exit 0 for any outcome, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import codec
from .client import Answer, exchange


def outcome_json(outcome: Answer | object) -> dict[str, object]:
    """A JSON-able summary of an exchange's outcome."""
    if isinstance(outcome, Answer):
        entries: list[dict[str, object]] = []
        for e in outcome.reply.entries:
            fields = {k: getattr(e, k) for k in getattr(e, "__dataclass_fields__", {})}
            for k, v in list(fields.items()):
                if isinstance(v, bytes):
                    fields[k] = v.decode("utf-8", "replace")
                elif k in ("authc", "authz", "code"):
                    fields[k + "_name"] = codec.code_name(int(v))
            entries.append({"type": type(e).__name__, **fields})
        return {"ok": True, "entries": entries, "trailing": outcome.trailing,
                "elapsed_s": round(outcome.elapsed_s, 3)}
    return {
        "ok": False,
        "kind": getattr(outcome, "kind", "?"),
        "phase": getattr(outcome, "phase", ""),
        "detail": getattr(outcome, "detail", ""),
        "received_len": len(getattr(outcome, "received", b"")),
        "elapsed_s": round(float(getattr(outcome, "elapsed_s", 0.0)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nslcd-driver")
    p.add_argument("--socket", required=True)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--service", default="pamconform")
    p.add_argument("--strip-newline", action="store_true")
    p.add_argument("action", choices=("authc", "authz", "sess_o"))
    p.add_argument("user")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    ctx = codec.PamContext(args.user, args.service)
    req: codec.Request
    if args.action == "authc":
        password = sys.stdin.buffer.read(4096)
        if args.strip_newline:
            password = password.rstrip(b"\n")
        req = codec.AuthcRequest(ctx, password)
    elif args.action == "authz":
        req = codec.AuthzRequest(ctx)
    else:
        req = codec.SessionOpenRequest(ctx)
    print(json.dumps(outcome_json(exchange(args.socket, req, timeout=args.timeout))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
