"""Stacks in real libpam (the lab) against the Linux-PAM model.

- the module table the model uses (pam_permit, pam_deny, pam_debug, pam_redirector);
- the ``pam_chain`` suite: the control-flag matrix in every server state;
- differential testing: >= 2,000 generated stacks in batches of 100 (one tar, one
  agent batch each); a divergence is shrunk by hypothesis to a minimal stack and
  saved under ``tests/fixtures/chain_regressions/`` (or ``$PAMCONFORM_CHAIN_REGRESSIONS``);
- the saved regression cases replayed in the lab;
- the single-file form: a container without ``/etc/pam.d``, stacks in ``/etc/pam.conf``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pamconform.core import loader
from pamconform.core.registry import all_cases
from pamconform.core.runner import run_target
from pamconform.core.verdicts import Verdict
from pamconform.lab.stack import ALL_STEPS, STACK_ROOT, StackLab
from pamconform.lab.stack_cases import StackTarget
from pamconform.lab.stack_differential import (
    Divergence,
    check_batch,
    load_regressions,
    save_regression,
    stacks,
)
from pamconform.model import codes
from pamconform.model.modules import LabModules
from pamconform.model.parser import Layout, load_text
from pamconform.model.trace import pamdrive_results

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
REGRESSIONS = Path(os.environ.get("PAMCONFORM_CHAIN_REGRESSIONS",
                                  ROOT / "tests" / "fixtures" / "chain_regressions"))
BATCH = 100
MIN_STACKS = 2000


@pytest.fixture(scope="module")
def lab(docker_client: Any) -> Iterator[StackLab]:
    with StackLab.open(client=docker_client, say=lambda _line: None) as stack_lab:
        yield stack_lab


def _say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}")


def test_module_table_matches_the_lab(lab: StackLab) -> None:
    modules = {
        "permit": "pam_permit.so",
        "deny": "pam_deny.so",
        "debug": "pam_debug.so auth=user_unknown cred=cred_expired acct=acct_expired "
                 "open_session=session_err close_session=abort prechauthtok=success "
                 "chauthtok=authtok_err",
        "debug-default": "pam_debug.so",
        "socket": "pam_redirector.so /run/pc-chain/deny.sock timeout=0.5",
    }
    directory = f"{STACK_ROOT}/table"
    files, requests = {}, []
    for name, module in modules.items():
        files[f"{directory}/{name}"] = "".join(
            f"{f} [default=ok] {module}\n" for f in ("auth", "account", "session", "password"))
        requests.append(lab.request(name, confdir=directory, rid=name))
    files[f"{directory}/other"] = ""
    lab.put_files(files)
    model = LabModules(sockets={"/run/pc-chain/deny.sock": codes.AUTH_ERR})
    from pamconform.model.linux_pam import run

    for name, real in zip(modules, lab.run(requests), strict=True):
        cfg = load_text(files[f"{directory}/{name}"], name, layout=Layout.confdir(directory))
        expected = run(cfg, model, ALL_STEPS, keep_going=True).results()
        assert pamdrive_results(real["result"])[1] == expected, name


@pytest.mark.parametrize("jobs", [1, 8])
def test_chain_suite_matrix(lab: StackLab, capsys: pytest.CaptureFixture[str],
                            jobs: int) -> None:
    """The same verdicts one case at a time and side by side (as ``run`` runs them)."""
    loader.load_suite("pam_chain")
    cases = all_cases(protocol="redirector", kind="stack")
    assert 20 <= len(cases) <= 40
    assert all(not c.exclusive for c in cases)  # each case has its own stack directories
    start = time.monotonic()
    result = run_target(cases, StackTarget("lab libpam 1.5.2", lab), kind="stack",
                        protocol="redirector", jobs=jobs)
    bad = {r.case.id: r.message for r in result.results
           if r.verdict not in (Verdict.PASS, Verdict.INFORMATIONAL)}
    assert bad == {}
    fail_open = sorted(r.case.id for r in result.results if r.verdict is Verdict.INFORMATIONAL)
    assert fail_open == ["chain.ignore.primed-with-permit", "chain.jump.past-the-end",
                         "chain.optional.permit", "chain.reset.undoes-the-verdict",
                         "chain.sufficient.permit"]
    evidence = next(r for r in result.results if r.case.id == "chain.sufficient.permit").evidence
    assert "trace" in evidence["after"]["states"]["deny"]
    _say(capsys, f"chain matrix, --jobs {jobs}: {len(cases)} cases, {lab.attempts} attempts "
         f"in {time.monotonic() - start:.1f} s")


def _differential(lab: StackLab, *, examples: int, batch: int, tag: str,
                  capsys: pytest.CaptureFixture[str]) -> None:
    seen = {"stacks": 0, "seconds": 0.0, "batches": 0}
    found: list[Divergence] = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck),
              phases=(Phase.generate, Phase.shrink))
    @given(st.lists(stacks(), min_size=batch, max_size=batch))
    def check(generated: list[Any]) -> None:
        seen["batches"] += 1
        result = check_batch(lab, generated, f"{tag}{seen['batches']}")
        seen["stacks"] += result.stacks
        seen["seconds"] += result.seconds
        if result.divergences:
            found[:] = result.divergences
            raise AssertionError("libpam and the model disagree:\n"
                                 + "\n".join(d.describe() for d in result.divergences[:3]))

    start = time.monotonic()
    try:
        check()
    except AssertionError:
        for div in found:  # the last failing batch: hypothesis' minimal example
            digest = hashlib.sha256(div.files[div.main].encode("latin-1")).hexdigest()[:10]
            path = save_regression(div, REGRESSIONS, f"found-{tag}-{digest}")
            _say(capsys, f"saved regression case {path}")
        raise
    wall = time.monotonic() - start
    _say(capsys, f"differential ({tag}): {seen['stacks']} stacks in {wall:.1f} s = "
         f"{seen['stacks'] / wall:.0f} stacks/s ({seen['stacks'] / seen['seconds']:.0f}/s "
         "in the lab, generation excluded), 0 divergences")


def test_differential_2000_stacks(lab: StackLab, capsys: pytest.CaptureFixture[str]) -> None:
    _differential(lab, examples=MIN_STACKS // BATCH, batch=BATCH, tag="d", capsys=capsys)
    assert lab.attempts >= MIN_STACKS


def test_saved_regressions_replay_in_libpam(lab: StackLab) -> None:
    cases = load_regressions(REGRESSIONS)
    assert cases, f"no regression case in {REGRESSIONS}"
    directory = f"{STACK_ROOT}/regressions"
    files: dict[str, str] = {}
    for case in cases:
        files.update(case.files(directory))
    lab.put_files(files)
    requests = [lab.request(c.label, confdir=directory, steps=c.steps, rid=c.label)
                for c in cases]
    for case, real in zip(cases, lab.run(requests), strict=True):
        assert case.matches(real), (case.label, real.get("status"), real.get("result"))


@pytest.fixture(scope="module")
def conf_lab(docker_client: Any) -> Iterator[StackLab]:
    with StackLab.open(client=docker_client, say=lambda _line: None,
                       single_file=True) as stack_lab:
        yield stack_lab


def test_pam_conf_mode(conf_lab: StackLab, capsys: pytest.CaptureFixture[str]) -> None:
    assert conf_lab.box.run(["test", "-e", "/etc/pam.d"], timeout=10).exit_code == 1
    conf = ("sshd auth required pam_permit.so\nSSHD account required pam_deny.so\n"
            "OTHER auth required pam_debug.so auth=maxtries\n"
            "other account required pam_debug.so acct=acct_expired\n"
            "su auth include /tmp/pc-chain/conf-inc\n")
    conf_lab.put_files({"/etc/pam.conf": conf,
                        "/tmp/pc-chain/conf-inc": "auth sufficient pam_permit.so\n"})
    steps = ("authenticate", "acct_mgmt")
    results = conf_lab.run([conf_lab.request(s, steps=steps, rid=s)
                            for s in ("Sshd", "su", "login")])
    got = {r["id"]: pamdrive_results(r["result"])[1] for r in results}
    assert got == {
        "Sshd": [("authenticate", "PAM_SUCCESS"), ("acct_mgmt", "PAM_AUTH_ERR")],
        "su": [("authenticate", "PAM_SUCCESS"), ("acct_mgmt", "PAM_ACCT_EXPIRED")],
        "login": [("authenticate", "PAM_MAXTRIES"), ("acct_mgmt", "PAM_ACCT_EXPIRED")],
    }
    _differential(conf_lab, examples=4, batch=BATCH, tag="c", capsys=capsys)
