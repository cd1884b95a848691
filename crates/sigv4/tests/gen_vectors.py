#!/usr/bin/env python3
"""Generate crates/sigv4/tests/vectors.json: requests signed by botocore.

Run once (the output is committed); needs only `pip install botocore`:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install botocore
    /tmp/venv/bin/python crates/sigv4/tests/gen_vectors.py

Real botocore clients (iot, iot-data, kms, s3) build and sign requests with a
frozen clock; a `before-send` hook captures each request exactly as it would
go on the wire and aborts it, so nothing touches the network. Presigned URLs
come from `generate_presigned_url`. Each vector records the request as the
server sees it (method, raw path, raw query, headers including Host, payload
hash) plus what the Rust signer needs to reproduce the signature.

Vector fields:
  name, service (signing name), region, uri ("single" for S3 else "double"),
  kind ("header" | "presign"), now (unix seconds the request was signed at),
  method, raw_path, raw_query, headers [[name, value], ...] as sent,
  payload_hash (x-amz-content-sha256 if sent, else sha256(body)),
  access_key_id,
  header kind:  authorization (as botocore sent it), compare_sign (whether
                our sign_headers must reproduce it: botocore signed
                x-amz-content-sha256, which our signer always does),
  presign kind: base_query (the query before the X-Amz-* parameters),
                expires.
"""

import calendar
import datetime
import hashlib
import json
import os
import sys
import uuid
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.config import Config

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")

_frozen = [datetime.datetime(2015, 8, 30, 12, 36, 0)]


def _now(remove_tzinfo=True):
    return _frozen[0]


botocore.auth.get_current_datetime = _now

# Deterministic amz-sdk-invocation-id headers, so regenerating is a no-op diff.
_uuid_counter = [0]


def _uuid4():
    _uuid_counter[0] += 1
    return uuid.UUID(int=_uuid_counter[0], version=4)


uuid.uuid4 = _uuid4


class Captured(Exception):
    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def _capture(request, **kwargs):
    raise Captured(request)


def _body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    pos = body.tell()
    data = body.read()
    body.seek(pos)
    return data if isinstance(data, bytes) else data.encode()


def _add_content_sha256(request, **kwargs):
    """before-sign hook: make botocore sign x-amz-content-sha256 like ours."""
    if "X-Amz-Content-SHA256" not in request.headers:
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(
            _body_bytes(request.body)
        ).hexdigest()


def _add_date_header(request, **kwargs):
    """before-sign hook: botocore then signs with `Date` instead of X-Amz-Date."""
    request.headers["Date"] = "placeholder"


def client(service, endpoint, region="us-east-1", hooks=(), **config):
    session = botocore.session.get_session()
    c = session.create_client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1}, **config),
    )
    c.meta.events.register("before-send", _capture)
    for event, fn in hooks:
        c.meta.events.register(event, fn)
    return c


def unix(dt):
    return calendar.timegm(dt.timetuple())


VECTORS = []


def header_vector(name, c, op, params, when, uri, compare_sign):
    _frozen[0] = when
    try:
        getattr(c, op)(**params)
    except Captured as e:
        req = e.request
    else:
        raise SystemExit(f"{name}: request was not captured")
    parts = urlsplit(req.url)
    headers = [["Host", botocore.auth._host_from_url(req.url)]]
    for k, v in req.headers.items():
        headers.append([k, v.decode() if isinstance(v, bytes) else v])
    sent_sha = req.headers.get("X-Amz-Content-SHA256")
    if isinstance(sent_sha, bytes):
        sent_sha = sent_sha.decode()
    payload_hash = sent_sha or hashlib.sha256(_body_bytes(req.body)).hexdigest()
    auth = req.headers["Authorization"]
    auth = auth.decode() if isinstance(auth, bytes) else auth
    VECTORS.append(
        {
            "name": name,
            "service": c.meta.service_model.signing_name,
            "region": c.meta.region_name,
            "uri": uri,
            "kind": "header",
            "now": unix(when),
            "method": req.method,
            "raw_path": parts.path,
            "raw_query": parts.query,
            "headers": headers,
            "payload_hash": payload_hash,
            "access_key_id": ACCESS_KEY,
            "authorization": auth,
            "compare_sign": compare_sign,
        }
    )


_presign_seen = []


def _remember_request(request, **kwargs):
    """before-sign hook for presigning: keep the request to read its headers."""
    _presign_seen.append(request)


