"""The privacy report and the visitors' notice: generated from the live configuration, in English and French;
each criterion's verdict follows the setting that decides it; what was not counted comes from the drop counters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analytics import cli, report
from analytics.app import upkeep
from analytics.cli_privacy import site_drops
from analytics.config import Config
from analytics.sites import Site
from tests.conftest import Clock, Harness, pageview, start

SITE = Site(1, "example.com")
STANDARD = Config().replace("privacy", profile="standard")


def verdicts(config: Config, site: Site = SITE) -> dict[str, bool]:
    return {c["id"]: c["met"] for c in report.build(config, site, {}, "en", "https://stats.example")["criteria"]}


def test_the_default_configuration_meets_every_criterion() -> None:
    built = report.build(Config(), SITE, {}, "en", "https://stats.example")
    assert all(c["met"] for c in built["criteria"]), built["criteria"]
    assert built["summary"] == "Every criterion is met by this configuration."


# Each criterion a setting decides, the setting that breaks it (under the standard profile, which accepts it) and
# the text the report then shows for it.
FLIPS: list[tuple[str, str, dict[str, Any], str]] = [
    ("purpose", "collect", {"utm": "on"}, "collect.utm = on"),
    ("purpose", "collect", {"events": "on"}, "collect.events = on"),
    ("purpose", "collect", {"revenue": "on"}, "collect.revenue = on"),
    ("purpose", "collect", {"properties": "on"}, "collect.properties = on"),
    ("anonymous", "privacy", {"min_visitors": 3}, "privacy.min_visitors = 3"),
    ("no-cross-site-identifier", "privacy", {"identity_scope": "site"}, "privacy.identity_scope = site"),
    ("ip-anonymised", "privacy", {"ipv4_prefix": 32}, "privacy.ipv4_prefix = 32"),
    ("ip-anonymised", "privacy", {"ipv6_prefix": 64}, "privacy.ipv6_prefix = 64"),
    ("retention", "privacy", {"aggregate_retention_months": 36}, "privacy.aggregate_retention_months = 36"),
    ("information", "privacy", {"public_page": False}, "privacy.public_page = false"),
    ("objection", "ingest", {"respect_gpc": False}, "ingest.respect_gpc = false"),
    ("objection", "ingest", {"respect_dnt": False}, "ingest.respect_dnt = false"),
]


@pytest.mark.parametrize(("criterion", "section", "change", "shown"), FLIPS)
@pytest.mark.parametrize("lang", report.LANGS)
def test_a_setting_that_breaks_a_criterion_flips_its_verdict_and_says_so(
    criterion: str, section: str, change: dict[str, Any], shown: str, lang: str
) -> None:
    # The standard profile with the cnil profile's choices, so that only `change` differs.
    base = STANDARD.replace("privacy", identity_scope="hostname").replace(
        "collect", utm="off", events="off", revenue="off", properties="off"
    )
    assert all(verdicts(base).values())
    broken = base.replace(section, **change)
    after = verdicts(broken)
    assert [c for c, met in after.items() if not met] == [criterion]
    text = report.markdown(report.build(broken, SITE, {}, lang, "https://stats.example"))
    title = report.CRITERIA_TEXT[criterion][report.LANGS.index(lang)]
    row = next(line for line in text.splitlines() if line.startswith(f"| {title} |"))
    assert ("**not met**" if lang == "en" else "**non rempli**") in row and shown in row
    assert ("1 criterion is not met" if lang == "en" else "1 critère n'est pas rempli") in text


def test_a_sites_own_switch_decides_its_verdict() -> None:
    assert not verdicts(Config(), Site(1, "example.com", collect=(("utm", True),)))["purpose"]
    assert verdicts(STANDARD.replace("collect", utm="off", events="off", revenue="off", properties="off"))["purpose"]


@pytest.mark.parametrize("lang", report.LANGS)
def test_the_reports_figures_are_the_configurations(lang: str) -> None:
    config = STANDARD.replace(
        "privacy", min_visitors=8, raw_retention_hours=72, aggregate_retention_months=13, ipv4_prefix=16
    ).replace("collect", screens="off")
    built = report.build(config, SITE, {"gpc": 4, "bot": 12}, lang, "https://stats.example")
    text = report.markdown(built)
    for figure in ("8", "72", "13", "16"):
        assert f" {figure} " in text
    screens = next(d for d in built["data_points"] if d["field"] == "screen")
    assert screens["stored"] is False
    assert f"| {screens['name']} | {screens['granularity']} | {'no' if lang == 'en' else 'non'}" in text
    assert "| gpc | 4 |" in text and "| bot | 12 |" in text
    assert 'src="https://stats.example/optout.' in text and 'integrity="sha384-' in text  # the switch, pinned
    assert ("13 months" if lang == "en" else "13 mois") in built["policy_paragraph"]
    record = dict(built["record"])
    retention = record["Retention" if lang == "en" else "Durées de conservation"]
    assert "72" in retention and "13" in retention
    categories = record["Categories of data" if lang == "en" else "Catégories de données"]
    assert screens["name"] not in categories and "UTM" in categories  # what is stored, and only that
    assert "certified" not in text.lower() and "certifié" not in text.lower()


def test_the_report_in_french_is_in_french() -> None:
    en = report.markdown(report.build(Config(), SITE, {}, "en", "https://s.example"))
    fr = report.markdown(report.build(Config(), SITE, {}, "fr", "https://s.example"))
    assert "Rapport de confidentialité pour example.com" in fr and "Privacy report for example.com" in en
    assert "Durée de conservation" in fr and "Retention" not in fr.replace("retention", "")


def test_the_cli_prints_the_report_with_the_sites_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["site", "add", "example.com"]) == 0
    assert cli.main(["privacy", "report", "--site", "example.com", "--format", "json", "--lang", "fr"]) == 0
    built = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert built["lang"] == "fr" and built["site"] == "example.com" and built["drops"] == {}
    assert cli.main(["privacy", "report", "--site", "nope.example"]) == 1
    assert "no site nope.example" in capsys.readouterr().err
    assert cli.main(["privacy", "report", "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith('<!doctype html><html lang="en">')


async def test_dropped_requests_reach_the_report(harness: Harness) -> None:
    assert (await harness.send(pageview(), headers={"Sec-GPC": "1"})).headers["x-analytics-dropped"] == "gpc"
    await upkeep(harness.services, harness.clock.now)  # writes the day's counters
    [site] = await harness.store.list_sites()
    drops = await site_drops(harness.store, site, harness.clock.now)
    assert drops == {"gpc": 1}
    built = report.build(harness.services.config, site, drops, "en", "https://s.example")
    assert "| gpc | 1 |" in report.markdown(built)


@pytest.mark.parametrize(
    ("accept", "lang", "title"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr", "Comment example.com mesure son audience"),
        ("de-DE,de;q=0.9,en;q=0.5", "en", "How example.com measures its audience"),
        ("de, fr;q=0.4, en;q=0.3", "fr", "Comment example.com mesure son audience"),
        ("", "en", "How example.com measures its audience"),
    ],
)
async def test_the_public_notice_speaks_the_visitors_language(
    harness: Harness, accept: str, lang: str, title: str
) -> None:
    answer = await harness.client.get("/privacy/example.com", headers={"Accept-Language": accept})
    assert answer.status_code == 200
    assert answer.headers["content-language"] == lang and f'<html lang="{lang}">' in answer.text
    assert title in answer.text
    assert "style-src 'sha256-" in answer.headers["content-security-policy"]
    assert "Decided by" not in answer.text and "SQLite" not in answer.text  # the operator's details stay out


async def test_the_public_notice_of_an_unknown_site_or_when_off_is_a_404(config: Config, clock: Clock) -> None:
    async with start(config, clock) as h:
        await h.add_site()
        unknown = await h.client.get("/privacy/unknown.example", headers={"Accept-Language": "fr"})
        assert unknown.status_code == 404 and '<html lang="fr">' in unknown.text and "Aucun site" in unknown.text
    async with start(config.replace("privacy", public_page=False), clock) as h:
        assert (await h.client.get("/privacy/example.com")).status_code == 404


def test_the_policy_paragraph_and_the_notice_say_only_what_the_configuration_does() -> None:
    """The second outside review: the paragraph promised truncation, anonymity and GPC/DNT whatever the
    configuration said, and the notice offered visitors signals the server ignored."""
    honest = report.build(Config(), SITE, {}, "en", "https://s.example")
    assert "truncated and never stored" in honest["policy_paragraph"]
    assert "none of which counts fewer than 5 visitors" in honest["policy_paragraph"]
    assert "Global Privacy Control or Do Not Track" in honest["policy_paragraph"]
    assert "campaign tags" not in honest["policy_paragraph"]  # off under cnil
    loose = STANDARD.replace("privacy", ipv4_prefix=32, min_visitors=1).replace(
        "ingest", respect_gpc=False, respect_dnt=False
    )
    for lang in report.LANGS:
        built = report.build(loose, SITE, {}, lang, "https://s.example")
        paragraph, notice = built["policy_paragraph"], report.html_page(built, public=True)
        for promise in ("Global Privacy Control", "Do Not Track"):
            assert promise not in paragraph and promise + ") : " not in notice
            assert f"{promise}: honoured" not in notice and f"{promise} (Sec-GPC) : respecté" not in notice
        assert ("truncated" if lang == "en" else "tronquée") not in paragraph
        assert ("none of which" if lang == "en" else "dont aucune") not in paragraph
        assert ("campaign tags" if lang == "en" else "étiquettes de campagne") in paragraph  # standard: UTM on
        k = next(x["text"] for x in built["sections"] if x["id"] == "k")
        assert ("a figure may count a single visitor" if lang == "en" else "un seul visiteur") in k
        ip = next(x["text"] for x in built["sections"] if x["id"] == "ip")
        assert ("used whole" if lang == "en" else "utilisée entière") in ip
    quiet = STANDARD.replace("collect", referrers="off", utm="off")
    assert (
        "where visitors come from" not in report.build(quiet, SITE, {}, "en", "https://s.example")["policy_paragraph"]
    )


@pytest.mark.parametrize(
    ("header", "lang"),
    [("fr;Q=0.1, en;q=0.9", "en"), ("fr;level=1;q=0.1, en;q=0.9", "en"), ("fr-CA;q=0.8, de", "fr"), ("*", "en")],
)
def test_accept_language_is_read_as_the_rfc_says(header: str, lang: str) -> None:
    assert report.language(header) == lang


def test_french_counts_use_french_digit_grouping() -> None:
    text = report.markdown(report.build(Config(), SITE, {"bot": 1234}, "fr", "https://s.example"))
    assert "| bot | 1\u202f234 |" in text


def test_the_salts_bound_is_the_readmes() -> None:
    built = report.build(Config(), SITE, {}, "en", "https://s.example")
    hash_text = next(x["text"] for x in built["sections"] if x["id"] == "hash")
    survival = built["settings"]["salt_survives_at_most_seconds"]
    hours, rest = divmod(survival, 3600)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"**{hours:02d}:{rest // 60:02d}:{rest % 60:02d} UTC the next day**" in readme
    assert f"{hours} h {rest // 60:02d} min {rest % 60:02d} s" in hash_text
