"""The privacy report: what the server collects for a site, how and for how long, and the verdict on each
criterion of the CNIL's exemption, generated from the live configuration (never from fixed text), in English or
French, as Markdown, HTML or JSON; and the public notice for the site's visitors (/privacy/DOMAIN).

Every figure comes from the configuration, the site's switches (analytics.profile) and its drop counters; the
words around them are the only fixed text. It states what the product does; it never claims a certification.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
from datetime import timedelta
from typing import Any

from analytics import profile
from analytics.config import Config, IngestConfig
from analytics.privacy import SALT_KEPT_AT_MOST
from analytics.sites import Site
from analytics.tracker import SiteScript

LANGS = ("en", "fr")
FORMATS = ("md", "html", "json")
DROPS_DAYS = 30


@functools.cache
def _optout() -> SiteScript:
    """optout.js as served, read and hashed once (the visitors' notice builds a report for every request)."""
    return SiteScript.load("optout")


def salt_survival(ingest: IngestConfig) -> timedelta:
    """How long after its UTC day a destroyed salt can stay on disk at most while the server runs (README,
    Privacy model): its latest deadline, then one upkeep round, then the DELETE's commit in the salts' own file,
    which keeps no copy of a deleted page (milliseconds: rounded up to the next 5 s)."""
    upkeep = timedelta(seconds=min(ingest.site_refresh_seconds, 60))
    seconds = math.floor((SALT_KEPT_AT_MOST + upkeep).total_seconds() / 5) * 5 + 5
    return timedelta(seconds=seconds)


# Each field the server can store: its switch (None: always stored), and its name in each language.
DATA_POINTS: tuple[tuple[str, str | None, str, str], ...] = (
    (
        "page",
        None,
        "Page address (path only, personal data in it replaced)",
        "Adresse de la page (chemin seul, données personnelles remplacées)",
    ),
    ("hostname", None, "Host name of the page", "Nom d'hôte de la page"),
    ("referrer", "referrers", "Host of the referring site", "Hôte du site d'où vient le visiteur"),
    ("utm", "utm", "Campaign tags (UTM values)", "Étiquettes de campagne (valeurs UTM)"),
    ("country", None, "Country, from the truncated address", "Pays, déduit de l'adresse tronquée"),
    (
        "city",
        "locations",
        "Region and city, from the truncated address",
        "Région et ville, déduites de l'adresse tronquée",
    ),
    (
        "browser",
        None,
        "Browser and operating system names, device type",
        "Noms du navigateur et du système, type d'appareil",
    ),
    ("browser_version", "browser_versions", "Browser version", "Version du navigateur"),
    ("os_version", "os_versions", "Operating system version", "Version du système d'exploitation"),
    (
        "screen",
        "screens",
        "Screen class (mobile, tablet, laptop, desktop)",
        "Classe d'écran (mobile, tablette, portable, bureau)",
    ),
    ("engagement", None, "Time on page and scroll depth", "Temps passé sur la page et défilement"),
    ("events", "events", "Custom events and goals", "Événements personnalisés et objectifs"),
    (
        "properties",
        "properties",
        "Custom properties the site allows",
        "Propriétés personnalisées autorisées par le site",
    ),
    ("revenue", "revenue", "Revenue sent with events", "Chiffre d'affaires envoyé avec les événements"),
)

GRAIN: dict[str, tuple[str, str]] = {
    "page": ("path, without query or fragment", "chemin, sans requête ni fragment"),
    "hostname": ("host name", "nom d'hôte"),
    "referrer": ("host only (news.example.org), no path", "hôte seul (news.example.org), sans chemin"),
    "utm": ("the five values as sent, scrubbed", "les cinq valeurs envoyées, nettoyées"),
    "country": ("ISO country code", "code pays ISO"),
    "city": ("region code and city name", "code de région et nom de ville"),
    "browser": ("name; device: desktop, mobile or tablet", "nom ; appareil : ordinateur, mobile ou tablette"),
    "browser_version": ("major version (121)", "version majeure (121)"),
    "os_version": ("major version", "version majeure"),
    "screen": ("one of 4 classes, from the width", "une classe sur 4, d'après la largeur"),
    "engagement": ("seconds per page, scroll depth in %", "secondes par page, défilement en %"),
    "events": (
        "event name, scrubbed; for outbound links and downloads, the target's scheme, host and path",
        "nom de l'événement, nettoyé ; pour les liens sortants et téléchargements, schéma, hôte et chemin de la cible",
    ),
    "properties": ("allowed keys only; values scrubbed", "clés autorisées seulement ; valeurs nettoyées"),
    "revenue": ("amount and currency", "montant et devise"),
}
"""How fine each data point is, as stored in a raw event; statistics then count it per hour (the site's
totals), day and month, never under k visitors."""

CRITERIA_TEXT: dict[str, tuple[str, str]] = {
    "purpose": (
        "Purpose limited to audience measurement (no campaign, conversion or revenue measurement)",
        "Finalité limitée à la mesure d'audience (pas de mesure de campagnes, de conversions ni de ventes)",
    ),
    "publisher-only": (
        "For the publisher alone: no data sent to a third party",
        "Pour le seul compte de l'éditeur : aucune donnée transmise à un tiers",
    ),
    "anonymous": (
        "Anonymous statistics only (no figure counts fewer than 5 visitors)",
        "Statistiques anonymes uniquement (aucun chiffre ne compte moins de 5 visiteurs)",
    ),
    "no-cross-site-identifier": (
        "No identifier shared across sites or applications",
        "Aucun identifiant commun à plusieurs sites ou applications",
    ),
    "no-combination": ("No combination with other processing", "Pas de recoupement avec d'autres traitements"),
    "ip-anonymised": (
        "IP address anonymised before use, never stored",
        "Adresse IP anonymisée avant usage, jamais conservée",
    ),
    "geolocation-city": ("Geolocation no finer than the city", "Géolocalisation pas plus fine que la ville"),
    "identifier-lifetime": ("Identifiers kept at most 13 months", "Identifiants conservés 13 mois au plus"),
    "retention": ("Data kept at most 25 months", "Données conservées 25 mois au plus"),
    "information": ("Visitors informed", "Visiteurs informés"),
    "objection": (
        "A working way to object, honoured before anything is read (opt-out, GPC, DNT)",
        "Un moyen effectif de s'opposer, respecté avant toute lecture (opposition, GPC, DNT)",
    ),
}

T: dict[str, dict[str, str]] = {
    "en": {
        "title": "Privacy report for {domain}",
        "public_title": "How {domain} measures its audience",
        "generated": "Generated from the server's configuration (profile: {profile}). A self-assessment, not a certification.",
        "data": "Data points",
        "field": "Field",
        "grain": "Granularity",
        "stored": "Stored",
        "yes": "yes",
        "no": "no (not collected)",
        "purposes": "Purposes",
        "purposes_text": "Counting visits and pages, where visitors come from, which devices they use, to improve the site. For {domain} alone; nothing is sold, shared or combined with other data.",
        "ip": "IP address",
        "ip_text": "{cut} before it is used at all, for the daily visitor hash and the location; neither the address nor the browser's User-Agent is ever written anywhere, logs included.",
        "ip_cut": "The address is truncated to its first {v4} bits (IPv4) or {v6} bits (IPv6)",
        "ip_whole_v4": "The IPv4 address is used whole (not truncated: privacy.ipv4_prefix = 32), IPv6 truncated to {v6} bits,",
        "ip_whole_v6": "The IPv4 address is truncated to {v4} bits, IPv6 used whole (not truncated: privacy.ipv6_prefix = 128),",
        "ip_whole": "The address is used whole (not truncated)",
        "hash": "Visitor hash and salt",
        "hash_text": "A visit is recognised by a hash of the site, {scope}the truncated address and the User-Agent with a secret salt that changes every day. The salt is destroyed after its day (at most {kept} hours after midnight UTC, while a visit that spans midnight lasts), and while the server runs its bytes leave the disk within {survival} after its day ends (only the server being stopped, or a program keeping the salts' own file open, could delay that: see the README): the hash can then never be tied to anyone again.",
        "scope_host": "the page's host name, ",
        "k": "Anonymous statistics",
        "k_text": "No figure kept or shown counts fewer than {k} visitors, except the site's totals per hour, day and month: rarer values are merged into a row named (other).",
        "k_off": "No threshold (privacy.min_visitors = 1): a figure may count a single visitor.",
        "scrub": "Personal data in addresses",
        "scrub_text": "E-mail addresses, phone numbers and long numbers, identifiers and tokens found in page addresses, event names, campaign tags and properties are replaced by placeholders before anything is stored; the query and fragment of outbound links and downloads are dropped.",
        "retention": "Retention",
        "retention_text": "Raw events (hashed, per visit) are kept {raw} hours at most, then only aggregated statistics remain, for {months} months.",
        "signals": "Signals honoured",
        "signals_text": "Global Privacy Control (Sec-GPC): {gpc}. Do Not Track: {dnt}. The opt-out switch on the site's privacy page: always. A request carrying an honoured signal is dropped before it is hashed or located (its truncated address only counts against the rate limit).",
        "honoured": "honoured",
        "ignored": "ignored",
        "processors": "Sub-processors",
        "processors_text": "None: the server runs on the publisher's own infrastructure and makes no outbound connection.",
        "storage": "Where data is stored",
        "storage_text": "In the publisher's own database (SQLite), on the server that runs this software.",
        "drops": "Not counted in the last {days} days",
        "drops_none": "Nothing was left out.",
        "reason": "Reason",
        "count": "Count",
        "criteria": "Self-assessment against the CNIL's criteria for audience measurement without consent",
        "criterion": "Criterion",
        "verdict": "Verdict",
        "setting": "Decided by",
        "met": "met",
        "not_met": "not met",
        "by_construction": "by construction: the server makes no outbound connection, exports nothing per visitor and knows no place finer than the city",
        "summary_ok": "Every criterion is met by this configuration.",
        "summary_ko": "{n} criteria are not met: this configuration is outside the exemption and needs the visitors' consent.",
        "summary_ko_1": "1 criterion is not met: this configuration is outside the exemption and needs the visitors' consent.",
        "optout": "Opting out",
        "optout_text": "Paste this where visitors can find it (the site's privacy page): it shows a switch that stops all measurement in that browser.",
        "optout_limits": "The switch is stored in the visitor's browser for the site's address: it cannot cover the <noscript> pixel or events a server sends on the visitor's behalf. Do not use the pixel on pages for visitors who may object, and drop server-side events of people who objected in your own systems.",
        "public_optout": "To object, use the switch on {domain}'s own privacy page: your browser remembers it for that site's address, and its pages then send nothing.{signals} Pages viewed without their script (a simple image some sites use instead) and events the site's own servers send do not see the switch: ask the site to stop them.",
        "public_signals": " Your browser's {which} setting works too, for every request.",
        "stored_before": "A field switched off stops being collected at once; what was stored while it was on stays until it expires or is forgotten (analytics forget).",
        "record": "Record of processing (GDPR art. 30), filled from the configuration",
        "record_rows": "Processing|Audience measurement of {domain}\nController|(your organisation, its address, its DPO)\nPurposes|Measuring the site's audience and performance, to improve it; for the publisher alone\nData subjects|Visitors of {domain}\nCategories of data|{stored}\nSource|The visitor's browser (the tracker) and requests to the server\nRecipients|The publisher's staff with a dashboard account, API key or shared link; no third party\nTransfers outside the EU|None by the software: the data stays on the server you run it on\nRetention|Raw hashed events {raw} hours at most; aggregated statistics {months} months\nSecurity|Address truncated to /{v4} (IPv4) and /{v6} (IPv6) and never stored; daily salted hash, salt destroyed; no figure under {k} visitors; personal data in addresses replaced; deleted rows overwritten on disk",
        "paragraph": "Paragraph for your privacy policy",
        "paragraph_text": "We measure the audience of {domain} with a self-hosted analytics tool that sets no cookie{anon}: {what}. Your IP address is {ip}never stored; visits are recognised for one day at most by a hash that cannot be traced back to you. The statistics are kept {months} months and are not shared with anyone. You can object at any time with the switch on this page{signals}.",
        "anon": " and keeps statistics only, none of which counts fewer than {k} visitors",
        "what_pages": "pages viewed",
        "what_sources": "where visitors come from",
        "what_campaigns": "campaign tags",
        "what_country": "country",
        "what_city": "region and city",
        "what_devices": "type of device and browser",
        "what_events": "events on the site (such as downloads and outbound links)",
        "what_revenue": "revenue",
        "what_props": "properties the site records",
        "and": "and",
        "ip_truncated": "truncated and ",
        "paragraph_signals": ", or by turning on {which} in your browser",
        "or": "or",
    },
    "fr": {
        "title": "Rapport de confidentialité pour {domain}",
        "public_title": "Comment {domain} mesure son audience",
        "generated": "Généré à partir de la configuration du serveur (profil : {profile}). Une auto-évaluation, pas une certification.",
        "data": "Données collectées",
        "field": "Donnée",
        "grain": "Précision",
        "stored": "Conservée",
        "yes": "oui",
        "no": "non (pas de collecte)",
        "purposes": "Finalités",
        "purposes_text": "Compter les visites et les pages vues, savoir d'où viennent les visiteurs et quels appareils ils utilisent, pour améliorer le site. Pour le seul compte de {domain} ; rien n'est vendu, partagé ni recoupé avec d'autres données.",
        "ip": "Adresse IP",
        "ip_text": "{cut} avant tout usage, pour l'empreinte quotidienne du visiteur et la localisation ; ni l'adresse ni l'en-tête User-Agent du navigateur ne sont jamais écrits nulle part, journaux compris.",
        "ip_cut": "L'adresse est tronquée à ses {v4} premiers bits (IPv4) ou {v6} bits (IPv6)",
        "ip_whole_v4": "L'adresse IPv4 est utilisée entière (non tronquée : privacy.ipv4_prefix = 32), l'IPv6 tronquée à {v6} bits,",
        "ip_whole_v6": "L'adresse IPv4 est tronquée à {v4} bits, l'IPv6 utilisée entière (non tronquée : privacy.ipv6_prefix = 128),",
        "ip_whole": "L'adresse est utilisée entière (non tronquée)",
        "hash": "Empreinte du visiteur et sel",
        "hash_text": "Une visite est reconnue par une empreinte (hachage) du site, {scope}de l'adresse tronquée et du User-Agent avec un sel secret qui change chaque jour. Le sel est détruit après sa journée (au plus {kept} heures après minuit UTC, le temps qu'une visite à cheval sur minuit se termine) et, tant que le serveur fonctionne, ses octets quittent le disque au plus tard {survival} après la fin de sa journée (seul un serveur arrêté, ou un programme gardant ouvert le fichier des sels, pourrait le retarder : voir le README) : l'empreinte ne peut alors plus jamais être rattachée à quiconque.",
        "scope_host": "du nom d'hôte de la page, ",
        "k": "Statistiques anonymes",
        "k_text": "Aucun chiffre conservé ou affiché ne compte moins de {k} visiteurs, hormis les totaux du site par heure, jour et mois : les valeurs plus rares sont regroupées dans une ligne nommée (other).",
        "k_off": "Aucun seuil (privacy.min_visitors = 1) : un chiffre peut ne compter qu'un seul visiteur.",
        "scrub": "Données personnelles dans les adresses",
        "scrub_text": "Les adresses e-mail, numéros de téléphone et longs numéros, identifiants et jetons présents dans les adresses de pages, noms d'événements, étiquettes de campagne et propriétés sont remplacés avant toute conservation ; la requête et le fragment des liens sortants et des téléchargements sont supprimés.",
        "retention": "Durée de conservation",
        "retention_text": "Les événements bruts (hachés, par visite) sont conservés {raw} heures au plus ; ensuite seules restent des statistiques agrégées, pendant {months} mois.",
        "signals": "Signaux respectés",
        "signals_text": "Global Privacy Control (Sec-GPC) : {gpc}. Do Not Track : {dnt}. Le bouton d'opposition de la page de confidentialité du site : toujours. Une requête portant un signal respecté est écartée avant d'être hachée ou localisée (son adresse tronquée ne compte que pour la limite de débit).",
        "honoured": "respecté",
        "ignored": "ignoré",
        "processors": "Sous-traitants",
        "processors_text": "Aucun : le serveur fonctionne sur l'infrastructure de l'éditeur et n'établit aucune connexion sortante.",
        "storage": "Lieu de stockage",
        "storage_text": "Dans la base de données de l'éditeur (SQLite), sur le serveur qui exécute ce logiciel.",
        "drops": "Non comptés ces {days} derniers jours",
        "drops_none": "Rien n'a été écarté.",
        "reason": "Motif",
        "count": "Nombre",
        "criteria": "Auto-évaluation selon les critères de la CNIL pour la mesure d'audience sans consentement",
        "criterion": "Critère",
        "verdict": "Verdict",
        "setting": "Réglage déterminant",
        "met": "rempli",
        "not_met": "non rempli",
        "by_construction": "par construction : le serveur n'établit aucune connexion sortante, n'exporte rien par visiteur et ne connaît aucun lieu plus fin que la ville",
        "summary_ok": "Tous les critères sont remplis par cette configuration.",
        "summary_ko": "{n} critères ne sont pas remplis : cette configuration sort de l'exemption et nécessite le consentement des visiteurs.",
        "summary_ko_1": "1 critère n'est pas rempli : cette configuration sort de l'exemption et nécessite le consentement des visiteurs.",
        "optout": "Opposition",
        "optout_text": "Collez ceci là où les visiteurs le trouveront (la page de confidentialité du site) : un bouton qui arrête toute mesure dans ce navigateur.",
        "optout_limits": "Le choix est enregistré dans le navigateur du visiteur pour l'adresse du site : il ne couvre ni le pixel <noscript> ni les événements qu'un serveur envoie pour le compte du visiteur. N'utilisez pas le pixel sur les pages destinées à des visiteurs susceptibles de s'opposer, et écartez dans vos propres systèmes les événements côté serveur des personnes qui se sont opposées.",
        "public_optout": "Pour vous y opposer, utilisez le bouton de la page de confidentialité de {domain} : votre navigateur le retient pour l'adresse de ce site, dont les pages n'envoient alors plus rien.{signals} Les pages vues sans leur script (une simple image que certains sites utilisent à la place) et les événements que les serveurs du site envoient eux-mêmes ne voient pas ce bouton : demandez au site de les arrêter.",
        "public_signals": " Le réglage {which} de votre navigateur fonctionne aussi, pour toute requête.",
        "stored_before": "Une donnée désactivée cesse aussitôt d'être collectée ; ce qui a été conservé pendant qu'elle était active reste jusqu'à son expiration ou son effacement (analytics forget).",
        "record": "Registre des traitements (RGPD, art. 30), rempli à partir de la configuration",
        "record_rows": "Traitement|Mesure d'audience de {domain}\nResponsable|(votre organisme, son adresse, son DPO)\nFinalités|Mesurer l'audience et les performances du site pour l'améliorer ; pour le seul compte de l'éditeur\nPersonnes concernées|Visiteurs de {domain}\nCatégories de données|{stored}\nSource|Le navigateur du visiteur (le traceur) et les requêtes au serveur\nDestinataires|Les personnes de l'éditeur ayant un compte, une clé d'API ou un lien partagé ; aucun tiers\nTransferts hors de l'UE|Aucun du fait du logiciel : les données restent sur le serveur où vous l'exécutez\nDurées de conservation|Événements bruts hachés : {raw} heures au plus ; statistiques agrégées : {months} mois\nSécurité|Adresse tronquée à /{v4} (IPv4) et /{v6} (IPv6), jamais conservée ; empreinte quotidienne salée, sel détruit ; aucun chiffre sous {k} visiteurs ; données personnelles des adresses remplacées ; lignes supprimées écrasées sur le disque",
        "paragraph": "Paragraphe pour votre politique de confidentialité",
        "paragraph_text": "Nous mesurons l'audience de {domain} avec un outil de mesure hébergé par nos soins, qui ne dépose aucun cookie{anon} : {what}. Votre adresse IP est {ip}jamais conservée ; une visite n'est reconnue que pendant une journée au plus, par une empreinte qui ne permet pas de remonter jusqu'à vous. Les statistiques sont conservées {months} mois et ne sont partagées avec personne. Vous pouvez vous y opposer à tout moment avec le bouton de cette page{signals}.",
        "anon": " et ne conserve que des statistiques, dont aucune ne compte moins de {k} visiteurs",
        "what_pages": "pages vues",
        "what_sources": "provenance des visiteurs",
        "what_campaigns": "étiquettes de campagne",
        "what_country": "pays",
        "what_city": "région et ville",
        "what_devices": "type d'appareil et navigateur",
        "what_events": "événements sur le site (téléchargements, liens sortants…)",
        "what_revenue": "chiffre d'affaires",
        "what_props": "propriétés que le site enregistre",
        "and": "et",
        "ip_truncated": "tronquée et ",
        "paragraph_signals": ", ou en activant {which} dans votre navigateur",
        "or": "ou",
    },
}


def build(config: Config, site: Site, drops: dict[str, int], lang: str, base_url: str) -> dict[str, Any]:
    """The report as data (also the JSON format): every value from the configuration, texts in `lang`."""
    t = T[lang]
    on = profile.collect(profile.defaults(config), dict(site.collect))
    verdicts = profile.criteria(config, on)
    p, ingest = config.privacy, config.ingest
    geo = bool(config.geoip.database)
    survival = salt_survival(ingest)
    hours, rest = divmod(int(survival.total_seconds()), 3600)
    survival_text = f"{hours} h {rest // 60:02d} min {rest % 60:02d} s"
    data_points: list[dict[str, Any]] = []
    for key, switch, en, fr in DATA_POINTS:
        stored = on.on(switch) if switch else True
        if key in ("country", "city") and not geo:
            stored = False
        if key == "city" and not (config.geoip.cities or config.geoip.regions):
            stored = False
        grain = GRAIN[key][LANGS.index(lang)]
        name = en if lang == "en" else fr
        data_points.append({"field": key, "name": name, "granularity": grain, "stored": stored, "switch": switch})
    gpc = t["honoured"] if ingest.respect_gpc else t["ignored"]
    dnt = t["honoured"] if ingest.respect_dnt else t["ignored"]
    kept = {d["field"]: d["stored"] for d in data_points}
    not_met = [c for c in verdicts if not c.met]
    whole4, whole6 = p.ipv4_prefix >= 32, p.ipv6_prefix >= 128
    cut = {
        (False, False): t["ip_cut"],
        (True, False): t["ip_whole_v4"],
        (False, True): t["ip_whole_v6"],
        (True, True): t["ip_whole"],
    }[(whole4, whole6)].format(v4=p.ipv4_prefix, v6=p.ipv6_prefix)
    signals = [
        name
        for name, on in (("Global Privacy Control", ingest.respect_gpc), ("Do Not Track", ingest.respect_dnt))
        if on
    ]
    which = f" {t['or']} ".join(signals)
    sections = [
        ("purposes", t["purposes_text"].format(domain=site.domain)),
        ("ip", t["ip_text"].format(cut=cut)),
        (
            "hash",
            t["hash_text"].format(
                scope=t["scope_host"] if profile.per_hostname(config) else "",
                kept=SALT_KEPT_AT_MOST // timedelta(hours=1),
                survival=survival_text,
            ),
        ),
        ("k", t["k_text"].format(k=p.min_visitors) if p.min_visitors > 1 else t["k_off"]),
        ("scrub", t["scrub_text"]),
        ("retention", t["retention_text"].format(raw=p.raw_retention_hours, months=p.aggregate_retention_months)),
        ("signals", t["signals_text"].format(gpc=gpc, dnt=dnt)),
        ("processors", t["processors_text"]),
        ("storage", t["storage_text"]),
    ]
    return {
        "site": site.domain,
        "lang": lang,
        "profile": p.profile,
        "title": t["title"].format(domain=site.domain),
        "public_title": t["public_title"].format(domain=site.domain),
        "generated": t["generated"].format(profile=p.profile),
        "data_points": data_points,
        "sections": [{"id": key, "title": t[key], "text": text} for key, text in sections],
        "settings": {
            "ipv4_prefix": p.ipv4_prefix,
            "ipv6_prefix": p.ipv6_prefix,
            "min_visitors": p.min_visitors,
            "raw_retention_hours": p.raw_retention_hours,
            "aggregate_retention_months": p.aggregate_retention_months,
            "identity_scope": "hostname" if profile.per_hostname(config) else "site",
            "respect_gpc": ingest.respect_gpc,
            "respect_dnt": ingest.respect_dnt,
            "salt_survives_at_most_seconds": int(survival.total_seconds()),
            "public_page": p.public_page,
        },
        "drops_days": DROPS_DAYS,
        "drops": dict(sorted(drops.items())),
        "criteria": [
            {
                "id": c.id,
                "title": CRITERIA_TEXT[c.id][LANGS.index(lang)],
                "met": c.met,
                "settings": list(c.settings),
            }
            for c in verdicts
        ],
        "summary": t["summary_ok"]
        if not not_met
        else t["summary_ko_1"]
        if len(not_met) == 1
        else t["summary_ko"].format(n=len(not_met)),
        "stored_before": t["stored_before"],
        "public_optout": t["public_optout"].format(
            domain=site.domain, signals=t["public_signals"].format(which=which) if signals else ""
        ),
        "optout_snippet": _optout().tag(base_url),
        "optout_limits": t["optout_limits"],
        "record": [
            row.split("|", 1)
            for row in t["record_rows"]
            .format(
                domain=site.domain,
                stored=", ".join(d["name"] for d in data_points if d["stored"]),
                raw=p.raw_retention_hours,
                months=p.aggregate_retention_months,
                v4=p.ipv4_prefix,
                v6=p.ipv6_prefix,
                k=p.min_visitors,
            )
            .split("\n")
        ],
        "policy_paragraph": t["paragraph_text"].format(
            domain=site.domain,
            anon=t["anon"].format(k=p.min_visitors) if p.min_visitors > 1 else "",
            what=_what(t, kept),
            ip="" if whole4 or whole6 else t["ip_truncated"],
            months=p.aggregate_retention_months,
            signals=t["paragraph_signals"].format(which=which) if signals else "",
        ),
    }


def _what(t: dict[str, str], kept: dict[str, bool]) -> str:
    """What the policy paragraph says is measured: the fields stored, in plain words."""
    parts = [t["what_pages"]]
    parts += [t["what_sources"]] if kept["referrer"] or kept["utm"] else []
    parts += [t["what_campaigns"]] if kept["utm"] else []
    parts += [t["what_city"] if kept["city"] else t["what_country"]] if kept["country"] else []
    parts += [t["what_devices"]]
    parts += [
        t[f"what_{name}"] for name in ("events", "props", "revenue") if kept[name if name != "props" else "properties"]
    ]
    return ", ".join(parts[:-1]) + f" {t['and']} " + parts[-1]


def markdown(report: dict[str, Any]) -> str:
    t = T[report["lang"]]
    out = [f"# {report['title']}", "", report["generated"], "", f"## {t['data']}", ""]
    out += [f"| {t['field']} | {t['grain']} | {t['stored']} |", "|---|---|---|"]
    out += [
        f"| {d['name']} | {d['granularity']} | {t['yes'] if d['stored'] else t['no']} |" for d in report["data_points"]
    ]
    out += ["", report["stored_before"]]
    for section in report["sections"]:
        out += ["", f"## {section['title']}", "", section["text"]]
    out += ["", f"## {t['drops'].format(days=report['drops_days'])}", ""]
    if report["drops"]:
        out += [f"| {t['reason']} | {t['count']} |", "|---|---|"]
        out += [f"| {reason} | {_number(count, report['lang'])} |" for reason, count in report["drops"].items()]
    else:
        out.append(t["drops_none"])
    out += ["", f"## {t['criteria']}", "", f"| {t['criterion']} | {t['verdict']} | {t['setting']} |", "|---|---|---|"]
    for c in report["criteria"]:
        verdict = t["met"] if c["met"] else f"**{t['not_met']}**"
        decided = "; ".join(f"`{s}`" for s in c["settings"]) or t["by_construction"]
        out.append(f"| {c['title']} | {verdict} | {decided} |")
    out += ["", report["summary"], "", f"## {t['optout']}", "", t["optout_text"], ""]
    out += ["```html", report["optout_snippet"], "```", "", report["optout_limits"]]
    out += ["", f"## {t['record']}", "", "| | |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in report["record"]]
    out += ["", f"## {t['paragraph']}", "", report["policy_paragraph"], ""]
    return "\n".join(out)


def _number(n: int, lang: str) -> str:
    """1,234 in English, 1 234 (a narrow no-break space) in French."""
    return f"{n:,}".replace(",", "\u202f") if lang == "fr" else f"{n:,}"


def _e(text: object) -> str:
    return html.escape(str(text))


def html_page(report: dict[str, Any], public: bool = False) -> str:
    """The report as a standalone HTML page; `public`: the visitors' notice (no settings, no self-assessment)."""
    t = T[report["lang"]]
    title = report["public_title"] if public else report["title"]
    body = [f"<h1>{_e(title)}</h1>"]
    if not public:
        body.append(f"<p>{_e(report['generated'])}</p>")
    body.append(
        f"<h2>{_e(t['data'])}</h2><table><tr><th>{_e(t['field'])}</th><th>{_e(t['grain'])}</th>"
        f"<th>{_e(t['stored'])}</th></tr>"
    )
    body += [
        f"<tr><td>{_e(d['name'])}</td><td>{_e(d['granularity'])}</td>"
        f"<td>{_e(t['yes'] if d['stored'] else t['no'])}</td></tr>"
        for d in report["data_points"]
    ]
    body.append("</table>")
    body.append(f"<p>{_e(report['stored_before'])}</p>")
    for section in report["sections"]:
        if public and section["id"] == "storage":
            continue
        body.append(f"<h2>{_e(section['title'])}</h2><p>{_e(section['text'])}</p>")
    if not public:
        body.append(f"<h2>{_e(t['drops'].format(days=report['drops_days']))}</h2>")
        if report["drops"]:
            body.append(f"<table><tr><th>{_e(t['reason'])}</th><th>{_e(t['count'])}</th></tr>")
            body += [
                f"<tr><td>{_e(r)}</td><td>{_number(c, report['lang'])}</td></tr>" for r, c in report["drops"].items()
            ]
            body.append("</table>")
        else:
            body.append(f"<p>{_e(t['drops_none'])}</p>")
        body.append(f"<h2>{_e(t['criteria'])}</h2><table>")
        body.append(f"<tr><th>{_e(t['criterion'])}</th><th>{_e(t['verdict'])}</th><th>{_e(t['setting'])}</th></tr>")
        for c in report["criteria"]:
            verdict = t["met"] if c["met"] else t["not_met"]
            body.append(
                f'<tr class="{"met" if c["met"] else "not-met"}"><td>{_e(c["title"])}</td><td>{_e(verdict)}</td>'
                f"<td>{_e('; '.join(c['settings']) or t['by_construction'])}</td></tr>"
            )
        body.append(f"</table><p>{_e(report['summary'])}</p>")
        body.append(f"<h2>{_e(t['optout'])}</h2><p>{_e(t['optout_text'])}</p>")
        body.append(f"<pre><code>{_e(report['optout_snippet'])}</code></pre><p>{_e(report['optout_limits'])}</p>")
        body.append(f"<h2>{_e(t['record'])}</h2><table>")
        body += [f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in report["record"]]
        body.append("</table>")
        body.append(f"<h2>{_e(t['paragraph'])}</h2><p>{_e(report['policy_paragraph'])}</p>")
    else:
        body.append(f"<h2>{_e(t['optout'])}</h2><p>{_e(report['public_optout'])}</p>")
    return (
        f'<!doctype html><html lang="{report["lang"]}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3rem .6rem;text-align:left}"
    "tr.not-met td{background:#fde8e8}pre{white-space:pre-wrap;background:#f3f3f3;padding:.5rem}"
)
STYLE_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The notice's Content-Security-Policy: its one inline style sheet, by hash, and nothing else."""


def not_found(lang: str, registered: bool) -> str:
    """The notice's 404, in the visitor's language: no such site, or no notice published (privacy.public_page)."""
    texts = {
        "en": ("Not found", "No site is registered under this name.", "This server publishes no privacy notice."),
        "fr": ("Introuvable", "Aucun site n'est enregistré sous ce nom.", "Ce serveur ne publie pas de notice."),
    }[lang]
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{texts[0]}</title></head>'
        f"<body><p>{texts[2] if registered else texts[1]}</p></body></html>"
    )


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2)
    if fmt == "html":
        return html_page(report)
    return markdown(report)


def language(accept_language: str) -> str:
    """fr or en from an Accept-Language header (RFC 9110: weights `q=`, case-insensitive, after any other
    parameter), by the first of the two it prefers; en when it prefers neither."""
    ranked = []
    for i, part in enumerate(accept_language.split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        primary = tag.lower().split("-")[0]
        if primary in LANGS and q > 0:
            ranked.append((-q, i, primary))
    return min(ranked)[2] if ranked else "en"