def presign_vector(name, c, op, params, when, uri, expires, method="GET"):
    _frozen[0] = when
    _presign_seen.clear()
    url = c.generate_presigned_url(op, Params=params, ExpiresIn=expires, HttpMethod=method)
    parts = urlsplit(url)
    pieces = parts.query.split("&") if parts.query else []
    base = [p for p in pieces if not p.startswith("X-Amz-")]
    signed = next(p for p in pieces if p.startswith("X-Amz-SignedHeaders="))
    signed = signed.split("=", 1)[1].replace("%3B", ";").split(";")
    headers = [["host", botocore.auth._host_from_url(url)]]
    for k, v in _presign_seen[-1].headers.items():
        if k.lower() in signed and k.lower() != "host":
            headers.append([k, v.decode() if isinstance(v, bytes) else v])
    VECTORS.append(
        {
            "name": name,
            "service": c.meta.service_model.signing_name,
            "region": c.meta.region_name,
            "uri": uri,
            "kind": "presign",
            "now": unix(when),
            "method": method,
            "raw_path": parts.path,
            "raw_query": parts.query,
            "headers": headers,
            "payload_hash": hashlib.sha256(b"").hexdigest(),
            "access_key_id": ACCESS_KEY,
            "base_query": "&".join(base),
            "expires": expires,
        }
    )


T1 = datetime.datetime(2015, 8, 30, 12, 36, 0)
T2 = datetime.datetime(2024, 2, 29, 23, 59, 59)
T3 = datetime.datetime(2026, 1, 1, 0, 0, 0)

ODD = "a:b c/d%e+f~g&h=i"  # every awkward character in one path label
CERT_ARN = "arn:aws:iot:us-east-1:123456789012:cert/0123abcd"


def iot_cases(variant, hooks, compare_sign):
    c = client("iot", "http://localhost:8443", hooks=hooks)
    cases = [
        ("describe-thing-plain", "describe_thing", {"thingName": "thing-1"}, T1),
        ("describe-thing-colon", "describe_thing", {"thingName": "my:thing"}, T2),
        ("describe-thing-odd", "describe_thing", {"thingName": ODD}, T3),
        (
            "list-things-query",
            "list_things",
            {
                "attributeName": "color",
                "attributeValue": "blue green/+&=~*",
                "maxResults": 5,
                "nextToken": "abc==/+xyz",
            },
            T1,
        ),
        (
            "create-thing-json",
            "create_thing",
            {
                "thingName": "sensor:1",
                "attributePayload": {"attributes": {"room": "kitchen 2", "floor": "1"}},
            },
            T2,
        ),
        (
            "update-thing-patch",
            "update_thing",
            {"thingName": "sensor 1", "expectedVersion": 3, "removeThingType": True},
            T3,
        ),
        ("delete-thing-query", "delete_thing", {"thingName": "x/y", "expectedVersion": 7}, T1),
        ("create-keys-and-certificate", "create_keys_and_certificate", {"setAsActive": True}, T2),
        ("list-attached-policies-arn", "list_attached_policies", {"target": CERT_ARN}, T3),
        ("attach-policy", "attach_policy", {"policyName": "p:1", "target": CERT_ARN}, T1),
        ("describe-endpoint", "describe_endpoint", {"endpointType": "iot:Data-ATS"}, T2),
        (
            "get-policy-version",
            "get_policy_version",
            {"policyName": "pol~icy", "policyVersionId": "2"},
            T3,
        ),
    ]
    for name, op, params, when in cases:
        header_vector(f"iot-{name}-{variant}", c, op, params, when, "double", compare_sign)

    d = client("iot-data", "https://data.localhost", region="eu-west-1", hooks=hooks)
    data_cases = [
        (
            "publish",
            "publish",
            {"topic": "devices/dev 1/tele+metry", "qos": 1, "payload": b'{"t": 21.5}'},
            T1,
        ),
        ("publish-empty", "publish", {"topic": "$aws/things/t1/shadow/get"}, T2),
        ("get-thing-shadow", "get_thing_shadow", {"thingName": "t:1", "shadowName": "cfg v2"}, T3),
        (
            "update-thing-shadow",
            "update_thing_shadow",
            {"thingName": "t1", "payload": b'{"state":{"desired":{"on":true}}}'},
            T1,
        ),
    ]
    for name, op, params, when in data_cases:
        header_vector(f"iotdata-{name}-{variant}", d, op, params, when, "double", compare_sign)


def kms_cases(variant, hooks, compare_sign):
    c = client("kms", "http://127.0.0.1:9000", region="eu-central-1", hooks=hooks)
    cases = [
        ("encrypt", "encrypt", {"KeyId": "alias/my key", "Plaintext": b"hello \x00 world"}, T1),
        ("list-keys", "list_keys", {}, T2),
        ("describe-key", "describe_key", {"KeyId": "arn:aws:kms:eu-central-1:111122223333:key/1234"}, T3),
    ]
    for name, op, params, when in cases:
        header_vector(f"kms-{name}-{variant}", c, op, params, when, "double", compare_sign)


