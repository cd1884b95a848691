"""Device shadows with real clients: the seed's curl commands on the device
HTTPS listener, paho-mqtt (3.1.1 and 5) on the reserved
`$aws/things/{thing}/shadow/...` topics, and boto3's `iot-data` client (SigV4)
on the management API.

Covers every response topic and error code, named shadows on both topic
families and `?name=`, null semantics, nested deltas, version numbering
(conflicts under concurrency, continuation after delete), authorization with
the default device policy, durability across `kill -9`, and the rest of the
data plane (Publish, GetRetainedMessage, ListRetainedMessages).
"""

from __future__ import annotations

import http.client
import json
import queue
import shutil
import ssl
import subprocess
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import unique
from e2elib import QUIET, WAIT, E2EError, Paho, free_port, wait_until

DEFAULT = "ThingportDefaultDevicePolicy"


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

def iot_data(server, secret: str | None = None, pool: int = 10):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    return boto3.client(
        "iot-data",
        endpoint_url=server.endpoints["api"],
        region_name="us-east-1",
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=secret if secret is not None else creds["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}, max_pool_connections=pool, connect_timeout=WAIT, read_timeout=10),
    )


def payload_of(resp) -> dict:
    return json.loads(resp["payload"].read())


def status_of(e: ClientError) -> tuple[int, str]:
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def https(server, dev, method: str, path: str, body: str | bytes | None = None) -> tuple[int, dict | None]:
    """One request on the device HTTPS listener with the device's certificate."""
    port = int(server.endpoints["https"].rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=str(dev.ca))
    ctx.load_cert_chain(str(dev.cert), str(dev.key))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = {"_raw": data.decode(errors="replace")}
        return r.status, doc
    finally:
        conn.close()


class Inbox:
    """Messages of one Paho client by topic, JSON-decoded, in arrival order.
    Unlike Paho.expect, taking a message on one topic keeps the others."""

    def __init__(self, p: Paho):
        self.p = p
        self.pending: list = []

    def _pull(self, timeout: float) -> bool:
        try:
            m = self.p.messages.get(timeout=timeout)
        except queue.Empty:
            return False
        try:
            doc = json.loads(m.payload) if m.payload else None
        except ValueError:
            doc = {"_raw": m.payload}
        self.pending.append((m.topic, doc, m))
        return True

    def take(self, topic: str, timeout: float = WAIT, where=None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, (t, doc, _m) in enumerate(self.pending):
                if t == topic and (where is None or where(doc)):
                    del self.pending[i]
                    return doc
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [(t, d) for t, d, _ in self.pending]
                raise E2EError(f"{self.p.client_id}: nothing on {topic} within {timeout}s; pending: {seen}")
            self._pull(min(left, 0.1))

    def none_on(self, topic: str, duration: float = QUIET) -> None:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            self._pull(max(0.01, deadline - time.monotonic()))
        bad = [d for t, d, _ in self.pending if t == topic]
        assert not bad, f"unexpected message(s) on {topic}: {bad}"

    def clear(self) -> None:
        while self._pull(0.01):
            pass
        self.pending.clear()


class ShadowDevice:
    """A paho client subscribed to every response topic of one shadow."""

    def __init__(self, p: Paho, thing: str, name: str | None = None):
        self.p, self.thing, self.name = p, thing, name
        self.prefix = f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")
        self.inbox = Inbox(p)

    def subscribe(self, suffixes=("get/+", "update/+", "delete/+")) -> "ShadowDevice":
        codes = self.p.subscribe([(f"{self.prefix}/{s}", 1) for s in suffixes])
        assert all(c in (0, 1, 2) for c in codes), codes
        return self

    def send(self, op: str, doc=None, raw: bytes | None = None) -> int | None:
        body = raw if raw is not None else (b"" if doc is None else json.dumps(doc).encode())
        return self.p.publish(f"{self.prefix}/{op}", body, qos=1)

    def expect(self, suffix: str, token: str | None = None, timeout: float = WAIT, where=None) -> dict:
        if token is not None:
            where = lambda d: isinstance(d, dict) and d.get("clientToken") == token  # noqa: E731
        return self.inbox.take(f"{self.prefix}/{suffix}", timeout=timeout, where=where)

    def request(self, op: str, doc=None, raw: bytes | None = None) -> tuple[str, dict]:
        """Send and wait for accepted or rejected (requests should carry a
        clientToken to correlate; raw payloads are matched by order)."""
        token = doc.get("clientToken") if isinstance(doc, dict) else None
        assert self.send(op, doc, raw) == 0
        deadline = time.monotonic() + WAIT
        while True:
            for i, (t, d, _m) in enumerate(self.inbox.pending):
                if t in (f"{self.prefix}/{op}/accepted", f"{self.prefix}/{op}/rejected") and (
                    token is None or (isinstance(d, dict) and d.get("clientToken") == token)
                ):
                    del self.inbox.pending[i]
                    return t.rsplit("/", 1)[1], d
            left = deadline - time.monotonic()
            if left <= 0:
                raise E2EError(f"no {op}/accepted or {op}/rejected on {self.prefix}; pending "
                               f"{[(t, d) for t, d, _ in self.inbox.pending]}")
            self.inbox._pull(min(left, 0.1))


def tok() -> str:
    return unique("tok")


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(server):
    return iot_data(server)


@pytest.fixture(scope="module")
def anydev(server):
    """A device that may do anything (policies are tested separately)."""
    return server.provision(unique("shadow-any"))


def shadow_client(paho, server, dev, thing, name=None, version=5, client_id=None, **kw) -> ShadowDevice:
    p = paho(server, dev, client_id=client_id, version=version, **kw)
    p.connect()
    return ShadowDevice(p, thing, name).subscribe()


# ---------------------------------------------------------------------------
# the seed's curl commands
# ---------------------------------------------------------------------------

def test_seed_curl_commands(server, data):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install curl): the seed's curl commands cannot run")
    dev = server.provision("IoT-motion-sensor", policy=DEFAULT)
    port = server.endpoints["https"].rsplit(":", 1)[1]
    url = f"https://localhost:{port}/things/IoT-motion-sensor/shadow"
    files = ["--cacert", "root-ca.pem", "--cert", "certificate.pem.crt", "--key", "private.pem.key"]

    def curl(*args: str) -> dict:
        # As in the seed, run from the directory holding the three files.
        r = subprocess.run(["curl", "-sS", "--fail-with-body", *args], cwd=dev.dir, capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"curl {args} failed ({r.returncode}): {r.stdout}{r.stderr}"
        return json.loads(r.stdout)

    post = ["-H", "Content-Type: application/json", "-X", "POST", "-d"]

    v = curl(*post, '{"state":{"desired":{"motion":"0","time":"hello"}}}', *files, url)
    assert v["state"] == {"desired": {"motion": "0", "time": "hello"}}
    assert v["version"] == 1
    assert set(v["metadata"]["desired"]) == {"motion", "time"}
    assert isinstance(v["metadata"]["desired"]["motion"]["timestamp"], int)

    got = curl(*files, url)  # curl's default GET
    assert got["state"]["delta"] == {"motion": "0", "time": "hello"}

    v = curl(*post, '{"state":{"reported":{"motion":"0","time":"hello"}}}', *files, url)
    assert (v["state"], v["version"]) == ({"reported": {"motion": "0", "time": "hello"}}, 2)
    got = curl(*files, url)
    assert got["state"] == {"desired": {"motion": "0", "time": "hello"}, "reported": {"motion": "0", "time": "hello"}}
    assert "delta" not in got["state"] and "delta" not in got["metadata"]

    # The same document through the administrator's iot-data client.
    assert payload_of(data.get_thing_shadow(thingName="IoT-motion-sensor"))["state"] == got["state"]

    v = curl(*post, '{"state":null}', *files, url)
    assert v["state"] is None and v["version"] == 3
    got = curl(*files, url)
    assert got["version"] == 3
    assert not got["state"].get("desired") and not got["state"].get("reported") and not got["state"].get("delta")


# ---------------------------------------------------------------------------
# delta to a device that was offline; convergence with an app on boto3
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_offline_device_gets_delta_on_reconnect(server, data, paho, version):
    dev = server.provision(unique(f"offline-v{version}"), policy=DEFAULT)
    thing = dev.name
    d = shadow_client(paho, server, dev, thing, version=version, client_id=thing)

    # While connected: update/delta arrives for the app's change.
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"led": "on"}}}))
    delta = d.expect("update/delta")
    assert delta["state"] == {"led": "on"}
    assert delta["version"] == 1
    assert "timestamp" in delta["metadata"]["led"]
    d.p.disconnect()

    # Offline: two changes and a removal.
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"led": "off", "fan": 3}}}))
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"mode": "eco"}}}))
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"fan": None}}}))

    # Back: subscribe, get, and the delta says everything that changed.
    back = shadow_client(paho, server, dev, thing, version=version, client_id=thing)
    t = tok()
    kind, got = back.request("get", {"clientToken": t})
    assert kind == "accepted", got
    assert got["clientToken"] == t
    assert got["version"] == 4
    assert got["state"]["delta"] == {"led": "off", "mode": "eco"}
    assert set(got["metadata"]["delta"]) == {"led", "mode"}

    # It applies and reports: accepted, no delta any more, and none published.
    t = tok()
    kind, acc = back.request("update", {"state": {"reported": got["state"]["delta"]}, "clientToken": t})
    assert (kind, acc["version"]) == ("accepted", 5)
    back.inbox.none_on(f"{back.prefix}/update/delta")
    kind, got = back.request("get", {"clientToken": tok()})
    assert "delta" not in got["state"]


