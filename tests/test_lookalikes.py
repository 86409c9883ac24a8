"""Look-alikes of a password: each differs in bytes, and the redactor never shows one."""

from __future__ import annotations

import json
import re

import pytest

from pamconform.core import lookalikes
from pamconform.core.redaction import CLOSE, OPEN, Redactor, resolve

PASSWORDS = [b"alice-auth-pw", "Stra\u00dfe-\u0130stanbul-caf\u00e9".encode(),
             b"fish-SS-office", "b\u00e4rchen-\u00f6l".encode()]


@pytest.mark.parametrize("password", PASSWORDS)
def test_every_variant_differs_in_bytes_and_is_named_like_a_method(password: bytes) -> None:
    found = lookalikes.variants(password)
    assert found, "an ASCII password still has variants (full-width, homoglyphs, spaces)"
    values = [v for _, v in found]
    assert password not in values and len(set(values)) == len(values)
    assert all(name.isidentifier() for name, _ in found)


def test_the_classes_the_issue_names_are_built() -> None:
    names = {n for p in PASSWORDS for n, _ in lookalikes.variants(p)}
    assert {"nfd", "fullwidth", "casefold", "sharp_s", "capital_sharp_s", "dotless_i",
            "combining_mark", "homoglyph", "latin1", "bom", "nbsp_after",
            "ideographic_space_before", "ligature"} <= names
    # a full-width password normalises back: NFKC is among the variants of such a one
    wide = lookalikes.apply("fullwidth", b"secret-pw")
    assert wide is not None and ("nfkc", b"secret-pw") in lookalikes.variants(wide)


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_variant_is_shown_in_clear(password: bytes) -> None:
    red = Redactor()
    red.add_login(b"alice", password)
    for name, value in lookalikes.variants(password):
        text = value.decode(errors="surrogateescape")
        renderings = [repr(value), value.hex(), value.decode("latin-1")]
        if "surrogate" not in ascii(text):
            renderings += [text, repr(text), json.dumps(text),
                           json.dumps(text, ensure_ascii=False)]
        for shown in renderings:
            out = red.text(f"sent {shown} then")
            assert OPEN in out and shown not in re.sub(f"{OPEN}[^{CLOSE}]*{CLOSE}", "", out), \
                (name, out)
        (wire,) = red.chunks([b"alice\n" + value + b"\n"], 4096)
        assert wire is not None and "password of alice" in wire, (name, wire)
        assert _escaped(value) not in wire


@pytest.mark.parametrize("password", PASSWORDS)
def test_templates_of_variants_resolve_to_the_same_bytes(password: bytes) -> None:
    red = Redactor()
    red.add_login(b"alice", password)
    for _, value in lookalikes.variants(password):
        data = b"alice\n" + value + b"\n"
        template = red.template(data)
        assert resolve(template, [(b"alice", password)]) == data
        if isinstance(template, list):  # it refers to the password, not its bytes
            assert password.hex() not in json.dumps(template)


def _escaped(value: bytes) -> str:
    return repr(value)[2:-1]
