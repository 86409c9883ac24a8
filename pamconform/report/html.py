"""index.html: a self-contained page a person can read (no external assets)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

VERDICTS = ["PASS", "NON-STRICT", "INFORMATIONAL", "SKIPPED", "FAIL", "ERROR"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em;margin:0 0 .2em} h2{margin-top:1.6em}
.meta{color:#666} table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.v{font-weight:600;padding:.1em .45em;border-radius:3px;color:#fff;white-space:nowrap}
.PASS{background:#2e7d32}.NON-STRICT{background:#f9a825;color:#222}
.INFORMATIONAL{background:#1565c0}.SKIPPED{background:#9e9e9e}
.FAIL{background:#c62828}.ERROR{background:#6a1b9a}
.grid span{display:inline-block;width:14px;height:14px;margin:1px;border-radius:2px}
details{border:1px solid #ddd;border-radius:4px;margin:.35em 0;padding:.3em .6em}
summary{cursor:pointer} pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}
.filters label{margin-right:1em} .req{margin:.3em 0} .msg{color:#b71c1c}
"""

_JS = """
function applyFilters(){
  const on=new Set([...document.querySelectorAll('.filters input[data-v]')]
    .filter(i=>i.checked).map(i=>i.dataset.v));
  const rule=document.getElementById('rule').value;
  document.querySelectorAll('details.case').forEach(d=>{
    const show=on.has(d.dataset.verdict)&&(!rule||d.dataset.rule===rule);
    d.style.display=show?'':'none';});
}
document.querySelectorAll('.filters input,.filters select')
  .forEach(i=>i.addEventListener('change',applyFilters));
"""


def _badge(verdict: str) -> str:
    return f'<span class="v {escape(verdict)}">{escape(verdict)}</span>'


def _wire_table(wire: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{e['t_ms']:.1f}</td><td>#{e['conn']}</td><td>{escape(e['event'])}</td>"
        f"<td><code>{escape(str(e.get('data', '')))}</code></td></tr>"
        for e in wire[:400]
    )
    more = f"<p>... {len(wire) - 400} more events in index.json</p>" if len(wire) > 400 else ""
    return (
        "<table><tr><th>ms</th><th>conn</th><th>event</th><th>bytes</th></tr>"
        f"{rows}</table>{more}"
    )


def _evidence(ev: dict[str, Any]) -> str:
    parts = []
    if ev.get("notes"):
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in ev["notes"]) + "</ul>")
    if ev.get("wire"):
        parts.append("<h4>Wire log</h4>" + _wire_table(ev["wire"]))
    for key, value in ev.items():
        if key in ("notes", "wire"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, indent=2)
        parts.append(f"<h4>{escape(key)}</h4><pre>{escape(text)}</pre>")
    return "".join(parts) or "<p>(no evidence recorded)</p>"


def _case(c: dict[str, Any]) -> str:
    msg = f'<div class="msg">{escape(c["message"])}</div>' if c["message"] else ""
    return (
        f'<details class="case" data-verdict="{escape(c["verdict"])}" '
        f'data-rule="{escape(c["rule"])}" id="{escape(c["id"])}">'
        f"<summary>{_badge(c['verdict'])} <code>{escape(c['id'])}</code> "
        f"{escape(c['rule'])} {escape(c['severity'])} &mdash; {escape(c['title'])} "
        f"<span class=meta>({c['duration_s']:.2f} s)</span></summary>"
        f'<p class="req"><b>Requirement:</b> {escape(c["requirement"])}</p>{msg}'
        f"{_evidence(c['evidence'])}</details>"
    )


def _target(t: dict[str, Any]) -> str:
    counts = {v: sum(c["verdict"] == v for c in t["cases"]) for v in VERDICTS}
    summary = " ".join(f"{_badge(v)} {n}" for v, n in counts.items() if n)
    grid = "".join(
        f'<a href="#{escape(c["id"])}"><span class="{escape(c["verdict"])}" '
        f'title="{escape(c["id"])}: {escape(c["verdict"])}"></span></a>'
        for c in t["cases"]
    )
    return (
        f"<h2>{escape(t['kind'])} &middot; {escape(t['protocol'])} &middot; "
        f"{escape(t['name'])}</h2><p>{summary}</p><div class=grid>{grid}</div>"
        + "".join(_case(c) for c in t["cases"])
    )


def _matrix(targets: list[dict[str, Any]]) -> str:
    """Targets side by side: one row per case id, one column per target."""
    if len(targets) < 2:
        return ""
    ids: list[str] = []
    for t in targets:
        ids += [c["id"] for c in t["cases"] if c["id"] not in ids]
    head = "".join(f"<th>{escape(t['name'])}</th>" for t in targets)
    rows = []
    for cid in ids:
        cells = []
        for t in targets:
            v = next((c["verdict"] for c in t["cases"] if c["id"] == cid), "")
            cells.append(f"<td>{_badge(v) if v else ''}</td>")
        rows.append(f"<tr><td><code>{escape(cid)}</code></td>{''.join(cells)}</tr>")
    return (
        f"<h2>Targets side by side</h2><table><tr><th>case</th>{head}</tr>"
        f"{''.join(rows)}</table>"
    )


def render_html(data: dict[str, Any]) -> str:
    """The report as one HTML page."""
    targets = data["targets"]
    rules = sorted({c["rule"] for t in targets for c in t["cases"]})
    filters = "".join(
        f'<label><input type="checkbox" data-v="{v}" checked> {_badge(v)}</label>'
        for v in VERDICTS
    )
    rule_opts = "".join(f'<option value="{escape(r)}">{escape(r)}</option>' for r in rules)
    body = "".join(_target(t) for t in targets)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pamconform report</title>
<style>{_CSS}</style></head><body>
<h1>pamconform report</h1>
<p class="meta">pamconform {escape(str(data['pamconform']))} &middot; started
{escape(data['started'])} &middot; {data['duration_s']:.1f} s
{' &middot; strict' if data.get('strict') else ''}</p>
<div class="filters">{filters}
<label>rule <select id="rule"><option value="">all</option>{rule_opts}</select></label></div>
{_matrix(targets)}{body}
<script>{_JS}</script></body></html>
"""
