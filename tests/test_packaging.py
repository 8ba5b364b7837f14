"""A built wheel carries what the web needs: installed away from this checkout, it still finds the
page templates and the vendored NHS.UK assets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).parent.parent

SMOKE = """
import sys
from pathlib import Path
import reval
from reval.app import create_app
from reval.web import templates_folder

assert not Path(reval.__file__).resolve().is_relative_to(Path(sys.argv[1])), reval.__file__  # not this checkout
assert Path(sys.prefix) in templates_folder().parents, templates_folder()
app = create_app({"REVAL_DATABASE_URL": f"sqlite:///{sys.argv[2]}/db.sqlite", "REVAL_AUTH": "dev",
                  "REVAL_INSTANCE_PATH": sys.argv[2]})
client = app.test_client()
page = client.get("/auth/dev")
assert page.status_code == 200 and "Development sign-in" in page.text, page.status_code
for asset in ("/assets/nhsuk-frontend.min.css", "/assets/nhsuk-frontend.min.js", "/assets/app/app.css",
              "/assets/images/favicon.svg"):
    assert client.get(asset).status_code == 200, asset
print("ok")
"""


def test_an_installed_wheel_finds_its_templates_and_assets(tmp_path):
    # Built from a copy: a build writes build/ and *.egg-info beside its sources.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "instance",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".hypothesis",
            "node_modules",
        ),
    )
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(source),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = wheels.glob("reval-*.whl")
    prefix = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    subprocess.run(
        # --ignore-installed: without it pip would uninstall this environment's own (editable) Reval first.
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    # Reval's dependencies come from this environment; Reval itself only from the wheel (a path
    # listed in a .pth file is searched, but that folder's own .pth files, this checkout's
    # editable install among them, are not run).
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    instance = tmp_path / "instance"
    instance.mkdir()
    result = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", SMOKE, str(ROOT), str(instance)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        # A PYTHONPATH naming a checkout (as in a worktree sharing another's environment) would win over the wheel.
        env={name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
