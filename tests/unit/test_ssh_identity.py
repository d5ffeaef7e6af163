"""Under SSH the login is the operator: nothing a user can put in their own environment changes it."""

from __future__ import annotations

from deskapp.settings import default_operator, login_name, shown_db, under_ssh


def test_under_ssh_an_environment_variable_cannot_make_a_login_another_operator() -> None:
    ssh = {"SSH_CONNECTION": "10.0.0.5 50122 10.0.0.1 22", "DESKAPP_OPERATOR": "maqing"}  # maqing: an admin
    assert under_ssh(ssh)
    assert default_operator(ssh) == login_name()


def test_on_a_local_terminal_the_variable_names_the_operator() -> None:
    assert not under_ssh({"DESKAPP_OPERATOR": "wangfang"})
    assert default_operator({"DESKAPP_OPERATOR": "wangfang"}) == "wangfang"
    assert default_operator({}) == login_name()


def test_a_database_url_is_printed_without_its_password() -> None:
    shown = shown_db("postgresql+asyncpg://desk:s3cret@10.0.0.9:5432/orders")
    assert "s3cret" not in shown and "10.0.0.9" in shown
    assert shown_db("/srv/deskapp/deskapp.db") == "/srv/deskapp/deskapp.db"
