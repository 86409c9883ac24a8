# ruff: noqa: RUF002  (the docstring shows the marker's quotation marks)
"""Strings that look like, or normalise to, a given one but differ in bytes.

A server that normalises (Unicode forms, case folding, stripping Unicode spaces,
decoding leniently) before it compares grants a password the user never set. The
server suite sends these variants of each given login and expects a denial; the
redactor (:mod:`pamconform.core.redaction`) knows the same variants of every password,
so a variant is shown relative to its marker (``‹…›.fullwidth()``), never in clear.

Every variant has a name that is a Python identifier (it is shown as a method of the
marker and saved in byte templates) and is a pure function of the bytes.

Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

#: ASCII letters and the Cyrillic or Greek letters drawn the same in most fonts.
HOMOGLYPHS = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458",
    "l": "\u04cf", "o": "\u043e", "p": "\u0440", "s": "\u0455", "x": "\u0445",
    "y": "\u0443", "A": "\u0410", "B": "\u0392", "C": "\u0421", "E": "\u0415",
    "H": "\u041d", "I": "\u0406", "K": "\u041a", "M": "\u041c", "O": "\u041e",
    "P": "\u0420", "T": "\u0422", "X": "\u0425", "Y": "\u04ae",
}
#: Letter pairs a compatibility normalisation (NFKC) turns a ligature back into.
LIGATURES = {"ff": "\ufb00", "fi": "\ufb01", "fl": "\ufb02"}
NBSP, IDEOGRAPHIC_SPACE, ZERO_WIDTH_SPACE, BOM = "\u00a0", "\u3000", "\u200b", "\ufeff"
COMBINING_ACUTE = "\u0301"


def _fullwidth(text: str) -> str:
    """ASCII as its full-width compatibility forms (NFKC maps them back)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else
                   IDEOGRAPHIC_SPACE if ch == " " else ch for ch in text)


def _first(text: str, table: dict[str, str]) -> str:
    for i, ch in enumerate(text):
        if ch in table:
            return text[:i] + table[ch] + text[i + 1:]
    return text


def _combining(text: str) -> str:
    """An acute accent combined with the first letter (a different string in any form)."""
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i + 1] + COMBINING_ACUTE + text[i + 1:]
    return text + COMBINING_ACUTE


def _marks_stripped(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(
        ch for ch in decomposed if not unicodedata.combining(ch)))


def _ligature(text: str) -> str:
    for pair, ligature in LIGATURES.items():
        if pair in text:
            return text.replace(pair, ligature, 1)
    return text


def _sharp_s(text: str) -> str:
    """``ss`` as ``ß`` and ``ß`` as ``ss`` (the full case folding of ``ß`` is ``ss``)."""
    return text.replace("ss", "\u00df", 1) if "ss" in text else text.replace("\u00df", "ss")


def _capital_sharp_s(text: str) -> str:
    """``SS`` as ``ẞ`` and ``ß`` as ``SS`` (``"ß".upper()`` is ``"SS"``)."""
    return text.replace("SS", "\u1e9e", 1) if "SS" in text else text.replace("\u00df", "SS")


def _normal(form: str) -> Callable[[str], str]:
    return lambda text: unicodedata.normalize(form, text)  # type: ignore[arg-type]


#: Variants of the text (decoded as UTF-8), each sent as UTF-8.
TEXT_VARIANTS: dict[str, Callable[[str], str]] = {
    "nfc": _normal("NFC"),
    "nfd": _normal("NFD"),
    "nfkc": _normal("NFKC"),
    "nfkd": _normal("NFKD"),
    "fullwidth": _fullwidth,
    "unicode_upper": str.upper,
    "unicode_lower": str.lower,
    "casefold": str.casefold,
    "sharp_s": _sharp_s,
    "capital_sharp_s": _capital_sharp_s,
    "dotless_i": lambda t: t.replace("i", "\u0131"),
    "dotted_capital_i": lambda t: t.replace("i", "\u0130").replace("I", "\u0130"),
    "ligature": _ligature,
    "combining_mark": _combining,
    "marks_stripped": _marks_stripped,
    "homoglyph": lambda t: _first(t, HOMOGLYPHS),
    "homoglyphs": lambda t: "".join(HOMOGLYPHS.get(ch, ch) for ch in t),
    "nbsp_before": lambda t: NBSP + t,
    "nbsp_after": lambda t: t + NBSP,
    "ideographic_space_before": lambda t: IDEOGRAPHIC_SPACE + t,
    "ideographic_space_after": lambda t: t + IDEOGRAPHIC_SPACE,
    "zero_width_space_after": lambda t: t + ZERO_WIDTH_SPACE,
    "bom": lambda t: BOM + t,
}


def _latin1(value: bytes) -> bytes:
    """The same text in Latin-1 (a server that tries UTF-8, then Latin-1, equates them)."""
    return value.decode("utf-8").encode("latin-1")


def _double_utf8(value: bytes) -> bytes:
    """The bytes read as Latin-1 and encoded as UTF-8 again (mojibake)."""
    return value.decode("latin-1").encode("utf-8")


#: Variants of the bytes themselves.
BYTE_VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "latin1": _latin1,
    "double_utf8": _double_utf8,
    "latin1_nbsp_after": lambda v: v + b"\xa0",
}

NAMES = (*TEXT_VARIANTS, *BYTE_VARIANTS)


def apply(name: str, value: bytes) -> bytes | None:
    """Variant ``name`` of ``value``, or None when it has none (not UTF-8, not Latin-1).

    >>> apply("fullwidth", b"pw1").decode() == "\\uff50\\uff57\\uff11"
    True
    >>> apply("latin1", "pä".encode())
    b'p\\xe4'
    """
    try:
        if name in BYTE_VARIANTS:
            return BYTE_VARIANTS[name](value)
        return TEXT_VARIANTS[name](value.decode("utf-8")).encode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


def variants(value: bytes, names: tuple[str, ...] = NAMES) -> list[tuple[str, bytes]]:
    """The variants of ``value`` that differ from it in bytes, each once (first name wins).

    >>> [n for n, _ in variants(b"alice")][:4]
    ['fullwidth', 'unicode_upper', 'dotless_i', 'dotted_capital_i']
    >>> any(v == b"alice" for _, v in variants(b"alice"))
    False
    """
    seen = {value}
    out: list[tuple[str, bytes]] = []
    for name in names:
        changed = apply(name, value)
        if changed is not None and changed not in seen:
            seen.add(changed)
            out.append((name, changed))
    return out
