"""Fixtures for the end-to-end suite: the real `thingport` binary on ephemeral
ports with a fresh data directory, provisioned devices, and client factories.

Run: scripts/test-deps.sh && cargo build -p thingport && .venv/bin/pytest tests/e2e -q
"""

from __future__ import annotations

import itertools
import shutil

import pytest

from e2elib import E2EError, MosquittoSub, Paho, Server, find_binary

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A client id / topic component unique within the run."""
    return f"{prefix}-{next(_ids)}"


@pytest.fixture(scope="session")
def thingport_bin():
    try:
        return find_binary()
    except E2EError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _tools():
    missing = [t for t in ("mosquitto_pub", "mosquitto_sub", "openssl") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/test-deps.sh", pytrace=False)


def _start(thingport_bin, tmp_path_factory, name: str, **kw) -> Server:
    base = tmp_path_factory.mktemp(name)
    return Server(thingport_bin, base / "data", **kw).start()


@pytest.fixture(scope="module")
def server(thingport_bin, tmp_path_factory, request):
    """One server per test module (tests use distinct client ids and topics)."""
    s = _start(thingport_bin, tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1])
    yield s
    s.stop()


@pytest.fixture
def fresh_server(thingport_bin, tmp_path_factory, request):
    """A server of its own for a test where isolation matters."""
    s = _start(thingport_bin, tmp_path_factory, request.node.name[:40].replace("[", "-").replace("]", ""))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def device(server):
    """A provisioned, ACTIVE device on the module's server."""
    return server.provision("e2e-device")


@pytest.fixture
def make_server(thingport_bin, tmp_path_factory, request):
    """Factory for servers with special arguments (e.g. a fixed port)."""
    made: list[Server] = []
    request.node._e2e_extra_servers = made

    def make(name="srv", **kw):
        base = tmp_path_factory.mktemp(name)
        s = Server(thingport_bin, base / "data", **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def paho(request):
    """Factory: paho(server, device, client_id=None, version=5, tls12=True, clean=True, ...)
    -> Paho (not yet connected; call .connect()). Closed at teardown."""
    made: list[Paho] = []

    def make(server, device, client_id=None, version=5, **kw) -> Paho:
        cid = client_id if client_id is not None else unique(f"{request.node.name[:30]}-v{version}".replace("[", "-").replace("]", ""))
        p = Paho(server, device, cid, version=version, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def mosq_sub():
    made: list[MosquittoSub] = []

    def make(*a, **kw) -> MosquittoSub:
        m = MosquittoSub(*a, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every involved server's log."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    servers = []
    for name in ("server", "fresh_server"):
        s = item.funcargs.get(name) if hasattr(item, "funcargs") else None
        if isinstance(s, Server):
            servers.append(s)
    for s in getattr(item, "_e2e_extra_servers", []):
        servers.append(s)
    for s in servers:
        rep.sections.append((f"thingport log {s.log_path.name}", s.log_tail(60)))
