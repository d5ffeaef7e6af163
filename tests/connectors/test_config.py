"""deskapp.toml: typed config, secrets by environment reference only, every problem in plain words."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connectors.config import ConfigError, MissingSecret, check, load
from deskapp.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deskapp.example.toml"
SECRETS = {
    "TAOBAO_APP_SECRET": "s3cret-tb-app", "TAOBAO_SESSION_FLAGSHIP": "s3cret-tb-flag",
    "TAOBAO_SESSION_OUTLET": "s3cret-tb-outlet", "PDD_CLIENT_SECRET": "s3cret-pdd",
    "PDD_ACCESS_TOKEN": "s3cret-pdd-token", "PDD_REFRESH_TOKEN": "s3cret-pdd-refresh", "MINIAPP_TOKEN": "s3cret-mini", "KUAIDI100_KEY": "s3cret-k100",
    "KUAIDI100_CUSTOMER": "s3cret-cust", "KUAIDI100_SALT": "s3cret-salt",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def write(tmp_path: Path, text: str, name: str = "deskapp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_is_valid_and_typed(env: dict[str, str]) -> None:
    assert check(EXAMPLE) == []
    config = load(EXAMPLE)
    shops = {s.actor_id: s for s in config.shops()}
    assert set(shops) == {"taobao:tb-flagship", "taobao:tb-outlet", "pdd:pdd-main", "miniapp:mall"}
    outlet, flagship = shops["taobao:tb-outlet"], shops["taobao:tb-flagship"]
    assert (flagship.poll_seconds, outlet.poll_seconds) == (30, 60)  # [sync] default, shop override
    assert flagship.lag == timedelta(minutes=10) and flagship.overlap == timedelta(minutes=5)
    assert flagship.secret("secret") == "s3cret-tb-app" and flagship.secret("session") == "s3cret-tb-flag"
    assert config.channel("taobao").overrides() == {"status": {"PAID_FORBID_CONSIGN": "hold"}}
    mall = shops["miniapp:mall"]
    assert mall.kind == "generic" and mall.mapping_path == ROOT / "connectors/mappings/miniapp.toml"
    assert config.kuaidi100 is not None and config.kuaidi100.listen_port == 8790
    assert config.kuaidi100.salt.value() == "s3cret-salt"


def test_secret_values_never_reach_objects_or_messages(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    config = load(EXAMPLE)
    shown = repr(config) + str(config)
    assert not any(value in shown for value in env.values())
    assert "TAOBAO_APP_SECRET" in shown  # the reference (a name) is fine to show
    monkeypatch.setenv("TAOBAO_APP_SECRET", "rotated")  # read at run time, not at load time
    assert config.shops()[0].secret("secret") == "rotated"
    monkeypatch.delenv("TAOBAO_APP_SECRET")
    with pytest.raises(MissingSecret, match="TAOBAO_APP_SECRET"):
        config.shops()[0].secret("secret")
    literal = write(tmp_path, '[channels.jd]\napp_secret = "hunter2-literal"\n[[channels.jd.shops]]\ncode = "a"\n')
    problems = check(literal)
    assert [p.code for p in problems] == ["literal_secret"]
    assert "hunter2" not in problems[0].zh + problems[0].en + problems[0].where
    assert "app_secret_env" in problems[0].zh


def test_missing_env_is_named_and_can_be_waived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JD_SECRET_FOR_TEST", raising=False)
    path = write(tmp_path, '[channels.jd]\nsecret_env = "JD_SECRET_FOR_TEST"\n[[channels.jd.shops]]\ncode = "jd1"\n')
    [problem] = check(path)
    assert problem.code == "missing_env" and problem.where == "channels.jd.secret_env"
    assert "JD_SECRET_FOR_TEST" in problem.zh and "JD_SECRET_FOR_TEST" in problem.en
    with pytest.raises(ConfigError):
        load(path)
    assert load(path, require_env=False).shops()[0].credentials["secret"].env == "JD_SECRET_FOR_TEST"


BROKEN = """
[sync]
poll_seconds = 0
lag_minutes = "ten"

[channels.taobao]
base_url = "ftp//nowhere"
poll_secnds = 30
[channels.taobao.status_map]
WAIT_SELLER_SEND_GOODS = "sent"
[[channels.taobao.shops]]
code = "main"
[[channels.taobao.shops]]
code = "main"

