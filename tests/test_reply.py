"""The reply codec: profile classification and how the original module reads replies."""

import pytest

from pamconform.protocols.redirector.reply import ReplyKind, classify, original_module_grants


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (b"0", ReplyKind.GRANT),
        (b"0\n", ReplyKind.GRANT_NEWLINE),
        (b"1", ReplyKind.DENY),
        (b"2", ReplyKind.DENY),
        (b"10", ReplyKind.DENY),
        (b"1\n", ReplyKind.DENY_NEWLINE),
        (b"", ReplyKind.EMPTY),
        (b"00", ReplyKind.MALFORMED),
        (b" 0", ReplyKind.MALFORMED),
        (b"0x", ReplyKind.MALFORMED),
        (b"-0", ReplyKind.MALFORMED),
        (b"+0", ReplyKind.MALFORMED),
        (b"0\r\n", ReplyKind.MALFORMED),
        (b"0\0", ReplyKind.MALFORMED),
        (b"PASS", ReplyKind.MALFORMED),
        (b"-1", ReplyKind.MALFORMED),
        (b"0\n\n", ReplyKind.MALFORMED),
    ],
)
def test_classify(reply: bytes, kind: ReplyKind) -> None:
    assert classify(reply) is kind


def test_only_zero_forms_grant() -> None:
    assert [k for k in ReplyKind if k.grants] == [ReplyKind.GRANT, ReplyKind.GRANT_NEWLINE]
    assert not ReplyKind.EMPTY.grants and not ReplyKind.EMPTY.denies


@pytest.mark.parametrize(
    ("reply", "grants"),
    [
        (b"0", True),
        (b"0\n", True),
        (b"00", True),
        (b" 0", True),
        (b"0abc", True),
        (b"", True),
        (b"OK", True),
        (b"PASS\n", True),
        (b"1", False),
        (b"1\n", False),
        (b"-1", False),
        (b"00001", True),  # only 4 bytes are read: "0000"
        (b"\0" + b"1", True),
    ],
)
def test_original_module_reading(reply: bytes, grants: bool) -> None:
    assert original_module_grants(reply) is grants