def test_persistent_session_receives_delta_queued_while_offline(server, data, paho):
    dev = server.provision(unique("offline-persist"), policy=DEFAULT)
    thing = dev.name
    p = paho(server, dev, client_id=thing, version=5)
    p.connect(session_expiry=600)
    assert p.subscribe(f"$aws/things/{thing}/shadow/update/delta", qos=1) == [1]
    p.disconnect()
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": {"x": 1}}}))
    back = paho(server, dev, client_id=thing, version=5, clean=False)
    assert back.connect(session_expiry=600).session_present is True
    m = back.expect(f"$aws/things/{thing}/shadow/update/delta")
    assert json.loads(m.payload)["state"] == {"x": 1}


def _merge(dst: dict, patch: dict) -> None:
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def test_app_desired_converges_to_reported(server, data, paho):
    dev = server.provision(unique("converge"), policy=DEFAULT)
    thing = dev.name
    p = paho(server, dev, client_id=thing, version=4)
    p.connect()
    p.subscribe(f"$aws/things/{thing}/shadow/update/delta", qos=1)
    stop = threading.Event()
    applied: list[dict] = []
    errors: list[BaseException] = []

    def device_loop():
        # The firmware: apply every delta, report what it now has.
        local: dict = {}
        try:
            while not stop.is_set():
                try:
                    m = p.messages.get(timeout=0.05)
                except queue.Empty:
                    continue
                delta = json.loads(m.payload)["state"]
                _merge(local, delta)
                applied.append(delta)
                p.publish(f"$aws/things/{thing}/shadow/update", json.dumps({"state": {"reported": local}}), qos=1)
        except BaseException as e:  # surfaced by the test thread
            errors.append(e)

    t = threading.Thread(target=device_loop, daemon=True)
    t.start()
    try:
        wanted: dict = {}
        for change in (
            {"power": "on", "brightness": 40},
            {"brightness": 80, "color": {"r": 255, "g": 10, "b": 0}},
            {"color": {"g": 200}, "schedule": [7, 19]},
        ):
            data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"desired": change}}))
            _merge(wanted, change)

            def converged():
                doc = payload_of(data.get_thing_shadow(thingName=thing))
                st = doc["state"]
                return doc if st.get("reported") == st.get("desired") == wanted and "delta" not in st else None

            wait_until(converged, timeout=10, interval=0.05, what=f"reported == desired == {wanted}")
        assert not errors, errors
        assert applied, "the device never saw a delta"
    finally:
        stop.set()
        t.join(5)


# ---------------------------------------------------------------------------
# every topic, and client tokens
# ---------------------------------------------------------------------------