[channels.wechat_shop]
[[channels.wechat_shop.shops]]
code = "w1"

[channels.pos]
mapping = "missing.toml"
[[channels.pos.shops]]
code = "store-1"

[channels.miniapp]
mapping = "bad-mapping.toml"
[[channels.miniapp.shops]]
code = "m"

[channels.distributor]
[[channels.distributor.shops]]
code = "d"

[carriers.kuaidi100]
key_env = "K100_KEY_FOR_TEST"
callback_url = "https://desk.example.com/push"
listen = "nowhere"
"""


def test_every_problem_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K100_KEY_FOR_TEST", "x")
    write(tmp_path, '[fields]\norder_id = "id"\nsku_code = "x"\n[amount]\nunit = "dollars"\n', "bad-mapping.toml")
    problems = {(p.where, p.code) for p in check(write(tmp_path, BROKEN))}
    expected = {
        ("sync.poll_seconds", "out_of_range"),
        ("sync.lag_minutes", "invalid"),
        ("channels.taobao.base_url", "bad_url"),
        ("channels.taobao.poll_secnds", "unknown_key"),
        ("channels.taobao.status_map.WAIT_SELLER_SEND_GOODS", "unknown_status"),
        ("channels.taobao.shops[1].code", "duplicate_shop"),
        ("channels.wechat_shop", "unknown_channel"),
        ("channels.pos.mapping", "missing_mapping"),
        ("channels.miniapp.mapping.fields.sku_code", "unknown_key"),
        ("channels.miniapp.mapping.amount.unit", "bad_mapping"),
        ("channels.miniapp.mapping.fields.status", "missing_field"),
        ("channels.distributor.mapping", "missing_mapping"),
        ("carriers.kuaidi100.salt_env", "missing"),
        ("carriers.kuaidi100.listen", "invalid"),
    }
    assert expected <= problems, expected - problems
    texts = check(write(tmp_path, BROKEN))
    by_where = {p.where: p for p in texts}
    assert "0 超出范围" in by_where["sync.poll_seconds"].zh and "1 到 3600" in by_where["sync.poll_seconds"].zh
    assert "out of range" in by_where["sync.poll_seconds"].en
    assert "sent" in by_where["channels.taobao.status_map.WAIT_SELLER_SEND_GOODS"].zh
    assert "wechat_shop" in by_where["channels.wechat_shop"].zh and 'kind = "generic"' in by_where["channels.wechat_shop"].en


def test_a_generic_channel_needs_an_api_to_sync(tmp_path: Path) -> None:
    write(tmp_path, '[fields]\norder_id = "a"\nstatus = "b"\ncreated_at = "c"\n[status]\nX = "paid"\n', "import-only.toml")
    problems = check(write(tmp_path, '[channels.pos]\nmapping = "import-only.toml"\n[[channels.pos.shops]]\ncode = "s"\n'))
    assert [(p.where, p.code) for p in problems] == [("channels.pos.mapping", "no_source")]
    no_url = check(write(tmp_path, f'[channels.miniapp]\nmapping = "{EXAMPLE.parent}/connectors/mappings/miniapp.toml"\n'
                                   '[[channels.miniapp.shops]]\ncode = "s"\n'))
    assert [(p.where, p.code) for p in no_url] == [("channels.miniapp.base_url", "missing")]


def test_unreadable_files_are_one_problem(tmp_path: Path) -> None:
    [missing] = check(tmp_path / "nope.toml")
    assert missing.code == "missing_file"
    [bad] = check(write(tmp_path, "[channels\n"))
    assert bad.code == "toml" and "TOML" in bad.zh


def test_cli_config_check(tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "配置无误" in out and "4 个店铺" in out
    assert main(["--lang", "en", "config", "check", "--config", str(EXAMPLE)]) == 0
    assert "config OK" in capsys.readouterr().out
    broken = write(tmp_path, '[channels.nosuch]\n[[channels.nosuch.shops]]\ncode = "x"\nsecret = "pw-literal"\n')
    assert main(["config", "check", "--config", str(broken)]) == 1
    captured = capsys.readouterr()
    assert "未知的渠道" in captured.err and "Traceback" not in captured.err
    assert not any(value in captured.out + captured.err for value in env.values())
