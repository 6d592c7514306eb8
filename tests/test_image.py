"""The container image, built from the Dockerfile and run with podman the way the README runs it with docker.

`make test-image` runs these (not `make test`): they need podman and the base image, which `make image-base`
builds with debootstrap where no registry can be reached (.ci/run installs podman, runc and debootstrap).
A first start on an empty volume goes healthy, prints the setup code that creates the first administrator,
takes events, and stops on SIGTERM with every acknowledged event in the database on the volume; a second start
on the same volume, configured from the environment only and with a GeoIP database mounted read-only, keeps
everything and migrates nothing. The server runs as a non-root user, and the image holds no build tools,
caches, sources or tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.conftest import DATA
from tests.test_dashboard import PASSWORD, field
from tests.test_server import AGENTS, burst, free_port, send
from tests.test_setup import CODE

pytestmark = pytest.mark.image

ROOT = Path(__file__).parent.parent
IMAGE = "localhost/analytics-image-test"
NAME = "analytics-image-test"  # container and volume: removed by name before and after
BASE = "docker.io/library/debian:bookworm-slim"
# Where the test runs: root, cgroup v1, no systemd and no bridge networking (podman's defaults fail there); also
# fine elsewhere. A CONTAINERS_CONF of your own wins.
CONF = str(Path(os.environ.get("CONTAINERS_CONF") or ROOT / "tools" / "image" / "containers.conf").resolve())
RUN = [*(["--runtime", "runc"] if shutil.which("runc") else []), "--network", "host"]
measured: dict[str, str] = {}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"CONTAINERS_CONF": CONF}
    try:
        done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"podman {' '.join(args)} did not finish within {timeout:g} s")
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done


def proxy_ca() -> str | None:
    """The CA bundle pip trusts on this machine (a proxy that re-signs TLS), to hand to pip inside the build."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if (value := os.environ.get(name)) and Path(value).is_file():
            return value
    found = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True, text=True, timeout=60
    )
    value = found.stdout.strip()
    return value if found.returncode == 0 and value and Path(value).is_file() else None


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.fail("the image test needs podman: apt-get install podman runc debootstrap")
    if podman("image", "exists", BASE, check=False).returncode != 0:
        pytest.fail(f"no base image {BASE}: `make image-base` builds one, or `podman pull {BASE}`")
    ca = proxy_ca()
    certificate = ["--volume", f"{ca}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt"] if ca else []
    started = time.monotonic()
    podman(
        "build", "--isolation", "chroot", "--pull=never", "--format", "docker", *certificate, "--tag", IMAGE, str(ROOT),
        timeout=1800,
    )  # fmt: skip
    measured["build"] = f"{time.monotonic() - started:.0f} s"
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    measured["image size"] = f"{size / 1e6:.0f} MB"
    yield IMAGE
    print("\nimage test:", ", ".join(f"{k} {v}" for k, v in measured.items()))


@pytest.fixture(scope="module")
def volume(image: str) -> Iterator[str]:
    """A named volume for /data, shared by the tests in order; it and the container are removed by name."""
    podman("rm", "--force", "--volumes", NAME, check=False)
    podman("volume", "rm", "--force", NAME, check=False)
    podman("volume", "create", NAME)
    try:
        yield NAME
    finally:
        podman("rm", "--force", NAME, check=False)
        podman("volume", "rm", "--force", NAME, check=False)


def start(volume: str, *options: str) -> str:
    """`docker run -d -v VOLUME:/data`, on a free port of this machine; returns the server's URL."""
    podman("rm", "--force", NAME, check=False)
    port = free_port()
    podman("run", "--detach", "--name", NAME, *RUN, "--volume", f"{volume}:/data",
           "--env", f"ANALYTICS_SERVER_PORT={port}", *options, IMAGE)  # fmt: skip
    return f"http://127.0.0.1:{port}"


def logs() -> str:
    done = podman("logs", NAME, check=False)
    return done.stdout + done.stderr


def wait_healthy(timeout: float = 90) -> float:
    """Runs the image's HEALTHCHECK until it passes (what docker does every 30 s); returns the seconds taken."""
    started = time.monotonic()
    while podman("healthcheck", "run", NAME, check=False).returncode != 0:
        state = podman("inspect", "--format", "{{.State.Status}}", NAME).stdout.strip()
        assert state == "running", f"the container is {state}:\n{logs()}"
        assert time.monotonic() - started < timeout, f"not healthy after {timeout:g} s:\n{logs()}"
        time.sleep(0.5)
    assert podman("inspect", "--format", "{{.State.Health.Status}}", NAME).stdout.strip() == "healthy"
    return time.monotonic() - started


def stop() -> int:
    """`docker stop`: SIGTERM, then the exit status."""
    podman("stop", "--time", "30", NAME, timeout=60)
    return int(podman("inspect", "--format", "{{.State.ExitCode}}", NAME).stdout)


def in_volume(volume: str, script: str) -> str:
    """A Python snippet run in a throwaway container of the image, with the volume at /data."""
    done = podman("run", "--rm", *RUN, "--volume", f"{volume}:/data", "--entrypoint", "python3", IMAGE, "-c", script)
    return done.stdout.strip()


def stored(volume: str) -> list[tuple[str, str, str]]:
    """(pathname, country, city) of every event in the database on the volume."""
    rows = in_volume(
        volume,
        "import sqlite3; db = sqlite3.connect('/data/analytics.db')\n"
        "for r in db.execute('SELECT pathname, country, city FROM events ORDER BY ts, rowid'): print('\\t'.join(r))",
    )
    return [tuple(line.split("\t")) for line in rows.splitlines()]  # type: ignore[misc]


