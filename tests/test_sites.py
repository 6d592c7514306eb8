from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analytics.cli import main
from analytics.sites import Site, SiteRules, SiteSettings, check_goal, check_prop_keys, check_settings


def test_settings_are_normalised() -> None:
    s = check_settings(SiteSettings("https://WWW.Example.com/", "Europe/Paris", (" Shop.Example.com ",)))
    assert (s.domain, s.timezone, s.allowed_hostnames) == ("example.com", "Europe/Paris", ("shop.example.com",))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SiteSettings("not a domain"), "not a domain name"),
        (SiteSettings("example.com/path"), "not a domain name"),
        (SiteSettings("example.com", "Mars/Olympus"), "unknown time zone"),
        (SiteSettings("example.com", excluded_ips=("office",)), "not an IP address"),
        (SiteSettings("example.com", excluded_paths=("admin",)), "must start with /"),
    ],
)
def test_invalid_settings_say_what_to_write(settings: SiteSettings, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_settings(settings)


def test_default_hosts_are_the_domain_and_its_subdomains() -> None:
    rules = SiteRules.of(Site(1, "example.com"))
    assert rules.host_allowed("example.com")
    assert rules.host_allowed("blog.example.com")
    assert not rules.host_allowed("notexample.com")
    assert not rules.host_allowed("example.com.evil.net")


def test_host_and_path_patterns() -> None:
    rules = SiteRules.of(
        Site(
            1, "example.com", allowed_hostnames=("*.example.org", "www.app.io"), excluded_paths=("/admin/*", "/preview")
        )
    )
    assert rules.host_allowed("a.example.org")
    assert rules.host_allowed("app.io")  # www. is ignored on both sides
    assert not rules.host_allowed("example.com")
    assert rules.path_excluded("/admin/users/1")
    assert rules.path_excluded("/preview")
    assert not rules.path_excluded("/preview/x")
    assert not rules.path_excluded("/pricing")


def test_only_allowed_property_keys_are_kept_and_the_others_counted() -> None:
    rules = SiteRules.of(Site(1, "example.com", allowed_props=("plan", "author", "jane@example.com")))
    props = (("email", "jane@example.com"), ("plan", "pro"), ("url", "https://x.example/"))
    assert rules.allowed_props("Signup", props) == ((("plan", "pro"),), 2)
    # The tracker's own events keep their url (reduced later to scheme, host and path), and nothing else unlisted.
    for name in ("Outbound Link: Click", "File Download"):
        assert rules.allowed_props(name, props) == ((("plan", "pro"), ("url", "https://x.example/")), 1)
    # A key that scrubbing would change is never stored, whatever an old list says.
    assert rules.allowed_props("Signup", (("jane@example.com", "1"),)) == ((), 1)
    assert SiteRules.of(Site(1, "example.com")).allowed_props("Signup", props) == ((), 3)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ((" plan ", "author", "", "plan"), ("plan", "author")),
        (("<b>size", "Plan Name", "été"), ("<b>size", "Plan Name", "été")),
    ],
)
def test_property_keys_are_stripped_and_deduplicated(keys: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert check_prop_keys(keys) == expected
    assert check_settings(SiteSettings("example.com", allowed_props=keys)).allowed_props == expected


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("jane@example.com",), "looks like personal data"),
        (("user_48151623",), "looks like personal data"),
        (("8f2a9c3e5b7d1f4a6c8e0b2d",), "looks like personal data"),
        (("x" * 301,), "1 to 300 characters"),
        (("tab\tkey",), "control character"),
        (("nul\x00",), "control character"),
        (tuple(f"k{i}" for i in range(101)), "at most 100"),
    ],
)
def test_property_keys_that_name_a_person_or_cannot_be_stored_are_refused(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_prop_keys(keys)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("event", "Signup", None),
        ("event", "Outbound Link: Click", None),
        ("page", "/users/*", None),
        ("page", "/users/(email)", None),  # the scrubbed form matches the stored paths
        ("event", "Order 1234567", "stored as 'Order (number)'"),
        ("page", "/users/jane@example.com", "stored as '/users/(email)'"),
        ("page", "/reset/8f2a9c3e5b7d1f4a6c8e0b2d4f6a8c0e", "stored as '/reset/(token)'"),
    ],
)
def test_goals_name_what_scrubbing_keeps(kind: str, value: str, message: str | None) -> None:
    if message is None:
        assert check_goal(kind, value).value == value
    else:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_goal(kind, value)


def test_the_cli_sets_the_custom_properties_a_site_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/analytics.db"\n')
    run = ["--config", str(config)]
    assert main([*run, "site", "add", "example.com", "--allow-prop", "plan"]) == 0
    assert "custom properties: plan" in capsys.readouterr().out
    assert main([*run, "site", "props", "example.com"]) == 0
    assert capsys.readouterr().out == "example.com stores the custom properties: plan\n"
    assert (
        main([*run, "site", "props", "example.com", "--allow", "author", "--allow", "seats", "--remove", "plan"]) == 0
    )
    assert capsys.readouterr().out.startswith("example.com stores the custom properties: author, seats\n")
    assert main([*run, "site", "list"]) == 0
    assert "properties author,seats" in capsys.readouterr().out
    assert main([*run, "site", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["allowed_props"] == ["author", "seats"]
    for args, error in (
        (["--allow", "jane@example.com"], "looks like personal data"),
        (["--remove", "plan"], "does not store the property 'plan'"),
    ):
        assert main([*run, "site", "props", "example.com", *args]) == 1
        err = capsys.readouterr().err
        assert error in err and len(err.strip().splitlines()) == 1
    assert main([*run, "site", "props", "nope.example"]) == 1
    assert "no site nope.example" in capsys.readouterr().err
    assert main([*run, "site", "add", "other.example", "--allow-prop", "x@example.com"]) == 1
    assert "looks like personal data" in capsys.readouterr().err
    assert main([*run, "site", "props", "example.com", "--remove", "author", "--remove", "seats"]) == 0
    assert capsys.readouterr().out.startswith("example.com stores no custom property\n")
