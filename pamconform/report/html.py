"""index.html: a self-contained page a person can read (no external assets).

Layout: a summary table (one row per target: counts by verdict, a bar, a grid of
cases coloured by verdict), the targets side by side (cases x targets, Autobahn's
agents x cases grid) when there are several, then each target's cases with their
requirement, message, duration and evidence (wire log, login transcripts, PAM return
codes, valgrind excerpts, tracebacks). Filters by verdict, rule, suite, target and
text work without a server; they also read ``?verdict=FAIL,ERROR&rule=R-S2&target=NAME
&suite=S&q=TEXT`` from the address, so a filtered view can be linked (``&open=1`` opens
the cases shown).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

VERDICTS = ["PASS", "NON-STRICT", "INFORMATIONAL", "SKIPPED", "FAIL", "ERROR"]
#: Verdicts of a stopped run (Ctrl-C, SIGTERM): shown only when a report has them.
STOPPED_VERDICTS = ["INTERRUPTED", "NOT-RUN"]
#: Short labels of the grid cells.
SHORT = {"PASS": "P", "NON-STRICT": "NS", "INFORMATIONAL": "I", "SKIPPED": "S", "FAIL": "F",
         "ERROR": "E", "INTERRUPTED": "X", "NOT-RUN": "-"}
#: Wire log rows shown per case (the rest stays in index.json).
WIRE_ROWS = 400

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;
 background:#fff}
main{padding:0 1.5em 3em}
header.top{padding:1em 1.5em .6em;background:#f6f8fa;border-bottom:1px solid #d0d7de}
h1{font-size:1.45em;margin:0 0 .15em} h2{font-size:1.2em;margin:1.6em 0 .4em}
h3{font-size:1.05em;margin:1.2em 0 .3em} h4{margin:.8em 0 .25em;font-size:.95em}
.meta{color:#57606a} code,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
table{border-collapse:collapse;margin:.4em 0}
td,th{border:1px solid #d0d7de;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.zero{color:#aab}
.v{display:inline-block;font-weight:600;font-size:12px;padding:.05em .45em;border-radius:3px;
 color:#fff;white-space:nowrap;min-width:3.2em;text-align:center}
.PASS{background:#1a7f37}.NON-STRICT{background:#d4a72c;color:#1f2328}
.INFORMATIONAL{background:#0969da}.SKIPPED{background:#8c959f}
.FAIL{background:#cf222e}.ERROR{background:#8250df}
.INTERRUPTED{background:#bc4c00}.NOT-RUN{background:#d0d7de;color:#1f2328}
.bar{display:flex;width:220px;height:14px;border-radius:3px;overflow:hidden;
 background:#eee;margin-top:3px}
.bar span{display:block;height:100%}
.cells{display:flex;flex-wrap:wrap;gap:2px;max-width:520px}
.cells a{display:block;width:12px;height:12px;border-radius:2px}
.filters{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid #d0d7de;
 padding:.5em 1.5em;display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center}
.filters label{white-space:nowrap}
.filters select,.filters input[type=search]{font:inherit;max-width:16em}
#shown{color:#57606a;margin-left:auto}
.matrix-wrap{overflow:auto;max-height:75vh;border:1px solid #d0d7de;display:inline-block;
 max-width:100%}
table.matrix{margin:0;border:0} table.matrix td,table.matrix th{border-color:#e1e4e8}
table.matrix thead th{position:sticky;top:0;z-index:2;vertical-align:bottom;
 background:#f6f8fa}
table.matrix th.t{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;
 font-weight:500;font-size:12px;padding:.5em .15em;max-height:14em;overflow:hidden}
table.matrix th.t a{color:#1f2328;text-decoration:none}
table.matrix td.c,table.matrix th.c{position:sticky;left:0;background:#fff;z-index:1;
 white-space:nowrap} table.matrix thead th.c{z-index:3;background:#f6f8fa}
table.matrix td.cell{padding:1px;text-align:center}
table.matrix td.cell a{display:block;min-width:2.2em;color:#fff;font-size:11px;
 font-weight:700;text-decoration:none;border-radius:2px;padding:.1em 0}
table.matrix td.cell a.NON-STRICT{color:#1f2328}
section.target{border-top:2px solid #d0d7de;margin-top:1.8em}
details.case{border:1px solid #d0d7de;border-radius:5px;margin:.3em 0;padding:.25em .6em}
details.case[open]{background:#fcfcfd}
details.case>summary{cursor:pointer;list-style-position:outside;margin-left:1em}
details.case .title{color:#1f2328} details.case .dur{color:#57606a;font-size:12px}
details.case .rule{color:#57606a;font-size:12px}
.sum-msg{display:block;color:#a40e26;font-size:12.5px;margin-left:4.1em;
 overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.req{margin:.5em 0;padding:.35em .6em;border-left:3px solid #0969da;background:#f1f8ff}
.msg{margin:.4em 0;padding:.35em .6em;border-left:3px solid #cf222e;background:#fff5f5;
 white-space:pre-wrap}
.msg.m-NON-STRICT{border-color:#d4a72c;background:#fff8e5}
.msg.m-INFORMATIONAL{border-color:#0969da;background:#f1f8ff}
.msg.m-SKIPPED,.msg.m-PASS{border-color:#8c959f;background:#f6f8fa}
.sum-msg.m-NON-STRICT{color:#7d5a00}.sum-msg.m-INFORMATIONAL{color:#0550ae}
.sum-msg.m-SKIPPED{color:#57606a}
table.matrix td.cell span.na{color:#c0c4c8}
pre{background:#f6f8fa;padding:.5em;overflow-x:auto;font-size:12px;margin:.3em 0;
 max-height:28em;overflow-y:auto;white-space:pre-wrap;word-break:break-all}
table.wire td{font-size:12px;padding:.1em .45em;border-color:#eaeef2}
table.wire td.ev{font-weight:600}
tr.send td.ev{color:#0969da} tr.recv td.ev{color:#1a7f37}
tr.eof td.ev,tr.close td.ev{color:#57606a} tr.bad td.ev{color:#cf222e}
.kv td:first-child{color:#57606a;white-space:nowrap}
.legend span.v{min-width:0}
.hidden{display:none!important}
"""