def test_topics_accepted_documents_and_client_tokens(server, anydev, paho):
    thing = unique("topics")
    d = shadow_client(paho, server, anydev, thing)
    d.subscribe(("update/documents", "update/delta"))

    t1 = tok()
    kind, acc = d.request("update", {"state": {"desired": {"color": "red"}}, "clientToken": t1})
    assert kind == "accepted"
    assert acc["clientToken"] == t1
    assert acc["state"] == {"desired": {"color": "red"}}
    assert acc["version"] == 1
    assert isinstance(acc["timestamp"], int)
    assert isinstance(acc["metadata"]["desired"]["color"]["timestamp"], int)
    docs = d.expect("update/documents", token=t1)
    assert docs["previous"] is None
    assert docs["current"]["state"] == {"desired": {"color": "red"}}
    assert docs["current"]["version"] == 1
    assert "timestamp" in docs
    delta = d.expect("update/delta", token=t1)
    assert (delta["state"], delta["version"]) == ({"color": "red"}, 1)

    t2 = tok()
    kind, acc = d.request("update", {"state": {"reported": {"color": "red", "on": True}}, "clientToken": t2})
    assert (kind, acc["version"]) == ("accepted", 2)
    docs = d.expect("update/documents", token=t2)
    assert docs["previous"]["state"] == {"desired": {"color": "red"}} and docs["previous"]["version"] == 1
    assert docs["current"]["state"] == {"desired": {"color": "red"}, "reported": {"color": "red", "on": True}}
    assert docs["current"]["version"] == 2
    assert set(docs["current"]["metadata"]) == {"desired", "reported"}
    d.inbox.none_on(f"{d.prefix}/update/delta")  # converged: no delta

    t3 = tok()
    kind, got = d.request("get", {"clientToken": t3})
    assert kind == "accepted"
    assert got["clientToken"] == t3
    assert got["version"] == 2
    assert got["state"] == {"desired": {"color": "red"}, "reported": {"color": "red", "on": True}}

    # A get with an empty payload is answered too (no token to echo).
    kind, got = d.request("get", raw=b"")
    assert kind == "accepted" and "clientToken" not in got

    t4 = tok()
    kind, dele = d.request("delete", {"clientToken": t4})
    assert kind == "accepted"
    assert (dele["clientToken"], dele["version"]) == (t4, 2)
    assert "timestamp" in dele

    t5 = tok()
    kind, rej = d.request("get", {"clientToken": t5})
    assert kind == "rejected"
    assert rej == {"code": 404, "message": f"No shadow exists with name: '{thing}'",
                   "timestamp": rej["timestamp"], "clientToken": t5}
    t6 = tok()
    kind, rej = d.request("delete", {"clientToken": t6})
    assert (kind, rej["code"], rej["clientToken"]) == ("rejected", 404, t6)


def _rejections():
    too_deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}  # 7 levels counting desired
    return [
        ("invalid-json", b'{"state":{"desired":', 400, "Invalid JSON", False),
        ("not-an-object", b'[1,2]', 400, "Invalid JSON", False),
        ("missing-state", {"desired": {"a": 1}}, 400, "Missing required node: state", True),
        ("desired-not-object", {"state": {"desired": 5}}, 400, "Desired node must be an object", True),
        ("reported-not-object", {"state": {"reported": "x"}}, 400, "Reported node must be an object", True),
        ("state-not-object", {"state": [1]}, 400, "State node must be an object", True),
        ("unknown-node", {"state": {"delta": {"a": 1}}}, 400, "State contains an invalid node: 'delta'", True),
        ("too-deep", {"state": {"desired": too_deep}}, 400, "JSON contains too many levels of nesting; maximum is 6",
         True),
        ("long-token", {"state": {"desired": {"a": 1}}, "clientToken": "x" * 65}, 400, "Invalid clientToken", False),
        ("bad-version", {"state": {"desired": {"a": 1}}, "version": "one"}, 400, "Invalid version", True),
        ("conflict", {"state": {"desired": {"a": 1}}, "version": 99}, 409, "Version conflict", True),
        ("too-large", {"state": {"desired": {"big": "x" * 8200}}}, 413,
         "The payload exceeds the maximum size allowed", True),
        ("not-utf8", b'{"state":{"reported":{"a":"\xff"}},"clientToken":"t"}', 415,
         "Unsupported documented encoding; supported encoding is UTF-8", False),
    ]


@pytest.mark.parametrize("case,body,code,message,echo", _rejections(), ids=[r[0] for r in _rejections()])
def test_update_rejected_over_mqtt(server, anydev, paho, data, case, body, code, message, echo):
    thing = unique(f"rej-{case}")
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"ok": 1}}}))
    d = shadow_client(paho, server, anydev, thing)
    t = tok()
    if isinstance(body, dict):
        body = dict(body)
        body.setdefault("clientToken", t)
        raw = json.dumps(body).encode()
    else:
        raw = body
    assert d.send("update", raw=raw) == 0
    rej = d.expect("update/rejected")
    assert rej["code"] == code, rej
    assert rej["message"] == message
    assert isinstance(rej["timestamp"], int)
    if echo:
        assert rej["clientToken"] == t
    else:
        assert "clientToken" not in rej
    d.inbox.none_on(f"{d.prefix}/update/accepted")
    # Nothing changed.
    assert payload_of(data.get_thing_shadow(thingName=thing))["version"] == 1


@pytest.mark.parametrize("case,body,code,message,echo", _rejections(), ids=[r[0] for r in _rejections()])
def test_update_rejected_over_https_and_iot_data(server, anydev, data, case, body, code, message, echo):
    thing = unique(f"rejh-{case}")
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"ok": 1}}}))
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow", raw)
    assert status == code, doc
    assert doc["message"] == message
    with pytest.raises(ClientError) as ei:
        data.update_thing_shadow(thingName=thing, payload=raw)
    assert status_of(ei.value)[0] == code
    expect_type = {400: "InvalidRequestException", 409: "ConflictException",
                   413: "RequestEntityTooLargeException", 415: "UnsupportedDocumentEncodingException"}[code]
    assert status_of(ei.value)[1] == expect_type
    assert payload_of(data.get_thing_shadow(thingName=thing))["version"] == 1


