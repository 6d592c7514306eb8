from __future__ import annotations

import pytest

from analytics.sites import Site, SiteRules, SiteSettings, check_settings


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