_JS = """
(function(){
  const $=(s,r)=>[...(r||document).querySelectorAll(s)];
  const boxes=$('.filters input[data-v]');
  const sel=id=>document.getElementById(id);
  const params=new URLSearchParams(location.search);
  if(params.get('verdict')){const want=params.get('verdict').split(',');
    boxes.forEach(b=>{b.checked=want.includes(b.dataset.v);});}
  ['rule','suite','target'].forEach(k=>{if(params.get(k))sel('f-'+k).value=params.get(k);});
  if(params.get('q'))sel('f-q').value=params.get('q');
  function apply(){
    const on=new Set(boxes.filter(b=>b.checked).map(b=>b.dataset.v));
    const rule=sel('f-rule').value,suite=sel('f-suite').value,target=sel('f-target').value;
    const q=sel('f-q').value.trim().toLowerCase();
    const other=d=>(!rule||d.rule===rule)&&(!suite||d.suite===suite)&&
      (!q||d.id.toLowerCase().includes(q)||(d.text||'').toLowerCase().includes(q));
    let shown=0,total=0;
    $('details.case').forEach(el=>{const d=el.dataset;total++;
      const show=on.has(d.verdict)&&other(d)&&(!target||d.target===target);
      el.classList.toggle('hidden',!show);if(show)shown++;});
    $('section.target').forEach(s=>{
      const hide=(target&&s.dataset.target!==target)||!s.querySelector('details.case:not(.hidden)');
      s.classList.toggle('hidden',hide);});
    $('table.matrix tbody tr').forEach(tr=>{const d=tr.dataset;
      const vs=d.verdicts.split(' ');
      tr.classList.toggle('hidden',!(other(d)&&vs.some(v=>on.has(v))));});
    const out=sel('shown');out.textContent=shown+' of '+total+' cases shown';
    sel('none').classList.toggle('hidden',shown>0);
    document.body.dataset.shown=String(shown);
  }
  function openHash(){
    const id=decodeURIComponent(location.hash.slice(1));
    const el=id&&document.getElementById(id);
    if(el&&el.tagName==='DETAILS'){el.classList.remove('hidden');el.open=true;
      el.scrollIntoView();}
  }
  $('.filters input,.filters select').forEach(i=>{
    i.addEventListener('change',apply);i.addEventListener('input',apply);});
  sel('f-open').addEventListener('click',()=>$('details.case:not(.hidden)')
    .forEach(d=>{d.open=true;}));
  sel('f-close').addEventListener('click',()=>$('details.case').forEach(d=>{d.open=false;}));
  window.addEventListener('hashchange',openHash);
  apply();openHash();
  if(params.get('open'))$('details.case:not(.hidden)').forEach(d=>{d.open=true;});
})();
"""


