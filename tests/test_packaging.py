"""The package as a user installs it: the wheel built from this tree, installed (not editable) into a new virtual
environment, and the installed `analytics` run from elsewhere, with nothing of the source tree on its path.

`make` installs the package in editable mode, which reads the source tree directly: a module or data file that
the wheel leaves out goes unnoticed there (analytics.web once did; the server died at start with
ModuleNotFoundError). These tests are what notices it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.test_server import free_port

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "analytics"
# Not part of the package: what running or a build leaves in the tree.
LEFT_BEHIND = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", "data", ".*_cache"
)


@dataclass
class Installed:
    wheel: Path
    venv: Path

    def run(self, *args: str, cwd: Path, port: int | None = None) -> subprocess.CompletedProcess[str]:
        """The installed command, from `cwd`, for the server on `port`."""
        env = clean_env() | ({"ANALYTICS_SERVER_PORT": str(port)} if port else {})
        return subprocess.run(
            [str(self.venv / "bin" / "analytics"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )


def clean_env() -> dict[str, str]:
    """The environment without this checkout on the path or any configuration of ours."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "PYTHON", "VIRTUAL_ENV"))}


def package_files() -> set[str]:
    """Every file of the package in the source tree, as the wheel names it."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"  # a copy: building in the tree would leave build/ and *.egg-info there
    shutil.copytree(ROOT, source, ignore=LEFT_BEHIND)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"), str(source)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (work / "dist").glob("analytics-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Installed(wheel, venv)


def test_the_wheel_holds_every_module_template_asset_and_migration(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {name for name in wheel.namelist() if name.startswith("analytics/")}
    assert package_files() - shipped == set(), "missing from the wheel"
    assert {"analytics/web/views.py", "analytics/store/migrations/0001_initial.sql"} <= shipped


def test_the_package_is_imported_from_the_environment_not_from_this_tree(installed: Installed, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import analytics.web.views, analytics; print(analytics.__file__)",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout
    version = installed.run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("analytics "), version.stderr


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The installed server, started in an empty folder as a new user would: `analytics serve`."""
    port = free_port()
    log = tmp_path / "server.log"
    env = clean_env() | {"ANALYTICS_SERVER_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "analytics"), "serve"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the installed server did not start:\n" + log.read_text()
        time.sleep(0.1)
    yield url, process, log
    if process.poll() is None:
        process.kill()
        process.wait()


def test_the_installed_server_migrates_and_serves_the_scripts_and_the_dashboard_assets(
    installed: Installed, served: tuple[str, subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    url, process, log = served
    assert httpx.get(f"{url}/api/health").json()["status"] == "ok"
    health = installed.run("health", cwd=tmp_path, port=int(url.rsplit(":", 1)[1]))
    assert health.returncode == 0 and "healthy" in health.stdout, health.stderr

    for script in ("tracker", "optout"):  # the tracker, the opt-out switch
        served_script = httpx.get(f"{url}/{script}.js")
        assert served_script.status_code == 200, script
        assert served_script.content == (PACKAGE / "static" / f"{script}.min.js").read_bytes(), script
    login = httpx.get(f"{url}/login")
    assert login.status_code == 200 and "Log in" in login.text
    assert "/assets/dashboard.css?v=" in login.text
    for asset in sorted((PACKAGE / "static" / "dashboard").iterdir()):  # the login page's CSS, the dashboard's JS
        served_asset = httpx.get(f"{url}/assets/{asset.name}")
        assert served_asset.status_code == 200 and served_asset.content == asset.read_bytes(), asset.name
    assert httpx.get(f"{url}/setup").status_code == 200  # a new server offers the setup page

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    migrations = sorted(int(p.name[:4]) for p in (PACKAGE / "store" / "migrations").glob("*.sql"))
    with sqlite3.connect(tmp_path / "data" / "analytics.db") as db:
        applied = [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == migrations
    assert f"applied migration {migrations[-1]:04d}" in log.read_text()


def test_the_installed_command_reports_a_server_that_does_not_answer(installed: Installed, tmp_path: Path) -> None:
    nothing = installed.run("health", "--timeout", "2", cwd=tmp_path, port=free_port())
    assert nothing.returncode == 1 and "no answer from http://127.0.0.1:" in nothing.stderr
