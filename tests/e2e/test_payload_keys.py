"""Payload keys end to end: paho devices with a fleet policy ask the built-in
data-key issuer (MQTT topic `payload-keys/requests`) for a data key wrapped
for their certificate key, unwrap it with the Python device library
(examples/python/payload_keys.py), encrypt and sign a file into an envelope,
upload it with a pre-signed URL; the cloud side opens it with
`/thingport/payloads/decrypt` and with boto3 KMS `Decrypt` + the Python
library. Also: the `thingport device` CLI, the KMS-compatible API driven by
boto3, refusals (each checked for what must NOT happen: no answer, no key
recorded, no plaintext), data-key tracking and the audit log, device keys
made outside `provision` (RSA-4096; Ed25519 and P-521 refused), and a
restart with the same data directory."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import struct
import sys
import time

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import unique
from e2elib import (REPO_ROOT, admin_credentials, api_json, api_request, kms_client, props, s3_client)

sys.path.insert(0, str(REPO_ROOT / "examples" / "python"))
import payload_keys as pk  # noqa: E402  (the device-side reference implementation)

pytestmark = pytest.mark.timeout(60)

KiB, MiB = 1024, 1024 * 1024
KEY_REQUESTS = "payload-keys/requests"
URL_REQUESTS = "presigned-url/requests"
DEFAULT_ALIAS = "alias/thingport-devices"
ARN = "arn:aws:iot:us-east-1:000000000000"
KMS_ARN = "arn:aws:kms:us-east-1:000000000000"
THING = "${iot:Connection.Thing.ThingName}"
FLEET = "PayloadKeysFleetPolicy"
NO_KEYS = "PayloadKeysNoKeyPolicy"

ALGORITHMS = {"rsa": "RSAES_OAEP_SHA_256", "ec": "ECIES_P256_HKDF_SHA256_AES_256_GCM",
              "ec-p384": "ECIES_P384_HKDF_SHA256_AES_256_GCM"}
WRAPPED_LEN = {"rsa": 256, "ec": 127, "ec-p384": 159}  # RSA-2048 modulus; ECIES v1 for a 32-byte key


def fleet_statements(with_keys: bool = True, key_resource: str = f"{KMS_ARN}:key/*") -> list[dict]:
    st = [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING}"},
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": [f"{ARN}:topic/{KEY_REQUESTS}", f"{ARN}:topic/{URL_REQUESTS}"]},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/devices/{THING}/*"},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/devices/{THING}/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::uploads/{THING}/*"},
    ]
    if with_keys:
        st.append({"Effect": "Allow", "Action": "thingport:GenerateDataKey", "Resource": key_resource})
    return st


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------

def create_policy(server, tmp_path_factory, name: str, statements: list[dict]) -> str:
    doc = tmp_path_factory.mktemp("policy") / f"{name}.json"
    doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    server.cli("policies", "create", name, str(doc))
    return name


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture(scope="module")
def kms(server):
    return kms_client(server)


@pytest.fixture(scope="module")
def fleet(server, s3, tmp_path_factory):
    """The fleet policy (data keys from any master key, uploads under the
    thing's prefix), a policy without thingport:GenerateDataKey, and the
    bucket `uploads`."""
    create_policy(server, tmp_path_factory, FLEET, fleet_statements())
    create_policy(server, tmp_path_factory, NO_KEYS, fleet_statements(with_keys=False))
    s3.create_bucket(Bucket="uploads")
    return FLEET


@pytest.fixture(scope="module")
def default_key(kms):
    """KeyMetadata of the master key behind alias/thingport-devices."""
    return kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]


@pytest.fixture
def make_device(server, fleet):
    return lambda prefix="dev", key_type="ec", policy=FLEET: server.provision(unique(prefix), key_type=key_type,
                                                                              policy=policy)


class KeyDevice:
    """A fleet device on paho (client id = thing name) asking the data-key
    issuer and the URL issuer; answers on devices/<thing>/keys and
    devices/<thing>/urls."""

    def __init__(self, paho, server, dev, version: int = 5):
        self.server, self.dev, self.thing = server, dev, dev.name
        self.c = paho(server, dev, client_id=dev.name, version=version)
        self.c.connect()
        self.keys_topic = f"devices/{self.thing}/keys"
        self.urls_topic = f"devices/{self.thing}/urls"
        codes = self.c.subscribe([(self.keys_topic, 1), (self.urls_topic, 1)])
        assert all(c < 0x80 for c in codes), codes
        self.n = 0
        self.key_pem = dev.key.read_bytes()
        self.cert_pem = dev.cert.read_bytes()

    def send(self, req: dict, topic: str = KEY_REQUESTS, properties=None) -> dict:
        self.n += 1
        req = dict(req)
        req.setdefault("requestId", f"{self.thing}-{self.n}")
        rc = self.c.publish(topic, json.dumps(req).encode(), qos=1, properties=properties)
        assert rc == 0, f"request publish refused: {rc:#x}"
        return req

    def ask(self, **req) -> dict:
        """Any answer of the data-key issuer (a key or a refusal)."""
        req.setdefault("replyTo", self.keys_topic)
        req = self.send(req)
        ans = json.loads(self.c.expect(req["replyTo"]).payload)
        assert ans.get("requestId") == req["requestId"], (req, ans)
        return ans

    def key(self, **req) -> dict:
        ans = self.ask(**req)
        assert "error" not in ans and "wrappedKey" in ans, ans
        return ans

    def refused(self, code: str, **req) -> dict:
        ans = self.ask(**req)
        assert set(ans) == {"error", "requestId"}, ans
        assert ans["error"]["code"] == code and ans["error"]["message"], ans
        return ans

    def data_key(self, ans: dict) -> bytes:
        return pk.unwrap(self.key_pem, base64.b64decode(ans["wrappedKey"]))

    def put_url(self, key: str) -> dict:
        req = self.send({"operation": "putObject", "bucket": "uploads", "key": f"{self.thing}/{key}",
                         "replyTo": self.urls_topic}, topic=URL_REQUESTS)
        ans = json.loads(self.c.expect(self.urls_topic).payload)
        assert ans.get("requestId") == req["requestId"] and "url" in ans, ans
        return ans


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def object_aad(thing: str, object_key: str) -> bytes:
    """The AAD binding thing and object, as `thingport device encrypt --thing --object` writes it."""
    return canonical({"object": object_key, "thing": thing})


def b64(s: str) -> bytes:
    return base64.b64decode(s)


def kms_code(fn, **kw) -> str:
    with pytest.raises(ClientError) as ei:
        fn(**kw)
    return ei.value.response["Error"]["Code"]


def kms_raw(server, op: str, body: dict) -> tuple[int, str | None]:
    """A KMS call botocore would refuse to send (its own parameter validation):
    (HTTP status, error code)."""
    status, headers, data = api_request(server, "POST", "/", json.dumps(body).encode(),
                                        headers={"x-amz-target": f"TrentService.{op}",
                                                 "content-type": "application/x-amz-json-1.1"})
    return status, api_error(status, headers, data)


def blob_version(blob: bytes) -> tuple[str, int]:
    """(key id, version) in clear at the start of a ciphertext blob."""
    assert blob[:4] == b"TPK\x01", blob[:8]
    n = blob[4]
    return blob[5:5 + n].decode(), struct.unpack(">I", blob[5 + n:9 + n])[0]


def flip(b: bytes, i: int) -> bytes:
    """b with bit 0 of byte i flipped."""
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1:]


def swap_records(envelope: bytes, header_len: int, record_len: int) -> bytes:
    """Records 0 and 1 (both record_len bytes long) swapped."""
    a = envelope[header_len:header_len + record_len]
    b = envelope[header_len + record_len:header_len + 2 * record_len]
    return envelope[:header_len] + b + a + envelope[header_len + 2 * record_len:]


def decrypt_envelope(server, envelope: bytes) -> tuple[int, dict, bytes]:
    return api_request(server, "POST", "/thingport/payloads/decrypt", envelope,
                       headers={"content-type": "application/octet-stream"})


def api_error(status: int, headers: dict, body: bytes) -> str | None:
    """The error code of a management API error answer (body `__type` / `code`, or x-amzn-errortype)."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    code = (doc.get("__type") or doc.get("code") or headers.get("x-amzn-errortype") or "") if isinstance(doc, dict) \
        else ""
    return code.rsplit("#", 1)[-1].split(":", 1)[0] or None


def data_keys(server, thing: str) -> dict:
    listed = api_json(server, "GET", "/thingport/data-keys", params={"thingName": thing})["dataKeys"]
    return {k["id"]: k for k in listed}


def audit(server, key_id: str | None = None) -> list[dict]:
    return api_json(server, "GET", "/thingport/key-audit", params={"keyId": key_id} if key_id else None)["entries"]


def parse_time(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------
# (1) device → encrypted, signed upload → cloud decrypts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("key_type", ["rsa", "ec", "ec-p384"])
def test_encrypted_upload_end_to_end(server, s3, kms, default_key, make_device, paho, key_type):
    dev = make_device(f"cam-{key_type}", key_type=key_type)
    d = KeyDevice(paho, server, dev)
    before = datetime.datetime.now(datetime.timezone.utc)
    ans = d.key(requestId=f"key-{key_type}")

    # The answer.
    assert ans["requestId"] == f"key-{key_type}"
    assert ans["keyId"].startswith("dk-"), ans
    assert ans["algorithm"] == ALGORITHMS[key_type], ans
    assert ans["masterKeyId"] == default_key["Arn"], ans
    assert ans["encryptionContext"] == {"thingport:dataKeyId": ans["keyId"], "thingport:thingName": d.thing}, ans
    assert parse_time(ans["expiresAt"]) > before + datetime.timedelta(minutes=5), ans["expiresAt"]
    wrapped = b64(ans["wrappedKey"])
    assert len(wrapped) == WRAPPED_LEN[key_type], len(wrapped)
    assert blob_version(b64(ans["ciphertextBlob"]))[0] == default_key["KeyId"]

    # The device: unwrap, encrypt and sign a file of about 1 MiB (the
    # envelope must stay within the management API's 1 MiB body limit for
    # /thingport/payloads/decrypt below), upload it with a pre-signed URL.
    data_key = d.data_key(ans)
    assert len(data_key) == 32
    plaintext = os.urandom(MiB - 4 * KiB)
    name = f"clip-{key_type}.tpe"
    object_key = f"uploads/{d.thing}/{name}"
    aad = object_aad(d.thing, object_key)
    envelope = pk.encrypt(data_key, ans["keyId"], aad, plaintext, kms_blob=b64(ans["ciphertextBlob"]),
                          sign_with_pem=d.key_pem)
    assert len(envelope) <= MiB, len(envelope)
    url = d.put_url(name)
    r = requests.put(url["url"], data=envelope, headers=url.get("headers") or {}, verify=str(server.ca), timeout=20)
    assert r.status_code == 200, r.text

    # The cloud: download with boto3 ...
    stored = s3.get_object(Bucket="uploads", Key=f"{d.thing}/{name}")["Body"].read()
    assert stored == envelope

    # ... and decrypt the whole envelope on the server (signature checked
    # against the device's certificate) ...
    status, headers, body = decrypt_envelope(server, stored)
    assert status == 200, (status, body[:300])
    assert hashlib.sha256(body).digest() == hashlib.sha256(plaintext).digest()
    assert headers["x-thingport-data-key-id"] == ans["keyId"]
    assert headers["x-thingport-thing-name"] == d.thing
    assert headers["x-thingport-signature-verified"] == "true"
    if "x-thingport-aad" in headers:  # not documented, but if sent it must be the envelope's AAD
        assert b64(headers["x-thingport-aad"]) == aad

    # ... or get the data key with KMS Decrypt and open it with the Python library.
    got = kms.decrypt(CiphertextBlob=b64(ans["ciphertextBlob"]), EncryptionContext=ans["encryptionContext"])
    assert got["Plaintext"] == data_key
    assert got["KeyId"] == default_key["Arn"]
    header, opened, signed = pk.decrypt(got["Plaintext"], stored, signer_cert_pem=d.cert_pem)
    assert opened == plaintext and signed is True
    assert header["key_id"] == ans["keyId"] and header["aad"] == aad
    assert header["kms_blob"] == b64(ans["ciphertextBlob"])

    # An unsigned envelope decrypts too, reported as not verified.
    small = os.urandom(3000)
    status, headers, body = decrypt_envelope(server, pk.encrypt(data_key, ans["keyId"], aad, small,
                                                                kms_blob=b64(ans["ciphertextBlob"])))
    assert (status, body) == (200, small)
    assert headers["x-thingport-signature-verified"] == "false"


def test_mqtt5_response_topic_and_correlation_data(server, kms, make_device, paho):
    d = KeyDevice(paho, server, make_device("v5"))
    corr = b"\x00corr-7\xff"
    d.send({"requestId": "v5-1"}, properties=props(ResponseTopic=d.keys_topic, CorrelationData=corr))
    m = d.c.expect(d.keys_topic)
    assert m.properties.CorrelationData == corr
    assert getattr(m.properties, "ContentType", None) == "application/json"
    ans = json.loads(m.payload)
    assert ans["requestId"] == "v5-1" and ans["keyId"].startswith("dk-"), ans
    got = kms.decrypt(CiphertextBlob=b64(ans["ciphertextBlob"]), EncryptionContext=ans["encryptionContext"])
    assert got["Plaintext"] == d.data_key(ans)

    # A refusal goes back the same way.
    d.send({"certificateId": "0" * 64}, properties=props(ResponseTopic=d.keys_topic, CorrelationData=b"c2"))
    m = d.c.expect(d.keys_topic)
    assert m.properties.CorrelationData == b"c2"
    assert json.loads(m.payload)["error"]["code"] == "AccessDenied"


# ---------------------------------------------------------------------------
# (2) the CLI: thingport device unwrap / encrypt / decrypt
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_cli_round_trip(server, make_device, paho, tmp_path, key_type):
    dev = make_device(f"cli-{key_type}", key_type=key_type)
    d = KeyDevice(paho, server, dev)
    ans = d.key()
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(ans))
    data_key = d.data_key(ans)

    # unwrap prints the data key the Python library unwraps.
    r = server.cli("device", "unwrap", "--answer", str(answer), "--key", str(dev.key))
    assert b64(r.stdout.strip()) == data_key

    # CLI encrypt --sign → Python decrypt (and the server's decrypt route).
    plaintext = os.urandom(200 * KiB + 123)
    src, enc = tmp_path / "in.bin", tmp_path / "out.tpe"
    src.write_bytes(plaintext)
    object_key = f"uploads/{d.thing}/cli.tpe"
    server.cli("device", "encrypt", "--answer", str(answer), "--key", str(dev.key), "--thing", d.thing,
               "--object", object_key, "--sign", str(src), str(enc))
    envelope = enc.read_bytes()
    header, opened, signed = pk.decrypt(data_key, envelope, signer_cert_pem=d.cert_pem)
    assert opened == plaintext and signed is True
    assert header["key_id"] == ans["keyId"]
    assert header["aad"] == object_aad(d.thing, object_key)
    assert header["kms_blob"] == b64(ans["ciphertextBlob"])
    status, headers, body = decrypt_envelope(server, envelope)
    assert (status, headers["x-thingport-signature-verified"]) == (200, "true"), body[:300]
    assert body == plaintext
    # The signature is the device's: another device's certificate does not verify it.
    other = make_device(f"cli-other-{key_type}", key_type=key_type)
    with pytest.raises(Exception):
        pk.decrypt(data_key, envelope, signer_cert_pem=other.cert.read_bytes())

    # Python encrypt (signed) → CLI decrypt --signer-cert.
    plaintext2 = os.urandom(70 * KiB)
    enc2, out2 = tmp_path / "py.tpe", tmp_path / "py.out"
    enc2.write_bytes(pk.encrypt(data_key, ans["keyId"], object_aad(d.thing, "x"), plaintext2,
                                kms_blob=b64(ans["ciphertextBlob"]), sign_with_pem=d.key_pem))
    r = server.cli("device", "decrypt", "--answer", str(answer), "--key", str(dev.key), "--signer-cert",
                   str(dev.cert), str(enc2), str(out2))
    assert out2.read_bytes() == plaintext2
    assert "signature verified" in r.stderr
    # Refused by the CLI: a signed envelope without --signer-cert, the wrong
    # signer, a flipped byte — and no output file is left behind.
    for extra, env in [([], enc2.read_bytes()),
                       (["--signer-cert", str(other.cert)], enc2.read_bytes()),
                       (["--signer-cert", str(dev.cert)], flip(enc2.read_bytes(), len(enc2.read_bytes()) // 2))]:
        bad, out3 = tmp_path / "bad.tpe", tmp_path / "bad.out"
        bad.write_bytes(env)
        r = server.cli("device", "decrypt", "--answer", str(answer), "--key", str(dev.key), *extra, str(bad),
                       str(out3), check=False)
        assert r.returncode != 0, (extra, r.stdout, r.stderr)
        assert not out3.exists(), extra

    # Unsigned, from stdin-less files: CLI encrypt without --sign → CLI decrypt without --signer-cert.
    enc4, out4 = tmp_path / "u.tpe", tmp_path / "u.out"
    server.cli("device", "encrypt", "--answer", str(answer), "--key", str(dev.key), str(src), str(enc4))
    server.cli("device", "decrypt", "--answer", str(answer), "--key", str(dev.key), str(enc4), str(out4))
    assert out4.read_bytes() == plaintext
    assert pk.parse_header(enc4.read_bytes())[0]["aad"] == b"{}"


# ---------------------------------------------------------------------------
# (3) the KMS-compatible API with boto3
# ---------------------------------------------------------------------------

def test_kms_api_with_boto3(server, kms, default_key):
    # The default key for device data keys.
    assert default_key["KeyState"] == "Enabled" and default_key["Enabled"] is True
    assert default_key["Arn"] == f"{KMS_ARN}:key/{default_key['KeyId']}"

    # Create, describe (id, ARN, alias, alias ARN), list.
    meta = kms.create_key(Description="e2e key one")["KeyMetadata"]
    k1, arn1 = meta["KeyId"], meta["Arn"]
    assert arn1 == f"{KMS_ARN}:key/{k1}"
    assert meta["Description"] == "e2e key one" and meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT" and meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert abs(meta["CreationDate"].timestamp() - time.time()) < 60
    k2 = kms.create_key(Description="e2e key two")["KeyMetadata"]["KeyId"]
    alias1 = f"alias/{unique('e2e-one')}"
    kms.create_alias(AliasName=alias1, TargetKeyId=k1)
    for ref in (k1, arn1, alias1, f"{KMS_ARN}:{alias1}"):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["KeyId"] == k1, ref
    listed = {k["KeyId"]: k["KeyArn"] for k in kms.list_keys()["Keys"]}
    assert listed[k1] == arn1 and k2 in listed and default_key["KeyId"] in listed
    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert aliases[alias1]["TargetKeyId"] == k1 and aliases[alias1]["AliasArn"] == f"{KMS_ARN}:{alias1}"
    assert aliases[DEFAULT_ALIAS]["TargetKeyId"] == default_key["KeyId"]
    assert kms_code(kms.create_alias, AliasName=alias1, TargetKeyId=k2) == "AlreadyExistsException"
    assert kms_code(kms.create_alias, AliasName="alias/aws/mine", TargetKeyId=k2) == "ValidationException"
    assert kms_code(kms.describe_key, KeyId="alias/no-such-alias") == "NotFoundException"
    assert kms_code(kms.describe_key, KeyId="00000000-0000-0000-0000-000000000000") == "NotFoundException"

    # Encrypt / decrypt with an encryption context.
    ctx = {"purpose": "e2e", "thing": "cam-7"}
    secret = os.urandom(100)
    enc = kms.encrypt(KeyId=alias1, Plaintext=secret, EncryptionContext=ctx)
    assert enc["KeyId"] == arn1
    blob = enc["CiphertextBlob"]
    assert secret not in blob
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert dec["Plaintext"] == secret and dec["KeyId"] == arn1
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=alias1)["Plaintext"] == secret
    assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx, KeyId=k2) == "IncorrectKeyException"
    for wrong in ({}, {"purpose": "e2e"}, {"purpose": "e2e", "thing": "cam-8"}, {**ctx, "extra": "x"}):
        kw = {"EncryptionContext": wrong} if wrong else {}
        assert kms_code(kms.decrypt, CiphertextBlob=blob, **kw) == "InvalidCiphertextException", wrong
    # Tampered blobs: a ciphertext byte, the nonce, the version, garbage.
    kid, version = blob_version(blob)
    assert (kid, version) == (k1, 1)
    ver_at = 5 + len(kid)
    for bad in (flip(blob, len(blob) - 20), flip(blob, ver_at + 4), blob[:ver_at] + struct.pack(">I", 9) +
                blob[ver_at + 4:], b"garbage-that-is-no-blob", blob[:-1]):
        assert kms_code(kms.decrypt, CiphertextBlob=bad, EncryptionContext=ctx) == "InvalidCiphertextException"

    # Data keys.
    g = kms.generate_data_key(KeyId=k1, KeySpec="AES_256", EncryptionContext=ctx)
    assert len(g["Plaintext"]) == 32 and g["KeyId"] == arn1
    assert kms.decrypt(CiphertextBlob=g["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == g["Plaintext"]
    assert len(kms.generate_data_key(KeyId=k1, KeySpec="AES_128")["Plaintext"]) == 16
    g64 = kms.generate_data_key(KeyId=k1, NumberOfBytes=64)
    assert len(g64["Plaintext"]) == 64
    assert kms.decrypt(CiphertextBlob=g64["CiphertextBlob"])["Plaintext"] == g64["Plaintext"]
    w = kms.generate_data_key_without_plaintext(KeyId=alias1, KeySpec="AES_256", EncryptionContext=ctx)
    assert "Plaintext" not in w and w["KeyId"] == arn1
    assert len(kms.decrypt(CiphertextBlob=w["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"]) == 32
    assert kms_code(kms.generate_data_key, KeyId=k1, KeySpec="AES_512") == "ValidationException"
    assert kms_code(kms.generate_data_key, KeyId=k1, KeySpec="AES_256", NumberOfBytes=32) == "ValidationException"

    # ReEncrypt to another key under another context.
    ctx2 = {"purpose": "archive"}
    re = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=k2,
                        DestinationEncryptionContext=ctx2)
    assert re["SourceKeyId"] == arn1 and re["KeyId"] == f"{KMS_ARN}:key/{k2}"
    assert blob_version(re["CiphertextBlob"])[0] == k2
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext=ctx2)["Plaintext"] == secret
    assert kms_code(kms.decrypt, CiphertextBlob=re["CiphertextBlob"], EncryptionContext=ctx) == \
        "InvalidCiphertextException"
    assert kms_code(kms.re_encrypt, CiphertextBlob=blob, SourceEncryptionContext={"purpose": "x"},
                    DestinationKeyId=k2) == "InvalidCiphertextException"

    # Rotation: on demand, old versions keep decrypting.
    st = kms.get_key_rotation_status(KeyId=k1)
    assert st["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=k1)
    st = kms.get_key_rotation_status(KeyId=k1)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 365
    assert 364 <= (st["NextRotationDate"].timestamp() - time.time()) / 86400 <= 366
    kms.enable_key_rotation(KeyId=k1, RotationPeriodInDays=90)
    assert kms.get_key_rotation_status(KeyId=k1)["RotationPeriodInDays"] == 90
    assert kms_raw(server, "EnableKeyRotation", {"KeyId": k1, "RotationPeriodInDays": 30}) == \
        (400, "ValidationException")
    assert kms.rotate_key_on_demand(KeyId=k1)["KeyId"] == arn1
    after = kms.encrypt(KeyId=k1, Plaintext=b"after rotation", EncryptionContext=ctx)["CiphertextBlob"]
    assert blob_version(after) == (k1, 2)
    assert kms.decrypt(CiphertextBlob=after, EncryptionContext=ctx)["Plaintext"] == b"after rotation"
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == secret  # version 1
    assert kms.decrypt(CiphertextBlob=g["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == g["Plaintext"]
    kms.rotate_key_on_demand(KeyId=alias1)
    assert blob_version(kms.encrypt(KeyId=k1, Plaintext=b"v3")["CiphertextBlob"]) == (k1, 3)
    assert kms.decrypt(CiphertextBlob=after, EncryptionContext=ctx)["Plaintext"] == b"after rotation"
    kms.disable_key_rotation(KeyId=k1)
    st = kms.get_key_rotation_status(KeyId=k1)
    assert st["KeyRotationEnabled"] is False and "NextRotationDate" not in st

    # Disable: nothing encrypts or decrypts under it; enable again.
    kms.disable_key(KeyId=k1)
    meta = kms.describe_key(KeyId=k1)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    assert kms_code(kms.encrypt, KeyId=k1, Plaintext=b"x") == "DisabledException"
    assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx) == "DisabledException"
    assert kms_code(kms.generate_data_key, KeyId=k1, KeySpec="AES_256") == "DisabledException"
    assert kms_code(kms.re_encrypt, CiphertextBlob=re["CiphertextBlob"], SourceEncryptionContext=ctx2,
                    DestinationKeyId=k1) == "DisabledException"
    assert kms_code(kms.rotate_key_on_demand, KeyId=k1) == "DisabledException"
    kms.enable_key(KeyId=k1)
    assert kms.describe_key(KeyId=k1)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == secret

    # Schedule and cancel deletion.
    assert kms_raw(server, "ScheduleKeyDeletion", {"KeyId": k2, "PendingWindowInDays": 3}) == \
        (400, "ValidationException")
    d = kms.schedule_key_deletion(KeyId=k2, PendingWindowInDays=7)
    assert d["KeyState"] == "PendingDeletion" and d["PendingWindowInDays"] == 7
    assert 6.9 <= (d["DeletionDate"].timestamp() - time.time()) / 86400 <= 7.1
    meta = kms.describe_key(KeyId=k2)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["Enabled"] is False and "DeletionDate" in meta
    assert kms_code(kms.encrypt, KeyId=k2, Plaintext=b"x") == "KMSInvalidStateException"
    assert kms_code(kms.decrypt, CiphertextBlob=re["CiphertextBlob"], EncryptionContext=ctx2) == \
        "KMSInvalidStateException"
    assert kms_code(kms.enable_key, KeyId=k2) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=k2)
    meta = kms.describe_key(KeyId=k2)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and "DeletionDate" not in meta  # as AWS: disabled after a cancel
    assert kms_code(kms.cancel_key_deletion, KeyId=k2) == "KMSInvalidStateException"
    kms.enable_key(KeyId=k2)
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext=ctx2)["Plaintext"] == secret

    # Everything above is in the audit log, by the admin key.
    who = admin_credentials(server)["accessKeyId"]
    events = [(e["event"], e["principal"]) for e in audit(server, k1)]
    for ev in ("CreateKey", "CreateAlias", "Encrypt", "Decrypt", "GenerateDataKey", "EnableKeyRotation",
               "RotateKey", "DisableKeyRotation", "DisableKey", "EnableKey"):
        assert (ev, who) in events, (ev, events)
    events2 = [e["event"] for e in audit(server, k2)]
    assert "ScheduleKeyDeletion" in events2 and "CancelKeyDeletion" in events2, events2


# ---------------------------------------------------------------------------
# (4) refusals
# ---------------------------------------------------------------------------

def test_claims_must_match_the_connection(server, make_device, paho):
    d = KeyDevice(paho, server, make_device("claimer"))
    other = make_device("claimed")
    before = set(data_keys(server, d.thing))

    d.refused("AccessDenied", certificateId=other.cert_id)
    d.refused("AccessDenied", publicKey=other.cert.read_text())
    other_spki = pk._load_public_key(other.cert.read_bytes()).public_bytes(
        pk.serialization.Encoding.PEM, pk.serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    d.refused("AccessDenied", publicKey=other_spki)
    d.refused("AccessDenied", publicKey="-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
    d.refused("AccessDenied", certificateId=d.dev.cert_id, publicKey=other.cert.read_text())
    d.refused("NotFound", keyId="alias/no-such-key")
    d.refused("NotFound", keyId="00000000-0000-0000-0000-000000000000")
    assert set(data_keys(server, d.thing)) == before  # no key issued by any refusal
    assert data_keys(server, other.name) == {}

    # Its own claims are fine: certificate id, certificate PEM, SubjectPublicKeyInfo PEM.
    own_spki = pk._load_public_key(d.cert_pem).public_bytes(
        pk.serialization.Encoding.PEM, pk.serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for claims in ({"certificateId": d.dev.cert_id}, {"publicKey": d.cert_pem.decode()}, {"publicKey": own_spki},
                   {"certificateId": d.dev.cert_id, "publicKey": own_spki, "keyId": DEFAULT_ALIAS}):
        ans = d.key(**claims)
        assert len(d.data_key(ans)) == 32
    assert len(data_keys(server, d.thing)) == len(before) + 4


def test_policy_must_allow_generate_data_key(server, kms, make_device, paho, tmp_path_factory):
    # No thingport:GenerateDataKey at all.
    nokeys = KeyDevice(paho, server, make_device("nokeys", policy=NO_KEYS))
    ans = nokeys.refused("AccessDenied")
    assert default_arn_in(ans["error"]["message"], kms)
    assert data_keys(server, nokeys.thing) == {}

    # Allowed on one key only: that one yes, the default one no.
    mine = kms.create_key(Description="e2e limited")["KeyMetadata"]
    alias = f"alias/{unique('e2e-limited')}"
    kms.create_alias(AliasName=alias, TargetKeyId=mine["KeyId"])
    limited_policy = create_policy(server, tmp_path_factory, unique("PayloadKeysLimited"),
                                   fleet_statements(key_resource=mine["Arn"]))
    limited = KeyDevice(paho, server, make_device("limited", policy=limited_policy))
    limited.refused("AccessDenied")
    limited.refused("AccessDenied", keyId=DEFAULT_ALIAS)
    for ref in (mine["KeyId"], mine["Arn"], alias, f"{KMS_ARN}:{alias}"):
        ans = limited.key(keyId=ref)
        assert ans["masterKeyId"] == mine["Arn"], (ref, ans)
        assert blob_version(b64(ans["ciphertextBlob"]))[0] == mine["KeyId"]
    assert {k["masterKeyId"] for k in data_keys(server, limited.thing).values()} <= {mine["KeyId"], mine["Arn"]}


def default_arn_in(message: str, kms) -> bool:
    return kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["Arn"] in message


def test_no_answer_where_the_device_may_not_receive(server, make_device, paho):
    asker = KeyDevice(paho, server, make_device("sneaky"))
    victim = KeyDevice(paho, server, make_device("victim"))
    wdev = server.provision(unique("watcher"))  # allow-all
    watcher = paho(server, wdev)
    watcher.connect()
    dollar = f"$aws/things/{wdev.name}/keys"
    assert all(c < 0x80 for c in watcher.subscribe([(dollar, 1), (f"elsewhere/{asker.thing}", 1)]))

    asker.send({"replyTo": victim.keys_topic})
    asker.send({"replyTo": dollar})
    asker.send({"replyTo": f"elsewhere/{asker.thing}"})
    asker.send({"replyTo": f"devices/{asker.thing}/+"})  # not a topic name
    asker.send({})  # no reply topic at all
    asker.send({"replyTo": victim.keys_topic}, properties=props(ResponseTopic=victim.keys_topic))
    # Not even a refusal, anywhere; and no key was issued for those requests.
    victim.c.expect_none(1.5)
    watcher.expect_none(0.1)
    asker.c.expect_none(0.1)
    assert data_keys(server, asker.thing) == {}
    # It is still answered where it may receive.
    assert asker.key()["keyId"].startswith("dk-")


def test_revoked_data_key(server, kms, make_device, paho):
    d = KeyDevice(paho, server, make_device("revoked"))
    ans = d.key()
    dk = ans["keyId"]
    envelope = pk.encrypt(d.data_key(ans), dk, object_aad(d.thing, "o"), b"before revocation",
                          kms_blob=b64(ans["ciphertextBlob"]), sign_with_pem=d.key_pem)
    assert decrypt_envelope(server, envelope)[0] == 200
    blob, ctx = b64(ans["ciphertextBlob"]), ans["encryptionContext"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == d.data_key(ans)

    assert api_json(server, "POST", f"/thingport/data-keys/{dk}/revoke") == {"revoked": 1}
    assert data_keys(server, d.thing)[dk]["status"] == "revoked"
    assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx) == "AccessDeniedException"
    assert kms_code(kms.re_encrypt, CiphertextBlob=blob, SourceEncryptionContext=ctx,
                    DestinationKeyId=DEFAULT_ALIAS) == "AccessDeniedException"
    status, headers, body = decrypt_envelope(server, envelope)
    assert status in (400, 403), (status, body)
    assert api_error(status, headers, body) == "AccessDeniedException", body
    assert b"before revocation" not in body
    # Revoking again changes nothing; an unknown data key is 404.
    assert api_json(server, "POST", f"/thingport/data-keys/{dk}/revoke") == {"revoked": 0}
    assert api_request(server, "POST", "/thingport/data-keys/dk-00000000000000000000000000000000/revoke")[0] == 404
    # The refused decrypts are in the audit log.
    refused = [e for e in audit(server, dk) if e["event"] == "Decrypt" and "revoked" in json.dumps(e["detail"])]
    assert len(refused) >= 2, audit(server, dk)
    # The device asks again and gets a new key that works.
    again = d.key()
    assert again["keyId"] != dk
    assert kms.decrypt(CiphertextBlob=b64(again["ciphertextBlob"]),
                       EncryptionContext=again["encryptionContext"])["Plaintext"] == d.data_key(again)


def test_disabled_and_pending_deletion_master_key(server, kms, make_device, paho):
    meta = kms.create_key(Description="e2e device key to disable")["KeyMetadata"]
    key = meta["KeyId"]
    d = KeyDevice(paho, server, make_device("disabled"))
    ans = d.key(keyId=key)
    assert ans["masterKeyId"] == meta["Arn"]
    envelope = pk.encrypt(d.data_key(ans), ans["keyId"], b"{}", b"payload", kms_blob=b64(ans["ciphertextBlob"]))
    blob, ctx = b64(ans["ciphertextBlob"]), ans["encryptionContext"]
    n_keys = len(data_keys(server, d.thing))

    kms.disable_key(KeyId=key)
    try:
        d.refused("Disabled", keyId=key)
        assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx) == "DisabledException"
        status, headers, body = decrypt_envelope(server, envelope)
        assert (status, api_error(status, headers, body)) == (400, "DisabledException"), body
    finally:
        kms.enable_key(KeyId=key)
    assert d.key(keyId=key)["masterKeyId"] == meta["Arn"]
    assert decrypt_envelope(server, envelope)[2] == b"payload"
    # Rotation of the master key: old device keys keep decrypting, new ones use the new version.
    kms.rotate_key_on_demand(KeyId=key)
    assert decrypt_envelope(server, envelope)[2] == b"payload"
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == d.data_key(ans)
    assert blob_version(b64(d.key(keyId=key)["ciphertextBlob"])) == (key, 2)
    n_keys += 1

    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    try:
        d.refused("KeyUnavailable", keyId=key)
        assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx) == "KMSInvalidStateException"
    finally:
        kms.cancel_key_deletion(KeyId=key)
        kms.enable_key(KeyId=key)
    assert len(data_keys(server, d.thing)) == n_keys + 1  # refusals issued nothing


def test_tampering_and_wrong_context(server, kms, make_device, paho):
    d = KeyDevice(paho, server, make_device("tamper", key_type="rsa"))
    other = KeyDevice(paho, server, make_device("tamper-other"))
    ans = d.key()
    dk, blob, ctx = ans["keyId"], b64(ans["ciphertextBlob"]), ans["encryptionContext"]
    data_key = d.data_key(ans)
    plaintext = os.urandom(5 * 1024 + 17)
    envelope = pk.encrypt(data_key, dk, object_aad(d.thing, "uploads/x"), plaintext, kms_blob=blob,
                          sign_with_pem=d.key_pem, chunk_size=1024)
    assert decrypt_envelope(server, envelope)[2] == plaintext

    # The KMS blob: a flipped byte; the encryption context of another thing or data key.
    assert kms_code(kms.decrypt, CiphertextBlob=flip(blob, len(blob) - 1), EncryptionContext=ctx) == \
        "InvalidCiphertextException"
    for wrong in ({**ctx, "thingport:thingName": other.thing}, {"thingport:thingName": d.thing},
                  {**ctx, "extra": "1"}):
        assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=wrong) == \
            "InvalidCiphertextException", wrong
    # Another (active) data key's id with this blob: refused.
    oans = other.key()
    assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext={**ctx, "thingport:dataKeyId": oans["keyId"]}) \
        == "InvalidCiphertextException"

    # The envelope: every kind of change is refused with 400 InvalidCiphertextException, no plaintext.
    header_len = pk.parse_header(envelope)[1]
    aad_at = envelope.index(b'{"object"')
    blob_at = envelope.index(blob)
    unsigned = bytearray(envelope)
    unsigned[4] &= 0xFE  # strip the signed flag
    cases = {
        "record byte": flip(envelope, header_len + 100),
        "last record byte": flip(envelope, len(envelope) - 300),
        "aad byte": flip(envelope, aad_at + 3),
        "base nonce": flip(envelope, header_len - 1),
        "signature byte": flip(envelope, len(envelope) - 5),
        "truncated": envelope[:len(envelope) // 2],
        "truncated signature": envelope[:-10],
        "trailing data": envelope + b"\x00",
        "signed flag cleared": bytes(unsigned),
        "chunks swapped": swap_records(envelope, header_len, 1024 + 16 + 5),
        "kms blob byte": flip(envelope, blob_at + len(blob) - 2),
    }
    for what, bad in cases.items():
        status, headers, body = decrypt_envelope(server, bad)
        assert status == 400, (what, status, body[:200])
        assert api_error(status, headers, body) == "InvalidCiphertextException", (what, body[:300])
        assert plaintext[:64] not in body, what
        with pytest.raises(Exception):
            pk.decrypt(data_key, bad, signer_cert_pem=d.cert_pem)
    # Re-signed by another device (its own key, not the data key's device): refused.
    forged = pk.encrypt(data_key, dk, b"{}", b"forged", kms_blob=blob, sign_with_pem=other.key_pem)
    status, headers, body = decrypt_envelope(server, forged)
    assert status == 400 and b"forged" not in body, (status, body)
    # The other device's data key id in the header, this device's blob: refused.
    swapped = pk.encrypt(data_key, oans["keyId"], b"{}", b"swapped", kms_blob=blob)
    status, headers, body = decrypt_envelope(server, swapped)
    assert status == 400 and b"swapped" not in body, (status, body)
    # Not an envelope at all; an unknown data key.
    status, headers, body = decrypt_envelope(server, b"hello")
    assert (status, api_error(status, headers, body)) == (400, "InvalidCiphertextException"), body
    status, headers, body = decrypt_envelope(server, pk.encrypt(data_key, "dk-unknown", b"{}", b"x", kms_blob=blob))
    assert (status, api_error(status, headers, body)) == (404, "ResourceNotFoundException"), body
    # A body over the API's 1 MiB limit gets a clean refusal.
    status, headers, body = decrypt_envelope(server, pk.encrypt(data_key, dk, b"{}", os.urandom(MiB), kms_blob=blob))
    assert status == 413, (status, body[:200])


# ---------------------------------------------------------------------------
# (5) tracking and audit
# ---------------------------------------------------------------------------

def test_tracking_audit_and_rotation(server, kms, default_key, make_device, paho):
    dev = make_device("tracked", key_type="ec-p384")
    d = KeyDevice(paho, server, dev)
    t0 = time.time() * 1000
    ans = d.key()
    dk = ans["keyId"]
    t1 = time.time() * 1000

    rec = data_keys(server, d.thing)[dk]
    assert rec["thingName"] == d.thing and rec["certificateId"] == dev.cert_id
    assert rec["status"] == "active" and rec["algorithm"] == ALGORITHMS["ec-p384"]
    assert rec["masterKeyId"] in (default_key["KeyId"], default_key["Arn"]), rec
    assert t0 - 1000 <= rec["issuedMs"] <= t1 + 1000, (t0, rec, t1)
    assert rec["expiresMs"] > rec["issuedMs"]
    assert abs(parse_time(ans["expiresAt"]).timestamp() * 1000 - rec["expiresMs"]) < 1000, (ans, rec)
    # Listed for this thing only.
    assert all(k["thingName"] == d.thing for k in data_keys(server, d.thing).values())
    assert dk not in data_keys(server, unique("nobody"))

    # A cloud decrypt of its blob.
    kms.decrypt(CiphertextBlob=b64(ans["ciphertextBlob"]), EncryptionContext=ans["encryptionContext"])
    entries = audit(server, dk)
    by_event = {}
    for e in entries:
        by_event.setdefault(e["event"], []).append(e)
    issue = by_event["IssueDataKey"][0]
    assert issue["principal"] == dev.cert_id and issue["keyId"] == default_key["KeyId"]
    assert issue["dataKeyId"] == dk and issue["detail"]["thing"] == d.thing
    dec = by_event["Decrypt"][0]
    assert dec["principal"] == admin_credentials(server)["accessKeyId"] and dec["dataKeyId"] == dk
    assert dec["seq"] > issue["seq"] and dec["timeMs"] >= issue["timeMs"]
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)  # newest first
    assert any(e["event"] == "IssueDataKey" and e["dataKeyId"] == dk for e in audit(server, default_key["KeyId"]))

    # Rotation for the device: revoke all its keys; it asks again.
    second = d.key()
    assert api_json(server, "POST", f"/thingport/things/{d.thing}/data-keys/revoke") == {"revoked": 2}
    keys = data_keys(server, d.thing)
    assert keys[dk]["status"] == keys[second["keyId"]]["status"] == "revoked"
    assert kms_code(kms.decrypt, CiphertextBlob=b64(second["ciphertextBlob"]),
                    EncryptionContext=second["encryptionContext"]) == "AccessDeniedException"
    revokes = [e for e in audit(server)
               if e["event"] == "RevokeDataKey" and (e["detail"] or {}).get("thing") == d.thing]
    assert sorted(e["dataKeyId"] for e in revokes) == sorted([dk, second["keyId"]]), revokes
    third = d.key()
    assert data_keys(server, d.thing)[third["keyId"]]["status"] == "active"
    assert kms.decrypt(CiphertextBlob=b64(third["ciphertextBlob"]),
                       EncryptionContext=third["encryptionContext"])["Plaintext"] == d.data_key(third)
    assert api_json(server, "POST", f"/thingport/things/{d.thing}/data-keys/revoke") == {"revoked": 1}
    # Other things' keys are untouched by the revocation.
    other = KeyDevice(paho, server, make_device("untouched"))
    oans = other.key()
    api_json(server, "POST", f"/thingport/things/{d.thing}/data-keys/revoke")
    assert data_keys(server, other.thing)[oans["keyId"]]["status"] == "active"
    # No answer leaked the key material in the clear in the audit log or the server log.
    log = server.log_text()
    assert base64.b64encode(d.data_key(third)).decode() not in log
    assert d.data_key(third).hex() not in log


# ---------------------------------------------------------------------------
# device keys other than the provisioning defaults (certificates from CSRs)
# ---------------------------------------------------------------------------

def custom_key_device(server, tmp_path, key_kind: str, policy: str):
    """A thing with a certificate for a key Python makes (fast even for
    RSA-4096), attached to `policy`: from a CSR, or for Ed25519 (which
    CreateCertificateFromCsr refuses) signed with the server's CA key and
    registered with RegisterCertificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from e2elib import device_from_files, iot_client
    key = {"rsa-4096": lambda: rsa.generate_private_key(65537, 4096),
           "ec-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
           "ed25519": ed25519.Ed25519PrivateKey.generate}[key_kind]()
    thing = unique(f"custom-{key_kind}")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, thing)])
    iot = iot_client(server)
    iot.create_thing(thingName=thing)
    if key_kind == "ed25519":
        ca = x509.load_pem_x509_certificate(server.ca.read_bytes())
        ca_key = serialization.load_pem_private_key((server.data_dir / "ca" / "root-ca.key").read_bytes(), None)
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        r = iot.register_certificate(certificatePem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                                     caCertificatePem=server.ca.read_text(), setAsActive=True)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    else:
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        r = iot.create_certificate_from_csr(
            certificateSigningRequest=csr.public_bytes(serialization.Encoding.PEM).decode(), setAsActive=True)
        pem = r["certificatePem"]
    iot.attach_thing_principal(thingName=thing, principal=r["certificateArn"])
    iot.attach_policy(policyName=policy, target=r["certificateArn"])
    cert_path, key_path = tmp_path / f"{thing}.pem.crt", tmp_path / f"{thing}.key"
    cert_path.write_text(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return device_from_files(thing, cert_path, key_path, server.ca)


def test_rsa_4096_device(server, kms, fleet, paho, tmp_path):
    dev = custom_key_device(server, tmp_path, "rsa-4096", fleet)
    d = KeyDevice(paho, server, dev)
    ans = d.key()
    assert ans["algorithm"] == "RSAES_OAEP_SHA_256" and len(b64(ans["wrappedKey"])) == 512
    data_key = d.data_key(ans)
    envelope = pk.encrypt(data_key, ans["keyId"], object_aad(d.thing, "o"), b"from a 4096-bit key",
                          kms_blob=b64(ans["ciphertextBlob"]), sign_with_pem=d.key_pem)
    status, headers, body = decrypt_envelope(server, envelope)
    assert (status, body, headers["x-thingport-signature-verified"]) == (200, b"from a 4096-bit key", "true")


@pytest.mark.parametrize("key_kind", ["ed25519", "ec-p521"])
def test_unsupported_device_key(server, fleet, paho, tmp_path, key_kind):
    dev = custom_key_device(server, tmp_path, key_kind, fleet)
    d = KeyDevice(paho, server, dev, version=4)
    ans = d.refused("UnsupportedKey")
    assert data_keys(server, d.thing) == {}, "a key the device cannot unwrap was recorded as issued"


# ---------------------------------------------------------------------------
# more on the issuer, tracking and audit
# ---------------------------------------------------------------------------

def test_many_requests_at_once_mqtt311(server, kms, make_device, paho):
    d = KeyDevice(paho, server, make_device("burst"), version=4)
    n = 20
    sent = [d.send({"replyTo": d.keys_topic, "requestId": f"b-{i}"}) for i in range(n)]
    got = {}
    for m in d.c.collect(n, timeout=10, topic_prefix=d.keys_topic):
        a = json.loads(m.payload)
        got[a["requestId"]] = a
    assert set(got) == {r["requestId"] for r in sent}
    ids = {a["keyId"] for a in got.values()}
    assert len(ids) == n, "data key ids are not unique"
    keys = {d.data_key(a) for a in got.values()}
    assert len(keys) == n, "data keys repeat"
    recorded = data_keys(server, d.thing)
    assert ids <= set(recorded) and all(recorded[i]["status"] == "active" for i in ids)


def test_refused_decryptions_are_audited(server, kms, make_device, paho):
    """docs/payload-keys.md: "Logged uses include … decryption (and refused
    decryptions)". A data key's blob probed under a wrong encryption context,
    or while its master key is disabled, must leave a trace in the audit log
    of that data key (as a refusal for a revoked data key does)."""
    meta = kms.create_key(Description="e2e audit of refusals")["KeyMetadata"]
    d = KeyDevice(paho, server, make_device("audited"))
    ans = d.key(keyId=meta["KeyId"])
    dk, blob, ctx = ans["keyId"], b64(ans["ciphertextBlob"]), ans["encryptionContext"]
    kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)

    def decrypts():
        return [e for e in audit(server, dk) if e["event"] == "Decrypt"]
    assert len(decrypts()) == 1
    missing = []
    assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext={**ctx, "thingport:thingName": "x"}) == \
        "InvalidCiphertextException"
    if len(decrypts()) != 2:
        missing.append("InvalidCiphertextException (wrong encryption context)")
    n = len(decrypts())
    kms.disable_key(KeyId=meta["KeyId"])
    try:
        assert kms_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx) == "DisabledException"
    finally:
        kms.enable_key(KeyId=meta["KeyId"])
    if len(decrypts()) != n + 1:
        missing.append("DisabledException (master key disabled)")
    assert not missing, (f"refused Decrypt of {dk} not in key-audit?keyId={dk}: {missing}",
                         [(e["event"], e["detail"]) for e in audit(server, dk)])


def test_revoke_all_is_in_the_data_keys_audit_log(server, make_device, paho):
    """`key-audit?keyId=<data key>` is "the audit log of a … data key", and
    revocation is one of the logged events: a key revoked with the rest of its
    device's keys must show it, as one revoked on its own does."""
    d = KeyDevice(paho, server, make_device("revoke-audit"))
    one, all_ = d.key()["keyId"], d.key()["keyId"]
    assert api_json(server, "POST", f"/thingport/data-keys/{one}/revoke") == {"revoked": 1}
    assert "RevokeDataKey" in [e["event"] for e in audit(server, one)]
    assert api_json(server, "POST", f"/thingport/things/{d.thing}/data-keys/revoke") == {"revoked": 1}
    assert data_keys(server, d.thing)[all_]["status"] == "revoked"
    events = [e["event"] for e in audit(server, all_)]
    assert "RevokeDataKey" in events, (f"key-audit?keyId={all_}", events)


def test_management_routes_need_a_signature(server, make_device, paho):
    d = KeyDevice(paho, server, make_device("unsigned"))
    ans = d.key()
    envelope = pk.encrypt(d.data_key(ans), ans["keyId"], b"{}", b"secret", kms_blob=b64(ans["ciphertextBlob"]))
    api = server.endpoints["api"]
    for method, path, body in [("GET", f"/thingport/data-keys?thingName={d.thing}", None),
                               ("GET", "/thingport/key-audit", None),
                               ("POST", f"/thingport/data-keys/{ans['keyId']}/revoke", b""),
                               ("POST", f"/thingport/things/{d.thing}/data-keys/revoke", b""),
                               ("POST", "/thingport/payloads/decrypt", envelope)]:
        r = requests.request(method, api + path, data=body, timeout=10)
        assert r.status_code == 403, (method, path, r.status_code, r.content[:200])
        assert b"secret" not in r.content
    # A KMS call signed with a wrong secret.
    import boto3
    from botocore.config import Config
    bad = boto3.client("kms", endpoint_url=api, region_name="us-east-1",
                       aws_access_key_id=admin_credentials(server)["accessKeyId"], aws_secret_access_key="x" * 40,
                       config=Config(retries={"max_attempts": 1}))
    assert kms_code(bad.decrypt, CiphertextBlob=b64(ans["ciphertextBlob"]),
                    EncryptionContext=ans["encryptionContext"]) in ("InvalidSignatureException",
                                                                     "UnrecognizedClientException")
    assert data_keys(server, d.thing)[ans["keyId"]]["status"] == "active"
    # The listing honours limit; the audit log too.
    d.key()
    assert len(api_json(server, "GET", "/thingport/data-keys", params={"thingName": d.thing, "limit": 1})
               ["dataKeys"]) == 1
    assert len(api_json(server, "GET", "/thingport/key-audit", params={"limit": 1})["entries"]) == 1


def test_kms_list_filters(server, kms):
    k1 = kms.create_key(Description="e2e alias filter")["KeyMetadata"]["KeyId"]
    k2 = kms.create_key()["KeyMetadata"]["KeyId"]
    a1, a2 = f"alias/{unique('only-k1')}", f"alias/{unique('only-k2')}"
    kms.create_alias(AliasName=a1, TargetKeyId=k1)
    kms.create_alias(AliasName=a2, TargetKeyId=k2)
    # `aws kms list-aliases --key-id K`: only K's aliases.
    names = [a["AliasName"] for a in kms.list_aliases(KeyId=k1)["Aliases"]]
    assert names == [a1], names


def test_kms_list_keys_limit(server, kms):
    kms.create_key()
    kms.create_key()
    # ListKeys honours Limit (and pages with Marker).
    first = kms.list_keys(Limit=1)
    assert len(first["Keys"]) == 1 and first["Truncated"] is True, first
    seen = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1})
            for k in page["Keys"]]
    assert len(seen) == len(set(seen)) == len(kms.list_keys()["Keys"])


