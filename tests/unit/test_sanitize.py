"""clean_text: nothing that came from outside may drive the agent's terminal."""

from __future__ import annotations

import pytest

from db.sanitize import clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("abc\x1b[2Jdef", "abcdef", id="CSI erase screen, no '[2J' left behind"),
        pytest.param("请尽快\x1b[31m发货\x1b[0m", "请尽快发货", id="CSI colours"),
        pytest.param("x\x1b]52;c;aGVsbG8=\x07y", "xy", id="OSC 52 clipboard write, BEL"),
        pytest.param("x\x1b]52;c;aGVsbG8=\x1b\\y", "xy", id="OSC 52 clipboard write, ST"),
        pytest.param(
            "\x1b]8;;https://evil.example/\x07点我退款\x1b]8;;\x07",
            "点我退款",
            id="OSC 8 hyperlink keeps only its visible text",
        ),
        pytest.param("a\x1b]0;pwned\x07b", "ab", id="OSC 0 window title"),
        pytest.param("a\x9b2Jb", "ab", id="8-bit CSI"),
        pytest.param("a\x9d52;c;aGVsbG8=\x9cb", "ab", id="8-bit OSC"),
        pytest.param("a\x85\x90\x9fb", "ab", id="other C1 controls"),
        pytest.param("a\x00\x07\x08\x7fb", "ab", id="C0 and DEL"),
        pytest.param("a\x1bPq#0;2;0;0;0\x1b\\b", "ab", id="DCS string"),
    ],
)
def test_terminal_controls_are_removed(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "char", ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069",
             "\u200e", "\u200f", "\u061c"]
)
def test_bidi_controls_are_removed(char: str) -> None:
    # U+202E would make "txt.exe" read as "exe.txt" and an address read backwards
    assert clean_text(f"浙江省{char}杭州市") == "浙江省杭州市"


def test_chinese_text_and_punctuation_survive() -> None:
    text = "张三丰 浙江省杭州市西湖区文三路100号（近地铁站）！【加急】～"
    assert clean_text(text) == text


def test_newlines_only_in_multiline_fields() -> None:
    assert clean_text("第一行\n第二行\r\n第三行\t完") == "第一行 第二行 第三行 完"
    assert clean_text("第一行\n第二行\r\n第三行", multiline=True) == "第一行\n第二行\n第三行"
    # a lone CR (returns the cursor, overwrites what the agent sees) never survives
    assert "\r" not in clean_text("好评\r差评", multiline=True)


def test_markup_is_data_not_removed() -> None:
    # cleaning is about terminal controls; markup is neutralised by rendering it as plain Content
    for text in ("[bold red]x[/]", "[@click=app.quit]退出[/]", "[/]", "[link=https://x]y"):
        assert clean_text(text) == text


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_values_become_empty_strings(empty: str | None) -> None:
    assert clean_text(empty) == ""


def test_lone_surrogates_are_dropped_and_real_astral_characters_kept() -> None:
    assert clean_text("张\ud800三\udfff") == "张三"  # JSON allows them; nothing can show or store them
    assert clean_text("好评😀") == "好评😀"
