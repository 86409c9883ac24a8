"""The redactor: secrets become markers in every form, mutations relative to the marker."""

from __future__ import annotations

import base64
import io
import json

import pytest

from pamconform.cli.console import Console, cut
from pamconform.core.lookalikes import variants
from pamconform.core.redaction import MissingLogin, Redactor, render_template, resolve
from pamconform.core.wirelog import WireLog

PW = b"alice-auth-pw"
MARK = "\u2039password of alice, 13 bytes\u203a"
TOKEN = b"TTK1000:4242:AbCdEfGh+/0123456789abcdefghijkl"


@pytest.fixture
def r() -> Redactor:
    red = Redactor()
    red.add_login(b"alice", PW)
    red.add_token(TOKEN, len(b"TTK1000:4242:"))
    return red


@pytest.mark.parametrize("text", [
    "alice-auth-pw", repr(PW), repr(PW.decode()), json.dumps(PW.decode()), PW.hex(),
    PW.hex().upper(), base64.b64encode(PW).decode(), base64.urlsafe_b64encode(PW).decode(),
])
def test_every_form_is_replaced(r: Redactor, text: str) -> None:
    out = r.text(f"before {text} after")
    assert "alice-auth-pw" not in out and PW.hex() not in out.lower()
    assert "password of alice, 13 bytes" in out


def test_escaped_and_non_ascii_secrets() -> None:
    red = Redactor()
    secret = "pä'ss\"wörd\\x".encode()
    red.add_login(b"bob", secret)
    for text in (repr(secret), repr(secret.decode()), json.dumps(secret.decode()),
                 json.dumps(secret.decode(), ensure_ascii=False), secret.hex()):
        assert "password of bob" in red.text(text), text


@pytest.mark.parametrize(("wire", "shown"), [
    ("alice\\nalice-auth-pw\\n", f"alice\\n{MARK}\\n"),
    ("alice\\nalice-auth-pwx\\n", f"alice\\n{MARK}x\\n"),
    ("alice\\nalice-auth-p\\n", f"alice\\n{MARK}[:12]\\n"),
    ("alice\\nALICE-AUTH-PW\\n", f"alice\\n{MARK}.upper()\\n"),
    ("alice-Xuth-pw", f"{MARK}[:6]X{MARK}[7:]"),
])
def test_mutations_are_shown_relative_to_the_marker(r: Redactor, wire: str,
                                                    shown: str) -> None:
    assert r.text(wire) == shown


@pytest.mark.parametrize("prose", [
    "the user alice authenticates", "alice\\nbob", "auth", "wrong password for alice",
])
def test_words_of_a_password_are_left_alone(r: Redactor, prose: str) -> None:
    assert r.text(prose) == prose


def test_markers_are_not_redacted_again() -> None:
    red = Redactor()
    red.add_login(b"pat", b"password1")
    once = red.text("x password1 y")
    assert red.text(once) == once and "password1" not in once


def test_tokens_keep_their_public_head(r: Redactor) -> None:
    assert r.text(TOKEN.decode() + "\\n") == "\u2039token, 45 bytes\u203a\\n"
    assert r.text("fresh token TTK1000:4242:<secret>") == "fresh token TTK1000:4242:<secret>"
    flipped = TOKEN[:20] + b"X" + TOKEN[21:]
    assert "AbCdEfGh" not in r.text(flipped.decode())


def test_a_secret_split_across_writes_is_marked_in_each() -> None:
    red = Redactor()
    red.add_login(b"alice", PW)
    shown = red.chunks([bytes([b]) for b in b"alice\n" + PW + b"\n"], 256)
    assert shown[:6] == [None] * 6
    assert shown[6] == f"{MARK}[:1]" and shown[18] == f"{MARK}[12:]"
    assert "".join(s or "" for s in shown).count("password of alice") == 13


def test_wire_log_renders_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    red = Redactor()
    red.add_login(b"alice", PW)
    monkeypatch.setattr("pamconform.core.wirelog.current", lambda: red)
    log = WireLog()
    conn = log.new_conn()
    log.add(conn, "send", b"alice\nalice-au")
    log.add(conn, "send", b"th-pw\n")
    assert "alice-au" not in log.render() and "th-pw" not in json.dumps(log.as_list())
    assert [e["data"] for e in log.as_list()] == [f"alice\\n{MARK}[:8]", f"{MARK}[8:]\\n"]


def test_templates_round_trip(r: Redactor) -> None:
    for data in (b"alice\nalice-auth-pw\n", b"alice\nalice-auth-p\n", b"alice\nALICE-AUTH-PW\n",
                 b"alice\nalice-Xuth-pw\n", b"bob\nx\n"):
        template = r.template(data)
        assert "alice-auth" not in json.dumps(template)
        assert resolve(template, r.logins) == data
    assert r.template(b"bob\nx\n") == b"bob\nx\n".hex()
    assert render_template(r.template(b"alice\nalice-auth-p\n")) == f"alice\\n{MARK}[:12]\\n"
    with pytest.raises(MissingLogin, match="password of alice"):
        resolve(r.template(b"alice\nalice-auth-pw\n"), [(b"bob", b"x")])


