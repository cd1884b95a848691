"""The identity and policy flow through the AWS CLI (`aws iot ... --endpoint-url`),
parsing its JSON output, with real devices (mosquitto_pub) using what it made."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import unique
from e2elib import QUIET, device_from_files, mosquitto_pub

REGION = "us-east-1"
ACCOUNT = "000000000000"


def find_aws() -> list[str] | None:
    """The AWS CLI pinned in scripts/test-deps.sh (awscli in the test venv)."""
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.is_file() and os.access(venv_aws, os.X_OK):
        return [str(venv_aws)]
    if importlib.util.find_spec("awscli") is not None:
        return [sys.executable, "-m", "awscli"]
    return None


AWS = find_aws()
pytestmark = pytest.mark.skipif(
    AWS is None, reason="the AWS CLI (PyPI package awscli, pinned in scripts/test-deps.sh) is not installed in "
                        "the test virtualenv: run scripts/test-deps.sh")


class AwsCli:
    def __init__(self, server, secret: str | None = None):
        creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
        self.endpoint = json.loads((server.data_dir / "endpoints.json").read_text())["api"]
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ACCESS_KEY_ID": creds["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": secret or creds["secretAccessKey"],
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
        }

    def run(self, op: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*AWS, "iot", op, *args, "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.env, stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, f"aws iot {op} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r

    def __call__(self, op: str, *args: str) -> dict:
        out = self.run(op, *args).stdout.strip()
        return json.loads(out) if out else {}

    def fails(self, op: str, *args: str) -> str:
        r = self.run(op, *args, check=False)
        assert r.returncode != 0, f"aws iot {op} succeeded:\n{r.stdout}"
        return r.stderr


@pytest.fixture(scope="module")
def aws(server):
    return AwsCli(server)


@pytest.fixture(scope="module")
def iot(server):
    """boto3, for checks and clean-up around the CLI calls under test (faster)."""
    import boto3
    from botocore.config import Config
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    return boto3.client("iot", endpoint_url=json.loads((server.data_dir / "endpoints.json").read_text())["api"],
                        region_name=REGION, aws_access_key_id=creds["accessKeyId"],
                        aws_secret_access_key=creds["secretAccessKey"], config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def watcher(server):
    return server.provision(unique("cli-watcher"))


def sha256_hex(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def openssl(cwd: Path, *args: str) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr}"


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


def file_url(p: Path) -> str:
    return "file://" + str(p.resolve())


def thing_policy(path: Path) -> Path:
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    t = "${iot:Connection.Thing.ThingName}"
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{t}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arn}:topic/{t}/*"},
        {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{arn}:topic/{t}/secret"},
    ]}))
    return path


def test_cli_thing_keys_policy_and_status(server, aws, iot, paho, watcher, tmp_path):
    thing = unique("cli-thing")
    t = aws("create-thing", "--thing-name", thing, "--attribute-payload", '{"attributes":{"site":"lab"}}')
    assert t["thingName"] == thing
    assert t["thingArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"
    d = aws("describe-thing", "--thing-name", thing)
    assert d["attributes"] == {"site": "lab"} and d["thingId"] == t["thingId"] and d["version"] == 1
    assert thing in [x["thingName"] for x in aws("list-things")["things"]]

    k = aws("create-keys-and-certificate", "--set-as-active")
    cid, arn = k["certificateId"], k["certificateArn"]
    assert cid == sha256_hex(k["certificatePem"]) and arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cid}"
    assert "PRIVATE KEY" in k["keyPair"]["PrivateKey"]
    (tmp_path / "cert.pem").write_text(k["certificatePem"])
    (tmp_path / "key.pem").write_text(k["keyPair"]["PrivateKey"])
    (tmp_path / "key.pem").chmod(0o600)
    dev = device_from_files(thing, tmp_path / "cert.pem", tmp_path / "key.pem", server.ca)

    assert aws("attach-thing-principal", "--thing-name", thing, "--principal", arn) == {}
    policy = unique("cli-policy")
    p = aws("create-policy", "--policy-name", policy, "--policy-document", file_url(thing_policy(tmp_path / "p.json")))
    assert p["policyName"] == policy and p["policyVersionId"] == "1"
    assert json.loads(p["policyDocument"])["Statement"][0]["Action"] == "iot:Connect"
    assert aws("attach-policy", "--policy-name", policy, "--target", arn) == {}

    topic = f"arn:aws:iot:{REGION}:{ACCOUNT}:topic"
    a = aws("test-authorization", "--principal", arn, "--client-id", thing, "--auth-infos",
            json.dumps([{"actionType": "PUBLISH", "resources": [f"{topic}/{thing}/temp"]},
                        {"actionType": "PUBLISH", "resources": [f"{topic}/{thing}/secret"]},
                        {"actionType": "PUBLISH", "resources": [f"{topic}/someone-else/temp"]},
                        {"actionType": "CONNECT", "resources": [f"arn:aws:iot:{REGION}:{ACCOUNT}:client/{thing}"]}]))
    decisions = [r["authDecision"] for r in a["authResults"]]
    assert decisions == ["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY", "ALLOWED"], a
    assert a["authResults"][1]["denied"]["explicitDeny"]["policies"][0]["policyName"] == policy

    w = paho(server, watcher, version=5)
    w.connect()
    w.subscribe(f"{thing}/#", qos=1)
    mosquitto_pub(server, dev, f"{thing}/temp", "from-cli-cert", qos=1, client_id=thing)
    assert w.expect(f"{thing}/temp").payload == b"from-cli-cert"

    aws("update-certificate", "--certificate-id", cid, "--new-status", "INACTIVE")
    assert iot.describe_certificate(certificateId=cid)["certificateDescription"]["status"] == "INACTIVE"
    r = mosquitto_pub(server, dev, f"{thing}/temp", "inactive", qos=1, client_id=thing, check=False)
    assert r.returncode != 0 and "not authori" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    w.expect_none(QUIET, topic_prefix=f"{thing}/")

    err = aws.fails("delete-thing", "--thing-name", thing)  # a principal is still attached
    assert "InvalidRequestException" in err, err
    iot.detach_thing_principal(thingName=thing, principal=arn)
    iot.detach_policy(policyName=policy, target=arn)
    iot.delete_certificate(certificateId=cid)
    assert aws("delete-thing", "--thing-name", thing) == {}
    assert thing not in [x["thingName"] for x in iot.list_things()["things"]]


def test_cli_certificate_from_csr(server, aws, iot, paho, watcher, tmp_path):
    thing = unique("cli-csr")
    iot.create_thing(thingName=thing)
    openssl(tmp_path, "req", "-new", *EC, "-nodes", "-keyout", "dev.key", "-out", "dev.csr", "-subj", f"/CN={thing}")
    c = aws("create-certificate-from-csr", "--certificate-signing-request", file_url(tmp_path / "dev.csr"),
            "--set-as-active")
    assert c["certificateId"] == sha256_hex(c["certificatePem"])
    (tmp_path / "dev.pem.crt").write_text(c["certificatePem"])
    dev = device_from_files(thing, tmp_path / "dev.pem.crt", tmp_path / "dev.key", server.ca)
    iot.attach_thing_principal(thingName=thing, principal=c["certificateArn"])
    policy = unique("cli-csr-policy")
    iot.create_policy(policyName=policy, policyDocument=thing_policy(tmp_path / "p.json").read_text())
    iot.attach_policy(policyName=policy, target=c["certificateArn"])
    listed = {x["certificateId"]: x["status"] for x in iot.list_certificates()["certificates"]}
    assert listed[c["certificateId"]] == "ACTIVE"

    w = paho(server, watcher, version=5)
    w.connect()
    w.subscribe(f"{thing}/#", qos=1)
    mosquitto_pub(server, dev, f"{thing}/csr", "csr-made", qos=1, client_id=thing)
    assert w.expect(f"{thing}/csr").payload == b"csr-made"
    # The policy holds for it too: another client id is refused.
    r = mosquitto_pub(server, dev, f"{thing}/csr", "x", qos=1, client_id=f"{thing}-other", check=False)
    assert r.returncode != 0, r.stdout + r.stderr


def test_cli_register_ca_and_device(server, aws, iot, paho, tmp_path):
    openssl(tmp_path, "req", "-x509", *EC, "-nodes", "-days", "30", "-keyout", "ca.key", "-out", "ca.pem",
            "-subj", "/CN=CLI Fleet CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    code = iot.get_registration_code()["registrationCode"]
    assert code
    openssl(tmp_path, "req", "-new", *EC, "-nodes", "-keyout", "verify.key", "-out", "verify.csr",
            "-subj", f"/CN={code}")
    openssl(tmp_path, "x509", "-req", "-in", "verify.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "verify.pem", "-days", "1")
    r = aws("register-ca-certificate", "--ca-certificate", file_url(tmp_path / "ca.pem"),
            "--verification-certificate", file_url(tmp_path / "verify.pem"), "--set-as-active",
            "--allow-auto-registration")
    ca_id = r["certificateId"]
    assert ca_id == sha256_hex((tmp_path / "ca.pem").read_text())
    d = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert d["status"] == "ACTIVE" and d["autoRegistrationStatus"] == "ENABLE"

    # A device certificate of that CA, registered through the CLI, connects.
    openssl(tmp_path, "req", "-new", *EC, "-nodes", "-keyout", "dev.key", "-out", "dev.csr", "-subj", "/CN=cli-ca-dev")
    (tmp_path / "ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    openssl(tmp_path, "x509", "-req", "-in", "dev.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "dev.pem", "-days", "2", "-extfile", "ext.cnf")
    reg = iot.register_certificate(certificatePem=(tmp_path / "dev.pem").read_text(),
                                   caCertificatePem=(tmp_path / "ca.pem").read_text(), status="ACTIVE")
    dev = device_from_files("cli-ca-dev", tmp_path / "dev.pem", tmp_path / "dev.key", server.ca)
    assert reg["certificateId"] == dev.cert_id
    policy = unique("cli-all")
    (tmp_path / "all.json").write_text(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}')
    iot.create_policy(policyName=policy, policyDocument=(tmp_path / "all.json").read_text())
    iot.attach_policy(policyName=policy, target=reg["certificateArn"])
    c = paho(server, dev, client_id=unique("cli-ca-dev"), version=4)
    c.connect()
    assert c.publish("cli/ca", b"x", qos=1) == 0


def test_cli_errors(server, aws, tmp_path):
    err = aws.fails("describe-thing", "--thing-name", unique("ghost"))
    assert "ResourceNotFoundException" in err, err
    (tmp_path / "bad.json").write_text('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                       '"Action":"iot:Pubish","Resource":"*"}]}')
    err = aws.fails("create-policy", "--policy-name", unique("bad"), "--policy-document",
                    file_url(tmp_path / "bad.json"))
    assert "MalformedPolicyException" in err and "iot:Publish" in err, err
    err = AwsCli(server, secret="wrong" * 8).fails("list-things")
    assert "InvalidSignatureException" in err, err