def test_limits_at_the_edge_are_accepted(server, anydev, data):
    thing = unique("edges")
    six = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}  # 6 levels counting desired
    status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow",
                        json.dumps({"state": {"desired": six}, "clientToken": "y" * 64}))
    assert status == 200, doc
    assert doc["clientToken"] == "y" * 64
    # 8 KB of state in all is fine ...
    filler = "z" * (8192 - len(json.dumps({"a": six["a"], "big": ""}, separators=(",", ":"))))
    status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow",
                        json.dumps({"state": {"desired": {"big": filler}}}))
    assert status == 200, doc
    # ... and a byte more is not, even though the request itself is small:
    # the resulting document would be over the limit.
    status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow",
                        json.dumps({"state": {"reported": {"q": 1}}}))
    assert status == 413, doc
    assert payload_of(data.get_thing_shadow(thingName=thing))["version"] == 2


def test_404_for_missing_and_deleted_shadows(server, anydev, paho, data):
    thing = unique("missing")
    status, doc = https(server, anydev, "GET", f"/things/{thing}/shadow")
    assert status == 404 and doc["message"] == f"No shadow exists with name: '{thing}'", doc
    with pytest.raises(ClientError) as ei:
        data.get_thing_shadow(thingName=thing)
    assert status_of(ei.value) == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as ei:
        data.delete_thing_shadow(thingName=thing)
    assert status_of(ei.value) == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as ei:
        data.get_thing_shadow(thingName=thing, shadowName="nope")
    assert status_of(ei.value) == (404, "ResourceNotFoundException")
    assert ei.value.response["Error"]["Message"] == "No shadow exists with name: 'nope'"

    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":1}}}')
    assert https(server, anydev, "DELETE", f"/things/{thing}/shadow")[0] == 200
    assert https(server, anydev, "GET", f"/things/{thing}/shadow")[0] == 404
    assert https(server, anydev, "DELETE", f"/things/{thing}/shadow")[0] == 404
    with pytest.raises(ClientError) as ei:
        data.get_thing_shadow(thingName=thing)
    assert status_of(ei.value)[0] == 404
    d = shadow_client(paho, server, anydev, thing)
    kind, rej = d.request("get", {"clientToken": "g"})
    assert (kind, rej["code"]) == ("rejected", 404)


def test_version_conflict_409_everywhere(server, anydev, paho, data):
    thing = unique("conflict")
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":1}}}')  # v1
    # The right version is accepted, a stale one refused.
    r = payload_of(data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":2}},"version":1}'))
    assert r["version"] == 2
    with pytest.raises(ClientError) as ei:
        data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":3}},"version":1}')
    assert status_of(ei.value) == (409, "ConflictException")
    status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow", b'{"state":{"desired":{"a":3}},"version":3}')
    assert status == 409, doc
    d = shadow_client(paho, server, anydev, thing)
    kind, rej = d.request("update", {"state": {"desired": {"a": 3}}, "version": 1, "clientToken": "c1"})
    assert (kind, rej["code"], rej["message"], rej["clientToken"]) == ("rejected", 409, "Version conflict", "c1")
    kind, acc = d.request("update", {"state": {"desired": {"a": 3}}, "version": 2, "clientToken": "c2"})
    assert (kind, acc["version"]) == ("accepted", 3)
    assert payload_of(data.get_thing_shadow(thingName=thing))["state"]["desired"] == {"a": 3}


# ---------------------------------------------------------------------------
# named shadows
# ---------------------------------------------------------------------------

def test_named_shadows_on_mqtt_https_and_iot_data(server, anydev, paho, data):
    thing = unique("named")
    cfg = shadow_client(paho, server, anydev, thing, name="config")
    cfg.subscribe(("update/delta", "update/documents"))
    classic = ShadowDevice(cfg.p, thing).subscribe()

    kind, acc = cfg.request("update", {"state": {"desired": {"fw": "1.2"}}, "clientToken": "n1"})
    assert (kind, acc["version"], acc["state"]) == ("accepted", 1, {"desired": {"fw": "1.2"}})
    assert cfg.expect("update/delta", token="n1")["state"] == {"fw": "1.2"}
    assert cfg.expect("update/documents", token="n1")["current"]["state"] == {"desired": {"fw": "1.2"}}
    # The classic shadow is a different document: it does not exist.
    kind, rej = classic.request("get", {"clientToken": "c"})
    assert (kind, rej["code"]) == ("rejected", 404)
    kind, rej = cfg.request("get", {"clientToken": "n2"})
    assert (kind, rej["state"]["delta"]) == ("accepted", {"fw": "1.2"})

    # The same named shadow over HTTPS (?name=) and iot-data (shadowName).
    status, doc = https(server, anydev, "GET", f"/things/{thing}/shadow?name=config")
    assert status == 200 and doc["state"]["desired"] == {"fw": "1.2"}, doc
    status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow?name=config",
                        b'{"state":{"reported":{"fw":"1.2"}}}')
    assert (status, doc["version"]) == (200, 2), doc
    # An HTTPS update publishes the MQTT documents message too.
    assert cfg.expect("update/documents", where=lambda x: x["current"]["version"] == 2)["previous"]["version"] == 1
    got = payload_of(data.get_thing_shadow(thingName=thing, shadowName="config"))
    assert got["state"] == {"desired": {"fw": "1.2"}, "reported": {"fw": "1.2"}}

    data.update_thing_shadow(thingName=thing, shadowName="net", payload=b'{"state":{"reported":{"ip":"10.0.0.2"}}}')
    https(server, anydev, "POST", f"/things/{thing}/shadow?name=alarm", b'{"state":{"desired":{"armed":true}}}')
    kind, _ = ShadowDevice(cfg.p, thing, "zeta").subscribe().request(
        "update", {"state": {"reported": {"z": 1}}, "clientToken": "z"})
    assert kind == "accepted"
    # The classic shadow is not a named shadow.
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"reported":{"classic":1}}}')

    r = data.list_named_shadows_for_thing(thingName=thing)
    assert sorted(r["results"]) == ["alarm", "config", "net", "zeta"]
    assert "nextToken" not in r
    assert isinstance(r["timestamp"], int)

    # Pages.
    seen, token = [], None
    while True:
        kw = {"pageSize": 3}
        if token:
            kw["nextToken"] = token
        r = data.list_named_shadows_for_thing(thingName=thing, **kw)
        assert len(r["results"]) <= 3
        seen += r["results"]
        token = r.get("nextToken")
        if not token:
            break
    assert sorted(seen) == ["alarm", "config", "net", "zeta"]

    # A deleted named shadow leaves the list; the others stay.
    status, doc = https(server, anydev, "DELETE", f"/things/{thing}/shadow?name=alarm")
    assert status == 200 and doc["version"] == 1, doc
    data.delete_thing_shadow(thingName=thing, shadowName="net")
    kind, dele = cfg.request("delete", {"clientToken": "d"})
    assert (kind, dele["version"]) == ("accepted", 2)
    assert sorted(data.list_named_shadows_for_thing(thingName=thing)["results"]) == ["zeta"]
    assert data.list_named_shadows_for_thing(thingName=unique("no-shadows"))["results"] == []
    assert payload_of(data.get_thing_shadow(thingName=thing))["state"]["reported"] == {"classic": 1}


