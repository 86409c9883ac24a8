# ruff: noqa: RUF002  (the docstrings show the marker's quotation marks)
"""Secrets out of everything pamconform writes: passwords and tokens become markers.

A :class:`Redactor` knows the secrets of a run (the password of every login it was
given, every token a case obtained) and replaces them in text with a marker that says
whose secret it was and how long, ``‹password of alice, 6 bytes›``, so evidence keeps
its shape. It finds a secret in clear and in the forms the harness renders bytes in
(``repr`` and JSON escapes, hex, base64), and mutations of it: a fragment is shown as a
slice of the marker (``‹…›[:5]``), a case change as a method (``‹…›.upper()``); bytes
added or changed around it stay visible, so a reader still sees where a byte differs. A
fragment that is ordinary text (one of pamconform's own words, a few digits of a number:
:mod:`pamconform.core.ordinary_words`) is left alone: it matches by coincidence, and a
marker there would tell which word the password holds.

Secrets enter through :func:`register_login` and :func:`register_token` (the
process-wide :func:`current` redactor); reports, console lines and saved findings are
passed through it when they are written. Saved findings keep the bytes they need as
*templates* (:func:`template`): hex runs and references to a login's password, resolved
from the logins given at replay time (:func:`resolve`).

No sockets or terminals; the only files read are pamconform's own sources, once, for
the ordinary words.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pamconform.core import lookalikes, ordinary_words

OPEN, CLOSE = "\u2039", "\u203a"  # the marker's single angle quotation marks
#: Characters a piece of a secret is looked up by.
GRAM = 4
#: Shorter secrets are not redacted (they cannot be told from ordinary text).
MIN_SECRET = GRAM
#: A token fragment must cover this many of the token's secret bytes to be marked.
TOKEN_MIN_FRAGMENT = 8
#: A run of characters a token (or its hex or base64) fragment can be found in.
_TOKEN_RUN = f"[A-Za-z0-9+/:_-]{{{TOKEN_MIN_FRAGMENT}}}"
_MARKER = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
#: A key of a report or finding that is one of its field names (``duration_s``,
#: ``verdict``) or a verdict (``NON-STRICT``), never data: :meth:`Redactor.tree` keeps it.
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]*|[A-Z][A-Z-]*")


@dataclass(frozen=True)
class Secret:
    """One secret value and how it is named in markers."""

    value: bytes
    label: str
    #: bytes before this offset are public (a token's ``TTK<uid>:<pid>:`` head)
    private_from: int = 0
    #: the shortest fragment (in bytes) that is marked; shorter pieces are left as they are
    min_fragment: int = 0
    #: the login's user name (passwords), for templates
    user: bytes | None = None
    #: found by its pieces anywhere, as a password is (not only in token-like runs)
    anywhere: bool = False

    @property
    def found_anywhere(self) -> bool:
        return self.user is not None or self.anywhere

    @property
    def marker(self) -> str:
        return f"{OPEN}{self.label}, {len(self.value)} bytes{CLOSE}"


@dataclass(frozen=True)
class _Form:
    """A rendering of a secret as it may appear in text."""

    text: str
    secret: Secret
    #: characters per byte when fragments of this form can be mapped to byte offsets,
    #: 0 when only the whole form is recognised, VARIABLE when ``bounds`` map them
    unit: int
    #: the method shown after the marker (case changes, look-alikes), or the encoding's name
    suffix: str = ""
    encoding: str = ""
    #: the text is the bytes themselves (Latin-1), so a template can refer to it
    raw: bool = False
    #: (character offsets, byte offsets) where the text and the secret's bytes both start
    #: a unit (an escape, a UTF-8 character), for a VARIABLE form
    bounds: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())


#: The unit of a form whose characters per byte vary (escapes, UTF-8 characters).
VARIABLE = -1


@dataclass(frozen=True)
class _Piece:
    """A span of text that is (part of) a secret."""

    start: int
    end: int
    form: _Form
    #: byte slice of the secret it shows
    lo: int
    hi: int

    def render(self) -> str:
        secret = self.form.secret
        mark = secret.marker
        if self.form.encoding:
            mark = f"{mark[:-1]}, as {self.form.encoding}{CLOSE}"
        if (self.lo, self.hi) != (0, len(secret.value)):
            mark += f"[{self.lo or ''}:{'' if self.hi == len(secret.value) else self.hi}]"
        return mark + self.form.suffix


def _escape_bytes(data: bytes, quote: str) -> str:
    """The body of a bytes literal quoted with ``quote`` (as ``repr`` writes it)."""
    out = []
    for b in data:
        ch = chr(b)
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _escape_str(text: str, quote: str) -> str:
    """The body of a str literal quoted with ``quote`` (as ``repr`` writes it)."""
    out = []
    for ch in text:
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch in "'\"":
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


Rendering = tuple[str, int, str, tuple[tuple[int, ...], tuple[int, ...]]]


def _joined(units: list[tuple[str, int]]) -> tuple[str, int, tuple[tuple[int, ...],
                                                                 tuple[int, ...]]]:
    """A rendering made of (text, bytes) units: its text, its unit (1 when every unit is one
    character for one byte, else VARIABLE) and its unit bounds."""
    chars, nbytes = [0], [0]
    for text, size in units:
        chars.append(chars[-1] + len(text))
        nbytes.append(nbytes[-1] + size)
    unit = 1 if all(len(t) == 1 and n == 1 for t, n in units) else VARIABLE
    return "".join(t for t, _ in units), unit, (tuple(chars), tuple(nbytes))


def _characters(value: bytes) -> list[tuple[str, int]]:
    """The UTF-8 characters of ``value`` with their sizes (a byte that is not UTF-8 is one
    surrogate-escaped character)."""
    clear = value.decode(errors="surrogateescape")
    return [(ch, 1 if "\udc80" <= ch <= "\udcff" else len(ch.encode())) for ch in clear]


def _renderings(value: bytes) -> list[Rendering]:
    """(text, unit, encoding, bounds) of every way the harness renders ``value``; the
    first is the bytes as Latin-1 (see :class:`_Form` for the unit and bounds).

    Fragments are found in each rendering a byte or a character at a time maps to (the
    bytes, their escapes, the UTF-8 text, its escapes and JSON forms), so a password with
    bytes outside printable ASCII is marked in part as well as whole."""
    out: list[Rendering] = []
    none: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    out.append((value.decode("latin-1"), 1, "", none))
    characters = _characters(value)
    byte_units = [(chr(b), 1) for b in value]
    unit_forms: list[list[tuple[str, int]]] = [characters]
    for quote in ("'", '"'):
        unit_forms.append([(_escape_bytes(ch.encode("latin-1"), quote), 1)
                           for ch, _ in byte_units])
        unit_forms.append([(_escape_str(ch, quote), n) for ch, n in characters])
    for ensure_ascii in (True, False):
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate has no JSON form
            unit_forms.append([(json.dumps(ch, ensure_ascii=ensure_ascii)[1:-1], n)
                               for ch, n in characters])
    for units in unit_forms:
        text, unit, bounds = _joined(units)
        out.append((text, unit, "", none if unit == 1 else bounds))
    out.append((value.hex(), 2, "hex", none))
    out.append((value.hex().upper(), 2, "hex", none))
    for encoded in (base64.b64encode(value), base64.urlsafe_b64encode(value)):
        out.append((encoded.decode().rstrip("="), 0, "base64", none))
    return out


def _forms(secret: Secret) -> list[_Form]:
    value = secret.value
    forms: list[_Form] = []
    seen: set[str] = set()

    def add(text: str, unit: int, suffix: str = "", encoding: str = "",
            raw: bool = False, bounds: tuple[tuple[int, ...], tuple[int, ...]] = ((), ()),
            ) -> None:
        if text and text not in seen:
            seen.add(text)
            forms.append(_Form(text, secret, unit, suffix, encoding, raw, bounds))

    for i, (text, unit, encoding, bounds) in enumerate(_renderings(value)):
        add(text, unit, encoding=encoding, raw=i == 0, bounds=bounds)
    def aligned(text: str, encoding: str) -> int:
        """1 (fragments are found too) when a changed form has one character per byte
        of the secret (full-width, homoglyphs, case), else 0 (only the whole form)."""
        return 1 if not encoding and len(text) == len(value) else 0

    for method in ("upper", "lower", "swapcase"):
        changed = getattr(value, method)()
        if changed != value:
            text = changed.decode("latin-1")
            add(text, aligned(text, ""), suffix=f".{method}()", raw=True)
    if secret.user is not None:  # a password: its look-alikes are derived secrets
        for name, changed in lookalikes.variants(value):
            for i, (text, _, encoding, _) in enumerate(_renderings(changed)):
                add(text, aligned(text, encoding) if i < 2 else 0, f".{name}()", encoding,
                    raw=i == 0)
    return forms


class Redactor:
    """Replaces the secrets it knows in text, trees of text, and bytes (templates)."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._lock = threading.Lock()
        self.secrets: list[Secret] = []
        self._index: dict[str, list[tuple[_Form, int]]] = {}
        self._users: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    # ------------------------------------------------------------------ registering

    def add(self, secret: Secret) -> None:
        """Learn a secret (again is a no-op).

        A secret shorter than :data:`MIN_SECRET` bytes is not learnt: it cannot be told
        from ordinary text (marking every ``b`` of a report would leave nothing to read).
        """
        if len(secret.value) < MIN_SECRET:
            return
        with self._lock:
            if any(s.value == secret.value and s.label == secret.label for s in self.secrets):
                return
            self.secrets.append(secret)
            self._pattern = None
            if secret.user is not None:
                self._users.add(secret.user.decode("latin-1"))
            for form in _forms(secret):
                if len(form.text) < GRAM:
                    continue
                offsets: Sequence[int]
                if form.unit == VARIABLE:
                    offsets = [c for c in form.bounds[0][:-1] if c <= len(form.text) - GRAM]
                else:
                    offsets = range(0, len(form.text) - GRAM + 1, form.unit) \
                        if form.unit else [0]
                for off in offsets:
                    self._index.setdefault(form.text[off:off + GRAM], []).append((form, off))

    def add_login(self, user: bytes, password: bytes) -> None:
        """The password of a login: fragments of half its length (rounded up) or more are
        marked, and at least GRAM bytes (shorter ones are words of ordinary text too: a
        password ``mixed-ldap-pw`` must not mark the ``mixed-`` of ``--mixed-case-user``);
        the suites never send less of a password than that."""
        shown = user.decode(errors="backslashreplace")
        shortest = min(len(password), max(GRAM, (len(password) + 1) // 2))
        self.add(Secret(password, f"password of {shown}", 0, shortest, user))

    def add_value(self, value: bytes, label: str) -> None:
        """Another secret given to the run (a module argument): marked as a password is,
        whole and in pieces of half its length or more, but no login."""
        shortest = min(len(value), max(GRAM, (len(value) + 1) // 2))
        self.add(Secret(value, label, 0, shortest, anywhere=True))

    def add_token(self, raw: bytes, public: int = 0) -> None:
        """A token whose first ``public`` bytes (its head) are not secret."""
        self.add(Secret(raw, "token", public, min(TOKEN_MIN_FRAGMENT, len(raw) - public)))

    @property
    def logins(self) -> list[tuple[bytes, bytes]]:
        """The (user, password) pairs it knows, in the order they were given."""
        return [(s.user, s.value) for s in self.secrets if s.user is not None]

    # ------------------------------------------------------------------ finding

    def _finder(self) -> re.Pattern[str]:
        """Where a piece may start: a password's gram, or a run a token could be in."""
        with self._lock:
            if self._pattern is None:
                grams = sorted(g for g, hits in self._index.items()
                               if any(f.secret.found_anywhere for f, _ in hits))
                alternatives = [re.escape(g) for g in grams]
                if any(not s.found_anywhere for s in self.secrets):
                    alternatives.append(_TOKEN_RUN)
                self._pattern = re.compile(f"(?=(?:{'|'.join(alternatives)}))"
                                           if alternatives else "(?!)")
            return self._pattern

    def _pieces(self, text: str, *, passwords_only: bool = False,
                data: bool = False) -> list[_Piece]:
        """The secrets in ``text``; ``data``: it is bytes a connection carried, where no
        fragment is ordinary text (prose: see :meth:`_telling`)."""
        prose = None if data else _Prose(text)
        pieces: list[_Piece] = []
        index = self._index
        markers = [m.span() for m in _MARKER.finditer(text)] if OPEN in text else []
        finder = self._finder()
        i = 0
        while (found := finder.search(text, i)) is not None:
            i = found.start()
            inside = next((end for start, end in markers if start <= i < end), None)
            if inside is not None:  # a marker already: never look inside it
                i = inside
                continue
            best: list[_Piece] = []
            for form, off in index.get(text[i:i + GRAM], ()):
                if passwords_only and form.secret.user is None:
                    continue
                chain = self._match(text, i, form, off, prose)
                if chain and (not best or chain[-1].end > best[-1].end):
                    best = chain
            if not best:
                i += 1
                continue
            pieces.extend(best)
            i = best[-1].end
        return pieces

    def _match(self, text: str, i: int, form: _Form, off: int,
               prose: _Prose | None) -> list[_Piece]:
        """The secret (or a fragment, maybe edited) at ``text[i:]``, as pieces; [] if none."""
        ft = form.text
        length = _common(text, i, ft, off)
        secret = form.secret
        if form.unit == 0:
            if off == 0 and length == len(ft):
                return [_Piece(i, i + length, form, 0, len(secret.value))]
            return []
        if form.unit == VARIABLE:
            chars, nbytes = form.bounds
            first_unit = bisect.bisect_left(chars, off)
            last_unit = bisect.bisect_right(chars, off + length) - 1
            if last_unit <= first_unit:
                return []
            piece = _Piece(i, i + chars[last_unit] - off, form, nbytes[first_unit],
                           nbytes[last_unit])
            whole = (piece.lo, piece.hi) == (0, len(secret.value))
            if not whole and text[piece.start:piece.end] in self._users:
                return []
            return [piece] if whole or _telling(prose, [piece], secret) else []
        length -= length % form.unit
        lo, hi = off // form.unit, (off + length) // form.unit
        first = _Piece(i, i + length, form, lo, hi)
        if (lo, hi) == (0, len(secret.value)):
            return [first]
        chain = [first, *self._edits(text, first)]
        if len(chain) == 1 and text[i:i + length] in self._users:
            return []  # a user name inside its own password is not the password
        private = len(secret.value) - secret.private_from
        # an edited secret counts when nearly all of it is there (not when words of it are)
        if len(chain) > 1 and _covered(chain, secret) >= max(secret.min_fragment,
                                                             private - len(chain)):
            return chain
        return [first] if _telling(prose, [first], secret) else []

    @staticmethod
    def _edits(text: str, first: _Piece) -> list[_Piece]:
        """Pieces that continue ``first`` past single-byte edits (changed, dropped, added)."""
        form = first.form
        if form.unit != 1:
            return []
        out: list[_Piece] = []
        last = first
        size = len(form.secret.value)
        while last.hi < size:
            best: tuple[int, int, int] | None = None
            step = _escape_length(text, last.end)  # an added or changed byte's escape
            for skip_text, skip_secret in ((step, 1), (0, 1), (step, 0)):
                at, lo = last.end + skip_text, last.hi + skip_secret
                if lo >= size or at >= len(text) or text[at] == OPEN:
                    continue
                length = _common(text, at, form.text, lo)
                enough = length >= 2 or (length and lo + length == size)
                if enough and (best is None or length > best[2]):
                    best = (at, lo, length)
            if best is None:
                break
            at, lo, length = best
            last = _Piece(at, at + length, form, lo, lo + length)
            out.append(last)
        return out

    # ------------------------------------------------------------------ applying

    def text(self, text: str, *, data: bool = False) -> str:
        """``text`` with every secret it holds replaced by its marker; ``data``: the text
        shows bytes a connection carried (a reply's ``repr``), where no fragment is taken
        for ordinary prose."""
        if not self.secrets or not text:
            return text
        pieces = self._pieces(text, data=data)
        if not pieces:
            return text
        out, at = [], 0
        for p in pieces:
            out.append(text[at:p.start])
            out.append(p.render())
            at = p.end
        out.append(text[at:])
        return "".join(out)

    def tree(self, obj: Any) -> Any:
        """A copy of a JSON-like tree with every string redacted, and the keys that are
        not field names (:data:`FIELD_NAME`: a password equal to ``verdict`` must not
        rename the field every reader looks up; the name says nothing of the password)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k if isinstance(k, str) and FIELD_NAME.fullmatch(k) else self.tree(k):
                    self.tree(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.tree(v) for v in obj]
        return obj

    def chunks(self, chunks: Sequence[bytes], limit: int) -> list[str | None]:
        """Consecutive chunks of one byte stream (the writes of a connection), each escaped
        as ``repr`` does with secrets as markers, also a secret split across chunks (each
        chunk shows its slice of it); None for a chunk no secret touches. Only the first
        ``limit`` bytes of a chunk are shown."""
        stream = b"".join(chunks).decode("latin-1")
        pieces = self._pieces(stream, data=True) if self.secrets else []
        out: list[str | None] = []
        base = 0
        for chunk in chunks:
            end = base + len(chunk)
            shown_end = base + min(len(chunk), limit)
            touching = [p for p in pieces if p.start < shown_end and p.end > base]
            if not touching:
                out.append(None)
                base = end
                continue
            parts, at = [], base
            for p in touching:
                lo, hi = max(p.start, base), min(p.end, shown_end)
                if lo > at:
                    parts.append(_show(stream[at:lo]))
                if p.end - p.start == p.hi - p.lo:  # one character a byte: slice it
                    parts.append(_Piece(lo, hi, p.form, p.lo + lo - p.start,
                                        p.lo + hi - p.start).render())
                else:
                    parts.append(p.render() + ("" if (lo, hi) == (p.start, p.end) else "(part)"))
                at = hi
            parts.append(_show(stream[at:shown_end]))
            if len(chunk) > limit:
                parts.append(f"... ({len(chunk)} bytes in all)")
            out.append("".join(parts))
            base = end
        return out

    def template(self, data: bytes) -> str | list[Any]:
        """Bytes as hex, or (when they hold a password) a list of hex runs and references.

        A reference is ``{"password_of": USER, "login": N, "bytes": LEN}`` with ``slice``
        ``[lo, hi]`` for a fragment and ``case`` (``upper``/``lower``/``swapcase``, or a
        look-alike of :mod:`pamconform.core.lookalikes`) for a case change or look-alike;
        :func:`resolve` turns it back into bytes.
        """
        text = data.decode("latin-1")
        pieces = [p for p in self._pieces(text, passwords_only=True, data=True) if p.form.raw]
        if not pieces:
            return data.hex()
        logins = [s for s in self.secrets if s.user is not None]
        parts: list[Any] = []
        at = 0
        for p in pieces:
            if p.start > at:
                parts.append(data[at:p.start].hex())
            secret = p.form.secret
            ref: dict[str, Any] = {"password_of": secret.user.decode("latin-1")  # type: ignore[union-attr]
                                   if secret.user is not None else "",
                                   "login": logins.index(secret) + 1,
                                   "bytes": len(secret.value)}
            if (p.lo, p.hi) != (0, len(secret.value)):
                ref["slice"] = [p.lo, p.hi]
            if p.form.suffix:
                ref["case"] = p.form.suffix[1:-2]
            parts.append(ref)
            at = p.end
        if at < len(data):
            parts.append(data[at:].hex())
        return parts


class MissingLogin(ValueError):
    """A template refers to the password of a login that was not given."""


def resolve(template: str | Sequence[Any], logins: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The bytes of a :meth:`Redactor.template`, passwords taken from ``logins``."""
    if isinstance(template, str):
        return bytes.fromhex(template)
    if not isinstance(template, list):
        raise ValueError(f"not a byte template: {template!r:.60}")
    out = b""
    for part in template:
        if isinstance(part, str):
            out += bytes.fromhex(part)
            continue
        if not isinstance(part, dict) or "password_of" not in part:
            raise ValueError(f"not a byte template part: {part!r:.60}")
        user = str(part["password_of"]).encode("latin-1")
        passwords = [p for u, p in logins if u == user]
        if not passwords:
            raise MissingLogin(f"it needs the password of {part['password_of']} "
                               f"(login #{part.get('login', '?')})")
        # several logins of one user (given at different times): the one of the saved length
        fitting = [p for p in passwords if len(p) == part.get("bytes", len(p))]
        value = (fitting or passwords)[0]
        if "slice" in part:
            lo, hi = (int(x) for x in part["slice"])
            value = value[lo:hi]
        case = part.get("case")
        if case in ("upper", "lower", "swapcase"):
            value = getattr(value, case)()
        elif case in lookalikes.NAMES:
            value = lookalikes.apply(case, value) or value
        out += value
    return out


def render_template(template: str | Sequence[Any]) -> str:
    """A template as an escaped byte string with markers (for titles and messages)."""
    if isinstance(template, str):
        try:
            return _escape_bytes(bytes.fromhex(template), "'")
        except ValueError:
            return template
    out = []
    for part in template:
        if isinstance(part, str):
            out.append(render_template(part))
        elif isinstance(part, dict):
            mark = f"{OPEN}password of {part.get('password_of')}, {part.get('bytes')} bytes{CLOSE}"
            if "slice" in part:
                lo, hi = part["slice"]
                mark += f"[{lo or ''}:{'' if hi == part.get('bytes') else hi}]"
            if part.get("case"):
                mark += f".{part['case']}()"
            out.append(mark)
    return "".join(out)


def _show(latin1: str) -> str:
    """Bytes (as latin-1 text) escaped the way ``repr`` shows them."""
    return repr(latin1.encode("latin-1"))[2:-1]


_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


def _escape_length(text: str, at: int) -> int:
    """Characters of the escape (``\\n``, ``\\x00``, ``\\u00e9``) at ``text[at]``, else 1."""
    found = _ESCAPE.match(text, at) if text.startswith("\\", at) else None
    return len(found.group()) if found else 1


#: A quoted literal in prose (``b'...'``, ``'...'``, ``"..."``): data the text shows.
_QUOTED = re.compile(r"(?<![^\W_])(?:b?'(?:[^'\\\n]|\\.)*'|b?\"(?:[^\"\\\n]|\\.)*\")")


class _Prose:
    """Text that is not only data: where its quoted literals are (found when first asked)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._quoted: list[tuple[int, int]] | None = None

    def quoted(self, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` lies inside a quoted literal."""
        if self._quoted is None:
            self._quoted = [m.span() for m in _QUOTED.finditer(self.text)]
        return any(lo < start and end < hi for lo, hi in self._quoted)


def _telling(prose: _Prose | None, pieces: list[_Piece], secret: Secret) -> bool:
    """Whether a fragment is worth a marker: long enough, and not ordinary prose (a word of
    pamconform's own inside one word or number, a few digits of one number), missing at
    least two bytes of the secret, that only matches by coincidence. In data
    (``prose`` None) and in the quoted literals of prose, where the harness shows bytes it
    sent or got (a stall case sends the first half of a password), every fragment is
    marked: there a word may be what the password starts with."""
    covered = _covered(pieces, secret)
    if covered < secret.min_fragment:
        return False
    if prose is None or len(pieces) > 1 or covered > len(secret.value) - secret.private_from - 2:
        return True  # an edited secret, or all of it but a byte: never a coincidence
    piece = pieces[0]
    return (prose.quoted(piece.start, piece.end)
            or not ordinary_words.ordinary(prose.text, piece.start, piece.end))


def _covered(pieces: list[_Piece], secret: Secret) -> int:
    """Secret (non-public) bytes the pieces show."""
    return sum(max(0, p.hi - max(p.lo, secret.private_from)) for p in pieces)


def _common(a: str, i: int, b: str, j: int) -> int:
    """Length of the common run of ``a[i:]`` and ``b[j:]``."""
    n = 0
    limit = min(len(a) - i, len(b) - j)
    while n < limit and a[i + n] == b[j + n]:
        n += 1
    return n


# ---------------------------------------------------------------------- process-wide

_CURRENT = Redactor()


def current() -> Redactor:
    """The redactor of this process: every secret registered so far."""
    return _CURRENT


def register_login(user: bytes, password: bytes) -> None:
    """Remember a login's password so it never reaches a report, a finding or the console."""
    _CURRENT.add_login(user, password)


def register_value(value: bytes, label: str) -> None:
    """Remember another secret given to the run (see :meth:`Redactor.add_value`)."""
    _CURRENT.add_value(value, label)


def register_token(raw: bytes, public: int = 0) -> None:
    """Remember a token a case obtained (``public`` leading bytes are its public head)."""
    _CURRENT.add_token(raw, public)


class Verbatim(str):
    """Text of the suite's own (a case id) that output shows as it is, never redacted: a
    password fragment can match a piece of an id (``ldap-p`` of ``lucy-ldap-pw`` in
    ``nslcd.server.ldap-paused``)."""


def redact(text: str, *, data: bool = False) -> str:
    """``text`` with every registered secret replaced by its marker (``data``: see
    :meth:`Redactor.text`)."""
    return _CURRENT.text(text, data=data)


def shown_data(data: bytes, limit: int) -> str:
    """``repr(data)`` as evidence shows bytes a connection carried: redacted whole first,
    as data (no word in it is prose), then cut after ``limit`` characters (a cut must not
    split a secret and leave a piece of it in clear)."""
    shown = redact(repr(data), data=True)
    if len(shown) > limit:
        shown = shown[:limit] + f"\u2026 ({len(data)} bytes)"
    return shown


def redact_tree(obj: Any) -> Any:
    """A copy of a JSON-like tree with every registered secret replaced by its marker."""
    return _CURRENT.tree(obj)