def _badge(verdict: str) -> str:
    return f'<span class="v {escape(verdict)}">{escape(verdict)}</span>'


def _anchor(ti: int, cid: str) -> str:
    """The element id of a case of target number ti (case ids repeat across targets)."""
    return f"t{ti}-{cid}"


def _shown(targets: list[dict[str, Any]]) -> list[str]:
    """The verdicts a report shows: all usual ones, a stopped run's only when present."""
    present = {c["verdict"] for t in targets for c in t["cases"]}
    return VERDICTS + [v for v in STOPPED_VERDICTS if v in present]


def _counts(t: dict[str, Any], verdicts: list[str] | None = None) -> dict[str, int]:
    return {v: sum(c["verdict"] == v for c in t["cases"]) for v in verdicts or _shown([t])}


def _bar(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    parts = "".join(
        f'<span class="{v}" style="width:{100 * n / total:.3f}%" title="{n} {v}"></span>'
        for v, n in counts.items() if n
    )
    return f'<div class="bar">{parts}</div>'


def _cells(ti: int, t: dict[str, Any]) -> str:
    return "".join(
        f'<a class="{escape(c["verdict"])}" href="#{escape(_anchor(ti, c["id"]))}" '
        f'title="{escape(c["id"])}: {escape(c["verdict"])}"></a>'
        for c in t["cases"]
    )


def _seconds(t: dict[str, Any]) -> str:
    wall = (t.get("timing") or {}).get("wall_s")
    return "" if wall is None else f"{float(wall):.1f} s"


def _timing(t: dict[str, Any]) -> str:
    """What the target cost: its wall time, and each suite's."""
    timing = t.get("timing") or {}
    if not timing:
        return ""
    suites = ", ".join(f"{escape(name)} {float(s.get('wall_s', 0)):.1f} s ({s.get('cases', 0)} "
                       "cases)" for name, s in (timing.get("suites") or {}).items())
    return (f'<p class="meta">wall time {float(timing.get("wall_s", 0)):.1f} s'
            f" (cases {float(timing.get('cases_s', 0)):.1f} s)"
            + (f"; suites: {suites}" if suites else "") + "</p>")


def _summary(targets: list[dict[str, Any]]) -> str:
    shown = _shown(targets)
    head = "".join(f"<th>{_badge(v)}</th>" for v in shown)
    rows = []
    for ti, t in enumerate(targets):
        counts = _counts(t, shown)
        nums = "".join(
            f'<td class="n{" zero" if not n else ""}">{n}</td>' for n in counts.values()
        )
        total = sum(counts.values())
        rows.append(
            f'<tr><td><a href="#target-{ti}"><b>{escape(t["name"])}</b></a><br>'
            f'<span class="meta">{escape(t.get("kind", ""))} &middot; '
            f'{escape(t.get("protocol", ""))}</span></td>'
            f'<td class="n">{total}</td>{nums}<td class="n">{_seconds(t)}</td><td>{_bar(counts)}'
            f'<div class="cells" style="margin-top:4px">{_cells(ti, t)}</div></td></tr>'
        )
    return (
        "<h2>Summary</h2><table class=summary><thead><tr><th>target</th><th>cases</th>"
        f"{head}<th>wall time</th><th>cases by verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _matrix(targets: list[dict[str, Any]]) -> str:
    """Targets side by side: one row per case id, one column per target."""
    if len(targets) < 2:
        return ""
    ids: dict[str, dict[str, Any]] = {}
    for t in targets:
        for c in t["cases"]:
            ids.setdefault(c["id"], c)
    head = "".join(
        f'<th class="t" title="{escape(t["name"])}"><a href="#target-{ti}">'
        f"{escape(t['name'])}</a></th>"
        for ti, t in enumerate(targets)
    )
    lookup = [{c["id"]: c for c in t["cases"]} for t in targets]
    rows = []
    for cid, first in ids.items():
        cells, verdicts = [], []
        for ti, t in enumerate(targets):
            c = lookup[ti].get(cid)
            if c is None:
                cells.append('<td class="cell" title="not run"><span class="na">&middot;</span>'
                             "</td>")
                continue
            v = c["verdict"]
            verdicts.append(v)
            tip = f"{t['name']}: {v}" + (f" - {c['message']}" if c.get("message") else "")
            cells.append(
                f'<td class="cell"><a class="{escape(v)}" '
                f'href="#{escape(_anchor(ti, cid))}" title="{escape(tip)}">'
                f"{SHORT.get(v, '?')}</a></td>"
            )
        rows.append(
            f'<tr data-id="{escape(cid)}" data-rule="{escape(first.get("rule", ""))}" '
            f'data-suite="{escape(first.get("suite", ""))}" '
            f'data-verdicts="{escape(" ".join(sorted(set(verdicts))))}">'
            f'<td class="c"><code>{escape(cid)}</code> '
            f'<span class="meta">{escape(first.get("rule", ""))}</span></td>'
            f"{''.join(cells)}</tr>"
        )
    legend = " ".join(f'<span class="v {v}">{SHORT[v]}</span> {v.lower()}'
                      for v in _shown(targets))
    return (
        f"<h2>Targets side by side</h2><p class=\"legend meta\">{legend}</p>"
        f'<div class="matrix-wrap"><table class="matrix"><thead><tr>'
        f'<th class="c">case</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</div>"
    )


# --------------------------------------------------------------------------- evidence


def _wire_table(wire: list[dict[str, Any]]) -> str:
    rows = []
    for e in wire[:WIRE_ROWS]:
        event = str(e.get("event", ""))
        cls = event if event in ("send", "recv", "eof", "close") else (
            "bad" if any(w in event for w in ("err", "reset", "refused", "timeout", "abort"))
            else "")
        data = str(e.get("data", ""))
        size = f" <span class=meta>({e['size']} B)</span>" if e.get("size") else ""
        rows.append(
            f'<tr class="{cls}"><td class="n">{float(e.get("t_ms", 0)):.1f}</td>'
            f"<td>#{escape(str(e.get('conn', '')))}</td><td class=ev>{escape(event)}</td>"
            f"<td><code>{escape(data)}</code>{size}</td></tr>"
        )
    more = (f"<p class=meta>... {len(wire) - WIRE_ROWS} more events in index.json</p>"
            if len(wire) > WIRE_ROWS else "")
    return (
        "<table class=wire><tr><th>ms</th><th>conn</th><th>event</th><th>bytes</th></tr>"
        f"{''.join(rows)}</table>{more}"
    )


def _pre(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
        if len(text) > 100:
            text = json.dumps(value, indent=2)
    return f"<pre>{escape(text)}</pre>"


def _kv(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in pairs if v not in (None, "")
    )
    return f"<table class=kv>{rows}</table>" if rows else ""


def _logins(logins: list[Any]) -> str:
    """Logins through sshd/su: outcome, latency, command and the pexpect transcript."""
    parts = []
    for i, login in enumerate(logins, 1):
        if not isinstance(login, dict):
            parts.append(_pre(login))
            continue
        outcome = str(login.get("outcome", ""))
        cls = {"GRANTED": "PASS", "DENIED": "INFORMATIONAL", "HUNG": "FAIL",
               "ERROR": "ERROR"}.get(outcome, "SKIPPED")
        head = (f"<h4>Login {i}: {escape(str(login.get('label', '')))} "
                f'<span class="v {cls}">{escape(outcome)}</span> '
                f"<span class=meta>via {escape(str(login.get('via', '')))}, "
                f"{float(login.get('latency_s', 0)):.2f} s</span></h4>")
        known = {"label", "outcome", "via", "latency_s", "transcript", "command", "detail",
                 "server", "prompts"}
        info = _kv([("detail", escape(str(login.get("detail", "")))),
                    ("server", escape(str(login.get("server", "")))),
                    ("prompts", escape(str(login.get("prompts", "")))),
                    ("command", f"<code>{escape(str(login.get('command', '')))}</code>")]
                   + [(k, escape(json.dumps(v))) for k, v in login.items() if k not in known])
        transcript = login.get("transcript")
        parts.append(head + info + (f"<b>transcript</b>{_pre(transcript)}" if transcript else ""))
    return "".join(parts)


def _valgrind(v: Any) -> str:
    """A memcheck summary: error count, leaks, and the excerpt of the first errors."""
    if not isinstance(v, dict):
        return _pre(v)
    errors = v.get("errors")
    cls = "PASS" if errors == 0 else "FAIL"
    head = (f'<p><span class="v {cls}">{escape(str(errors))} error(s)</span> '
            f"<span class=meta>{escape(str(v.get('leaks', '')))}</span></p>")
    excerpt = v.get("excerpt")
    rest = {k: val for k, val in v.items()
            if k not in ("errors", "leaks", "excerpt", "invalid", "uninitialised", "other",
                         "definitely_lost_bytes")}
    return head + (_pre(excerpt) if excerpt else "") + (_pre(rest) if rest else "")


def _steps(steps: list[Any]) -> str:
    """A list of records as a table (PAM calls and their return codes, prompts...)."""
    if not steps or not all(isinstance(s, dict) for s in steps):
        return _pre(steps) if steps else ""
    keys: list[str] = []
    for s in steps:
        keys += [k for k in s if k not in keys]
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td><code>{escape(str(s.get(k, '')))}</code></td>" for k in keys)
        + "</tr>" for s in steps
    )
    return f"<table class=wire><tr>{head}</tr>{rows}</table>"


def _attempts(attempts: list[Any]) -> str:
    """Direct-driver attempts: PAM return codes, conversation, stderr, valgrind."""
    parts = []
    for i, a in enumerate(attempts, 1):
        if not isinstance(a, dict):
            parts.append(_pre(a))
            continue
        parts.append(f"<h4>Attempt {i}: {escape(str(a.get('label', '')))} "
                     f"<span class=meta>{escape(str(a.get('summary', '')))}</span></h4>")
        if a.get("steps"):
            parts.append("<b>PAM return codes</b>" + _steps(a["steps"]))
        for key in ("prompts", "messages"):
            if a.get(key):
                parts.append(f"<b>{key}</b>{_steps(a[key])}")
        if a.get("stderr"):
            parts.append(f"<b>stderr</b>{_pre(a['stderr'])}")
        if a.get("valgrind"):
            parts.append(f"<b>valgrind</b>{_valgrind(a['valgrind'])}")
        rest = {k: v for k, v in a.items()
                if k not in ("label", "summary", "steps", "prompts", "messages", "stderr",
                             "valgrind")}
        if rest:
            parts.append(_pre(rest))
    return "".join(parts)


def _evidence(ev: dict[str, Any]) -> str:
    parts = []
    if ev.get("notes"):
        parts.append("<h4>Notes</h4><ul>" + "".join(
            f"<li>{escape(str(n))}</li>" for n in ev["notes"]) + "</ul>")
    if ev.get("wire"):
        parts.append("<h4>Wire log</h4>" + _wire_table(ev["wire"]))
    if isinstance(ev.get("logins"), list):
        parts.append(_logins(ev["logins"]))
    if isinstance(ev.get("attempts"), list):
        parts.append(_attempts(ev["attempts"]))
    if ev.get("valgrind"):
        parts.append("<h4>valgrind</h4>" + _valgrind(ev["valgrind"]))
    for key, value in ev.items():
        if key in ("notes", "wire", "logins", "attempts", "valgrind", "traceback"):
            continue
        parts.append(f"<h4>{escape(key)}</h4>{_pre(value)}")
    if ev.get("traceback"):
        parts.append("<h4>Traceback (harness)</h4>" + _pre(ev["traceback"]))
    return "".join(parts) or "<p class=meta>(no evidence recorded)</p>"


def _case(ti: int, target: str, c: dict[str, Any]) -> str:
    message = c.get("message") or ""
    verdict = c["verdict"]
    mcls = f"m-{escape(verdict)}"
    sum_msg = (f'<span class="sum-msg {mcls}">{escape(message)}</span>'
               if message and verdict != "PASS" else "")
    msg = f'<div class="msg {mcls}">{escape(message)}</div>' if message else ""
    text = " ".join([c.get("title", ""), message])
    return (
        f'<details class="case" id="{escape(_anchor(ti, c["id"]))}" '
        f'data-id="{escape(c["id"])}" data-verdict="{escape(verdict)}" '
        f'data-rule="{escape(c.get("rule", ""))}" data-suite="{escape(c.get("suite", ""))}" '
        f'data-target="{escape(target)}" data-text="{escape(text)}">'
        f"<summary>{_badge(verdict)} <code>{escape(c['id'])}</code> "
        f'<span class="title">{escape(c.get("title", ""))}</span> '
        f'<span class="rule">{escape(c.get("rule", ""))} {escape(c.get("severity", ""))}</span> '
        f'<span class="dur">{float(c.get("duration_s", 0)):.2f} s</span>{sum_msg}</summary>'
        f'<p class="req"><b>Requirement</b> ({escape(c.get("rule", ""))} '
        f'{escape(c.get("severity", ""))}): {escape(c.get("requirement", ""))}</p>'
        f'{msg}<p class="meta">suite {escape(c.get("suite", ""))} &middot; '
        f"{float(c.get('duration_s', 0)):.3f} s</p>"
        f"{_evidence(c.get('evidence') or {})}</details>"
    )


def _target_info(t: dict[str, Any]) -> str:
    """Extra facts of a target (module source, build, PAM stacks, lab checks...)."""
    extra = {k: v for k, v in t.items() if k not in ("name", "kind", "protocol", "summary",
                                                     "cases", "timing")}
    if not extra:
        return ""
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td>"
        + (f"<code>{escape(v)}</code>" if isinstance(v, str) and "\n" not in v else _pre(v))
        + "</td></tr>" for k, v in extra.items()
    )
    return f"<details><summary>target details</summary><table class=kv>{rows}</table></details>"


def _target(ti: int, t: dict[str, Any]) -> str:
    counts = _counts(t)
    summary = " ".join(f"{_badge(v)} {n}" for v, n in counts.items() if n)
    return (
        f'<section class="target" id="target-{ti}" data-target="{escape(t["name"])}">'
        f"<h2>{escape(t['name'])} <span class=meta>{escape(t.get('kind', ''))} &middot; "
        f"{escape(t.get('protocol', ''))}</span></h2><p>{summary}</p>{_bar(counts)}"
        f"{_timing(t)}{_target_info(t)}"
        + "".join(_case(ti, t["name"], c) for c in t["cases"])
        + "</section>"
    )


def _options(values: list[str]) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)


