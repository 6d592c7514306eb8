"""Configuration: defaults, the TOML file, environment variables, and errors that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.config import Config, load, options
from analytics.errors import ConfigError

ROOT = Path(__file__).parent.parent


def test_defaults_listen_on_loopback_with_sqlite_under_data() -> None:
    config = load(None, environ={})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8000)
    assert config.database.url == "sqlite:///data/analytics.db"
    assert (config.privacy.ipv4_prefix, config.privacy.ipv6_prefix) == (24, 48)


def test_shipped_config_toml_states_every_default() -> None:
    assert load(ROOT / "config.toml", environ={}) == Config()


def test_file_then_environment_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[ingest]\nspam_referrers = ["spam.example"]\n')
    config = load(
        path,
        environ={
            "ANALYTICS_SERVER_PORT": "9100",
            "ANALYTICS_DATABASE_URL": "sqlite:////tmp/x.db",
            "ANALYTICS_INGEST_RESPECT_DNT": "false",
            "ANALYTICS_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        },
    )
    assert config.server.port == 9100
    assert config.server.host == "0.0.0.0"
    assert config.database.url == "sqlite:////tmp/x.db"
    assert config.ingest.respect_dnt is False
    assert config.ingest.spam_referrers == ("spam.example",)
    assert config.server.trusted_proxies == ("10.0.0.0/8", "::1")


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        ("[server]\nport = 70000\n", {}, "server.port = 70000"),
        ('[server]\nport = "eighty"\n', {}, "server.port = 'eighty'"),
        ("", {"ANALYTICS_SERVER_PORT": "eighty"}, "ANALYTICS_SERVER_PORT"),
        ("[server]\nprot = 80\n", {}, "unknown option server.prot"),
        ("[serveur]\nport = 80\n", {}, "unknown section [serveur]"),
        ("", {"ANALYTICS_SERVER_PROT": "80"}, "unknown environment variable ANALYTICS_SERVER_PROT"),
        ('[database]\nurl = "mysql://x"\n', {}, "database.url"),
        ('[database]\nurl = "postgresql://localhost/a"\n', {}, "PostgreSQL is not supported yet"),
        ('[database]\nsqlite_synchronous = "OFF"\n', {}, "must be one of NORMAL, FULL, EXTRA"),
        ('[server]\ntrusted_proxies = ["proxy.local"]\n', {}, "is not an IP network"),
        ("[privacy]\nipv4_prefix = 33\n", {}, "between 0 and 32"),
        ('[ingest]\nrespect_gpc = "yes"\n', {}, "must be true or false"),
        ('[log]\nlevel = "loud"\n', {}, "debug, info, warning or error"),
        ("[server\n", {}, "not valid TOML"),
    ],
)
def test_invalid_config_names_the_key_and_the_fix(
    tmp_path: Path, toml: str, environ: dict[str, str], expected: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("(", r"\(")):
        load(path, environ=environ)


def test_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml", environ={})


def test_every_option_has_an_environment_variable_and_documentation() -> None:
    for option in options():
        assert option.env == f"ANALYTICS_{option.section.upper()}_{option.key.upper()}"
        assert len(option.doc) > 10
