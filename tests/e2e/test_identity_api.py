"""Device identity through the AWS IoT control plane with boto3 (the issue's
"Done when"): things, CreateKeysAndCertificate, CreateCertificateFromCsr with
an openssl CSR, principals (incl. exclusive attachment), certificate status
and deletion rules, bring-your-own CA with just-in-time registration,
RegisterCertificate(WithoutCA), CA deactivation, bad input and unsigned
requests — each checked against real MQTT clients (Paho, mosquitto_pub)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import unique
from e2elib import QUIET, Device, RawConn, device_from_files, make_foreign_ca_device, mosquitto_pub

REGION = "us-east-1"
ACCOUNT = "000000000000"
ALLOW_ALL_DOC = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def iot_client(server, secret: str | None = None, access_key: str | None = None):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    endpoints = json.loads((server.data_dir / "endpoints.json").read_text())
    return boto3.client(
        "iot",
        endpoint_url=endpoints["api"],
        region_name=REGION,
        aws_access_key_id=access_key or creds["accessKeyId"],
        aws_secret_access_key=secret or creds["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def iot(server):
    return iot_client(server)


@pytest.fixture(scope="module")
def watcher_dev(server):
    """A provisioned device with the suite's permissive policy (for subscribers)."""
    return server.provision(unique("idt-watcher"))


@pytest.fixture(scope="module")
def allow_all(iot):
    """A permissive policy made through the API (attached per certificate)."""
    name = "identity-allow-all"
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL_DOC)
    return name