def render_html(data: dict[str, Any]) -> str:
    """The report as one HTML page."""
    targets = data["targets"]
    cases = [c for t in targets for c in t["cases"]]
    rules = sorted({c.get("rule", "") for c in cases})
    suites = sorted({c.get("suite", "") for c in cases})
    shown = _shown(targets)
    totals = {v: sum(c["verdict"] == v for c in cases) for v in shown}
    filters = "".join(
        f'<label><input type="checkbox" data-v="{v}" checked> {_badge(v)} '
        f"<span class=meta>{totals[v]}</span></label>"
        for v in shown
    )
    body = "".join(_target(ti, t) for ti, t in enumerate(targets))
    strict = " &middot; strict" if data.get("strict") else ""
    if data.get("shard"):
        strict += f" &middot; shard {escape(str(data['shard'].get('part', '')))}"
    if data.get("merged"):
        strict += f" &middot; merged from {len(data['merged'].get('shards', []))} shard reports"
    if data.get("interrupted"):
        strict += (f" &middot; <b>stopped by {escape(str(data['interrupted']))}</b> "
                   "(unfinished cases: INTERRUPTED, NOT-RUN)")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pamconform report</title>
<style>{_CSS}</style></head><body>
<header class="top"><h1>pamconform report</h1>
<div class="meta">pamconform {escape(str(data.get('pamconform', '')))} &middot; started
{escape(str(data.get('started', '')))} &middot; {float(data.get('duration_s', 0)):.1f} s
&middot; {len(targets)} target(s), {len(cases)} case results{strict}</div></header>
<nav class="filters">{filters}
<label>rule <select id="f-rule"><option value="">all</option>{_options(rules)}</select></label>
<label>suite <select id="f-suite"><option value="">all</option>{_options(suites)}</select>
</label>
<label>target <select id="f-target"><option value="">all</option>
{_options([t["name"] for t in targets])}</select></label>
<input type="search" id="f-q" placeholder="search id, title, message" size="24">
<button type="button" id="f-open">open shown</button>
<button type="button" id="f-close">close all</button>
<span id="shown">{len(cases)} cases (filters need JavaScript)</span></nav>
<main>{_summary(targets)}{_matrix(targets)}
<p id="none" class="hidden meta">No case matches the filters.</p>{body}</main>
<script>{_JS}</script></body></html>
"""
