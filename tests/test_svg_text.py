"""Label wrapping for the server-drawn SVGs: Latin at spaces, CJK between characters, closing
punctuation never first on a line, words never cut when they fit, an ellipsis when too long."""

from __future__ import annotations

from web._svg import clean, text_width, wrap


def test_wrap__latin_at_spaces_and_within_width() -> None:
    lines = wrap("Call the rectification process", 90, 12)
    assert lines == ["Call the", "rectification", "process"]
    assert all(text_width(line, 12) <= 90 for line in lines)


def test_wrap__cjk_between_characters_with_punctuation_kept_back() -> None:
    lines = wrap("組織「學理論、學政策、學法規、學業務」活動及學習測試", 90, 12)
    assert "".join(lines) == "組織「學理論、學政策、學法規、學業務」活動及學習測試"
    assert all(text_width(line, 12) <= 90 for line in lines)
    assert not any(line[0] in "、」，。" for line in lines)
    assert not any(line[-1] == "「" for line in lines)


def test_wrap__balance__no_lone_character_and_no_cut_word() -> None:
    assert wrap("歸口辦理,落實整改", 90, 12, balance=True) == ["歸口辦理,", "落實整改"]
    assert "rectification" in wrap("Call the rectification process", 90, 12, balance=True)


def test_wrap__too_long__ellipsis_within_max_lines() -> None:
    lines = wrap("對照崗位職責逐條核實投訴人反映的問題並形成書面意見報效能辦審核後反饋", 90, 12, max_lines=2)
    assert len(lines) == 2 and lines[-1].endswith("…") and text_width(lines[-1], 12) <= 90


def test_wrap__first_line_narrower_and_explicit_newlines() -> None:
    lines = wrap("對照崗位職責逐條核實投訴人反映的問題", 90, 12, first_width=46)
    assert text_width(lines[0], 12) <= 46 and all(text_width(line, 12) <= 90 for line in lines[1:])
    assert wrap("Form\n[approved]", 90, 11) == ["Form", "[approved]"]
    assert wrap("Unbreakable", 20, 12, first_width=10)[0] == ""


def test_clean__drops_characters_xml_cannot_carry() -> None:
    assert clean("a\x00b\x07c\tD") == "abc\tD"
