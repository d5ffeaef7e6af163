"""``db.privacy``: what an agent may see of a phone, a name, an address and a note — and no more."""

from __future__ import annotations

import json

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.fields import phone_fields
from db.privacy import mask_address, mask_address_line, mask_name, mask_phone, mask_text

PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGITS = re.compile(r"[0-9]")


@pytest.mark.parametrize(("raw", "shown"), [
    ("13812341234", "138****1234"),
    ("138 1234 1234", "138****1234"),
    ("+86 138-1234-1234", "138****1234"),
    ("8613812341234", "138****1234"),
    ("0086 13812341234", "138****1234"),
    ("１３８１２３４１２３４", "138****1234"),  # full-width, as a Chinese IME types it
    ("0571-88881234", "0571-****1234"),
    ("(0571) 8888 1234", "0571-****1234"),
    ("010-88881234", "010-****1234"),
    ("+86 571 8888 1234", "0571-****1234"),
    ("0571-88881234-801", "0571-****1234-****"),
    ("0571-88881234转801", "0571-****1234转****"),
    ("13812345678-1234", "138****5678-****"),  # a platform's virtual number: the extension reaches the person
    ("13812345678转1234", "138****5678转****"),
    ("188****1111-1234", "188****1111-****"),  # masked by the platform, extension still hidden
    ("138****1234", "138****1234"),  # as delivered
    ("0571-****1234", "0571-****1234"),
    ("13812341234**", "****1234"),  # a "mask" that shows everything is masked again
    ("88881234", "****1234"),
    ("4008208820", "****8820"),
    ("12345", "****"),
    ("~AgAAAAA3ZTBiNGU0Y2Fk~", "~AgAAAAA3ZTBiNGU0Y2Fk~"),  # platform ciphertext: as delivered
    ("tel:13812341234", "tel:138****1234"),
    ("", ""),
])
def test_phones_show_at_most_the_first_three_and_last_four(raw: str, shown: str) -> None:
    assert mask_phone(raw) == shown


def test_a_masked_virtual_number_is_still_read_as_masked() -> None:
    # the card shows it as it is (widgets.format.phone_display), not as "encrypted"
    assert phone_fields(mask_phone("17012345678转1234"))[0] == "masked"
    assert phone_fields(mask_phone("17012345678-1234"))[2] == "5678"


@pytest.mark.parametrize(("raw", "shown"), [
    ("张三", "张*"), ("欧阳娜娜", "欧***"), ("John Smith", "J***"), ("张", "*"), ("", ""), (" 李四 ", "李*"),
    ("张*", "张*"), ("*三", "*三"),  # masked by the platform: as delivered
])
def test_names_keep_only_their_first_character(raw: str, shown: str) -> None:
    assert mask_name(raw) == shown


@pytest.mark.parametrize(("parts", "shown"), [
    (("浙江省", "杭州市", "西湖区", "文三路100号"), "****"),
    (("浙江省", "杭州市", "西湖区", "浙江省杭州市西湖区文三路100号"), "浙江省杭州市西湖区****"),
    (("浙江省", "杭州市", "西湖区", "西湖区 文三路100号"), "西湖区****"),
    (("", "", "", "江苏省苏州市昆山市玉山镇1号"), "江苏省苏州市昆山市****"),
    (("", "", "", "北京市朝阳区望京街道花家地区1号"), "北京市朝阳区****"),
    (("", "", "", "新疆维吾尔自治区乌鲁木齐市天山区 解放路"), "新疆维吾尔自治区乌鲁木齐市天山区****"),
    (("广东省", "东莞市", "", "长安镇上沙社区1号"), "****"),  # a town and a community are below the district
    (("", "", "", "西湖区"), "西湖区"),  # nothing below the district to hide
    (("", "", "", ""), ""),
])
def test_addresses_show_down_to_the_district(parts: tuple[str, str, str, str], shown: str) -> None:
    assert mask_address(*parts) == shown


def test_free_text_hides_phones_and_id_numbers_but_keeps_order_numbers() -> None:
    note = "到了打13812341234或0571-88881234，身份证110101199003074514，原单号 2024031512345678901，20240315前发"
    assert mask_text(note) == ("到了打138****1234或0571-****1234，身份证110***********4514，"
                               "原单号 2024031512345678901，20240315前发")
    assert mask_text("+86 138-1234-5678 找张三") == "+86 138****5678 找张三"
    assert mask_text("身份证 11010119900307451X 校验位不对") == "身份证 11010119900307451X 校验位不对"


