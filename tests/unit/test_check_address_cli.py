"""``deskapp check-address``: the JSON shape scripts rely on, the human block, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deskapp.__main__ import main


@pytest.fixture(autouse=True)
def _log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "deskapp.log"))
    monkeypatch.delenv("DESKAPP_LANG", raising=False)


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["check-address", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_shape_of_a_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json(capsys, "张三 13812345678 宁波市西湖区文三路1号")
    assert code == 1  # block
    assert {"province", "city", "district", "detail", "status", "verdict", "problems", "suggestion",
            "candidates"} <= set(data)
    assert (data["province"], data["city"], data["district"], data["detail"]) == ("浙江省", "宁波市", "西湖区", "文三路1号")
    assert (data["status"], data["verdict"]) == ("CONFLICT", "block")
    assert data["suggestion"] == {"province": "浙江省", "city": "杭州市", "district": "西湖区"}
    assert data["candidates"] == []
    assert data["problems"][0] == {"code": "address_conflict", "severity": "block",
                                   "message": "西湖区属于杭州市，不属于宁波市 — 建议改为 浙江省杭州市西湖区"}
    assert data["name"] == "张三" and data["phone"]["kind"] == "mobile"


def test_json_of_ambiguous_and_legacy(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json(capsys, "朝阳区建国路88号")
    assert code == 0 and (data["status"], data["verdict"], data["suggestion"]) == ("AMBIGUOUS", "warn", None)
    assert [c["city"] for c in data["candidates"]] == ["北京市", "长春市"]
    code, data = _json(capsys, "上海市闸北区天目中路1号")
    assert code == 0 and data["status"] == "LEGACY" and data["suggestion"]["district"] == "静安区"


def test_phone_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json(capsys, "浙江省杭州市西湖区文三路478号", "--phone", "0574-87654321")
    assert code == 0 and (data["status"], data["verdict"]) == ("OK", "warn")
    assert [p["code"] for p in data["problems"]] == ["phone_area_mismatch"]
    code, data = _json(capsys, "浙江省杭州市西湖区文三路478号", "--phone", "1381234567")
    assert code == 1 and data["verdict"] == "block" and data["problems"][0]["code"] == "phone_invalid"
    code, data = _json(capsys, "浙江省杭州市西湖区文三路478号", "--phone", "138****1234")
    assert code == 0 and data["verdict"] == "ok" and data["phone"]["kind"] == "masked"


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-address", "宁波市西湖区文三路1号 [bold]x[/]", "--phone", "0571-88888888"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["省份", "浙江省"] and lines[1].split() == ["城市", "宁波市"]
    assert "[bold]x[/]" in out  # the customer's text is printed as is, never as markup
    assert "CONFLICT 冲突 · 拦截" in out
    assert "✗ 西湖区属于杭州市，不属于宁波市 — 建议改为 浙江省杭州市西湖区" in out
    assert "0571-88888888（座机 · 浙江省杭州市）" in out
    assert any(line.startswith("建议") and line.endswith("浙江省杭州市西湖区") for line in lines)


def test_human_output_in_english(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "en", "check-address", "浙江杭州西湖区文三路1号"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["province", "浙江省"] and "OK ok · pass" in out


def test_empty_text_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-address", "  "]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err
