"""compose.yaml is accepted by docker-compose (Debian's package) and wires what it must."""

import shutil
import subprocess

import pytest
import yaml

from tests.support import ROOT


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_accepts_the_file():
    out = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config = yaml.safe_load(out)
    services = config["services"]
    assert {"postgres", "nats", "registry", "workers"} <= set(services)
    assert "-js" in services["nats"]["command"]
    for name in ("postgres", "nats", "registry"):
        assert "healthcheck" in services[name]
    env = services["registry"]["environment"]
    assert env["CYP_DATABASE_URL"].startswith("postgresql://")
    assert env["CYP_NATS_URL"].startswith("nats://")
    assert services["workers"]["command"] == ["cyp-registry", "worker"]
