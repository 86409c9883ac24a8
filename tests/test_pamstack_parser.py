"""The PAM configuration parser: libpam 1.5's line assembly, tokens, controls and loading.

Every expectation here was observed with real libpam 1.5.2 in the lab (see
``tests/test_chain_lab.py``, which replays these stacks against it).
"""

from __future__ import annotations

import pytest

from pamconform.model import codes
from pamconform.model.parser import (
    ALL_BAD,
    BAD,
    DIE,
    DONE,
    IGNORE,
    OK,
    PRESETS,
    RESET,
    DictSource,
    Layout,
    assemble,
    load,
    load_text,
    module_offset,
    parse_control,
    split_args,
    tokenize,
)

CONFDIR = Layout.confdir("/c")


def texts(data: str) -> list[str]:
    return [" ".join(r.text.split()) for r in assemble(data)[0]]


# --------------------------------------------------------------------------- lines


def test_comments_blank_lines_and_tabs() -> None:
    data = "# head\n\n\tauth\trequired  pam_permit.so  # why\n   # indented comment\n"
    assert texts(data) == ["auth required pam_permit.so"]
    assert assemble(data)[0][0].line == 3


def test_continuation_joins_and_skips_comment_and_blank_lines() -> None:
    lines, err = assemble("auth required \\\n# between\n\n   pam_permit.so arg\nx y z\n")
    assert err is None
    assert [" ".join(r.text.split()) for r in lines] == ["auth required pam_permit.so arg",
                                                         "x y z"]
    assert (lines[0].line, lines[0].last) == (1, 4)
    assert lines[1].line == 5


def test_backslash_before_trailing_blanks_still_continues() -> None:
    assert texts("auth required \\  \t\n pam_permit.so\n") == ["auth required pam_permit.so"]


def test_hash_ends_a_continued_line() -> None:
    assert texts("auth required pam_x.so a # c \\\nb\n") == ["auth required pam_x.so a", "b"]


@pytest.mark.parametrize("data", ["auth required pam_permit.so \\", "auth required \\\n"])
def test_file_ending_in_a_continuation_is_a_read_error(data: str) -> None:
    lines, err = assemble(data)
    assert lines == []
    assert err is not None and "continued" in err[1]


def test_long_physical_line_is_cut_at_1023_bytes() -> None:
    line = "auth required pam_permit.so " + "x" * 1100
    lines, err = assemble(line + "\n")
    assert err is None
    assert [len(r.text.rstrip("\n")) for r in lines] == [1023, len(line) - 1023]
    assert lines[1].line == 1


def test_long_continued_line_is_a_read_error() -> None:
    data = ("auth required pam_permit.so " + "x" * 600 + " \\\n") * 2
    assert assemble(data)[1] is not None


def test_carriage_return_stays_part_of_the_last_token() -> None:
    [line] = assemble("auth required pam_permit.so\r\n")[0]
    assert split_args(line.text, 0)[-1] == "pam_permit.so\r"


# --------------------------------------------------------------------------- tokens


def test_bracket_token_keeps_spaces_and_escaped_bracket() -> None:
    text = "auth [success=ok \\] default=bad]pam_x.so a [b c]"
    assert split_args(text, 0) == ("auth", "success=ok ] default=bad", "pam_x.so", "a", "b c")


def test_unclosed_bracket_takes_the_rest_of_the_line() -> None:
    assert tokenize("[success=ok pam_x.so", 0) == ("success=ok pam_x.so", None)


def test_module_offset() -> None:
    text = "sshd auth [a b]  pam_x.so y"
    assert text[module_offset(text, service_column=True) or 0:] == "pam_x.so y"
    assert module_offset("auth required") is None


# --------------------------------------------------------------------------- controls


def test_presets() -> None:
    assert PRESETS["required"][codes.SUCCESS] == OK
    assert PRESETS["required"][codes.IGNORE] == IGNORE
    assert PRESETS["required"][codes.AUTH_ERR] == BAD
    assert PRESETS["requisite"][codes.AUTH_ERR] == DIE
    assert PRESETS["sufficient"][codes.SUCCESS] == DONE
    assert PRESETS["sufficient"][codes.AUTH_ERR] == IGNORE
    assert PRESETS["optional"][codes.NEW_AUTHTOK_REQD] == OK


def test_bracket_control_defaults_fill_only_unset_codes() -> None:
    table, err = parse_control("default=ok default=bad success=die")
    assert err is None
    assert table[codes.SUCCESS] == DIE and table[codes.AUTH_ERR] == OK


def test_bracket_control_unset_codes_are_bad_and_jumps_are_numbers() -> None:
    table, err = parse_control(" success = 2  ignore=reset")
    assert err is None
    assert (table[0], table[codes.IGNORE], table[codes.AUTH_ERR]) == (2, RESET, BAD)


def test_bracket_values_need_no_space_between_pairs() -> None:
    table, err = parse_control("success=okdefault=die")
    assert err is None and table[0] == OK and table[codes.AUTH_ERR] == DIE


@pytest.mark.parametrize("text", ["SUCCESS=ok", "success=0", "success", "success=", "okay=ok",
                                  "success=okay", "bogus"])
def test_bracket_syntax_errors_make_every_code_bad(text: str) -> None:
    table, err = parse_control(text)
    assert err is not None
    assert table == ALL_BAD


def test_empty_brackets_are_all_bad_without_error() -> None:
    assert parse_control("") == (ALL_BAD, None)


# --------------------------------------------------------------------------- loading


def test_keywords_are_case_insensitive_and_dash_prefix_only_silences() -> None:
    cfg = load_text("AUTH Required pam_permit.so\n-auth SUFFICIENT pam_gone.so\n",
                    layout=CONFDIR)
    permit, gone = cfg.chain("auth")
    assert permit.actions == PRESETS["required"]
    assert gone.kind == "module" and gone.silent and gone.actions == PRESETS["sufficient"]