def test_an_address_line_masks_each_part_unless_revealed() -> None:
    line = "张三 13812341234 浙江省杭州市西湖区文三路100号"
    assert mask_address_line(line) == "张* 138****1234 浙江省杭州市西湖区****"
    assert mask_address_line(line, {"address"}) == "张* 138****1234 浙江省杭州市西湖区文三路100号"
    assert mask_address_line(line, {"name", "phone", "address"}) == line
    assert mask_address_line("李四 浙江省杭州市西湖区文三路 100号") == "李* 浙江省杭州市西湖区****"
    assert mask_address_line("张三 13812345678转1234 北京市朝阳区建国路1号") == "张* 138****5678转**** 北京市朝阳区****"


# -- properties ------------------------------------------------------------------------------------

_SEP = st.sampled_from(["", " ", "-"])
mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@st.composite
def written_mobiles(draw) -> tuple[str, str]:
    """A mobile as people write it (country code, spaces, dashes) and the number itself."""
    number = draw(mobiles)
    sep = draw(_SEP)
    cc = draw(st.sampled_from(["", "+86 ", "0086", "86", "+86-"]))
    return f"{cc}{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}", number


@PROPERTIES
@given(written_mobiles())
def test_a_mobile_shows_exactly_its_first_three_and_last_four(written: tuple[str, str]) -> None:
    raw, number = written
    assert mask_phone(raw) == f"{number[:3]}****{number[-4:]}"


@PROPERTIES
@given(st.from_regex(r"\+?[0-9 \-()]{0,24}", fullmatch=True))
def test_digits_and_separators_never_show_more_than_allowed(raw: str) -> None:
    """At most eight digits (an area code and the last four), and at least three hidden."""
    digits = len(DIGITS.findall(raw))
    shown = len(DIGITS.findall(mask_phone(raw)))
    assert shown <= min(8, max(0, digits - 3))


@PROPERTIES
@given(st.text())
def test_masking_any_text_never_raises_and_is_idempotent(value: str) -> None:
    for mask in (mask_phone, mask_name, mask_text, mask_address_line):
        once = mask(value)
        assert isinstance(once, str)
        assert mask(once) == once
    once = mask_address("浙江省", "杭州市", "西湖区", value)
    assert mask_address("浙江省", "杭州市", "西湖区", once) == once


@PROPERTIES
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs"))), st.text(
    alphabet=st.characters(blacklist_categories=("Nd", "Cs"))), mobiles)
def test_a_mobile_inside_any_text_is_masked(before: str, after: str, number: str) -> None:
    masked = mask_text(f"{before} {number} {after}")
    assert number not in masked and number[3:7] + number[7:] not in masked
    assert f"{number[:3]}****{number[-4:]}" in masked


@PROPERTIES
@given(st.text(min_size=1))
def test_a_name_shows_one_character_at_most(name: str) -> None:
    masked = mask_name(name)
    if "*" not in name:
        assert len(masked.replace("*", "")) <= 1


@PROPERTIES
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_an_address_detail_is_never_shown_below_the_district(detail: str) -> None:
    masked = mask_address("浙江省", "杭州市", "西湖区", "西湖区文三路" + detail)
    assert masked == "西湖区****"


def test_a_quarantined_payload_shows_its_receiver_masked_whatever_the_platform_calls_the_fields() -> None:
    from deskapp.screens.quarantine import pretty_payload

    raw = {"tid": 4097804977281786680, "receiver_name": "欧阳娜娜", "receiver_mobile": "13812345678",
           "receiverPhone": 13912345678, "receiver_address": "文三路100号2幢301室", "buyer_nick": "tb_娜娜",
           "buyer_message": "到了打 13700001111", "orders": {"order": [{"title": "龙井茶 250g", "num_iid": 123456}]},
           "consignee": {"name": "王五", "tel": "0571-88881234"}, "shop_name": "旗舰店", "sku_id": "A-1"}
    shown = pretty_payload(json.dumps(raw, ensure_ascii=False))
    for secret in ("欧阳娜娜", "13812345678", "13912345678", "文三路100号", "13700001111", "王五", "88881234", "tb_娜娜"):
        assert secret not in shown, secret
    for kept in ("4097804977281786680", "138****5678", "龙井茶 250g", "123456", "旗舰店", "A-1"):
        assert kept in shown, kept
    assert "13700001111" not in pretty_payload("not json: call 13700001111")  # text that is not JSON too