# ---------------------------------------------------------------------------
# durability: restart with the same data directory
# ---------------------------------------------------------------------------

def test_keys_survive_a_restart(fresh_server, paho, tmp_path_factory):
    import sqlite3
    import stat
    server = fresh_server
    create_policy(server, tmp_path_factory, FLEET, fleet_statements())
    kms = kms_client(server)
    root = server.data_dir / "root.key"
    assert stat.S_IMODE(root.stat().st_mode) == 0o600
    default_id = kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["KeyId"]

    k = kms.create_key(Description="survives")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/survives", TargetKeyId=k)
    b1 = kms.encrypt(KeyId=k, Plaintext=b"version one", EncryptionContext={"a": "b"})["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=k)
    b2 = kms.encrypt(KeyId=k, Plaintext=b"version two")["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=k, RotationPeriodInDays=100)
    dev = server.provision(unique("durable"), policy=FLEET)
    d = KeyDevice(paho, server, dev)
    keep, drop = d.key(), d.key()
    api_json(server, "POST", f"/thingport/data-keys/{drop['keyId']}/revoke")
    seq_before = max(e["seq"] for e in audit(server))
    d.c.close()
    server.stop()

    # The audit log cannot be changed, even in the database file.
    db = sqlite3.connect(server.data_dir / "thingport.sqlite")
    try:
        for sql in ("UPDATE key_audit SET principal = 'nobody'", "DELETE FROM key_audit"):
            with pytest.raises(sqlite3.DatabaseError):
                db.execute(sql)
                db.commit()
            db.rollback()
        assert db.execute("SELECT count(*) FROM key_audit").fetchone()[0] >= 8
    finally:
        db.close()
    assert root.read_text().strip() not in server.log_text()

    server.start()
    kms = kms_client(server)
    assert kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["KeyId"] == default_id
    assert [a["AliasName"] for a in kms.list_aliases()["Aliases"]].count(DEFAULT_ALIAS) == 1
    assert kms.describe_key(KeyId="alias/survives")["KeyMetadata"]["KeyId"] == k
    assert kms.decrypt(CiphertextBlob=b1, EncryptionContext={"a": "b"})["Plaintext"] == b"version one"
    assert kms.decrypt(CiphertextBlob=b2)["Plaintext"] == b"version two"
    assert blob_version(kms.encrypt(KeyId=k, Plaintext=b"x")["CiphertextBlob"]) == (k, 2)
    st = kms.get_key_rotation_status(KeyId=k)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 100
    assert kms.decrypt(CiphertextBlob=b64(keep["ciphertextBlob"]),
                       EncryptionContext=keep["encryptionContext"])["Plaintext"] == d.data_key(keep)
    assert kms_code(kms.decrypt, CiphertextBlob=b64(drop["ciphertextBlob"]),
                    EncryptionContext=drop["encryptionContext"]) == "AccessDeniedException"
    statuses = {i: r["status"] for i, r in data_keys(server, dev.name).items()}
    assert statuses == {keep["keyId"]: "active", drop["keyId"]: "revoked"}
    newer = [e for e in audit(server) if e["seq"] > seq_before]
    assert newer and all(e["seq"] > seq_before for e in newer)
    # The device carries on after the restart.
    d2 = KeyDevice(paho, server, dev)
    assert d2.key()["keyId"] not in statuses


def test_answer_on_the_request_topic_does_not_loop(server, fleet, paho, tmp_path_factory):
    """A device allowed everything asks for the answer on the request topic
    itself: one answer, which the issuer does not take for a new request."""
    policy = create_policy(server, tmp_path_factory, unique("PayloadKeysLoop"), [
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "thingport:GenerateDataKey", "Resource": f"{KMS_ARN}:key/*"}])
    dev = server.provision(unique("looper"), policy=policy)
    c = paho(server, dev, client_id=dev.name)
    c.connect()
    assert all(x < 0x80 for x in c.subscribe(KEY_REQUESTS, qos=1))
    c.publish(KEY_REQUESTS, json.dumps({"replyTo": KEY_REQUESTS, "requestId": "loop-1"}).encode(), qos=1)
    got = [json.loads(m.payload) for m in c.collect(2, topic_prefix=KEY_REQUESTS)]
    assert got[0] == {"replyTo": KEY_REQUESTS, "requestId": "loop-1"}  # its own request
    assert got[1]["requestId"] == "loop-1" and got[1]["keyId"].startswith("dk-"), got[1]
    c.expect_none(1.0)
    assert list(data_keys(server, dev.name)) == [got[1]["keyId"]]


def test_signature_of_a_revoked_certificate_is_not_reported_verified(server, make_device, paho):
    """docs/payload-keys.md: "An envelope signed by the device also proves that
    the upload came from that device." Once the device's certificate is
    revoked (e.g. its key leaked), an envelope signed with that key must not
    come back from /thingport/payloads/decrypt as signature-verified."""
    d = KeyDevice(paho, server, make_device("leaked"))
    ans = d.key()
    data_key = d.data_key(ans)
    server.certs("revoke", d.dev.cert_id)
    forged = pk.encrypt(data_key, ans["keyId"], object_aad(d.thing, "uploads/forged"), b"signed after revocation",
                        kms_blob=b64(ans["ciphertextBlob"]), sign_with_pem=d.key_pem)
    status, headers, body = decrypt_envelope(server, forged)
    assert not (status == 200 and headers.get("x-thingport-signature-verified") == "true"), (
        "an envelope signed with a revoked certificate's key is reported as verified",
        status, dict(headers), body[:80], data_keys(server, d.thing)[ans["keyId"]]["status"])
