"""The docs cannot drift: every option is in config.toml and the README, and the README's commands exist."""

from __future__ import annotations

import math
import re
import runpy
from datetime import datetime, timedelta
from pathlib import Path

from analytics import privacy
from analytics.cli import parser
from analytics.config import IngestConfig, options

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
CONFIG = (ROOT / "config.toml").read_text()


def test_every_option_is_documented_in_config_toml_with_its_environment_variable() -> None:
    for option in options():
        assert re.search(rf"^{option.key} = ", CONFIG.split(f"[{option.section}]")[1], re.M), option.key
        assert option.env in CONFIG


def test_every_option_is_in_the_readme() -> None:
    for option in options():
        assert f"{option.section}.{option.key}" in README, f"{option.section}.{option.key} missing from README"


def test_readme_quick_start_commands_are_the_makefile_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "make run" in README and "make test" in README
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_in_the_readme() -> None:
    for command in (
        "serve",
        "migrate",
        "site add",
        "site list",
        "site remove",
        "site snippet",
        "site props",
        "rollup",
        "purge",
        "apikey create",
        "apikey list",
        "apikey revoke",
        "user add",
        "user list",
        "user password",
        "user remove",
        "health",
        "backup",
    ):
        assert f"analytics {command}" in README
    assert parser().prog == "analytics"


def test_every_drop_reason_is_in_the_readme() -> None:
    from analytics.ingest import Drop

    for reason in Drop:
        assert f"`{reason.value}`" in README


def test_config_toml_and_the_readme_table_are_generated_from_the_declarations() -> None:
    generator = runpy.run_path(str(ROOT / "tools" / "gen_config.py"))
    assert generator["config_toml"]() == CONFIG, "run: python tools/gen_config.py"
    assert generator["readme"](README) == README, "run: python tools/gen_config.py"


def test_the_readme_states_how_long_a_destroyed_salt_can_survive_on_disk() -> None:
    """The salt's latest deadline after its day, then one upkeep round, then the upkeep's own reads and the
    DELETE's commit (milliseconds: the next multiple of 5 s above). No wipe is waited for (the salts' file keeps
    no copy of a deleted page)."""
    upkeep = timedelta(seconds=min(IngestConfig().site_refresh_seconds, 60))
    seconds = math.floor((privacy.SALT_KEPT_AT_MOST + upkeep).total_seconds() / 5) * 5 + 5
    latest = (datetime(2026, 1, 1) + timedelta(seconds=seconds)).strftime("%H:%M:%S")
    text = " ".join(README.split())  # as read, whatever the line breaks
    assert f"{privacy.SALT_KEPT_AT_MOST // timedelta(hours=1)} hours after its UTC day ends at the latest" in text
    assert f"**{latest} UTC the next day**" in text
    assert f"just over {upkeep.total_seconds():g} s after midnight on a night when no visit spans it" in text