# ---------------------------------------------------------------------------
# document semantics
# ---------------------------------------------------------------------------

def test_null_semantics(server, anydev, paho, data):
    thing = unique("nulls")
    d = shadow_client(paho, server, anydev, thing)

    def upd(state, t):
        kind, acc = d.request("update", {"state": state, "clientToken": t})
        assert kind == "accepted", acc
        return acc

    def get():
        return payload_of(data.get_thing_shadow(thingName=thing))

    upd({"desired": {"a": 1, "b": {"c": 2, "d": 3}, "e": "x"}, "reported": {"a": 1, "r": True}}, "n1")
    acc = upd({"desired": {"b": {"c": None}}}, "n2")
    # The accepted document echoes what was sent, nulls included.
    assert acc["state"] == {"desired": {"b": {"c": None}}}
    g = get()
    assert g["state"]["desired"] == {"a": 1, "b": {"d": 3}, "e": "x"}
    assert set(g["metadata"]["desired"]["b"]) == {"d"}

    upd({"desired": {"b": {"d": None}, "e": None}}, "n3")  # b loses its last member: gone
    g = get()
    assert g["state"]["desired"] == {"a": 1}
    assert set(g["metadata"]["desired"]) == {"a"}
    assert "delta" not in g["state"]

    upd({"desired": None}, "n4")
    g = get()
    assert "desired" not in g["state"] and "desired" not in g["metadata"]
    assert g["state"]["reported"] == {"a": 1, "r": True}
    assert g["version"] == 4

    upd({"desired": {"k": "v"}}, "n5")
    acc = upd(None, "n6")
    assert acc["state"] is None and acc["version"] == 6
    g = get()
    assert g["version"] == 6
    assert not g["state"].get("desired") and not g["state"].get("reported") and not g["state"].get("delta")
    assert not g["metadata"].get("desired") and not g["metadata"].get("reported")

    # Still a shadow: the next update continues the numbering.
    assert upd({"reported": {"again": 1}}, "n7")["version"] == 7


def test_nested_deltas_and_arrays(server, anydev, paho, data):
    thing = unique("nested")
    d = shadow_client(paho, server, anydev, thing)
    d.subscribe(("update/delta",))
    desired = {"lights": {"color": {"r": 255, "g": 255, "b": 255}, "on": True},
               "list": [1, 2, 3], "same": {"a": 1}, "objs": [{"x": 1}]}
    reported = {"lights": {"color": {"r": 255, "g": 0, "b": 255}, "on": True},
                "list": [1, 2, 4], "same": {"a": 1}, "objs": [{"x": 1}], "extra": 5}
    d.request("update", {"state": {"reported": reported}, "clientToken": "r1"})
    d.request("update", {"state": {"desired": desired}, "clientToken": "d1"})
    want = {"lights": {"color": {"g": 255}}, "list": [1, 2, 3]}
    delta = d.expect("update/delta", token="d1")
    assert delta["state"] == want
    assert delta["version"] == 2
    assert set(delta["metadata"]["lights"]["color"]) == {"g"}
    assert len(delta["metadata"]["list"]) == 3  # per-element metadata, as AWS's ColorRGB example
    g = payload_of(data.get_thing_shadow(thingName=thing))
    assert g["state"]["delta"] == want
    assert set(g["metadata"]["delta"]) == {"lights", "list"}

    # Arrays are whole values: a shorter desired array replaces the old one.
    d.request("update", {"state": {"desired": {"list": [1, 2]}}, "clientToken": "d2"})
    assert d.expect("update/delta", token="d2")["state"] == {"lights": {"color": {"g": 255}}, "list": [1, 2]}
    # Reporting part of it leaves only the rest; reporting all clears the delta.
    d.request("update", {"state": {"reported": {"list": [1, 2]}}, "clientToken": "r2"})
    assert d.expect("update/delta", token="r2")["state"] == {"lights": {"color": {"g": 255}}}
    d.request("update", {"state": {"reported": {"lights": {"color": {"g": 255}}}}, "clientToken": "r3"})
    d.inbox.none_on(f"{d.prefix}/update/delta")
    g = payload_of(data.get_thing_shadow(thingName=thing))
    assert "delta" not in g["state"]
    assert g["state"]["reported"]["lights"] == {"color": {"r": 255, "g": 255, "b": 255}, "on": True}
    # A type change puts the whole desired value in the delta.
    d.request("update", {"state": {"reported": {"same": 7}}, "clientToken": "r4"})
    assert d.expect("update/delta", token="r4")["state"] == {"same": {"a": 1}}


def test_version_continues_after_delete_and_recreate(server, anydev, paho, data):
    thing = unique("recreate")
    d = shadow_client(paho, server, anydev, thing)
    d.subscribe(("update/documents",))
    for i in range(3):
        kind, acc = d.request("update", {"state": {"reported": {"i": i}}, "clientToken": f"u{i}"})
        assert acc["version"] == i + 1
    kind, dele = d.request("delete", {"clientToken": "del"})
    assert (kind, dele["version"]) == ("accepted", 3)
    assert https(server, anydev, "GET", f"/things/{thing}/shadow")[0] == 404
    kind, acc = d.request("update", {"state": {"reported": {"back": True}}, "clientToken": "again"})
    assert (kind, acc["version"]) == ("accepted", 4)
    docs = d.expect("update/documents", token="again")
    assert docs["previous"] is None  # the deleted document is gone ...
    assert docs["current"]["state"] == {"reported": {"back": True}}  # ... nothing of it comes back
    assert docs["current"]["version"] == 4
    # Same through HTTPS and iot-data.
    assert https(server, anydev, "DELETE", f"/things/{thing}/shadow")[1]["version"] == 4
    r = payload_of(data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"z":1}}}'))
    assert r["version"] == 5
    data.delete_thing_shadow(thingName=thing)
    r = payload_of(data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"z":2}}}'))
    assert r["version"] == 6