def test_the_image_holds_the_server_and_no_build_tools_caches_sources_or_tests(image: str) -> None:
    config = podman("image", "inspect", "--format", "{{json .Config}}", image).stdout
    assert '"User":"analytics"' in config and '"/data":{}' in config and '"8000/tcp":{}' in config, config
    check = podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image).stdout
    assert '"Test":["CMD","analytics","health"]' in check, "no HEALTHCHECK (an OCI-format build drops it)"
    assert "ANALYTICS_DATABASE_URL=sqlite:////data/analytics.db" in config
    look = podman(
        "run", "--rm", *RUN, "--entrypoint", "sh", image, "-c",
        "analytics --version; id -u; for t in pip pip3 gcc cc make git; do command -v $t; done; "
        "ls -d /src /wheels /root/.cache /data/.cache /opt/analytics/bin/pip* 2>/dev/null; "
        "find / -xdev \\( -name 'test_*.py' -o -name tests -o -name '*.whl' -o -name pyproject.toml \\) "
        "-path '*analytics*' -print 2>/dev/null; true",
    ).stdout.split()  # fmt: skip
    assert look[:3] == ["analytics", look[1], "10001"] and look[1][0].isdigit(), look
    assert look[3:] == [], f"in the image: {look[3:]}"


def test_a_first_start_goes_healthy_sets_up_takes_events_and_stops_on_sigterm_without_losing_one(
    volume: str,
) -> None:
    started = time.monotonic()
    url = start(volume)
    measured["first start to healthy"] = f"{wait_healthy():.1f} s"
    log = logs()
    assert re.search(r"analytics \d+\.\d+\.\d+", log) and "applied migration 0001 initial" in log, log
    found = CODE.search(log)
    assert found and "open http://localhost:" in log, f"no setup code in the log:\n{log}"

    status = podman("exec", NAME, "cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M)
    assert uids and set(uids.group(1).split()) == {"10001"}, status  # the server (PID 1) runs as analytics
    assert "analytics" in podman("exec", NAME, "cat", "/proc/1/cmdline").stdout

    with httpx.Client(base_url=url, timeout=10) as browser:  # docker run, then a browser: the first account
        assert browser.get("/").headers["location"] == "/setup"
        form = browser.get("/setup")
        done = browser.post(
            "/setup",
            data={"csrf": field(form.text, "csrf"), "code": found.group(1), "email": "owner@example.com"}
            | {"password": PASSWORD, "repeat": PASSWORD},
        )
        assert done.status_code == 303, done.text
        assert "Add a site" in browser.get("/").text

    added = podman("exec", NAME, "analytics", "site", "add", "example.com")  # docker exec, as the README says
    assert "added example.com" in added.stdout
    server = SimpleNamespace(url=url)  # what burst() and send() need of a server
    warm = send(server, "81.2.69.142", AGENTS[0], "/first")  # type: ignore[arg-type]
    assert warm.status_code == 202 and "x-analytics-dropped" not in warm.headers, warm.headers

    progress = [0]
    with ThreadPoolExecutor(4) as pool:
        bursts = [pool.submit(burst, server, 300, f"b{t}", progress) for t in range(4)]  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while progress[0] < 40 and time.monotonic() < deadline:  # SIGTERM while events are on their way
            time.sleep(0.01)
        code = stop()
        acknowledged = 1 + sum(b.result() for b in bursts)
    assert code == 0, logs()
    assert "shut down:" in logs() and acknowledged > 1
    assert len(stored(volume)) == acknowledged  # every 202 is on the volume, nothing else
    measured["first run"] = f"{time.monotonic() - started:.0f} s"


def test_a_second_start_on_the_same_volume_keeps_everything_and_reads_a_read_only_geoip_database(
    volume: str,
) -> None:
    before = len(stored(volume))
    assert before > 0, "the first start stored nothing"
    url = start(
        volume,
        "--volume", f"{DATA / 'GeoLite2-City-Test.mmdb'}:/geoip/city.mmdb:ro",
        "--env", "ANALYTICS_GEOIP_DATABASE=/geoip/city.mmdb",
        "--env", "ANALYTICS_GEOIP_CITIES=true",
        "--env", "ANALYTICS_SERVER_ACCESS_LOG=true",
    )  # fmt: skip
    wait_healthy()
    response = send(SimpleNamespace(url=url), "175.16.199.37", AGENTS[1], "/located")  # type: ignore[arg-type]
    assert response.status_code == 202 and "x-analytics-dropped" not in response.headers, response.headers
    login = httpx.get(f"{url}/login")
    assert login.status_code == 200 and 'href="/setup"' not in login.text  # the account of the first start
    backup = podman("exec", NAME, "analytics", "backup", "/data/backup")  # while it runs, as the README says
    assert "backed up into /data/backup" in backup.stdout, backup.stdout + backup.stderr
    assert stop() == 0, logs()
    log = logs()
    assert "applied migration" not in log and "No account exists yet" not in log, log
    assert "locations from" in log and "POST /api/event 202" in log, log
    rows = stored(volume)
    assert len(rows) == before + 1 and rows[-1] == ("/located", "CN", "Changchun")
    copy = (
        "import os, sqlite3; print(*sqlite3.connect('/data/backup/analytics.db').execute('SELECT (SELECT COUNT(*) "
        "FROM sites), (SELECT COUNT(*) FROM sqlite_master WHERE name LIKE ?), (SELECT COUNT(*) FROM events)', "
        "('%salt%',)).fetchone(), *sorted(os.listdir('/data/backup')))"
    )
    # The site, but no salt (the salts' file is not copied) and none of today's events (README, Backup).
    assert in_volume(volume, copy) == "1 0 0 analytics-aggregates.db analytics.db"
    owner = in_volume(volume, "import os; print(os.stat('/data/analytics.db').st_uid)")
    assert owner == "10001"