def test_bad_lines_become_failing_handlers_with_file_and_line() -> None:
    cfg = load_text("auht required pam_permit.so\naccount\nauth optional\n", layout=CONFDIR)
    kinds = [(h.facility, h.kind, h.origin.line) for h in cfg.handlers()]
    assert kinds == [("auth", "must_fail", 1), ("auth", "must_fail", 3),
                     ("account", "must_fail", 2)]
    messages = [str(p) for p in cfg.problems if p.line]
    assert messages[0] == "/c/svc:1: illegal module type: auht"
    assert "/c/svc:2: no control flag supplied" in messages
    assert "/c/svc:3: no module name supplied" in messages


def test_service_file_and_other_come_from_the_confdir_only() -> None:
    files = {"/c/svc": "account required pam_permit.so\n",
             "/c/other": "auth required pam_deny.so\n",
             "/etc/pam.d/other": "auth required pam_permit.so\n"}
    cfg = load("svc", DictSource(files), CONFDIR)
    assert [h.module for h in cfg.chain("auth")] == ["pam_deny.so"]
    assert cfg.uses_other("auth") and not cfg.uses_other("account")
    assert load("nosuch", DictSource({"/etc/pam.d/nosuch": "x"}), CONFDIR).start_error


def test_relative_include_ignores_the_confdir() -> None:
    files = {"/c/svc": "auth include inc\n", "/c/inc": "auth required pam_permit.so\n"}
    cfg = load("svc", DictSource(files), CONFDIR)
    assert [h.kind for h in cfg.chain("auth")] == ["must_fail"]
    files["/etc/pam.d/inc"] = "auth required pam_deny.so\n"
    assert [h.module for h in load("svc", DictSource(files), CONFDIR).chain("auth")] == [
        "pam_deny.so"]


def test_include_takes_only_lines_of_its_type() -> None:
    inc = "auth required pam_permit.so\naccount required pam_deny.so\nbogus x y\n"
    cfg = load_text("auth include /i\n", files={"/i": inc}, layout=CONFDIR)
    assert [(h.module, h.kind) for h in cfg.chain("auth")] == [("pam_permit.so", "module"),
                                                               ("y", "must_fail")]
    assert cfg.chain("account") == []


def test_substack_marks_levels_and_stops_at_depth_16() -> None:
    files = {f"/s{i}": f"auth optional pam_debug.so\nauth substack /s{i + 1}\n"
             for i in range(20)}
    cfg = load("s0", DictSource(files), Layout.confdir("/"))
    chain = cfg.chain("auth")
    assert max(h.level for h in chain) == 15
    assert chain[-1].kind == "must_fail" and chain[-1].level == 15
    assert any("maximum level of substacks" in p.message for p in cfg.problems)


def test_include_cycles_and_nameless_includes_crash_libpam() -> None:
    assert load_text("auth include /c/svc\n", layout=CONFDIR).crash
    assert load_text("auth include\n", layout=CONFDIR).crash
    assert load_text("auth substack\n", layout=CONFDIR).crash
    assert load_text("@include\n", layout=CONFDIR).crash
    # a substack cycle is cut by the depth limit instead
    assert not load_text("auth substack /c/svc\n", layout=CONFDIR).crash


def test_at_include_takes_every_type_in_place() -> None:
    inc = "auth required pam_deny.so\naccount required pam_permit.so\n"
    cfg = load_text("auth required pam_permit.so\n@INCLUDE /i extra words\n",
                    files={"/i": inc}, layout=CONFDIR)
    assert [h.module for h in cfg.chain("auth")] == ["pam_permit.so", "pam_deny.so"]
    assert [h.module for h in cfg.chain("account")] == ["pam_permit.so"]


def test_failing_at_include_fails_its_file() -> None:
    assert load_text("@include /nope\nauth required pam_permit.so\n", layout=CONFDIR).start_error
    inc = "auth required pam_permit.so\n@include /nope\nauth required pam_x.so\n"
    cfg = load_text("auth include /i\n", files={"/i": inc}, layout=CONFDIR)
    assert [h.kind for h in cfg.chain("auth")] == ["module", "must_fail", "module", "must_fail"]


def test_pam_conf_service_column_and_other() -> None:
    conf = ("SSHD auth required pam_permit.so\nsu auth required pam_deny.so\n"
            "Other auth required pam_debug.so\nother account required pam_deny.so\n"
            "sshd auth include /i\n")
    files = {"/etc/pam.conf": conf, "/i": "auth sufficient pam_unix.so\n"}
    cfg = load("sshd", DictSource(files), Layout.single_file())
    assert [h.module for h in cfg.chain("auth")] == ["pam_permit.so", "pam_unix.so"]
    assert [h.module for h in cfg.other["auth"]] == ["pam_debug.so"]
    assert cfg.uses_other("account")
    assert load("x", DictSource({}), Layout.single_file()).start_error


def test_read_error_in_the_service_file_aborts_pam_start() -> None:
    cfg = load_text("auth required pam_permit.so\nauth required \\", layout=CONFDIR)
    assert cfg.start_error and "error reading" in cfg.start_error


def test_module_paths() -> None:
    cfg = load_text("auth required pam_permit.so\nauth required /opt/pam_x.so a\n",
                    layout=CONFDIR)
    rel, absolute = cfg.chain("auth")
    assert rel.module_path() == "/lib/x86_64-linux-gnu/security/pam_permit.so"
    assert absolute.module_path() == "/opt/pam_x.so" and absolute.args == ("a",)
    assert rel.module_name == "pam_permit"
