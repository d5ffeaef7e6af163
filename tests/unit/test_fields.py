"""phone_fields and friends: what a receiver phone is, and which digits an agent can find it by."""

from __future__ import annotations

import pytest

from db.fields import name_grams, normalise_query, phone_fields
from db.models import PhoneKind


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("13812345678", (PhoneKind.PLAIN, "13812345678", "5678"), id="plain mobile"),
        pytest.param("138 1234 5678", (PhoneKind.PLAIN, "13812345678", "5678"), id="mobile with spaces"),
        pytest.param("138-1234-5678", (PhoneKind.PLAIN, "13812345678", "5678"), id="mobile with dashes"),
        pytest.param("１３８１２３４５６７８", (PhoneKind.PLAIN, "13812345678", "5678"), id="full-width"),
        pytest.param("+86 138 1234 5678", (PhoneKind.PLAIN, "13812345678", "5678"), id="+86 prefix"),
        pytest.param("+8613812345678", (PhoneKind.PLAIN, "13812345678", "5678"), id="+86 compact"),
        pytest.param("0086 13812345678", (PhoneKind.PLAIN, "13812345678", "5678"), id="0086 prefix"),
        pytest.param("0571-88886666", (PhoneKind.PLAIN, "057188886666", "6666"), id="landline"),
        pytest.param("138****1234", (PhoneKind.MASKED, None, "1234"), id="masked"),
        pytest.param("138 **** 1234", (PhoneKind.MASKED, None, "1234"), id="masked with spaces"),
        pytest.param("188****1111-123", (PhoneKind.MASKED, None, "1111"), id="masked virtual: not the extension"),
        pytest.param("*******5678", (PhoneKind.MASKED, None, "5678"), id="masked all but four"),
        pytest.param("18877771111-123", (PhoneKind.VIRTUAL, "18877771111", "1111"), id="virtual with -"),
        pytest.param("17012345678转1234", (PhoneKind.VIRTUAL, "17012345678", "5678"), id="virtual with 转"),
        pytest.param("ZW0xMjM0NTY3OA==", (PhoneKind.CIPHER, None, None), id="ciphertext"),
        pytest.param("$$a1b2c3$$==*~", (PhoneKind.CIPHER, None, None), id="ciphertext with *"),
        pytest.param("", (PhoneKind.NONE, None, None), id="empty"),
        pytest.param("   ", (PhoneKind.NONE, None, None), id="blank"),
        pytest.param(None, (PhoneKind.NONE, None, None), id="missing"),
    ],
)
def test_phone_fields(raw: str | None, expected: tuple) -> None:
    assert phone_fields(raw) == expected


def test_the_same_mobile_however_typed_gets_the_same_digits() -> None:
    # the customer is matched across channels on these digits
    forms = ["13812345678", "+86 138 1234 5678", "138-1234-5678", "１３８ １２３４ ５６７８", "0086-138-1234-5678"]
    assert {phone_fields(f)[1] for f in forms} == {"13812345678"}


def test_normalise_query_folds_full_width_and_trims() -> None:
    assert normalise_query("　ＴＢ１２３ ") == "TB123"


def test_name_grams() -> None:
    assert name_grams("张三丰") == {"张三", "三丰"}
    assert name_grams("张三", "李 四") == {"张三", "李四"}
    assert name_grams("张*") == set()
    assert name_grams("", None) == set()