def api_error(fn, **kw) -> tuple[str, int, str]:
    """Call a boto3 operation that must fail; return (code, HTTP status, message)."""
    with pytest.raises(ClientError) as e:
        fn(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def sha256_hex(pem: str) -> str:
    """A certificate id as AWS makes it: SHA-256 of the DER encoding."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def cert_arn(cert_id: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert_id}"


def openssl(cwd: Path, *args: str) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr}"
    return r.stdout


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
DEVICE_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"


def make_csr(d: Path, name: str, subj: str, key: list[str] = EC) -> tuple[Path, Path]:
    """An openssl key + CSR; returns (csr, key)."""
    openssl(d, "req", "-new", *key, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
    return d / f"{name}.csr", d / f"{name}.key"


def make_ca(d: Path, cn: str) -> tuple[Path, Path]:
    openssl(d, "req", "-x509", *EC, "-nodes", "-days", "30", "-keyout", "ca.key", "-out", "ca.pem",
            "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return d / "ca.pem", d / "ca.key"


def sign_with_ca(d: Path, csr: Path, ca: Path, ca_key: Path, out: str, ext: str | None = DEVICE_EXT) -> Path:
    args = ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", out, "-days", "2"]
    if ext is not None:
        (d / f"{out}.ext").write_text(ext)
        args += ["-extfile", f"{out}.ext"]
    openssl(d, *args)
    return d / out


def ca_device(d: Path, ca: Path, ca_key: Path, name: str, server) -> Device:
    """A device certificate (X.509 v3, clientAuth) signed by `ca`, as a Device."""
    csr, key = make_csr(d, name, f"/CN={name}")
    cert = sign_with_ca(d, csr, ca, ca_key, f"{name}.pem.crt")
    return device_from_files(name, cert, key, server.ca)


def registration_proof(iot, d: Path, ca: Path, ca_key: Path, code: str | None = None) -> Path:
    code = code or iot.get_registration_code()["registrationCode"]
    csr, _ = make_csr(d, "verify", f"/CN={code}")
    return sign_with_ca(d, csr, ca, ca_key, "verify.pem", ext=None)


def register_ca(iot, d: Path, cn: str, auto: bool = True) -> tuple[str, Path, Path]:
    ca, ca_key = make_ca(d, cn)
    verify = registration_proof(iot, d, ca, ca_key)
    r = iot.register_ca_certificate(caCertificate=ca.read_text(), verificationCertificate=verify.read_text(),
                                    setAsActive=True, allowAutoRegistration=auto)
    assert r["certificateId"] == sha256_hex(ca.read_text())
    assert r["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cacert/{r['certificateId']}"
    return r["certificateId"], ca, ca_key


def write_device(d: Path, name: str, cert_pem: str, key_pem: str, server):
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.pem.crt", d / f"{name}.key"
    cert.write_text(cert_pem)
    key.write_text(key_pem)
    key.chmod(0o600)
    return device_from_files(name, cert, key, server.ca)


def assert_connects(paho, server, dev, client_id: str, version: int = 5):
    c = paho(server, dev, client_id=client_id, version=version)
    c.connect()
    return c


def assert_refused_at_connack(paho, server, dev, client_id: str):
    """Refused with CONNACK 0x87 (v5) and return code 5 (3.1.1), with Paho and raw bytes."""
    for version in (5, 4):
        c = paho(server, dev, client_id=f"{client_id}-v{version}", version=version)
        ack = c.connect(expect=None)
        assert ack is not None, f"v{version}: no CONNACK (disconnects {c.disconnect_reasons})"
        assert ack.reason == 0x87, f"v{version}: CONNACK reason {ack.reason:#x}, expected 0x87"
        c.wait_disconnected()
        c.stop()
    conn = RawConn(server, dev)
    try:
        ack = conn.connect(f"{client_id}-raw", version=4)
        assert ack.body == b"\x00\x05", f"3.1.1 CONNACK {ack.body.hex()}, expected 0005"
        assert conn.read_until_closed() == []
    finally:
        conn.close()


def refused_somehow(paho, server, dev, client_id: str) -> str:
    """The device cannot get a session: returns how (TLS failure or CONNACK refusal)."""
    c = paho(server, dev, client_id=client_id, version=5)
    try:
        ack = c.connect(expect=None)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return f"TLS: {e}"
    assert ack is None or ack.reason != 0, "the device connected"
    return f"CONNACK {ack.reason:#x}" if ack else "closed"


def cert_status(iot, cert_id: str) -> str:
    return iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"]


def listed_status(iot, cert_id: str) -> str | None:
    for c in iot.list_certificates(pageSize=250)["certificates"]:
        if c["certificateId"] == cert_id:
            return c["status"]
    return None


# ---------------------------------------------------------------------------
# CreateKeysAndCertificate: the whole lifecycle
# ---------------------------------------------------------------------------

def test_keys_and_certificate_lifecycle(server, iot, allow_all, paho, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    thing = unique("idt-thing")
    t = iot.create_thing(thingName=thing, attributePayload={"attributes": {"room": "lab"}})
    assert t["thingArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"

    r = iot.create_keys_and_certificate(setAsActive=True)
    cid, arn, pem = r["certificateId"], r["certificateArn"], r["certificatePem"]
    assert cid == sha256_hex(pem), "certificateId is not the SHA-256 of the DER"
    assert arn == cert_arn(cid)
    priv = serialization.load_pem_private_key(r["keyPair"]["PrivateKey"].encode(), password=None)
    pub = serialization.load_pem_public_key(r["keyPair"]["PublicKey"].encode())
    cert = x509.load_pem_x509_certificate(pem.encode())
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert cert.public_key().public_bytes(der, raw) == pub.public_bytes(der, raw) == \
        priv.public_key().public_bytes(der, raw), "keyPair does not match the certificate"
    assert cert.public_key().key_size == 2048, "AWS issues RSA 2048 by default"

    # Principals: an exclusive attachment, and a second attachment refused.
    iot.attach_thing_principal(thingName=thing, principal=arn, thingPrincipalType="EXCLUSIVE_THING")
    other = unique("idt-other")
    iot.create_thing(thingName=other)
    code, status, _ = api_error(iot.attach_thing_principal, thingName=other, principal=arn)
    assert status == 400 and code in ("InvalidRequestException", "ResourceAlreadyExistsException"), code
    code, status, _ = api_error(iot.attach_thing_principal, thingName=other, principal=arn,
                                thingPrincipalType="EXCLUSIVE_THING")
    assert status == 400 and code in ("InvalidRequestException", "ResourceAlreadyExistsException"), code
    assert iot.list_principal_things(principal=arn)["things"] == [thing]
    assert iot.list_thing_principals(thingName=other)["principals"] == []
    # Attaching again to the same thing is idempotent.
    iot.attach_thing_principal(thingName=thing, principal=arn, thingPrincipalType="EXCLUSIVE_THING")

    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["certificateId"] == cid and d["certificateArn"] == arn
    assert d["status"] == "ACTIVE"
    assert d["certificatePem"].strip() == pem.strip()
    assert d["caCertificateId"] == sha256_hex(server.ca.read_text())
    assert d["ownedBy"] == ACCOUNT
    assert d["validity"]["notAfter"].year == 2049
    assert d["validity"]["notBefore"] <= datetime.datetime.now(datetime.timezone.utc)
    assert listed_status(iot, cid) == "ACTIVE"
    assert iot.list_thing_principals(thingName=thing)["principals"] == [arn]
    assert iot.list_principal_things(principal=arn)["things"] == [thing]

    iot.update_thing(thingName=thing, attributePayload={"attributes": {"fw": "1.2"}, "merge": True})
    desc = iot.describe_thing(thingName=thing)
    assert desc["attributes"] == {"room": "lab", "fw": "1.2"} and desc["version"] == 2

    # The device connects with those files once a policy allows it.
    dev = write_device(tmp_path, thing, pem, r["keyPair"]["PrivateKey"], server)
    iot.attach_policy(policyName=allow_all, target=arn)
    live = assert_connects(paho, server, dev, thing)
    assert live.publish(f"{thing}/hello", b"hi", qos=1) == 0

    # INACTIVE: the live connection is closed, new ones are refused at CONNACK.
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    live.wait_disconnected()
    assert cert_status(iot, cid) == "INACTIVE"
    assert listed_status(iot, cid) == "INACTIVE"
    assert_refused_at_connack(paho, server, dev, f"{thing}-inactive")

    # Deletion refused while attached (INACTIVE) ...
    code, status, msg = api_error(iot.delete_certificate, certificateId=cid)
    assert (code, status) == ("DeleteConflictException", 409), (code, status, msg)
    # ... and back to ACTIVE works (INACTIVE is not final).
    iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    assert_connects(paho, server, dev, f"{thing}-again").disconnect()

    # Detach from the thing: refused while ACTIVE.
    iot.detach_thing_principal(thingName=thing, principal=arn)
    assert iot.list_thing_principals(thingName=thing)["principals"] == []
    assert iot.list_principal_things(principal=arn)["things"] == []
    code, status, msg = api_error(iot.delete_certificate, certificateId=cid)
    assert code == "CertificateStateException", (code, status, msg)

    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    iot.detach_policy(policyName=allow_all, target=arn)
    iot.delete_certificate(certificateId=cid)
    assert api_error(iot.describe_certificate, certificateId=cid)[:2] == ("ResourceNotFoundException", 404)
    assert listed_status(iot, cid) is None
    iot.delete_thing(thingName=thing)
    iot.delete_thing(thingName=other)
    assert api_error(iot.describe_thing, thingName=thing)[:2] == ("ResourceNotFoundException", 404)
    # Gone for good: the files no longer connect (signed by our CA, but unregistered).
    assert_refused_at_connack(paho, server, dev, f"{thing}-deleted")


def test_revoked_is_final(server, iot, allow_all, paho, tmp_path):
    r = iot.create_keys_and_certificate(setAsActive=True)
    cid = r["certificateId"]
    iot.attach_policy(policyName=allow_all, target=r["certificateArn"])
    dev = write_device(tmp_path, "revoked", r["certificatePem"], r["keyPair"]["PrivateKey"], server)
    live = assert_connects(paho, server, dev, unique("revoked"))
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    live.wait_disconnected()
    assert cert_status(iot, cid) == "REVOKED"
    for back in ("ACTIVE", "INACTIVE"):
        code, status, msg = api_error(iot.update_certificate, certificateId=cid, newStatus=back)
        assert code == "CertificateStateException", (code, status, msg)
        assert status == 406, status
    assert cert_status(iot, cid) == "REVOKED"
    assert_refused_at_connack(paho, server, dev, unique("revoked"))
    iot.detach_policy(policyName=allow_all, target=r["certificateArn"])
    iot.delete_certificate(certificateId=cid)  # a revoked certificate may be deleted


def test_create_keys_inactive_by_default(server, iot, allow_all, paho, tmp_path):
    r = iot.create_keys_and_certificate()
    assert cert_status(iot, r["certificateId"]) == "INACTIVE"
    iot.attach_policy(policyName=allow_all, target=r["certificateArn"])
    dev = write_device(tmp_path, "notactive", r["certificatePem"], r["keyPair"]["PrivateKey"], server)
    assert_refused_at_connack(paho, server, dev, unique("notactive"))
    iot.detach_policy(policyName=allow_all, target=r["certificateArn"])
    iot.delete_certificate(certificateId=r["certificateId"])


def test_thing_principal_attachments(iot):
    a, b, c = unique("att-a"), unique("att-b"), unique("att-c")
    for t in (a, b, c):
        iot.create_thing(thingName=t)
    r = iot.create_keys_and_certificate(setAsActive=False)
    arn = r["certificateArn"]
    # Non-exclusive: one certificate, several things.
    iot.attach_thing_principal(thingName=a, principal=arn)
    iot.attach_thing_principal(thingName=b, principal=arn, thingPrincipalType="NON_EXCLUSIVE_THING")
    assert sorted(iot.list_principal_things(principal=arn)["things"]) == sorted([a, b])
    # ... then exclusive elsewhere is refused, and nothing changes.
    code, status, msg = api_error(iot.attach_thing_principal, thingName=c, principal=arn,
                                  thingPrincipalType="EXCLUSIVE_THING")
    assert status == 400, (code, status, msg)
    assert sorted(iot.list_principal_things(principal=arn)["things"]) == sorted([a, b])
    assert iot.list_thing_principals(thingName=c)["principals"] == []
    code, _, msg = api_error(iot.attach_thing_principal, thingName=c, principal=arn,
                             thingPrincipalType="SOMETIMES")
    assert code == "InvalidRequestException", msg
    for t in (a, b):
        iot.detach_thing_principal(thingName=t, principal=arn)
    assert iot.list_principal_things(principal=arn)["things"] == []
    # Detached from everything, exclusive is possible.
    iot.attach_thing_principal(thingName=c, principal=arn, thingPrincipalType="EXCLUSIVE_THING")
    assert iot.list_principal_things(principal=arn)["things"] == [c]
    iot.detach_thing_principal(thingName=c, principal=arn)
    iot.delete_certificate(certificateId=r["certificateId"])


def test_delete_certificate_refused_while_policy_attached(server, iot, allow_all):
    r = iot.create_keys_and_certificate(setAsActive=False)
    iot.attach_policy(policyName=allow_all, target=r["certificateArn"])
    try:
        code, status, msg = api_error(iot.delete_certificate, certificateId=r["certificateId"])
        assert (code, status) == ("DeleteConflictException", 409), (code, status, msg)
    finally:
        # Whatever happened, no attachment to a deleted certificate may remain.
        targets = iot.list_targets_for_policy(policyName=allow_all)["targets"]
        if r["certificateArn"] in targets:
            iot.detach_policy(policyName=allow_all, target=r["certificateArn"])
            try:
                iot.delete_certificate(certificateId=r["certificateId"])
            except ClientError:
                pass


def test_deleted_certificate_leaves_no_policy_attachment(server, iot, allow_all, paho, tmp_path):
    ca, cert, key = make_foreign_ca_device(tmp_path / "reborn", cn="reborn")
    pem = cert.read_text()
    r = iot.register_certificate_without_ca(certificatePem=pem, status="INACTIVE")
    iot.attach_policy(policyName=allow_all, target=r["certificateArn"])
    # forceDelete detaches its policies; nothing of them may survive the certificate.
    iot.delete_certificate(certificateId=r["certificateId"], forceDelete=True)
    # Registered again, as ACTIVE, with no policy attached by anyone:
    r2 = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert r2["certificateId"] == r["certificateId"]
    dev = device_from_files("reborn", cert, key, server.ca)
    try:
        # No policy allows it to connect ...
        c = paho(server, dev, client_id=unique("reborn"), version=5)
        ack = c.connect(expect=None)
        assert ack is not None and ack.reason == 0x87, f"re-registered certificate: CONNACK {ack}"
        assert iot.list_attached_policies(target=r2["certificateArn"])["policies"] == []
        assert r2["certificateArn"] not in iot.list_targets_for_policy(policyName=allow_all)["targets"]
    finally:
        iot.update_certificate(certificateId=r2["certificateId"], newStatus="INACTIVE")
        iot.delete_certificate(certificateId=r2["certificateId"], forceDelete=True)


# ---------------------------------------------------------------------------
# CreateCertificateFromCsr with openssl, used by mosquitto_pub
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", [pytest.param(EC, id="ec-p256"),
                                 pytest.param(["-newkey", "rsa:2048"], id="rsa-2048")])
def test_certificate_from_openssl_csr(server, iot, allow_all, paho, tmp_path, key, watcher_dev):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    thing = unique("csr-thing")
    iot.create_thing(thingName=thing)
    csr, keyfile = make_csr(tmp_path, "dev", f"/O=Acme/CN={thing}", key=key)
    r = iot.create_certificate_from_csr(certificateSigningRequest=csr.read_text(), setAsActive=True)
    cid, arn, pem = r["certificateId"], r["certificateArn"], r["certificatePem"]
    assert cid == sha256_hex(pem) and arn == cert_arn(cid)
    assert "keyPair" not in r
    cert = x509.load_pem_x509_certificate(pem.encode())
    req = x509.load_pem_x509_csr(csr.read_bytes())
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert.public_key().public_bytes(*spki) == req.public_key().public_bytes(*spki)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == thing
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cert.version == x509.Version.v3
    assert cert_status(iot, cid) == "ACTIVE"

    iot.attach_thing_principal(thingName=thing, principal=arn)
    iot.attach_policy(policyName=allow_all, target=arn)
    (tmp_path / "dev.pem.crt").write_text(pem)
    dev = device_from_files(thing, tmp_path / "dev.pem.crt", keyfile, server.ca)

    watcher = paho(server, watcher_dev, version=5)
    watcher.connect()
    watcher.subscribe(f"{thing}/#", qos=1)
    mosquitto_pub(server, dev, f"{thing}/temp", "21.5", qos=1, client_id=thing)
    m = watcher.expect(f"{thing}/temp")
    assert m.payload == b"21.5"

    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    p = mosquitto_pub(server, dev, f"{thing}/temp", "nope", qos=1, client_id=thing, check=False)
    assert p.returncode != 0, "an INACTIVE certificate published"
    assert "not authori" in (p.stdout + p.stderr).lower(), p.stdout + p.stderr
    watcher.expect_none(QUIET, topic_prefix=f"{thing}/")

    iot.detach_thing_principal(thingName=thing, principal=arn)
    iot.detach_policy(policyName=allow_all, target=arn)
    iot.delete_certificate(certificateId=cid)
    iot.delete_thing(thingName=thing)


# ---------------------------------------------------------------------------
# Bring your own CA
# ---------------------------------------------------------------------------

def test_register_ca_describe_and_list(server, iot, tmp_path):
    ca_id, ca, _ = register_ca(iot, tmp_path, "Listed Fleet CA", auto=False)
    d = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert d["certificateId"] == ca_id
    assert d["status"] == "ACTIVE"
    assert d["autoRegistrationStatus"] == "DISABLE"
    assert d["certificatePem"].strip() == ca.read_text().strip()
    assert d["ownedBy"] == ACCOUNT
    listed = {c["certificateId"]: c["status"] for c in iot.list_ca_certificates()["certificates"]}
    assert listed.get(ca_id) == "ACTIVE"

    iot.update_ca_certificate(certificateId=ca_id, newAutoRegistrationStatus="ENABLE")
    d = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert d["autoRegistrationStatus"] == "ENABLE" and d["status"] == "ACTIVE"

    # The same CA twice: refused.
    verify = registration_proof(iot, tmp_path / "again", ca, tmp_path / "ca.key")
    code, status, _ = api_error(iot.register_ca_certificate, caCertificate=ca.read_text(),
                                verificationCertificate=verify.read_text(), setAsActive=True)
    assert (code, status) == ("ResourceAlreadyExistsException", 409)

    # Deleting an ACTIVE CA is refused; INACTIVE, it goes.
    assert api_error(iot.delete_ca_certificate, certificateId=ca_id)[0] == "CertificateStateException"
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    assert {c["certificateId"]: c["status"] for c in iot.list_ca_certificates()["certificates"]}[ca_id] == "INACTIVE"
    iot.delete_ca_certificate(certificateId=ca_id)
    assert api_error(iot.describe_ca_certificate, certificateId=ca_id)[:2] == ("ResourceNotFoundException", 404)


def test_just_in_time_registration(server, iot, allow_all, paho, tmp_path, watcher_dev):
    ca_id, ca, ca_key = register_ca(iot, tmp_path, "JITR Fleet CA", auto=True)
    d = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert d["status"] == "ACTIVE" and d["autoRegistrationStatus"] == "ENABLE"

    watcher = paho(server, watcher_dev, version=5)
    watcher.connect()
    topic = f"$aws/events/certificates/registered/{ca_id}"
    assert watcher.subscribe(topic, qos=1) == [1]

    dev = ca_device(tmp_path, ca, ca_key, "jitr-dev", server)
    # First connection: refused; the certificate is now known as PENDING_ACTIVATION.
    c = paho(server, dev, client_id=unique("jitr"), version=5)
    ack = c.connect(expect=None)
    assert ack is not None and ack.reason == 0x87, ack
    ev = json.loads(watcher.expect(topic).payload)
    assert ev["certificateId"] == dev.cert_id
    assert ev["caCertificateId"] == ca_id
    assert ev["certificateStatus"] == "PENDING_ACTIVATION"
    assert ev["awsAccountId"] == ACCOUNT
    assert isinstance(ev["timestamp"], int) and isinstance(ev["certificateRegistrationTimestamp"], int)
    assert listed_status(iot, dev.cert_id) == "PENDING_ACTIVATION"
    desc = iot.describe_certificate(certificateId=dev.cert_id)["certificateDescription"]
    assert desc["status"] == "PENDING_ACTIVATION" and desc["caCertificateId"] == ca_id

    # Still pending: refused again, and no second event.
    c2 = paho(server, dev, client_id=unique("jitr"), version=4)
    assert c2.connect(expect=None).reason == 0x87
    watcher.expect_none(QUIET)

    # Activated, with a policy: it connects.
    iot.update_certificate(certificateId=dev.cert_id, newStatus="ACTIVE")
    iot.attach_policy(policyName=allow_all, target=cert_arn(dev.cert_id))
    ok = assert_connects(paho, server, dev, unique("jitr-ok"))
    assert ok.publish("jitr/hello", b"x", qos=1) == 0
    ok.disconnect()

    # Auto-registration off: a new device of the same CA is not registered.
    iot.update_ca_certificate(certificateId=ca_id, newAutoRegistrationStatus="DISABLE")
    dev2 = ca_device(tmp_path, ca, ca_key, "jitr-dev2", server)
    c3 = paho(server, dev2, client_id=unique("jitr-off"), version=5)
    assert c3.connect(expect=None).reason == 0x87
    watcher.expect_none(QUIET)
    assert listed_status(iot, dev2.cert_id) is None


def test_register_certificate_set_as_active(server, iot, tmp_path):
    _, ca, ca_key = register_ca(iot, tmp_path, "SetAsActive Fleet CA", auto=False)
    dev = ca_device(tmp_path, ca, ca_key, "set-as-active", server)
    r = iot.register_certificate(certificatePem=dev.cert.read_text(), caCertificatePem=ca.read_text(),
                                 setAsActive=True)
    assert cert_status(iot, r["certificateId"]) == "ACTIVE"


def test_register_certificate_and_ca_deactivation(server, iot, allow_all, paho, tmp_path):
    ca_id, ca, ca_key = register_ca(iot, tmp_path, "Registered Fleet CA", auto=False)

    # Naming the CA, and letting Thingport find it.
    named = ca_device(tmp_path, ca, ca_key, "reg-named", server)
    r = iot.register_certificate(certificatePem=named.cert.read_text(), caCertificatePem=ca.read_text(),
                                 status="ACTIVE")
    assert r["certificateId"] == named.cert_id and r["certificateArn"] == cert_arn(named.cert_id)
    found = ca_device(tmp_path, ca, ca_key, "reg-found", server)
    r2 = iot.register_certificate(certificatePem=found.cert.read_text(), status="ACTIVE")
    assert r2["certificateId"] == found.cert_id
    for dev in (named, found):
        desc = iot.describe_certificate(certificateId=dev.cert_id)["certificateDescription"]
        assert desc["status"] == "ACTIVE" and desc["caCertificateId"] == ca_id
        iot.attach_policy(policyName=allow_all, target=cert_arn(dev.cert_id))

    # Naming a registered CA that did not sign it, or a CA that is not registered: refused.
    other_id, other_ca, _ = register_ca(iot, tmp_path / "other-ca", "Other Fleet CA", auto=False)
    stranger = ca_device(tmp_path, ca, ca_key, "reg-stranger", server)
    code, status, msg = api_error(iot.register_certificate, certificatePem=stranger.cert.read_text(),
                                  caCertificatePem=other_ca.read_text(), status="ACTIVE")
    assert (code, status) == ("CertificateValidationException", 400), (code, status, msg)
    unregistered_ca, _ = make_ca(tmp_path / "unregistered-ca", "Unregistered CA")
    code, status, msg = api_error(iot.register_certificate, certificatePem=stranger.cert.read_text(),
                                  caCertificatePem=unregistered_ca.read_text(), status="ACTIVE")
    assert 400 <= status < 500, (code, status, msg)
    assert listed_status(iot, stranger.cert_id) is None

    # Registered twice: refused.
    code, status, _ = api_error(iot.register_certificate, certificatePem=named.cert.read_text(), setAsActive=True)
    assert (code, status) == ("ResourceAlreadyExistsException", 409)

    # Registered without activation: refused at CONNACK until activated.
    pending = ca_device(tmp_path, ca, ca_key, "reg-inactive", server)
    iot.register_certificate(certificatePem=pending.cert.read_text())
    assert cert_status(iot, pending.cert_id) == "INACTIVE"
    iot.attach_policy(policyName=allow_all, target=cert_arn(pending.cert_id))
    assert_refused_at_connack(paho, server, pending, unique("reg-inactive"))

    # A device of a CA Thingport does not know, registered on its own.
    _, lone_cert, lone_key = make_foreign_ca_device(tmp_path / "lone", cn="lone-dev")
    code, status, msg = api_error(iot.register_certificate, certificatePem=lone_cert.read_text(), setAsActive=True)
    assert code == "CertificateValidationException", (code, status, msg)
    lone = device_from_files("lone-dev", lone_cert, lone_key, server.ca)
    r3 = iot.register_certificate_without_ca(certificatePem=lone_cert.read_text(), status="ACTIVE")
    assert r3["certificateId"] == lone.cert_id
    assert cert_status(iot, lone.cert_id) == "ACTIVE"
    iot.attach_policy(policyName=allow_all, target=r3["certificateArn"])

    live = assert_connects(paho, server, named, unique("reg-named"))
    assert_connects(paho, server, found, unique("reg-found")).disconnect()
    lone_live = assert_connects(paho, server, lone, unique("lone"))

    # Deactivate the CA: its devices are dropped and refused; the lone device is not.
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    assert iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]["status"] == "INACTIVE"
    live.wait_disconnected()
    for dev in (named, found):
        how = refused_somehow(paho, server, dev, unique("ca-off"))
        assert how.startswith("TLS"), f"documented: the TLS handshake fails; got {how}"
    assert lone_live.publish("lone/still-here", b"x", qos=1) == 0
    assert cert_status(iot, named.cert_id) == "ACTIVE"  # the certificate itself is unchanged

    # Reactivate the CA: its devices connect again.
    iot.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE")
    assert_connects(paho, server, named, unique("ca-on")).disconnect()


def test_list_ca_certificates_paginates(iot, tmp_path):
    for i in range(3):
        register_ca(iot, tmp_path / f"ca{i}", f"Paged CA {i}", auto=False)
    first = iot.list_ca_certificates(pageSize=2)
    assert len(first["certificates"]) == 2 and first.get("nextMarker"), first
    second = iot.list_ca_certificates(pageSize=2, marker=first["nextMarker"])
    assert not {c["certificateId"] for c in first["certificates"]} & {c["certificateId"] for c in second["certificates"]}


def test_list_certificates_and_things_paginate(iot):
    made = [iot.create_keys_and_certificate(setAsActive=False)["certificateId"] for _ in range(3)]
    seen, marker = [], None
    while True:
        page = iot.list_certificates(pageSize=2, **({"marker": marker} if marker else {}))
        assert len(page["certificates"]) <= 2
        seen += [c["certificateId"] for c in page["certificates"]]
        marker = page.get("nextMarker")
        if not marker:
            break
    assert len(seen) == len(set(seen)) and set(made) <= set(seen)
    names = [unique("paged") for _ in range(3)]
    for n in names:
        iot.create_thing(thingName=n)
    things = [t["thingName"] for p in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 2})
              for t in p["things"]]
    assert len(things) == len(set(things)) and set(names) <= set(things)
    for c in made:
        iot.delete_certificate(certificateId=c)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

def test_thing_errors(iot):
    ghost = unique("ghost")
    for fn, kw in [(iot.describe_thing, {"thingName": ghost}),
                   (iot.update_thing, {"thingName": ghost, "attributePayload": {"attributes": {"a": "1"}}}),
                   (iot.list_thing_principals, {"thingName": ghost})]:
        assert api_error(fn, **kw)[:2] == ("ResourceNotFoundException", 404), fn
    r = iot.create_keys_and_certificate(setAsActive=False)
    assert api_error(iot.attach_thing_principal, thingName=ghost,
                     principal=r["certificateArn"])[:2] == ("ResourceNotFoundException", 404)
    name = unique("dup")
    iot.create_thing(thingName=name)
    assert api_error(iot.create_thing, thingName=name)[:2] == ("ResourceAlreadyExistsException", 409)
    assert api_error(iot.attach_thing_principal, thingName=name,
                     principal=cert_arn("0" * 64))[:2] == ("ResourceNotFoundException", 404)
    for bad in ["bad name", "bad!name", "slash/name", "x" * 129, "ü"]:
        code, status, msg = api_error(iot.create_thing, thingName=bad)
        assert (code, status) == ("InvalidRequestException", 400), (bad, code, status, msg)
    iot.delete_certificate(certificateId=r["certificateId"])


def test_delete_thing_with_wrong_expected_version(iot):
    name = unique("ver")
    iot.create_thing(thingName=name)
    try:
        code, status, msg = api_error(iot.delete_thing, thingName=name, expectedVersion=5)
        assert (code, status) == ("VersionConflictException", 409), (code, status, msg)
        assert iot.describe_thing(thingName=name)["version"] == 1
    finally:
        try:
            iot.delete_thing(thingName=name)
        except ClientError:
            pass


def test_delete_unknown_thing_succeeds(iot):
    iot.delete_thing(thingName=unique("never-existed"))


@pytest.mark.parametrize("register", ["register_certificate", "register_certificate_without_ca"])
@pytest.mark.parametrize("pem", [
    pytest.param("garbage", id="no-pem"),
    pytest.param("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", id="junk-body"),
    pytest.param("-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n", id="not-base64"),
])
def test_malformed_pem_refused(iot, register, pem):
    code, status, msg = api_error(getattr(iot, register), certificatePem=pem, status="ACTIVE")
    assert (code, status) == ("CertificateValidationException", 400), (code, status, msg)
    assert "certificatePem" in msg, msg


def test_truncated_certificate_refused(iot, tmp_path):
    _, cert, _ = make_foreign_ca_device(tmp_path / "trunc", cn="trunc")
    lines = cert.read_text().strip().splitlines()
    truncated = "\n".join(lines[:len(lines) // 2] + [lines[-1]]) + "\n"
    code, status, msg = api_error(iot.register_certificate_without_ca, certificatePem=truncated, status="ACTIVE")
    assert (code, status) == ("CertificateValidationException", 400), (code, status, msg)


def test_csr_refusals(iot, tmp_path):
    before = len(iot.list_certificates(pageSize=250)["certificates"])
    small, _ = make_csr(tmp_path, "small", "/CN=small", key=["-newkey", "rsa:1024"])
    code, status, msg = api_error(iot.create_certificate_from_csr, certificateSigningRequest=small.read_text(),
                                  setAsActive=True)
    assert (code, status) == ("InvalidRequestException", 400), (code, status, msg)
    assert "2048" in msg and "1024" in msg, msg

    good, _ = make_csr(tmp_path, "tampered", "/CN=tampered")
    lines = good.read_text().strip().splitlines()
    der = bytearray(base64.b64decode("".join(lines[1:-1])))
    der[-1] ^= 0x01  # the last byte of the signature BIT STRING
    bad = lines[0] + "\n" + base64.encodebytes(bytes(der)).decode() + lines[-1] + "\n"
    code, status, msg = api_error(iot.create_certificate_from_csr, certificateSigningRequest=bad, setAsActive=True)
    assert (code, status) == ("InvalidRequestException", 400), (code, status, msg)
    assert "signature" in msg.lower(), msg

    for junk in ["garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"]:
        code, status, msg = api_error(iot.create_certificate_from_csr, certificateSigningRequest=junk)
        assert (code, status) == ("InvalidRequestException", 400), (junk, code, status, msg)
    # Nothing was issued for any of them.
    assert len(iot.list_certificates(pageSize=250)["certificates"]) == before


def test_ca_registration_refusals(iot, tmp_path):
    ca, ca_key = make_ca(tmp_path / "ca", "Refused CA")
    wrong = registration_proof(iot, tmp_path / "wrong", ca, ca_key, code="0123456789abcdef" * 4)
    code, status, msg = api_error(iot.register_ca_certificate, caCertificate=ca.read_text(),
                                  verificationCertificate=wrong.read_text(), setAsActive=True)
    assert (code, status) == ("RegistrationCodeValidationException", 400), (code, status, msg)

    # Right code, but signed by another key: no proof of possession.
    other_ca, other_key = make_ca(tmp_path / "other", "Refused CA")
    stolen = registration_proof(iot, tmp_path / "stolen", other_ca, other_key)
    code, status, msg = api_error(iot.register_ca_certificate, caCertificate=ca.read_text(),
                                  verificationCertificate=stolen.read_text(), setAsActive=True)
    assert code == "CertificateValidationException" and status == 400, (code, status, msg)

    # A leaf certificate is not a CA.
    _, leaf, _ = make_foreign_ca_device(tmp_path / "leaf", cn="leaf")
    code, status, msg = api_error(iot.register_ca_certificate, caCertificate=leaf.read_text(),
                                  verificationCertificate=stolen.read_text(), setAsActive=True)
    assert code == "CertificateValidationException", (code, status, msg)
    code, status, msg = api_error(iot.register_ca_certificate, caCertificate="not a pem",
                                  verificationCertificate=stolen.read_text())
    assert code == "CertificateValidationException", (code, status, msg)
    ids = [c["certificateId"] for c in iot.list_ca_certificates()["certificates"]]
    assert sha256_hex(ca.read_text()) not in ids


def test_invalid_status_transitions(iot):
    r = iot.create_keys_and_certificate(setAsActive=True)
    cid = r["certificateId"]
    for target in ("PENDING_TRANSFER", "PENDING_ACTIVATION", "REGISTER_INACTIVE"):
        code, status, msg = api_error(iot.update_certificate, certificateId=cid, newStatus=target)
        assert code == "CertificateStateException" and status == 406, (target, code, status, msg)
    assert api_error(iot.update_certificate, certificateId=cid, newStatus="BOGUS")[:2] == \
        ("InvalidRequestException", 400)
    assert cert_status(iot, cid) == "ACTIVE"
    assert api_error(iot.update_certificate, certificateId="ab" * 32,
                     newStatus="INACTIVE")[:2] == ("ResourceNotFoundException", 404)
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    assert api_error(iot.update_certificate, certificateId=cid, newStatus="ACTIVE")[0] == "CertificateStateException"
    iot.delete_certificate(certificateId=cid)


# ---------------------------------------------------------------------------
# Authentication of the management API
# ---------------------------------------------------------------------------

def _http(method: str, url: str, headers: dict | None = None, body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_unsigned_and_wrongly_signed_requests(server, iot):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    api = json.loads((server.data_dir / "endpoints.json").read_text())["api"]
    admin = json.loads((server.data_dir / "admin-credentials.json").read_text())

    def sign(method: str, url: str, body: bytes) -> dict:
        req = AWSRequest(method=method, url=url, data=body, headers={"content-type": "application/json"})
        SigV4Auth(Credentials(admin["accessKeyId"], admin["secretAccessKey"]), "iot", REGION).add_auth(req)
        return dict(req.headers.items())

    thing = unique("unsigned")
    for method, path, body in [("GET", "/things", None), ("POST", f"/things/{thing}", b"{}"),
                               ("POST", "/keys-and-certificate?setAsActive=true", b"")]:
        status, headers, payload = _http(method, api + path, {"content-type": "application/json"}, body)
        lower = {k.lower(): v for k, v in headers.items()}
        assert status == 403, (method, path, status, payload)
        assert lower.get("x-amzn-errortype") == "MissingAuthenticationTokenException", headers
        assert json.loads(payload)["message"]
    assert api_error(iot.describe_thing, thingName=thing)[0] == "ResourceNotFoundException"  # nothing was created

    bad_secret = iot_client(server, secret="x" * 40)
    code, status, _ = api_error(bad_secret.create_thing, thingName=thing)
    assert (code, status) == ("InvalidSignatureException", 403)
    unknown = iot_client(server, access_key="AKIAUNKNOWNKEY000000")
    code, status, _ = api_error(unknown.list_things)
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert api_error(iot.describe_thing, thingName=thing)[0] == "ResourceNotFoundException"

    # A signature older than the 15 minutes AWS tolerates (signed with botocore's pure-Python
    # SigV4Auth at a shifted clock: boto3 itself may sign through awscrt).
    import botocore.auth
    real_now = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real_now() - datetime.timedelta(minutes=20)
    try:
        stale = sign("POST", f"{api}/things/{thing}", b"{}")
    finally:
        botocore.auth.get_current_datetime = real_now
    status, headers, payload = _http("POST", f"{api}/things/{thing}", stale, b"{}")
    assert status == 403, (status, payload)
    assert api_error(iot.describe_thing, thingName=thing)[0] == "ResourceNotFoundException"

    # A valid signature does not cover another path or another body.
    hdrs = sign("POST", f"{api}/things/{thing}", b"{}")
    status, headers, _ = _http("POST", f"{api}/things/{thing}-other", hdrs, b"{}")
    assert status == 403, status
    status, headers, _ = _http("POST", f"{api}/things/{thing}", hdrs,
                               b'{"attributePayload":{"attributes":{"a":"b"}}}')
    assert status == 403, status
    # ... while the request as signed goes through.
    status, _, payload = _http("POST", f"{api}/things/{thing}", hdrs, b"{}")
    assert status == 200, payload
    assert iot.describe_thing(thingName=thing)["attributes"] == {}
