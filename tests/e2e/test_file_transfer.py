"""Secure file transfer, the seed flow: paho devices with a fleet policy ask
the built-in issuer (MQTT topic `presigned-url/requests`) for pre-signed URLs,
upload and download with `requests`, and a topic rule on the object events
calls an HTTP function. Every refusal is checked for what must NOT happen:
no answer where the device may not receive, no object after a refused upload."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import unique
from e2elib import (QUIET, HttpRecorder, iot_client, iot_data_client, props, s3_client, s3_error,
                    wait_until)

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
REQUESTS = "presigned-url/requests"
ARN = "arn:aws:iot:us-east-1:000000000000"
THING = "${iot:Connection.Thing.ThingName}"
FLEET = "FleetFileTransferPolicy"

FLEET_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING}"},
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/{REQUESTS}"},
    {"Effect": "Allow", "Action": ["iot:Subscribe"], "Resource": f"{ARN}:topicfilter/devices/{THING}/*"},
    {"Effect": "Allow", "Action": ["iot:Receive"], "Resource": f"{ARN}:topic/devices/{THING}/*"},
    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::uploads/{THING}/*"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::firmware/*"},
    # Allowed by policy but never created: the issuer must say NoSuchBucket.
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::missing-bucket/*"},
]}


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture(scope="module")
def fleet(server, s3, tmp_path_factory):
    """The fleet policy, and the buckets `uploads` and `firmware`."""
    doc = tmp_path_factory.mktemp("fleet") / "fleet-policy.json"
    doc.write_text(json.dumps(FLEET_POLICY))
    server.cli("policies", "create", FLEET, str(doc))
    for b in ("uploads", "firmware"):
        s3.create_bucket(Bucket=b)
    return FLEET


@pytest.fixture
def make_device(server, fleet):
    return lambda prefix="dev": server.provision(unique(prefix), policy=fleet)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def keys_of(s3, bucket: str, prefix: str = "") -> list[str]:
    r = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in r.get("Contents", [])]


def with_query(url: str, **changes) -> str:
    u = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    q.update(changes)
    return urlunsplit((u.scheme, u.netloc, u.path, urlencode(q), ""))


class Requester:
    """A fleet device on paho asking the issuer for URLs, answers on
    devices/<thing>/urls."""

    def __init__(self, paho, server, dev, version: int = 5):
        self.thing = dev.name
        self.dev = dev
        self.c = paho(server, dev, client_id=dev.name, version=version)
        self.c.connect()
        self.reply = f"devices/{self.thing}/urls"
        codes = self.c.subscribe(self.reply, qos=1)
        assert all(c < 0x80 for c in codes), codes
        self.n = 0

    def send(self, req: dict, properties=None) -> dict:
        self.n += 1
        req = dict(req)
        req.setdefault("requestId", f"{self.thing}-{self.n}")
        rc = self.c.publish(REQUESTS, json.dumps(req).encode(), qos=1, properties=properties)
        assert rc == 0, f"request publish refused: {rc:#x}"
        return req

    def ask(self, **req) -> dict:
        req.setdefault("replyTo", self.reply)
        req = self.send(req)
        ans = json.loads(self.c.expect(req["replyTo"]).payload)
        assert ans.get("requestId") == req["requestId"], (req, ans)
        return ans

    def url(self, **req) -> dict:
        ans = self.ask(**req)
        assert "url" in ans and "error" not in ans, ans
        return ans

    def put(self, key: str, **kw) -> dict:
        return self.url(operation="putObject", bucket="uploads", key=f"{self.thing}/{key}", **kw)


def put(server, ans: dict, body, **kw) -> requests.Response:
    return requests.put(ans["url"], data=body, headers=ans.get("headers") or {}, verify=str(server.ca), timeout=20,
                        **kw)


def get(server, ans: dict, headers: dict | None = None, **kw) -> requests.Response:
    return requests.get(ans["url"], headers={**(ans.get("headers") or {}), **(headers or {})}, verify=str(server.ca),
                        timeout=20, **kw)


def refused(r: requests.Response, status: int, code: str | None = None, message: str | None = None):
    got_code, got_message = s3_error(r.content)
    assert r.status_code == status, (r.status_code, r.text)
    if code is not None:
        assert got_code == code, (r.status_code, r.text)
    if message is not None:
        assert message in (got_message or ""), r.text


def parse_time(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------
# (1) upload, (2) download
# ---------------------------------------------------------------------------

def test_upload_flow_with_rule_calling_http_function(server, s3, make_device, paho):
    iot = iot_client(server)
    hook = HttpRecorder()
    rule = unique("uploads_to_http").replace("-", "_")
    iot.create_topic_rule(ruleName=rule, topicRulePayload={
        "sql": "SELECT * FROM '$aws/events/s3/uploads/ObjectCreated/#'", "awsIotSqlVersion": "2016-03-23",
        "actions": [{"http": {"url": f"{hook.url}/scan-uploaded"}}]})
    try:
        dev = make_device("scanner")
        d = Requester(paho, server, dev, version=4)  # MQTT 3.1.1, as the seed's Raspberry Pi example
        key = f"{d.thing}/scan.bin"
        before = datetime.datetime.now(datetime.timezone.utc)
        ans = d.url(operation="putObject", bucket="uploads", key=key, size=4 * MiB,
                    contentType="application/octet-stream", requestId="scan-1")
        assert ans["method"] == "PUT" and ans["bucket"] == "uploads" and ans["key"] == key
        assert ans["url"].startswith(f"{server.endpoints['s3']}/uploads/{d.thing}/scan.bin?"), ans["url"]
        assert "X-Amz-Signature=" in ans["url"]
        assert ans["headers"] == {"Content-Type": "application/octet-stream"}
        assert ans["maxSize"] == 4 * MiB and ans["singleUse"] is True and ans["requestId"] == "scan-1"
        assert 1 <= ans["expiresIn"] <= 60
        expires = parse_time(ans["expiresAt"])
        assert before <= expires <= before + datetime.timedelta(seconds=ans["expiresIn"] + 5), ans["expiresAt"]

        body = os.urandom(3 * MiB + 17)
        r = put(server, ans, body)
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

        ev = hook.expect(lambda doc: doc["Records"][0]["s3"]["object"]["key"] == key)["Records"][0]
        assert ev["eventName"] == "ObjectCreated:Put" and ev["s3"]["bucket"]["name"] == "uploads"
        assert ev["s3"]["object"]["size"] == len(body)
        assert ev["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
        assert ev["thingport"]["thingName"] == d.thing
        assert ev["thingport"]["certificateId"] == dev.cert_id

        got = s3.get_object(Bucket="uploads", Key=key)
        assert sha(got["Body"].read()) == sha(body)
        assert got["ContentType"] == "application/octet-stream"
    finally:
        iot.delete_topic_rule(ruleName=rule)
        hook.close()


def test_download_flow(server, s3, make_device, paho):
    fw = os.urandom(MiB + 5)
    fw_key = f"{unique('fw')}.bin"
    s3.put_object(Bucket="firmware", Key=fw_key, Body=fw, ContentType="application/x-firmware")
    d = Requester(paho, server, make_device("updater"))
    ans = d.url(operation="getObject", bucket="firmware", key=fw_key)
    assert ans["method"] == "GET" and ans["key"] == fw_key and ans["singleUse"] is True
    r = get(server, ans)
    assert r.status_code == 200, r.text
    assert sha(r.content) == sha(fw) and r.headers["Content-Type"] == "application/x-firmware"
    # Single use.
    refused(get(server, ans), 403, "AccessDenied")
    # A download URL uploads nothing.
    r = requests.put(ans["url"], data=b"evil", verify=str(server.ca), timeout=10)
    assert r.status_code == 403, r.text
    assert sha(s3.get_object(Bucket="firmware", Key=fw_key)["Body"].read()) == sha(fw)

    # Several downloads when asked for ("singleUse": false), with ranges.
    ans = d.url(operation="getObject", bucket="firmware", key=fw_key, singleUse=False)
    assert ans["singleUse"] is False
    assert sha(get(server, ans).content) == sha(fw)
    r = get(server, ans, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == fw[:100]


# ---------------------------------------------------------------------------
# (3) refusals
# ---------------------------------------------------------------------------

def test_issuer_refusals(server, s3, make_device, paho):
    d = Requester(paho, server, make_device("asker"))
    other = unique("someone-else")
    cases = [
        (dict(operation="putObject", bucket="uploads", key=f"{other}/x"), "AccessDenied"),
        (dict(operation="getObject", bucket="uploads", key=f"{d.thing}/x"), "AccessDenied"),
        (dict(operation="putObject", bucket="firmware", key="fw-evil.bin"), "AccessDenied"),
        (dict(operation="deleteObject", bucket="uploads", key=f"{d.thing}/x"), "InvalidRequest"),
        (dict(operation="putObject", bucket="Bad_Bucket", key=f"{d.thing}/x"), "InvalidBucketName"),
        (dict(operation="putObject", bucket="uploads", key=f"{d.thing}/../{other}/x"), "InvalidKey"),
        (dict(operation="putObject", bucket="uploads", key=f"{d.thing}/\u202egnp.exe"), "InvalidKey"),
        (dict(operation="getObject", bucket="firmware", key="no-such-firmware.bin"), "NoSuchKey"),
        (dict(operation="getObject", bucket="missing-bucket", key="x"), "NoSuchBucket"),
        (dict(operation="putObject", bucket="uploads", key=f"{d.thing}/huge", size=2 * 1024 ** 3), "EntityTooLarge"),
    ]
    for req, code in cases:
        ans = d.ask(**req)
        assert "url" not in ans, (req, ans)
        assert ans["error"]["code"] == code and ans["error"]["message"], (req, ans)
        assert ans["bucket"] == req["bucket"] and ans["key"] == req["key"], (req, ans)
    assert keys_of(s3, "uploads", f"{other}/") == []
    assert keys_of(s3, "uploads", f"{d.thing}/") == []
    assert "fw-evil.bin" not in keys_of(s3, "firmware")


def test_no_answer_where_the_device_may_not_receive(server, s3, make_device, paho):
    asker = Requester(paho, server, make_device("sneaky"))
    victim = Requester(paho, server, make_device("victim"))
    wdev = server.provision(unique("watcher"))  # allow-all
    watcher = paho(server, wdev)
    watcher.connect()
    dollar = f"$aws/things/{wdev.name}/answers"  # a `$` topic a client may subscribe to
    assert all(c < 0x80 for c in watcher.subscribe(dollar, qos=1))

    asker.send({"operation": "putObject", "bucket": "uploads", "key": f"{asker.thing}/a", "replyTo": victim.reply})
    asker.send({"operation": "putObject", "bucket": "uploads", "key": f"{asker.thing}/b", "replyTo": dollar})
    asker.send({"operation": "putObject", "bucket": "uploads", "key": f"{asker.thing}/c",
                "replyTo": f"elsewhere/{asker.thing}"})
    # Not even a refusal, anywhere.
    victim.c.expect_none(1.5)
    watcher.expect_none(0.1)
    asker.c.expect_none(0.1)
    # The issuer still answers it where it may receive.
    assert "url" in asker.put("d")
    assert keys_of(s3, "uploads", f"{asker.thing}/") == []


def test_url_enforcement(server, s3, make_device, paho):
    d = Requester(paho, server, make_device("enforced"))
    ca = str(server.ca)
    # Expiry first: the wait overlaps the other checks.
    expiring = d.put("expired.bin", expiresIn=1)
    issued = time.monotonic()
    assert expiring["expiresIn"] == 1
    # The lifetime is capped by max_url_lifetime_secs (60).
    assert d.put("capped.bin", expiresIn=86400)["expiresIn"] == 60

    # Tampered signature: refused, and the genuine URL still works once.
    ans = d.put("tampered.bin")
    sig = parse_qs(urlsplit(ans["url"]).query)["X-Amz-Signature"][0]
    bad = dict(ans, url=with_query(ans["url"], **{"X-Amz-Signature": sig[:-1] + ("0" if sig[-1] != "0" else "1")}))
    refused(put(server, bad, b"forged"), 403, "SignatureDoesNotMatch")
    assert keys_of(s3, "uploads", f"{d.thing}/tampered") == []
    # Another key with the URL's signature.
    moved = dict(ans, url=ans["url"].replace("/tampered.bin?", "/elsewhere.bin?"))
    assert put(server, moved, b"moved").status_code == 403
    assert keys_of(s3, "uploads", f"{d.thing}/elsewhere") == []
    assert put(server, ans, b"genuine").status_code == 200

    # Wrong method: GET (and DELETE) on a PUT URL.
    ans = d.put("method.bin")
    assert get(server, ans).status_code == 403
    assert requests.delete(ans["url"], verify=ca, timeout=10).status_code == 403
    assert keys_of(s3, "uploads", f"{d.thing}/method") == []

    # Over the requested size: 400 EntityTooLarge, no object; within it, fine.
    ans = d.put("small.bin", size=1000)
    assert ans["maxSize"] == 1000
    refused(put(server, ans, os.urandom(5000)), 400, "EntityTooLarge")
    assert keys_of(s3, "uploads", f"{d.thing}/small") == []
    # Streamed without a Content-Length (chunked), over the limit: refused too.
    try:
        r = put(server, ans, (os.urandom(1000) for _ in range(5)))
        assert (r.status_code, s3_error(r.content)[0]) in ((400, "EntityTooLarge"), (411, "MissingContentLength")), \
            (r.status_code, r.text)
    except requests.exceptions.ConnectionError:
        pass  # the server may stop reading and close; what matters is below
    assert keys_of(s3, "uploads", f"{d.thing}/small") == []

    # The content type is part of the signature: another one is refused.
    ans = d.put("photo.jpg", contentType="image/jpeg")
    assert ans["headers"] == {"Content-Type": "image/jpeg"}
    refused(put(server, dict(ans, headers={"Content-Type": "text/html"}), b"<script>"), 403, "SignatureDoesNotMatch")
    assert keys_of(s3, "uploads", f"{d.thing}/photo") == []

    # Two uploads at once with one single-use URL: exactly one wins.
    ans = d.put("race.bin")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda b: (put(server, ans, b).status_code, b), [b"A" * 4000, b"B" * 4000]))
    assert sorted(st for st, _ in results) == [200, 403], results
    winner = next(b for st, b in results if st == 200)
    assert s3.get_object(Bucket="uploads", Key=f"{d.thing}/race.bin")["Body"].read() == winner

    # Single use: the second PUT is refused and changes nothing.
    ans = d.put("once.bin")
    assert ans["maxSize"] == 1024 ** 3  # [objects] max_upload_bytes when the request names no size
    first = os.urandom(2000)
    assert put(server, ans, first).status_code == 200
    refused(put(server, ans, b"second"), 403, "AccessDenied")
    assert s3.get_object(Bucket="uploads", Key=f"{d.thing}/once.bin")["Body"].read() == first

    left = 2.5 - (time.monotonic() - issued)
    if left > 0:
        time.sleep(left)
    refused(put(server, expiring, b"late"), 403, "AccessDenied", "Request has expired")
    assert keys_of(s3, "uploads", f"{d.thing}/expired") == []
    assert sorted(keys_of(s3, "uploads", f"{d.thing}/")) == [f"{d.thing}/once.bin", f"{d.thing}/race.bin",
                                                              f"{d.thing}/tampered.bin"]


def test_refused_large_upload_gets_an_answer(server, s3, make_device, paho):
    """A device streaming a multi-megabyte file to a URL that is refused
    (here: already used) must get the 403, not a reset connection."""
    d = Requester(paho, server, make_device("big-retry"))
    ans = d.put("big.bin")
    assert put(server, ans, b"first").status_code == 200
    try:
        r = put(server, ans, os.urandom(3 * MiB))
    except requests.exceptions.ConnectionError as e:
        pytest.fail(f"the refused 3 MiB upload ended with a connection error instead of a 403 answer: {e}")
    refused(r, 403, "AccessDenied")
    assert s3.get_object(Bucket="uploads", Key=f"{d.thing}/big.bin")["Body"].read() == b"first"


def test_urls_of_revoked_or_deactivated_certificates_fail(server, s3, make_device, paho):
    fw_key = f"{unique('fw')}.bin"
    s3.put_object(Bucket="firmware", Key=fw_key, Body=b"firmware")

    r_dev = Requester(paho, server, make_device("to-revoke"))
    up = r_dev.put("after-revoke.bin")
    down = r_dev.url(operation="getObject", bucket="firmware", key=fw_key)
    server.cli("certs", "revoke", r_dev.dev.cert_id)
    refused(put(server, up, b"after revoke"), 403, "AccessDenied")
    refused(get(server, down), 403, "AccessDenied")
    assert keys_of(s3, "uploads", f"{r_dev.thing}/") == []

    d_dev = Requester(paho, server, make_device("to-deactivate"))
    up = d_dev.put("after-deactivate.bin")
    down = d_dev.url(operation="getObject", bucket="firmware", key=fw_key, singleUse=False)
    assert get(server, down).content == b"firmware"
    server.cli("certs", "deactivate", d_dev.dev.cert_id)
    refused(put(server, up, b"after deactivate"), 403, "AccessDenied")
    refused(get(server, down), 403, "AccessDenied")
    assert keys_of(s3, "uploads", f"{d_dev.thing}/") == []


# ---------------------------------------------------------------------------
# (4) MQTT 5 request/response, (5) shadow delivery
# ---------------------------------------------------------------------------

def test_mqtt5_response_topic_and_correlation_data(server, s3, make_device, paho):
    d = Requester(paho, server, make_device("v5"))
    other = unique("other")
    corr = b"\x00corr-42\xff"
    d.send({"operation": "putObject", "bucket": "uploads", "key": f"{d.thing}/v5.bin", "requestId": "v5-1"},
           properties=props(ResponseTopic=d.reply, CorrelationData=corr))
    m = d.c.expect(d.reply)
    assert m.properties.CorrelationData == corr
    assert getattr(m.properties, "ContentType", "application/json") == "application/json"
    ans = json.loads(m.payload)
    assert ans["requestId"] == "v5-1" and ans["method"] == "PUT"
    assert put(server, ans, b"via response topic").status_code == 200
    assert s3.get_object(Bucket="uploads", Key=f"{d.thing}/v5.bin")["Body"].read() == b"via response topic"

    # A refusal goes back the same way, with the correlation data.
    d.send({"operation": "putObject", "bucket": "uploads", "key": f"{other}/v5.bin"},
           properties=props(ResponseTopic=d.reply, CorrelationData=b"corr-2"))
    m = d.c.expect(d.reply)
    assert m.properties.CorrelationData == b"corr-2"
    assert json.loads(m.payload)["error"]["code"] == "AccessDenied"

    # A response topic it may not receive on: silence.
    d.send({"operation": "putObject", "bucket": "uploads", "key": f"{d.thing}/v5b.bin"},
           properties=props(ResponseTopic=f"devices/{other}/urls", CorrelationData=b"corr-3"))
    d.c.expect_none(1.0)


def test_shadow_delivery(server, s3, make_device, paho):
    data = iot_data_client(server)
    fw = os.urandom(2000)
    fw_key = f"{unique('fw')}.bin"
    s3.put_object(Bucket="firmware", Key=fw_key, Body=fw)
    d = Requester(paho, server, make_device("shadowed"))

    def desired(shadow_name=None):
        kw = {"shadowName": shadow_name} if shadow_name else {}
        try:
            doc = json.loads(data.get_thing_shadow(thingName=d.thing, **kw)["payload"].read())
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise
        return doc.get("state", {}).get("desired")

    d.send({"operation": "getObject", "bucket": "firmware", "key": fw_key, "deliverTo": "shadow",
            "requestId": "sh-1"})
    want = wait_until(lambda: (desired() or {}).get("presignedUrl"), what="desired.presignedUrl in the shadow")
    assert want["method"] == "GET" and want["key"] == fw_key and want["requestId"] == "sh-1", want
    r = get(server, want)
    assert r.status_code == 200 and sha(r.content) == sha(fw)
    # Nothing was published on the device's topics (no replyTo).
    d.c.expect_none(QUIET)

    # A named shadow and another field.
    d.send({"operation": "putObject", "bucket": "uploads", "key": f"{d.thing}/log.txt", "deliverTo": "shadow",
            "shadowName": "files", "field": "logUpload", "contentType": "text/plain"})
    want = wait_until(lambda: (desired("files") or {}).get("logUpload"), what="desired.logUpload in shadow files")
    assert want["method"] == "PUT" and want["headers"] == {"Content-Type": "text/plain"}
    assert put(server, want, b"log line\n").status_code == 200
    assert s3.get_object(Bucket="uploads", Key=f"{d.thing}/log.txt")["Body"].read() == b"log line\n"
    # The classic shadow still has the first URL only.
    assert set(desired()) == {"presignedUrl"}

    # A refused request writes nothing into the shadow.
    d.send({"operation": "getObject", "bucket": "firmware", "key": "missing.bin", "deliverTo": "shadow",
            "shadowName": "refused"})
    time.sleep(QUIET)
    assert desired("refused") is None