def s3_cases():
    path = {"addressing_style": "path"}
    for proto, endpoint in (("http", "http://localhost:9000"), ("https", "https://s3.localhost")):
        for checksum in ("when_required", "when_supported"):
            c = client(
                "s3",
                endpoint,
                s3=path,
                request_checksum_calculation=checksum,
                response_checksum_validation="when_required",
            )
            tag = f"{proto}-{checksum.replace('_', '-')}"
            cases = [
                ("get-object", "get_object", {"Bucket": "bkt", "Key": "dir/my file+x:y~z.txt"}, T1),
                ("get-object-unicode", "get_object", {"Bucket": "bkt", "Key": "ሴ/é (1).bin"}, T2),
                ("get-object-dotdot", "get_object", {"Bucket": "bkt", "Key": "a/../b//c/./d"}, T3),
                ("put-object", "put_object", {"Bucket": "bkt", "Key": "up load.txt", "Body": b"0123456789" * 10}, T1),
                (
                    "list-objects-v2",
                    "list_objects_v2",
                    {"Bucket": "bkt", "Prefix": "a b/c+d", "Delimiter": "/", "MaxKeys": 10},
                    T2,
                ),
                ("head-bucket", "head_bucket", {"Bucket": "bkt"}, T3),
            ]
            for name, op, params, when in cases:
                header_vector(f"s3-{name}-{tag}", c, op, params, when, "single", True)

    # payload_signing_enabled=False: x-amz-content-sha256: UNSIGNED-PAYLOAD.
    c = client(
        "s3",
        "https://s3.localhost",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
    )
    for name, op, params, when in [
        ("get-object", "get_object", {"Bucket": "bkt", "Key": "un signed.txt"}, T2),
        ("put-object", "put_object", {"Bucket": "bkt", "Key": "un signed.txt", "Body": b"data"}, T3),
    ]:
        header_vector(f"s3-{name}-unsigned-payload", c, op, params, when, "single", True)

    presign_hooks = (("before-sign", _remember_request),)
    c = client("s3", "https://s3.localhost", s3=path, signature_version="s3v4", hooks=presign_hooks)
    presign_vector("s3-presign-get", c, "get_object", {"Bucket": "bkt", "Key": "dir/my file+x.txt"}, T1, "single", 3600)
    presign_vector(
        "s3-presign-get-disposition",
        c,
        "get_object",
        {
            "Bucket": "bkt",
            "Key": "report.pdf",
            "ResponseContentDisposition": 'attachment; filename="my report.pdf"',
        },
        T2,
        "single",
        604800,
    )
    presign_vector("s3-presign-put", c, "put_object", {"Bucket": "bkt", "Key": "new/obj ect"}, T3, "single", 900, method="PUT")
    presign_vector(
        "s3-presign-put-content-type",
        c,
        "put_object",
        {"Bucket": "bkt", "Key": "typed.txt", "ContentType": "text/plain; charset=utf-8"},
        T2,
        "single",
        900,
        method="PUT",
    )
    presign_vector(
        "s3-presign-list",
        c,
        "list_objects_v2",
        {"Bucket": "bkt", "Prefix": "x/y z", "Delimiter": "/"},
        T1,
        "single",
        60,
    )
    v = client(
        "s3",
        "http://localhost:9000",
        region="eu-west-1",
        s3={"addressing_style": "virtual"},
        signature_version="s3v4",
        hooks=presign_hooks,
    )
    presign_vector("s3-presign-get-virtual-host", v, "get_object", {"Bucket": "bkt", "Key": "k"}, T2, "single", 120)

    i = client("iot", "https://localhost:8443", hooks=presign_hooks)
    presign_vector("iot-presign-describe-thing", i, "describe_thing", {"thingName": "my:thing"}, T3, "double", 300)
    presign_vector("iot-presign-list-things", i, "list_things", {"attributeValue": "a b+c"}, T1, "double", 300)


def main():
    iot_cases("natural", (), False)
    iot_cases("with-sha", (("before-sign", _add_content_sha256),), True)
    iot_cases("date-header", (("before-sign", _add_date_header),), False)
    kms_cases("natural", (), False)
    kms_cases("with-sha", (("before-sign", _add_content_sha256),), True)
    s3_cases()
    with open(OUT, "w") as f:
        json.dump(
            {
                "generator": "crates/sigv4/tests/gen_vectors.py",
                "botocore_version": botocore.__version__,
                "secret_access_key": SECRET_KEY,
                "vectors": VECTORS,
            },
            f,
            indent=1,
            ensure_ascii=False,
        )
        f.write("\n")
    print(f"wrote {len(VECTORS)} vectors to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":
        # botocore's User-Agent lists a set; pin its order for stable output.
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    main()