def test_console_redacts_and_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    red = Redactor()
    red.add_login(b"alice", PW)
    monkeypatch.setattr("pamconform.cli.console.redact", red.text)
    out = io.StringIO()
    Console(out).line("got b'alice\\nalice-auth-pw\\n'")
    assert "alice-auth-pw" not in out.getvalue() and MARK in out.getvalue()
    long = cut("x" * 1000)
    assert len(long) == 200 and long.endswith("\u2026")
    assert cut("a\nb") == "a b"


def test_a_template_resolves_to_the_login_of_its_length(r: Redactor) -> None:
    """Two logins of one user seen by one process: the reference keeps its byte count."""
    template = r.template(b"alice\nalice-auth-pw\n")
    other = [(b"alice", b"abcd"), *r.logins]  # an earlier, shorter login of alice
    assert resolve(template, other) == b"alice\nalice-auth-pw\n"


def test_a_lookalike_changed_further_is_still_redacted() -> None:
    """A full-width or upper-case form of the password, cut or extended, is marked as a
    fragment (it was only recognised whole)."""
    red = Redactor()
    red.add_login(b"alice", b"hunter42x")
    forms = dict(variants(b"hunter42x"))
    for name in ("fullwidth", "unicode_upper"):
        whole = forms[name].decode()
        for changed in (whole[:-1], whole[1:], whole[:-1] + "!"):
            out = red.text(f"sent {changed} here")
            assert whole[1:5] not in out and "password of alice" in out, (name, out)


def test_what_a_stall_case_sends_of_an_odd_length_password_is_marked() -> None:
    """The stall cases send half of the password, rounded up: the shortest part marked
    (rounded down, 6 of 13 bytes went out in clear)."""
    from pamconform.protocols.redirector.server_steps import stall_bytes

    red = Redactor()
    pw = b"Kx8mQ2vN7pR4t"
    red.add_login(b"gina", pw)
    out = red.text(repr(stall_bytes("mid-password", b"gina", pw)))
    assert "Kx8mQ2" not in out and "password of gina, 13 bytes\u203a[:7]" in out
    # a word of ordinary text that is a shorter piece of a password is left alone
    red.add_login(b"Mixed", b"mixed-ldap-pw")
    assert red.text("--mixed-case-user") == "--mixed-case-user"


@pytest.mark.parametrize("pw", ["Geheimnis-2024-\u20ac", "Gr\u00fc\u00dfe-P\u00e4ssw\u00f6rd-9z",
                                "Qw\tEr\tTy\tUi12"])
