import httpx

from cyp_registry import __version__


def test_health_and_ping(registry):
    r = httpx.get(f"{registry.url}/health")
    assert r.status_code == 200
    assert r.json() == {"success": True, "data": {"status": "healthy", "version": __version__}}
    with registry.client() as client:
        r = client.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