# ---------------------------------------------------------------------------
# optimistic concurrency under load
# ---------------------------------------------------------------------------

def test_concurrent_read_modify_write(server):
    thing = unique("race")
    threads_n, per_thread = 10, 20
    iot = iot_data(server)
    first = payload_of(iot.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"n":0}}}'))
    assert first["version"] == 1
    accepted: list[int] = []
    rejected: list[tuple[int, str]] = []
    other: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def worker(i: int):
        c = iot_data(server)
        start.wait(10)
        for j in range(per_thread):
            try:
                cur = payload_of(c.get_thing_shadow(thingName=thing))
                v = cur["version"]
                body = {"state": {"desired": {"n": cur["state"]["desired"]["n"] + 1, "last": f"{i}.{j}"}},
                        "version": v}
                r = payload_of(c.update_thing_shadow(thingName=thing, payload=json.dumps(body)))
                with lock:
                    accepted.append(r["version"])
                if r["version"] != v + 1:
                    with lock:
                        other.append(f"accepted version {r['version']} after reading {v}")
            except ClientError as e:
                with lock:
                    rejected.append(status_of(e))
            except Exception as e:  # noqa: BLE001 -- reported below
                with lock:
                    other.append(repr(e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(50)
    assert not any(t.is_alive() for t in ts), "workers did not finish"
    assert not other, other
    assert len(accepted) + len(rejected) == threads_n * per_thread
    assert set(rejected) <= {(409, "ConflictException")}, set(rejected)
    # Each accepted update incremented the version exactly once ...
    assert sorted(accepted) == list(range(2, 2 + len(accepted)))
    final = payload_of(iot.get_thing_shadow(thingName=thing))
    assert final["version"] == 1 + len(accepted)
    # ... and no increment was lost (read-modify-write with version = a counter).
    assert final["state"]["desired"]["n"] == len(accepted)
    assert len(rejected) > 0, "10 racing writers never conflicted: the test did not test anything"


# ---------------------------------------------------------------------------
# authorization
# ---------------------------------------------------------------------------

def test_default_policy_confines_a_device_to_its_own_shadow(server, paho, data):
    me = server.provision(unique("owner"), policy=DEFAULT)
    other = unique("victim")
    data.update_thing_shadow(thingName=other, payload=b'{"state":{"reported":{"secret":42}}}')

    # HTTPS: own shadow yes, another thing's no (get, update, delete, named).
    assert https(server, me, "POST", f"/things/{me.name}/shadow", b'{"state":{"reported":{"a":1}}}')[0] == 200
    assert https(server, me, "GET", f"/things/{me.name}/shadow")[0] == 200
    for method, body in (("GET", None), ("POST", b'{"state":{"desired":{"secret":0}}}'), ("DELETE", None)):
        status, doc = https(server, me, method, f"/things/{other}/shadow", body)
        assert status == 403, (method, status, doc)
        status, doc = https(server, me, method, f"/things/{other}/shadow?name=x", body)
        assert status == 403, (method, "named", status, doc)

    # MQTT 5: PUBACK 0x87 on the other thing's request topics, SUBACK 0x87 on its responses.
    p = paho(server, me, client_id=me.name, version=5)
    p.connect()
    assert p.subscribe([(f"$aws/things/{me.name}/shadow/#", 1),
                        (f"$aws/things/{other}/shadow/update/accepted", 1),
                        (f"$aws/things/{other}/shadow/#", 1)]) == [1, 0x87, 0x87]
    for op in ("update", "get", "delete", "name/x/update"):
        assert p.publish(f"$aws/things/{other}/shadow/{op}", b'{"state":{"desired":{"secret":0}}}', qos=1) == 0x87
    assert p.publish(f"$aws/things/{me.name}/shadow/update", b'{"state":{"reported":{"b":2}}}', qos=1) == 0
    m = p.expect(f"$aws/things/{me.name}/shadow/update/accepted")
    assert json.loads(m.payload)["version"] == 2
    assert p.c.is_connected()

    # Nothing of the other thing's shadow changed.
    g = payload_of(data.get_thing_shadow(thingName=other))
    assert (g["version"], g["state"]) == (1, {"reported": {"secret": 42}})


def test_default_policy_allows_own_named_shadow_over_https(server):
    me = server.provision(unique("named-owner"), policy=DEFAULT)
    status, doc = https(server, me, "POST", f"/things/{me.name}/shadow?name=cfg", b'{"state":{"reported":{"a":1}}}')
    assert status == 200, doc
    assert https(server, me, "GET", f"/things/{me.name}/shadow?name=cfg")[0] == 200


def test_wildcard_subscriber_receives_only_its_own_things_shadow(server, anydev, paho, tmp_path):
    """A device allowed to subscribe to `$aws/things/+/shadow/#` but to
    receive only its own thing's topics (iot:Receive) sees only its own
    shadow's responses."""
    policy = unique("shadow-watch")
    doc = tmp_path / "watch.json"
    doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:*:*:topicfilter/$aws/things/*"},
        {"Effect": "Allow", "Action": "iot:Receive",
         "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"},
    ]}))
    server.cli("policies", "create", policy, str(doc))
    me = server.provision(unique("watcher"), policy=policy)
    w = paho(server, me, client_id=me.name, version=5)
    w.connect()
    assert w.subscribe("$aws/things/+/shadow/#", qos=1) == [1]

    other = unique("private")
    actor = shadow_client(paho, server, anydev, other)
    assert actor.request("update", {"state": {"desired": {"x": 1}}, "clientToken": "o"})[0] == "accepted"
    mine = ShadowDevice(actor.p, me.name).subscribe()
    assert mine.request("update", {"state": {"desired": {"y": 1}}, "clientToken": "m"})[0] == "accepted"
    got = [w.expect(), w.expect(), w.expect(), w.expect()]
    assert sorted(m.topic for m in got) == sorted(f"$aws/things/{me.name}/shadow/{s}" for s in
                                                  ("update", "update/accepted", "update/documents", "update/delta"))
    w.expect_none()


def test_iot_data_with_a_wrong_secret_is_refused(server, data):
    thing = unique("signed")
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":1}}}')
    bad = iot_data(server, secret="not-the-secret-" + "x" * 25)
    calls = [
        lambda: bad.get_thing_shadow(thingName=thing),
        lambda: bad.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":2}}}'),
        lambda: bad.delete_thing_shadow(thingName=thing),
        lambda: bad.list_named_shadows_for_thing(thingName=thing),
        lambda: bad.publish(topic="signed/x", payload=b"x", qos=1),
        lambda: bad.list_retained_messages(),
    ]
    for call in calls:
        with pytest.raises(ClientError) as ei:
            call()
        assert status_of(ei.value)[0] == 403, ei.value.response
    assert payload_of(data.get_thing_shadow(thingName=thing))["version"] == 1


# ---------------------------------------------------------------------------
# durability
# ---------------------------------------------------------------------------

def _start_on_fixed_port(make_server):
    for attempt in range(3):
        s = make_server("shadow-durable", mqtt_port=free_port())
        try:
            return s.start()
        except AssertionError:
            if attempt == 2 or "cannot listen" not in s.log_text():
                raise


def test_accepted_updates_survive_kill9(make_server, paho):
    server = _start_on_fixed_port(make_server)
    dev = server.provision(unique("durable"))
    thing = unique("durable-thing")
    d = shadow_client(paho, server, dev, thing)
    for i in range(1, 4):
        kind, acc = d.request("update", {"state": {"reported": {"n": i}}, "clientToken": f"m{i}"})
        assert (kind, acc["version"]) == ("accepted", i)
    named = ShadowDevice(d.p, thing, "cfg").subscribe()
    assert named.request("update", {"state": {"desired": {"k": "v"}}, "clientToken": "nm"})[0] == "accepted"
    gone = unique("gone")
    iot = iot_data(server)
    iot.update_thing_shadow(thingName=gone, payload=b'{"state":{"desired":{"a":1}}}')
    iot.update_thing_shadow(thingName=gone, payload=b'{"state":{"desired":{"a":2}}}')
    iot.delete_thing_shadow(thingName=gone)
    # The very last thing before the crash: an HTTPS update, answered 200.
    status, doc = https(server, dev, "POST", f"/things/{thing}/shadow", b'{"state":{"desired":{"n":9}}}')
    assert (status, doc["version"]) == (200, 4)
    d.p.stop()

    server.kill9()
    server.start()

    iot = iot_data(server)
    g = payload_of(iot.get_thing_shadow(thingName=thing))
    assert g["version"] == 4
    assert g["state"]["reported"] == {"n": 3} and g["state"]["desired"] == {"n": 9}
    assert g["state"]["delta"] == {"n": 9}
    assert payload_of(iot.get_thing_shadow(thingName=thing, shadowName="cfg"))["state"]["desired"] == {"k": "v"}
    assert iot.list_named_shadows_for_thing(thingName=thing)["results"] == ["cfg"]
    with pytest.raises(ClientError):
        iot.get_thing_shadow(thingName=gone)
    # The deleted shadow's version survived too.
    assert payload_of(iot.update_thing_shadow(thingName=gone, payload=b'{"state":{"desired":{"a":3}}}'))["version"] == 3
    # And the MQTT side works after the restart.
    d2 = shadow_client(paho, server, dev, thing)
    kind, acc = d2.request("update", {"state": {"reported": {"n": 9}}, "clientToken": "after"})
    assert (kind, acc["version"]) == ("accepted", 5)


# ---------------------------------------------------------------------------
# the rest of the data plane
# ---------------------------------------------------------------------------

def test_iot_data_publish_reaches_mqtt_subscribers(server, anydev, paho, data):
    topic = f"{unique('dp')}/cmd"
    sub = paho(server, anydev, version=5)
    sub.connect()
    sub.subscribe(topic, qos=1)
    # botocore base64-encodes the JSON of whatever it is given: a list here.
    data.publish(topic=topic, qos=1, payload=b'{"cmd":"reboot"}',
                 userProperties=[{"origin": "app"}, {"n": "1"}], contentType="application/json")
    m = sub.expect(topic)
    assert m.payload == b'{"cmd":"reboot"}'
    assert m.qos == 1
    assert m.retain is False
    assert getattr(m.properties, "UserProperty", None) == [("origin", "app"), ("n", "1")]
    assert getattr(m.properties, "ContentType", None) == "application/json"

    v3 = paho(server, anydev, version=4)
    v3.connect()
    v3.subscribe(topic, qos=0)
    data.publish(topic=topic, qos=0, payload=b"zero")
    assert v3.expect(topic).payload == b"zero"
    assert sub.expect(topic).payload == b"zero"


def test_iot_data_publish_user_properties_as_json_string(server, anydev, paho, data):
    topic = f"{unique('dp-up')}/x"
    sub = paho(server, anydev, version=5)
    sub.connect()
    sub.subscribe(topic, qos=1)
    data.publish(topic=topic, qos=1, payload=b"x", userProperties=json.dumps([{"deviceName": "alpha"}]))
    m = sub.expect(topic)
    assert getattr(m.properties, "UserProperty", None) == [("deviceName", "alpha")]


def test_iot_data_retained_messages(server, anydev, paho, data):
    base = unique("retained")
    data.publish(topic=f"{base}/a", qos=1, retain=True, payload=b"first")
    data.publish(topic=f"{base}/a", qos=1, retain=True, payload=b"second")
    data.publish(topic=f"{base}/b", qos=0, retain=True, payload=b"bee")
    r = data.get_retained_message(topic=f"{base}/a")
    assert (r["topic"], r["payload"], r["qos"]) == (f"{base}/a", b"second", 1)
    assert isinstance(r["lastModifiedTime"], int)
    listed = {t["topic"]: t for t in data.list_retained_messages()["retainedTopics"]}
    assert listed[f"{base}/a"]["payloadSize"] == len(b"second")
    assert listed[f"{base}/b"]["qos"] == 0
    # A new subscriber gets the retained message.
    sub = paho(server, anydev, version=5)
    sub.connect()
    sub.subscribe(f"{base}/a", qos=1)
    m = sub.expect(f"{base}/a")
    assert (m.payload, m.retain) == (b"second", True)
    # Clearing it (empty retained publish) removes it from both calls.
    data.publish(topic=f"{base}/a", qos=1, retain=True, payload=b"")
    with pytest.raises(ClientError) as ei:
        data.get_retained_message(topic=f"{base}/a")
    assert status_of(ei.value) == (404, "ResourceNotFoundException")
    assert f"{base}/a" not in {t["topic"] for t in data.list_retained_messages()["retainedTopics"]}


def test_iot_data_list_retained_messages_pages(server, data):
    base = unique("pages")
    for i in range(5):
        data.publish(topic=f"{base}/{i}", qos=0, retain=True, payload=b"x")
    r = data.list_retained_messages(maxResults=2)
    assert len(r["retainedTopics"]) == 2, len(r["retainedTopics"])
    seen = [t["topic"] for t in r["retainedTopics"]]
    while r.get("nextToken"):
        r = data.list_retained_messages(maxResults=2, nextToken=r["nextToken"])
        assert len(r["retainedTopics"]) <= 2
        seen += [t["topic"] for t in r["retainedTopics"]]
    assert {f"{base}/{i}" for i in range(5)} <= set(seen)
    assert len(seen) == len(set(seen))


def test_iot_data_publish_to_a_shadow_topic_is_a_shadow_request(server, anydev, paho, data):
    """As on AWS IoT, a data-plane Publish to `.../shadow/update` is a shadow
    update: the thing's subscribers get /accepted."""
    thing = unique("via-publish")
    d = shadow_client(paho, server, anydev, thing)
    data.publish(topic=f"$aws/things/{thing}/shadow/update", qos=1,
                 payload=json.dumps({"state": {"desired": {"p": 1}}, "clientToken": "pub"}).encode())
    acc = d.expect("update/accepted", token="pub")
    assert acc["version"] == 1
    assert payload_of(data.get_thing_shadow(thingName=thing))["state"]["desired"] == {"p": 1}
    with pytest.raises(ClientError) as ei:
        data.publish(topic=f"$aws/things/{thing}/shadow/update/accepted", qos=1, payload=b"{}")
    assert status_of(ei.value)[0] == 403


# ---------------------------------------------------------------------------
# randomized: the server against a small model of AWS's documented rules
# ---------------------------------------------------------------------------

def _model_merge(state: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            state.pop(k, None)
        elif isinstance(v, dict):
            if isinstance(state.get(k), dict):
                _model_merge(state[k], v)
                if not state[k]:
                    del state[k]
            else:
                p = _model_prune(v)
                if p:
                    state[k] = p
        else:
            state[k] = v


def _model_prune(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict):
            v = _model_prune(v)
            if not v:
                continue
        out[k] = v
    return out


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _model_delta(desired: dict, reported: dict | None) -> dict:
    out = {}
    for k, want in desired.items():
        have = (reported or {}).get(k, _MISSING)
        if have is _MISSING:
            out[k] = want
        elif isinstance(want, dict) and isinstance(have, dict):
            sub = _model_delta(want, have)
            if sub:
                out[k] = sub
        elif not _same(want, have):
            out[k] = want
    return out


_MISSING = object()


def _mirrors(state, meta) -> bool:
    if isinstance(state, dict):
        return isinstance(meta, dict) and state.keys() == meta.keys() and all(_mirrors(state[k], meta[k]) for k in state)
    if isinstance(state, list):
        return isinstance(meta, list) and len(state) == len(meta) and all(_mirrors(s, m) for s, m in zip(state, meta))
    return isinstance(meta, dict) and list(meta) == ["timestamp"] and isinstance(meta["timestamp"], int)


def test_random_updates_follow_the_documented_rules(server, anydev, data):
    import random

    rnd = random.Random(20261122)
    keys = ["a", "b", "c", "ключ", "k y"]

    def scalar():
        return rnd.choice([rnd.randint(-5, 5), rnd.choice([0.5, 2.0, -1.25]), rnd.choice(["x", "y", ""]),
                           rnd.choice([True, False])])

    def value(depth):
        r = rnd.random()
        if r < 0.15:
            return None
        if r < 0.3:
            return [scalar() for _ in range(rnd.randint(0, 3))]
        if r < 0.55 and depth < 3:
            return {rnd.choice(keys): value(depth + 1) for _ in range(rnd.randint(0, 3))}
        return scalar()

    thing = unique("random")
    model = {"desired": {}, "reported": {}}
    version = 0
    for step in range(120):
        r = rnd.random()
        if r < 0.03:
            state = None
        else:
            state = {}
            for section in ("desired", "reported"):
                if rnd.random() < 0.6:
                    state[section] = None if rnd.random() < 0.07 else \
                        {rnd.choice(keys): value(1) for _ in range(rnd.randint(1, 3))}
        body = json.dumps({"state": state})
        if step % 2:
            status, doc = https(server, anydev, "POST", f"/things/{thing}/shadow", body)
            assert status == 200, (step, body, doc)
        else:
            payload_of(data.update_thing_shadow(thingName=thing, payload=body))
        version += 1
        if state is None:
            model = {"desired": {}, "reported": {}}
        else:
            for section in ("desired", "reported"):
                if section in state:
                    if state[section] is None:
                        model[section] = {}
                    else:
                        _model_merge(model[section], state[section])
        g = payload_of(data.get_thing_shadow(thingName=thing))
        where = f"step {step}: after {body}"
        assert g["version"] == version, where
        st, md = g["state"], g["metadata"]
        for section in ("desired", "reported"):
            assert _same(st.get(section, {}), model[section]), (where, section, st.get(section), model[section])
            assert (section in st) == bool(model[section]), (where, section)
            assert _mirrors(st.get(section, {}), md.get(section, {})), (where, section, md)
        want_delta = _model_delta(model["desired"], model["reported"])
        assert _same(st.get("delta", {}), want_delta), (where, st.get("delta"), want_delta)
        assert ("delta" in st) == bool(want_delta), where