def test_fragments_of_a_password_beyond_printable_ascii_are_marked(pw: str) -> None:
    """A UTF-8 password, or one with a tab, is marked in part too: in the bytes' escapes,
    the UTF-8 text, its escapes and its JSON forms."""
    red = Redactor()
    raw = pw.encode()
    red.add_login(b"frank", raw)
    head = raw[:len(raw) // 2 + 2]
    text = head.decode(errors="ignore")
    for shown in (repr(b"frank\n" + head), text, repr(text), json.dumps(text),
                  json.dumps(text, ensure_ascii=False)):
        out = red.text(shown)
        assert "password of frank" in out, shown
        assert "Geheimnis" not in out and "P\\xc3\\xa4" not in out and "Er\\tTy" not in out


def test_a_byte_added_inside_the_password_leaves_no_tail_in_clear() -> None:
    """An added or changed byte shows as an escape (``\\n``, ``\\x00``), not one character:
    the rest of the password is still marked, relative to the marker."""
    red = Redactor()
    pw = b"Hq4Ry8TzWn2Kp6Vb3Xs9"
    red.add_login(b"bob", pw)
    mark = "\u2039password of bob, 20 bytes\u203a"
    assert red.text(repr(pw[:14] + b"\n" + pw[14:])) == f"b'{mark}[:14]\\n{mark}[14:]'"
    assert red.text(repr(pw[:10] + b"\0" + pw[11:])) == f"b'{mark}[:10]\\x00{mark}[11:]'"


@pytest.mark.parametrize(("password", "text"), [
    (b"password123", "the wrong password was denied"),   # a word of pamconform's own
    (b"hunter2-x", "a counter that turns later"),         # "unter" inside one of its words
    (b"20261205", "run of 2026-11-30, 3.2026 s"),          # a few digits of a number
    (b"98765432", "pid 98765 exited"),                     # five digits of a number
])
def test_ordinary_text_is_not_marked_as_a_fragment(password: bytes, text: str) -> None:
    """A marker on a coincidence would give away which word or digits the password holds."""
    red = Redactor()
    red.add_login(b"bob", password)
    assert red.text(text) == text


@pytest.mark.parametrize(("password", "echo", "shown"), [
    (b"password123", "password12", "[:10]"),     # a fragment with more than the word
    (b"Summer2026!", "Summer2026", "[:10]"),
    (b"pw-12345678", "12345678", "[3:]"),        # eight digits of one number
    (b"hunter2-x", "hunter", "[:6]"),            # not a word pamconform uses
])
def test_fragments_beyond_ordinary_text_are_still_marked(password: bytes, echo: str,
                                                         shown: str) -> None:
    red = Redactor()
    red.add_login(b"bob", password)
    out = red.text(f"the server answered {echo!r}")
    assert echo not in out and f"bytes\u203a{shown}" in out, out
    # the whole password is always marked, ordinary words or not
    assert red.text(f"got {password.decode()}").startswith("got \u2039password of bob")


def test_ordinary_words_in_data_are_still_marked() -> None:
    """What a connection carried, or prose quotes as a literal, may be the password's own
    first half (a stall case sends it): there a word of pamconform's is marked too."""
    red = Redactor()
    red.add_login(b"bob", b"password1234567")
    assert red.chunks([b"bob\n", b"password"], 100) == [None, f"{MARK_BOB_15}[:8]"]
    assert red.template(b"password") == [
        {"password_of": "bob", "login": 1, "bytes": 15, "slice": [0, 8]}]
    out = red.text("the wrong password: got b'bob\\npassword' and \"password\"")
    assert out == (f"the wrong password: got b'bob\\n{MARK_BOB_15}[:8]' and "
                   f"\"{MARK_BOB_15}[:8]\"")
    pin = Redactor()
    pin.add_login(b"bob", b"12345678")
    assert pin.chunks([b"bob\n1234"], 100) == ["bob\\n\u2039password of bob, 8 bytes\u203a[:4]"]
    assert pin.text("took 1234 ms") == "took 1234 ms"


MARK_BOB_15 = "\u2039password of bob, 15 bytes\u203a"


@pytest.mark.parametrize(("password", "text", "shown"), [
    (b"test-password-2026", "credentials test-password-202", "[:17]"),  # across signs
    (b"1234-5678-9012", "got 1234-5678-9", "[:11]"),
    (b"password1", "the wrong password was denied", "[:8]"),             # all but a byte
])
def test_a_fragment_beyond_one_ordinary_word_is_marked(password: bytes, text: str,
                                                       shown: str) -> None:
    red = Redactor()
    red.add_login(b"bob", password)
    assert f"bytes\u203a{shown}" in red.text(text)


def test_a_possessive_does_not_open_a_quoted_literal() -> None:
    red = Redactor()
    red.add_login(b"bob", b"password1234567")
    out = red.text("the look-alike of bob's password was granted: got b'bob\\npassword'")
    assert out == ("the look-alike of bob's password was granted: got "
                   f"b'bob\\n{MARK_BOB_15}[:8]'")


def test_a_reply_is_described_as_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from pamconform.core import redaction, wire
    red = Redactor()
    red.add_login(b"bob", b"password1234567")
    monkeypatch.setattr(redaction, "_CURRENT", red)

    class Shown(wire.Reply):
        def kind_name(self) -> str:
            return "deny"

    assert Shown(data=b"password", eof=True).describe().startswith(f"b'{MARK_BOB_15}[:8]'")


@pytest.mark.parametrize("echo", [b"1 bob\npassword1234567\n", b"password1234567" + b"x" * 40])
def test_a_refused_logins_reply_and_a_fuzz_outcome_are_shown_as_data(
        monkeypatch: pytest.MonkeyPatch, echo: bytes) -> None:
    """The up-front login check and ``fuzz replay`` quote the server's reply in an error
    line that is not redacted later: a server echoing the request must not put the password
    (nor its first half, cut at the line's limit) there."""
    from pamconform.core import redaction
    from pamconform.core.preflight import no_grant
    from pamconform.protocols.redirector.fuzz_wire import Outcome
    red = Redactor()
    red.add_login(b"bob", b"password1234567")
    monkeypatch.setattr(redaction, "_CURRENT", red)
    for shown in (no_grant(echo, False, 0.1), Outcome(reply=echo, eof=True).describe()):
        assert MARK_BOB_15 in shown, shown
        assert "password1" not in shown and "1234567" not in shown, shown


def test_field_names_are_kept_and_data_is_marked() -> None:
    red = Redactor()
    red.add_login(b"erin", b"verdict")
    tree = red.tree({"verdict": "PASS", "data": "erin\nverdict\n",
                     "erin verdict!": "x", "NON-STRICT": 1})
    mark = "\u2039password of erin, 7 bytes\u203a"
    assert set(tree) == {"verdict", "data", "NON-STRICT", f"erin {mark}!"}
    assert tree["data"] == f"erin\n{mark}\n"
