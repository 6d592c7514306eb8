"""Referrer reduction: a full referrer URL becomes a source name ("Google", "Hacker News") and a bare host.

The path and query of the referrer are never kept. Self-referrals (the site linking to itself) count as no
referrer, and known referrer-spam domains are recognised so that the gate can drop them.
"""

from __future__ import annotations

from analytics.beacon import Url

# Exact hosts (and their subdomains) of well-known sources.
KNOWN_HOSTS: dict[str, str] = {
    "duckduckgo.com": "DuckDuckGo",
    "ecosia.org": "Ecosia",
    "qwant.com": "Qwant",
    "startpage.com": "Startpage",
    "search.brave.com": "Brave Search",
    "kagi.com": "Kagi",
    "lilo.org": "Lilo",
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "fb.me": "Facebook",
    "messenger.com": "Facebook",
    "instagram.com": "Instagram",
    "threads.net": "Threads",
    "linkedin.com": "LinkedIn",
    "lnkd.in": "LinkedIn",
    "reddit.com": "Reddit",
    "redd.it": "Reddit",
    "twitter.com": "X (Twitter)",
    "x.com": "X (Twitter)",
    "t.co": "X (Twitter)",
    "github.com": "GitHub",
    "gitlab.com": "GitLab",
    "news.ycombinator.com": "Hacker News",
    "lobste.rs": "Lobsters",
    "stackoverflow.com": "Stack Overflow",
    "youtube.com": "YouTube",
    "youtu.be": "YouTube",
    "pinterest.com": "Pinterest",
    "tiktok.com": "TikTok",
    "bsky.app": "Bluesky",
    "mastodon.social": "Mastodon",
    "wikipedia.org": "Wikipedia",
    "medium.com": "Medium",
    "substack.com": "Substack",
    "producthunt.com": "Product Hunt",
    "dev.to": "DEV",
    "discord.com": "Discord",
    "slack.com": "Slack",
    "t.me": "Telegram",
    "web.telegram.org": "Telegram",
    "web.whatsapp.com": "WhatsApp",
    "chatgpt.com": "ChatGPT",
    "chat.openai.com": "ChatGPT",
    "perplexity.ai": "Perplexity",
    "claude.ai": "Claude",
    "mail.google.com": "Gmail",
    "outlook.live.com": "Outlook",
    # Android apps send android-app://<package> as referrer.
    "com.google.android.gm": "Gmail",
    "com.google.android.googlequicksearchbox": "Google",
    "com.linkedin.android": "LinkedIn",
    "com.reddit.frontpage": "Reddit",
    "org.telegram.messenger": "Telegram",
    "com.slack": "Slack",
}

# Brands that live under many country domains (google.fr, google.co.uk, search.yahoo.co.jp, ...).
BRAND_LABELS: dict[str, str] = {
    "google": "Google",
    "bing": "Bing",
    "yahoo": "Yahoo!",
    "yandex": "Yandex",
    "baidu": "Baidu",
    "naver": "Naver",
}

# utm_source / ref values that name a known source in another spelling.
ALIASES: dict[str, str] = {
    **{label: name for label, name in BRAND_LABELS.items()},
    **{name.lower(): name for name in KNOWN_HOSTS.values()},
    "fb": "Facebook",
    "twitter": "X (Twitter)",
    "x": "X (Twitter)",
    "hn": "Hacker News",
    "hackernews": "Hacker News",
    "ycombinator": "Hacker News",
}

# A short list of long-lived referrer-spam domains; operators add more with ingest.spam_referrers.
SPAM_DOMAINS = frozenset(
    {
        "semalt.com",
        "semalt.semalt.com",
        "buttons-for-website.com",
        "buttons-for-your-website.com",
        "darodar.com",
        "ilovevitaly.com",
        "ilovevitaly.ru",
        "priceg.com",
        "blackhatworth.com",
        "hulfingtonpost.com",
        "best-seo-offer.com",
        "best-seo-solution.com",
        "free-share-buttons.com",
        "get-free-traffic-now.com",
        "social-buttons.com",
        "simple-share-buttons.com",
        "trafficmonetize.org",
        "4webmasters.org",
        "floating-share-buttons.com",
        "free-social-buttons.com",
        "event-tracking.com",
        "googlsucks.com",
        "theguardlan.com",
        "100dollars-seo.com",
        "success-seo.com",
        "seo-platform.com",
        "video--production.com",
        "rank-checker.online",
        "site-auditor.online",
        "traffic2money.com",
    }
)


def host(referrer: Url) -> str:
    return referrer.host.removeprefix("www.")


def _suffixes(name: str) -> list[str]:
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _brand(name: str) -> str | None:
    labels = name.split(".")
    for i, label in enumerate(labels[:-1]):
        rest = labels[i + 1 :]
        # google.fr, google.com.br, google.co.uk: at most two short labels after the brand.
        if label in BRAND_LABELS and len(rest) <= 2 and all(len(r) <= 3 for r in rest):
            return BRAND_LABELS[label]
    return None


def known_name(name: str) -> str | None:
    for suffix in _suffixes(name):
        if suffix in KNOWN_HOSTS:
            return KNOWN_HOSTS[suffix]
    return _brand(name)


def is_self(name: str, page_host: str, site_domain: str) -> bool:
    return name in (page_host, site_domain) or name.endswith("." + site_domain)


def is_spam(name: str, extra: frozenset[str] = frozenset()) -> bool:
    return any(s in SPAM_DOMAINS or s in extra for s in _suffixes(name))


def source(referrer_host: str, fallback: str) -> str:
    """The source shown in reports: a known name, else the referrer host, else the utm_source/ref value."""
    if referrer_host:
        return known_name(referrer_host) or referrer_host
    if fallback:
        return ALIASES.get(fallback.lower(), fallback)
    return ""


def normalize_spam_domains(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d.strip().lower().removeprefix("www.") for d in domains if d.strip())
