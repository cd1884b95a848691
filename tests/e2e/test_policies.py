"""Authorization with AWS IoT policies, end to end: Paho (MQTT 3.1.1 and 5)
and mosquitto_pub/sub against policies made through boto3 — the default
least-privilege device policy, the seed's hard-coded and serial-number
policies, iot:Receive, live policy changes, thing-group policies, Deny over
Allow, variables without a value, conditions, and the policy API itself."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import unique
from e2elib import QUIET, RawConn, device_from_files, mosquitto_pub, packet, publish_packet

REGION = "us-east-1"
ACCOUNT = "000000000000"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
DEFAULT_POLICY = "ThingportDefaultDevicePolicy"
NOT_AUTHORIZED = 0x87


@pytest.fixture(scope="module")
def iot(server):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    endpoints = json.loads((server.data_dir / "endpoints.json").read_text())
    return boto3.client("iot", endpoint_url=endpoints["api"], region_name=REGION,
                        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def writer(server):
    """A device allowed everything (the suite's permissive policy), to publish and watch."""
    return server.provision(unique("pol-writer"))


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


CONNECT_ANY = allow("iot:Connect", "*")


def make_policy(iot, *statements, name: str | None = None) -> str:
    name = name or unique("pol")
    iot.create_policy(policyName=name, policyDocument=doc(*statements))
    return name


def cert_arn(dev) -> str:
    return f"{ARN}:cert/{dev.cert_id}"


def device(server, iot, *policies: str, attrs: dict | None = None, name: str | None = None):
    """A provisioned device (thing exclusively attached) with exactly these policies."""
    dev = server.provision(name or unique("pol-dev"), policy=None)
    for p in policies:
        iot.attach_policy(policyName=p, target=cert_arn(dev))
    if attrs:
        iot.update_thing(thingName=dev.name, attributePayload={"attributes": attrs})
    return dev


def connected(paho, server, dev, client_id=None, version=5):
    c = paho(server, dev, client_id=client_id or unique(dev.name), version=version)
    c.connect()
    return c


def refused_connect(paho, server, dev, client_id, version=5):
    c = paho(server, dev, client_id=client_id, version=version)
    ack = c.connect(expect=None)
    assert ack is not None, f"{client_id}: no CONNACK"
    assert ack.reason == NOT_AUTHORIZED, f"{client_id}: CONNACK {ack.reason:#x}, expected 0x87"
    c.wait_disconnected()


def v311_publish_closes(c, topic):
    """MQTT 3.1.1: a publish the policy refuses ends the connection (no PUBACK)."""
    c.publish(topic, b"refused", qos=1, wait=False)
    c.wait_disconnected()


def watch(paho, server, writer, *filters):
    w = paho(server, writer, version=5)
    w.connect()
    assert w.subscribe([(f, 1) for f in filters]) == [1] * len(filters)
    return w


# ---------------------------------------------------------------------------
# The default device policy
# ---------------------------------------------------------------------------

def test_default_policy_mqtt5(server, iot, paho, writer):
    a = server.provision(unique("dflt-a"), policy=DEFAULT_POLICY)
    b = server.provision(unique("dflt-b"), policy=DEFAULT_POLICY)
    w = watch(paho, server, writer, f"{a.name}/#", f"{b.name}/#")

    c = connected(paho, server, a, client_id=a.name)
    assert c.publish(f"{a.name}/temp", b"21", qos=1) == 0
    assert w.expect(f"{a.name}/temp").payload == b"21"
    assert c.publish(f"{b.name}/temp", b"spoof", qos=1) == NOT_AUTHORIZED
    assert c.publish("elsewhere/temp", b"spoof", qos=1) == NOT_AUTHORIZED
    w.expect_none(QUIET, topic_prefix=b.name)
    # still connected after the refusals (MQTT 5 reports them)
    assert c.subscribe([(f"{a.name}/#", 1), (f"{b.name}/#", 1), ("#", 1)]) == [1, NOT_AUTHORIZED, NOT_AUTHORIZED]
    assert c.publish(f"{a.name}/echo", b"me", qos=1) == 0
    assert c.expect(f"{a.name}/echo").payload == b"me"

    # NAME-suffix client ids are its own; another thing's name is not.
    connected(paho, server, a, client_id=f"{a.name}-sub").disconnect()
    refused_connect(paho, server, a, b.name)
    refused_connect(paho, server, a, "someone")


def test_default_policy_mqtt311(server, iot, paho, writer):
    a = server.provision(unique("dflt311-a"), policy=DEFAULT_POLICY)
    b = server.provision(unique("dflt311-b"), policy=DEFAULT_POLICY)
    w = watch(paho, server, writer, f"{b.name}/#")

    c = connected(paho, server, a, client_id=a.name, version=4)
    assert c.subscribe([(f"{a.name}/#", 1), (f"{b.name}/#", 1)]) == [1, 0x80]
    assert c.publish(f"{a.name}/ok", b"x", qos=1) == 0
    v311_publish_closes(c, f"{b.name}/temp")
    w.expect_none(QUIET)

    # QoS 0 too
    c0 = connected(paho, server, a, client_id=f"{a.name}-q0", version=4)
    c0.publish(f"{b.name}/temp", b"refused", qos=0, wait=False)
    c0.wait_disconnected()
    w.expect_none(QUIET)
    refused_connect(paho, server, a, b.name, version=4)


def test_default_policy_mosquitto(server, iot, writer, mosq_sub, paho):
    a = server.provision(unique("mosq-a"), policy=DEFAULT_POLICY)
    b = server.provision(unique("mosq-b"), policy=DEFAULT_POLICY)
    w = watch(paho, server, writer, f"{a.name}/#", f"{b.name}/#")

    mosquitto_pub(server, a, f"{a.name}/m", "mine", qos=1, client_id=a.name)
    assert w.expect(f"{a.name}/m").payload == b"mine"
    # 3.1.1: the server closes the connection, mosquitto_pub fails.
    r = mosquitto_pub(server, a, f"{b.name}/m", "theirs", qos=1, client_id=a.name, check=False)
    assert r.returncode != 0, f"mosquitto_pub to the neighbour's topic succeeded: {r.stdout}{r.stderr}"
    # MQTT 5: PUBACK 0x87, which mosquitto_pub reports (its exit code stays 0).
    r = mosquitto_pub(server, a, f"{b.name}/m", "theirs", qos=1, client_id=a.name, version="mqttv5", check=False)
    assert "Publish 1 failed: Not authorized" in r.stderr, r.stdout + r.stderr
    r = mosquitto_pub(server, a, f"{a.name}/m", "x", qos=1, client_id=b.name, check=False)
    assert r.returncode != 0 and "not authori" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    w.expect_none(QUIET, topic_prefix=b.name)

    s = mosq_sub(server, a, [f"{a.name}/#", f"{b.name}/#"], qos=1, client_id=f"{a.name}-sub").wait_subscribed()
    granted = [ln for ln in s.all_lines if ln.startswith("Subscribed (mid")]
    assert granted and granted[0].endswith(": 1, 128"), s.all_lines
    s5 = mosq_sub(server, a, [f"{b.name}/#"], qos=1, client_id=f"{a.name}-sub5", version="mqttv5")
    s5.wait_subscribed()
    granted = [ln for ln in s5.all_lines if ln.startswith("Subscribed (mid")]
    assert granted and granted[0].endswith(": 135"), s5.all_lines
    mosquitto_pub(server, a, f"{a.name}/m2", "to-sub", qos=1, client_id=a.name)
    assert s.expect_line() == f"{a.name}/m2 to-sub"


def test_default_policy_non_exclusive_attachment(server, iot, paho):
    """Without an exclusive attachment the thing is the one named by the client id."""
    name = unique("nonexcl")
    iot.create_thing(thingName=name)
    r = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=name, principal=r["certificateArn"])
    iot.attach_policy(policyName=DEFAULT_POLICY, target=r["certificateArn"])
    d = server.data_dir.parent / f"{name}-files"
    d.mkdir()
    (d / "c.pem").write_text(r["certificatePem"])
    (d / "k.pem").write_text(r["keyPair"]["PrivateKey"])
    dev = device_from_files(name, d / "c.pem", d / "k.pem", server.ca)
    c = connected(paho, server, dev, client_id=name)
    assert c.publish(f"{name}/x", b"1", qos=1) == 0
    # NAME-x is not a thing the certificate is attached to: no thing, no ThingName, no connect.
    refused_connect(paho, server, dev, f"{name}-x")


# ---------------------------------------------------------------------------
# The seed's policies
# ---------------------------------------------------------------------------

def test_seed_hard_coded_single_device(server, iot, paho):
    single = make_policy(iot, allow("iot:Publish", f"{ARN}:topic/iotbutton/G030XXXX"), allow("iot:Connect", "*"),
                         name=unique("iot-button-single"))
    dev = device(server, iot, single)
    for version in (5, 4):
        c = connected(paho, server, dev, version=version)
        assert c.publish("iotbutton/G030XXXX", b"click", qos=1) == 0
        if version == 5:
            assert c.publish("iotbutton/G030YYYY", b"click", qos=1) == NOT_AUTHORIZED
            assert c.publish("iotbutton/G030XXXX/more", b"click", qos=1) == NOT_AUTHORIZED
            assert c.subscribe("iotbutton/G030XXXX", qos=1) == [NOT_AUTHORIZED]
        else:
            assert c.subscribe("iotbutton/G030XXXX", qos=1) == [0x80]
            v311_publish_closes(c, "iotbutton/G030YYYY")


def test_seed_certificate_subject_serial_number(server, iot, paho, tmp_path):
    fleet = make_policy(iot, allow("iot:Publish", [f"{ARN}:topic/iotbutton/${{iot:Certificate.Subject.SerialNumber}}"]),
                        allow("iot:Connect", "*"), name=unique("iot-button-fleet"))
    serial = "G030" + unique("Z").replace("-", "")

    def run(*args):
        r = subprocess.run(["openssl", *args], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr

    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "button.key",
        "-out", "button.csr", "-subj", f"/CN=button/serialNumber={serial}")
    (tmp_path / "ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "button.csr", "-CA", str(server.ca), "-CAkey", str(server.data_dir / "ca" / "root-ca.key"),
        "-CAcreateserial", "-out", "button.pem.crt", "-days", "30", "-extfile", "ext.cnf")
    r = iot.register_certificate(certificatePem=(tmp_path / "button.pem.crt").read_text(), status="ACTIVE")
    dev = device_from_files("button", tmp_path / "button.pem.crt", tmp_path / "button.key", server.ca)
    assert r["certificateId"] == dev.cert_id
    iot.attach_policy(policyName=fleet, target=r["certificateArn"])

    c = connected(paho, server, dev, client_id=unique("any-client-id"))
    assert c.publish(f"iotbutton/{serial}", b"click", qos=1) == 0
    assert c.publish("iotbutton/G030XXXX", b"click", qos=1) == NOT_AUTHORIZED
    assert c.publish("iotbutton/${iot:Certificate.Subject.SerialNumber}", b"literal", qos=1) == NOT_AUTHORIZED

    t = iot.test_authorization(principal=r["certificateArn"], authInfos=[
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/iotbutton/{serial}"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/iotbutton/G030XXXX"]}])
    assert [x["authDecision"] for x in t["authResults"]] == ["ALLOWED", "IMPLICIT_DENY"]


# ---------------------------------------------------------------------------
# iot:Receive, Deny over Allow, live changes
# ---------------------------------------------------------------------------

def test_receive_is_checked_per_delivery(server, iot, paho, writer):
    mine = unique("mine")
    snoop = make_policy(iot, allow(["iot:Connect", "iot:Subscribe", "iot:Publish"], "*"),
                        allow("iot:Receive", f"{ARN}:topic/{mine}/*"))
    dev = device(server, iot, snoop)
    w = connected(paho, server, writer)
    assert w.publish(f"theirs-{mine}/retained", b"secret", qos=1, retain=True) == 0
    assert w.publish(f"{mine}/retained", b"public", qos=1, retain=True) == 0

    for version in (5, 4):
        s = connected(paho, server, dev, version=version)
        assert s.subscribe("#", qos=1) == [1]
        # Retained messages: only the one it may receive (nothing else on the server may reach it).
        assert [(m.topic, m.payload) for m in s.collect(1)] == [(f"{mine}/retained", b"public")]
        for t in (f"theirs-{mine}/secret", f"{mine}/ok", f"theirs-{mine}/secret2"):
            assert w.publish(t, t.encode(), qos=1) == 0
        assert [m.topic for m in s.collect(1)] == [f"{mine}/ok"]
        s.expect_none(QUIET)
        s.disconnect()
    w.publish(f"theirs-{mine}/retained", b"", qos=1, retain=True)
    w.publish(f"{mine}/retained", b"", qos=1, retain=True)


def test_deny_overrides_allow(server, iot, paho, writer):
    zone = unique("deny")
    everything = make_policy(iot, allow("iot:*", "*"))
    same_doc = make_policy(iot, allow("iot:*", "*"), deny("iot:Publish", f"{ARN}:topic/{zone}/forbidden"),
                           deny("iot:Subscribe", f"{ARN}:topicfilter/{zone}/#"))
    other_doc = make_policy(iot, deny("iot:Publish", f"{ARN}:topic/{zone}/*"))
    w = watch(paho, server, writer, f"{zone}/#")

    d1 = device(server, iot, same_doc)
    c = connected(paho, server, d1)
    assert c.publish(f"{zone}/allowed", b"1", qos=1) == 0
    assert c.publish(f"{zone}/forbidden", b"2", qos=1) == NOT_AUTHORIZED
    assert c.subscribe([(f"{zone}/#", 1), (f"{zone}/+", 1)]) == [NOT_AUTHORIZED, 1]

    d2 = device(server, iot, everything, other_doc)
    c2 = connected(paho, server, d2)
    assert c2.publish(f"{zone}/anything", b"3", qos=1) == NOT_AUTHORIZED
    assert c2.publish(f"not-{zone}/x", b"4", qos=1) == 0
    assert w.expect(f"{zone}/allowed").payload == b"1"
    w.expect_none(QUIET, topic_prefix=f"{zone}/")

    # Deny on Connect beats Allow iot:*.
    no_connect = make_policy(iot, deny("iot:Connect", f"{ARN}:client/blocked-*"))
    d3 = device(server, iot, everything, no_connect)
    refused_connect(paho, server, d3, unique("blocked"))
    connected(paho, server, d3, client_id=unique("fine")).disconnect()


def test_policy_version_change_applies_to_live_connection(server, iot, paho, writer):
    zone = unique("live")
    v1 = doc(CONNECT_ANY, allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/{zone}/*"),
             allow("iot:Subscribe", f"{ARN}:topicfilter/{zone}/*"))
    name = unique("live-pol")
    iot.create_policy(policyName=name, policyDocument=v1)
    dev = device(server, iot, name)
    c5 = connected(paho, server, dev, version=5)
    c4 = connected(paho, server, dev, version=4)
    assert c5.subscribe(f"{zone}/#", qos=1) == [1]
    w = connected(paho, server, writer)

    assert c5.publish(f"{zone}/a", b"1", qos=1) == 0
    assert c5.expect(f"{zone}/a").payload == b"1"
    # Narrow: only zone/b, no more receiving zone/a.
    v2 = doc(CONNECT_ANY, allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/{zone}/b"))
    r = iot.create_policy_version(policyName=name, policyDocument=v2, setAsDefault=True)
    assert r["policyVersionId"] == "2" and r["isDefaultVersion"] is True
    assert c5.publish(f"{zone}/a", b"2", qos=1) == NOT_AUTHORIZED
    assert c5.publish(f"{zone}/b", b"3", qos=1) == 0
    assert c5.expect(f"{zone}/b").payload == b"3"
    assert w.publish(f"{zone}/a", b"from-writer", qos=1) == 0
    c5.expect_none(QUIET)
    v311_publish_closes(c4, f"{zone}/a")

    # Back to version 1: allowed again, same connection.
    iot.set_default_policy_version(policyName=name, policyVersionId="1")
    assert c5.publish(f"{zone}/a", b"4", qos=1) == 0
    assert c5.expect(f"{zone}/a").payload == b"4"

    # Detached: nothing is allowed any more, still without reconnecting.
    iot.detach_policy(policyName=name, target=cert_arn(dev))
    assert c5.publish(f"{zone}/b", b"5", qos=1) == NOT_AUTHORIZED
    assert c5.subscribe(f"{zone}/c", qos=1) == [NOT_AUTHORIZED]
    refused_connect(paho, server, dev, unique("detached"))


# ---------------------------------------------------------------------------
# Thing groups, variables and conditions
# ---------------------------------------------------------------------------

def test_thing_group_policy(server, iot, paho):
    zone = unique("grp")
    parent, child = unique("fleet"), unique("fleet-eu")
    p_parent = iot.create_thing_group(thingGroupName=parent)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    gp = make_policy(iot, CONNECT_ANY, allow("iot:Publish", f"{ARN}:topic/{zone}/${{iot:Connection.Thing.ThingName}}"))
    iot.attach_policy(policyName=gp, target=p_parent["thingGroupArn"])
    dev = device(server, iot)  # no policy of its own
    refused_connect(paho, server, dev, unique("nogroup"))

    # A member of the child group gets the parent group's policy.
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=dev.name)
    c = connected(paho, server, dev)
    assert c.publish(f"{zone}/{dev.name}", b"1", qos=1) == 0
    assert c.publish(f"{zone}/other", b"2", qos=1) == NOT_AUTHORIZED
    eff = iot.get_effective_policies(principal=cert_arn(dev), thingName=dev.name)["effectivePolicies"]
    assert [p["policyName"] for p in eff] == [gp]
    assert [p["policyName"] for p in iot.list_attached_policies(target=p_parent["thingGroupArn"])["policies"]] == [gp]
    child_arn = iot.describe_thing_group(thingGroupName=child)["thingGroupArn"]
    assert iot.list_attached_policies(target=child_arn)["policies"] == []
    assert [p["policyName"] for p in iot.list_attached_policies(target=child_arn, recursive=True)["policies"]] == [gp]
    assert p_parent["thingGroupArn"] in iot.list_targets_for_policy(policyName=gp)["targets"]

    # Removed from the group: the live connection loses it.
    iot.remove_thing_from_thing_group(thingGroupName=child, thingName=dev.name)
    assert c.publish(f"{zone}/{dev.name}", b"3", qos=1) == NOT_AUTHORIZED
    assert iot.get_effective_policies(principal=cert_arn(dev), thingName=dev.name)["effectivePolicies"] == []


def test_deleted_thing_group_leaves_no_policy_behind(server, iot, paho):
    group = unique("short-lived")
    arn = iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    gp = make_policy(iot, allow("iot:*", "*"))
    iot.attach_policy(policyName=gp, target=arn)
    iot.delete_thing_group(thingGroupName=group)
    remaining = iot.list_targets_for_policy(policyName=gp)["targets"]
    # A group of the same name made later must not inherit the old group's policy.
    arn2 = iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    dev = device(server, iot)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=dev.name)
    attached = iot.list_attached_policies(target=arn2)["policies"]
    c = paho(server, dev, client_id=unique("reborn-group"), version=5)
    ack = c.connect(expect=None)
    assert (remaining, attached, ack.reason) == ([], [], NOT_AUTHORIZED)


def test_missing_variable_grants_nothing(server, iot, paho):
    zone = unique("attr")
    missing = "${iot:Connection.Thing.Attributes[missing]}"
    p = make_policy(iot, CONNECT_ANY,
                    # A statement using a variable without a value matches nothing, not even its other resources.
                    allow("iot:Publish", [f"{ARN}:topic/{zone}/{missing}", f"{ARN}:topic/{zone}/{missing}*",
                                          f"{ARN}:topic/{zone}/literal"]),
                    allow("iot:Publish", f"{ARN}:topic/{zone}/${{iot:Connection.Thing.Attributes[color]}}"),
                    allow("iot:Subscribe", f"{ARN}:topicfilter/{missing}*"))
    dev = device(server, iot, p, attrs={"color": "red"})
    c = connected(paho, server, dev)
    assert c.publish(f"{zone}/red", b"ok", qos=1) == 0
    for t in (f"{zone}/", f"{zone}/x", f"{zone}/anything/else", f"{zone}/{missing}", f"{zone}/literal"):
        assert c.publish(t, b"no", qos=1) == NOT_AUTHORIZED, t
    assert c.subscribe([("#", 1), ("a/b", 1)]) == [NOT_AUTHORIZED, NOT_AUTHORIZED]

    # A device with no thing at all: ThingName has no value either.
    r = iot.create_keys_and_certificate(setAsActive=True)
    thingless = make_policy(iot, allow("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}*"))
    iot.attach_policy(policyName=thingless, target=r["certificateArn"])
    t = iot.test_authorization(principal=r["certificateArn"], clientId="anything", authInfos=[
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/anything"]},
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/"]}])
    assert [x["authDecision"] for x in t["authResults"]] == ["IMPLICIT_DENY", "IMPLICIT_DENY"]


def test_condition_on_thing_attribute(server, iot, paho):
    zone = unique("cond")
    p = make_policy(iot, CONNECT_ANY,
                    allow("iot:Publish", f"{ARN}:topic/{zone}/*",
                          Condition={"StringEquals": {"iot:Connection.Thing.Attributes[color]": "red"}}))
    red = device(server, iot, p, attrs={"color": "red"})
    blue = device(server, iot, p, attrs={"color": "blue"})
    plain = device(server, iot, p)
    cr, cb, cp = (connected(paho, server, d) for d in (red, blue, plain))
    assert cr.publish(f"{zone}/x", b"1", qos=1) == 0
    assert cb.publish(f"{zone}/x", b"2", qos=1) == NOT_AUTHORIZED
    assert cp.publish(f"{zone}/x", b"3", qos=1) == NOT_AUTHORIZED
    # The attribute changes: the live connection follows.
    iot.update_thing(thingName=blue.name, attributePayload={"attributes": {"color": "red"}, "merge": True})
    assert cb.publish(f"{zone}/x", b"4", qos=1) == 0
    iot.update_thing(thingName=red.name, attributePayload={"attributes": {"color": ""}, "merge": True})
    assert cr.publish(f"{zone}/x", b"5", qos=1) == NOT_AUTHORIZED


def test_condition_on_source_ip(server, iot, paho):
    zone = unique("ip")
    p = make_policy(iot, CONNECT_ANY,
                    allow("iot:Publish", f"{ARN}:topic/{zone}/local",
                          Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),
                    allow("iot:Publish", f"{ARN}:topic/{zone}/office",
                          Condition={"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}),
                    allow("iot:Publish", f"{ARN}:topic/{zone}/ifexists",
                          Condition={"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[none]": "x"}}))
    c = connected(paho, server, device(server, iot, p))
    assert c.publish(f"{zone}/local", b"1", qos=1) == 0
    assert c.publish(f"{zone}/office", b"2", qos=1) == NOT_AUTHORIZED
    assert c.publish(f"{zone}/ifexists", b"3", qos=1) == 0


# ---------------------------------------------------------------------------
# The policy API
# ---------------------------------------------------------------------------

def api_error(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def test_policy_crud_and_versions(server, iot):
    name = unique("crud")
    d1 = doc(allow("iot:Connect", "*"))
    r = iot.create_policy(policyName=name, policyDocument=d1)
    assert r["policyArn"] == f"{ARN}:policy/{name}" and r["policyVersionId"] == "1"
    assert json.loads(r["policyDocument"]) == json.loads(d1)
    g = iot.get_policy(policyName=name)
    assert g["defaultVersionId"] == "1" and json.loads(g["policyDocument"]) == json.loads(d1)
    assert name in [p["policyName"] for p in iot.list_policies()["policies"]]
    assert api_error(iot.create_policy, policyName=name, policyDocument=d1)[:2] == \
        ("ResourceAlreadyExistsException", 409)
    for bad in ("bad name", "bad/name", "x" * 129):
        assert api_error(iot.create_policy, policyName=bad, policyDocument=d1)[:2] == ("InvalidRequestException", 400)

    docs = {"1": d1}
    for i in range(2, 6):
        di = doc(allow("iot:Publish", f"{ARN}:topic/v{i}"))
        r = iot.create_policy_version(policyName=name, policyDocument=di)
        assert r["policyVersionId"] == str(i) and r["isDefaultVersion"] is False
        docs[str(i)] = di
    code, status, msg = api_error(iot.create_policy_version, policyName=name, policyDocument=d1)
    assert (code, status) == ("VersionsLimitExceededException", 409), (code, status, msg)
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3", "4", "5"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["1"]

    iot.set_default_policy_version(policyName=name, policyVersionId="3")
    g = iot.get_policy(policyName=name)
    assert g["defaultVersionId"] == "3" and json.loads(g["policyDocument"]) == json.loads(docs["3"])
    v = iot.get_policy_version(policyName=name, policyVersionId="4")
    assert v["isDefaultVersion"] is False and json.loads(v["policyDocument"]) == json.loads(docs["4"])
    assert iot.get_policy_version(policyName=name, policyVersionId="3")["isDefaultVersion"] is True
    assert api_error(iot.get_policy_version, policyName=name, policyVersionId="9")[:2] == \
        ("ResourceNotFoundException", 404)
    assert api_error(iot.set_default_policy_version, policyName=name, policyVersionId="9")[0] == \
        "ResourceNotFoundException"

    code, status, msg = api_error(iot.delete_policy_version, policyName=name, policyVersionId="3")
    assert (code, status) == ("DeleteConflictException", 409), (code, status, msg)
    iot.delete_policy_version(policyName=name, policyVersionId="1")
    assert sorted(v["versionId"] for v in iot.list_policy_versions(policyName=name)["policyVersions"]) == \
        ["2", "3", "4", "5"]
    r = iot.create_policy_version(policyName=name, policyDocument=d1, setAsDefault=True)
    assert r["policyVersionId"] == "6" and r["isDefaultVersion"] is True  # ids are never reused
    assert iot.get_policy(policyName=name)["defaultVersionId"] == "6"

    # Deleting: refused while attached, and while non-default versions exist.
    cert = iot.create_keys_and_certificate(setAsActive=False)
    iot.attach_policy(policyName=name, target=cert["certificateArn"])
    assert api_error(iot.delete_policy, policyName=name)[:2] == ("DeleteConflictException", 409)
    iot.detach_policy(policyName=name, target=cert["certificateArn"])
    assert api_error(iot.delete_policy, policyName=name)[0] == "DeleteConflictException"  # versions 2-5 remain
    for vid in ("2", "3", "4", "5"):
        iot.delete_policy_version(policyName=name, policyVersionId=vid)
    iot.delete_policy(policyName=name)
    assert api_error(iot.get_policy, policyName=name)[:2] == ("ResourceNotFoundException", 404)
    assert name not in [p["policyName"] for p in iot.list_policies()["policies"]]
    iot.delete_certificate(certificateId=cert["certificateId"])


@pytest.mark.parametrize("document, where", [
    pytest.param(doc(allow("iot:Connect", "*"), allow("iot:Pubish", "*")), "Statement[1].Action",
                 id="unknown-action"),
    pytest.param(doc(allow("iot:Connect", "*"), {"Action": "iot:Publish", "Resource": "*"}), "Statement[1]",
                 id="no-effect"),
    pytest.param(doc({"Effect": "Maybe", "Action": "iot:Publish", "Resource": "*"}), "Statement[0]",
                 id="bad-effect"),
    pytest.param(doc({"Effect": "Allow", "Action": "iot:Publish"}), "Statement[0]", id="no-resource"),
    pytest.param(doc(allow("iot:Publish", "*", Condition={"StringEqualz": {"iot:ClientId": "x"}})),
                 "Statement[0].Condition", id="bad-condition-operator"),
    pytest.param(doc(allow("iot:Publish", f"{ARN}:topic/${{iot:ClientId")), "Statement[0].Resource",
                 id="unclosed-variable"),
    pytest.param('{"Version":"2012-10-17","Statement":[', None, id="not-json"),
    pytest.param(doc(*[allow("iot:Publish", f"{ARN}:topic/{'x' * 60}/{i}") for i in range(30)]), None,
                 id="over-2048-chars"),
])
def test_malformed_policy_documents(iot, document, where):
    name = unique("malformed")
    code, status, msg = api_error(iot.create_policy, policyName=name, policyDocument=document)
    assert (code, status) == ("MalformedPolicyException", 400), (code, status, msg)
    if where:
        assert where in msg, msg
    assert api_error(iot.get_policy, policyName=name)[0] == "ResourceNotFoundException"
    base = make_policy(iot, allow("iot:Connect", "*"))
    code, _, msg2 = api_error(iot.create_policy_version, policyName=base, policyDocument=document, setAsDefault=True)
    assert code == "MalformedPolicyException", msg2
    assert len(iot.list_policy_versions(policyName=base)["policyVersions"]) == 1


def test_typo_message_suggests_the_action(iot):
    msg = api_error(iot.create_policy, policyName=unique("typo"),
                    policyDocument=doc(allow("iot:Connect", "*"), allow(["iot:Subscribe", "iot:Pubish"], "*")))[2]
    assert 'Statement[1].Action[1]' in msg and 'iot:Pubish' in msg and 'iot:Publish' in msg, msg


def test_test_authorization(server, iot):
    zone = unique("ta")
    p_allow = make_policy(iot, allow("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"),
                          allow("iot:Publish", f"{ARN}:topic/{zone}/*"))
    p_deny = make_policy(iot, deny("iot:Publish", f"{ARN}:topic/{zone}/secret"))
    p_extra = make_policy(iot, allow("iot:Subscribe", f"{ARN}:topicfilter/{zone}/#"))
    dev = device(server, iot, p_allow, p_deny)
    principal = cert_arn(dev)

    def decide(action, resource, **kw):
        r = iot.test_authorization(principal=principal, authInfos=[{"actionType": action, "resources": [resource]}],
                                   **kw)["authResults"][0]
        return r

    r = decide("PUBLISH", f"{ARN}:topic/{zone}/temp")
    assert r["authDecision"] == "ALLOWED"
    assert [p["policyName"] for p in r["allowed"]["policies"]] == [p_allow]
    r = decide("PUBLISH", f"{ARN}:topic/{zone}/secret")
    assert r["authDecision"] == "EXPLICIT_DENY"
    assert [p["policyName"] for p in r["denied"]["explicitDeny"]["policies"]] == [p_deny]
    assert decide("PUBLISH", f"{ARN}:topic/elsewhere")["authDecision"] == "IMPLICIT_DENY"
    assert decide("SUBSCRIBE", f"{ARN}:topicfilter/{zone}/#")["authDecision"] == "IMPLICIT_DENY"
    assert decide("SUBSCRIBE", f"{ARN}:topicfilter/{zone}/#", policyNamesToAdd=[p_extra])["authDecision"] == "ALLOWED"
    assert decide("PUBLISH", f"{ARN}:topic/{zone}/secret", policyNamesToSkip=[p_deny])["authDecision"] == "ALLOWED"
    # The thing (exclusively attached) gives ThingName, whatever the client id.
    assert decide("CONNECT", f"{ARN}:client/{dev.name}", clientId="whatever")["authDecision"] == "ALLOWED"
    assert decide("CONNECT", f"{ARN}:client/other")["authDecision"] == "IMPLICIT_DENY"
    # Several auth infos at once, in order.
    r = iot.test_authorization(principal=principal, authInfos=[
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{zone}/a"]},
        {"actionType": "RECEIVE", "resources": [f"{ARN}:topic/{zone}/a"]}])
    assert [x["authDecision"] for x in r["authResults"]] == ["ALLOWED", "IMPLICIT_DENY"]
    assert api_error(iot.test_authorization, principal=principal,
                     authInfos=[{"actionType": "FLY", "resources": ["*"]}])[0] == "InvalidRequestException"


def test_attachments_and_legacy_principal_policy(server, iot, paho):
    p1 = make_policy(iot, CONNECT_ANY)
    p2 = make_policy(iot, allow("iot:Publish", "*"))
    dev = device(server, iot, p1)
    principal = cert_arn(dev)
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == [p1]
    assert iot.list_targets_for_policy(policyName=p1)["targets"] == [principal]
    c = connected(paho, server, dev)
    assert c.publish("legacy/x", b"1", qos=1) == NOT_AUTHORIZED

    # The older API: AttachPrincipalPolicy / ListPrincipalPolicies / DetachPrincipalPolicy.
    iot.attach_principal_policy(policyName=p2, principal=principal)
    assert sorted(p["policyName"] for p in iot.list_principal_policies(principal=principal)["policies"]) == \
        sorted([p1, p2])
    assert c.publish("legacy/x", b"2", qos=1) == 0
    eff = iot.get_effective_policies(principal=principal)["effectivePolicies"]
    assert sorted(p["policyName"] for p in eff) == sorted([p1, p2])
    assert all(json.loads(p["policyDocument"])["Statement"] for p in eff)
    iot.detach_principal_policy(policyName=p2, principal=principal)
    assert c.publish("legacy/x", b"3", qos=1) == NOT_AUTHORIZED
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == [p1]

    # Attaching to what does not exist.
    assert api_error(iot.attach_policy, policyName=p1, target=f"{ARN}:cert/{'0' * 64}")[0] == \
        "ResourceNotFoundException"
    assert api_error(iot.attach_policy, policyName=unique("ghost"), target=principal)[0] == \
        "ResourceNotFoundException"
    assert api_error(iot.attach_policy, policyName=p1,
                     target=f"{ARN}:thinggroup/{unique('ghost')}")[0] == "ResourceNotFoundException"
    # At most 10 policies per certificate.
    extra = [make_policy(iot, allow("iot:Publish", f"{ARN}:topic/lim/{i}")) for i in range(9)]
    for p in extra:
        iot.attach_policy(policyName=p, target=principal)
    code, status, msg = api_error(iot.attach_policy, policyName=p2, target=principal)
    assert code == "LimitExceededException", (code, status, msg)
    iot.attach_policy(policyName=p1, target=principal)  # re-attaching is not a new attachment


# ---------------------------------------------------------------------------
# More of the language, and every place a decision is made
# ---------------------------------------------------------------------------

def test_retained_publish_needs_retain_publish(server, iot, paho, writer):
    zone = unique("ret")
    p = make_policy(iot, CONNECT_ANY, allow(["iot:Publish", "iot:Subscribe", "iot:Receive"], "*"),
                    allow("iot:RetainPublish", f"{ARN}:topic/{zone}/keep"))
    c = connected(paho, server, device(server, iot, p))
    assert c.publish(f"{zone}/plain", b"1", qos=1) == 0
    assert c.publish(f"{zone}/keep", b"2", qos=1, retain=True) == 0
    assert c.publish(f"{zone}/other", b"3", qos=1, retain=True) == NOT_AUTHORIZED
    s = connected(paho, server, writer)
    s.subscribe(f"{zone}/#", qos=1)
    got = s.collect(1)
    s.expect_none(QUIET)  # zone/other was not retained
    assert [(m.topic, m.retain) for m in got] == [(f"{zone}/keep", True)]
    c.publish(f"{zone}/keep", b"", qos=1, retain=True)


def test_qos2_publish_refused_with_pubrec(server, iot, paho):
    """MQTT 5 QoS 2: PUBREC 0x87 (raw bytes: paho answers any PUBREC with PUBREL)."""
    a = server.provision(unique("q2"), policy=DEFAULT_POLICY)
    conn = RawConn(server, a)
    try:
        assert conn.connect(a.name, version=5).body[:2] == b"\x00\x00"
        conn.send(publish_packet(f"{a.name}/q2", b"ok", qos=2, packet_id=7, version=5))
        rec = conn.read_packet()
        assert rec.type == 5 and rec.body[:2] == b"\x00\x07" and rec.reason == 0, rec
        conn.send(packet(0x62, b"\x00\x07"))  # PUBREL
        comp = conn.read_packet()
        assert comp.type == 7 and comp.reason == 0, comp
        conn.send(publish_packet(f"not-{a.name}/q2", b"no", qos=2, packet_id=8, version=5))
        rec = conn.read_packet()
        assert rec.type == 5 and rec.body[:2] == b"\x00\x08" and rec.reason == NOT_AUTHORIZED, rec
    finally:
        conn.close()


def test_topicfilter_wildcards_are_literal(server, iot, paho):
    zone = unique("lit")
    p = make_policy(iot, CONNECT_ANY, allow("iot:Subscribe", f"{ARN}:topicfilter/{zone}/#"),
                    allow("iot:Subscribe", f"{ARN}:topicfilter/{zone}-one/??"))
    c = connected(paho, server, device(server, iot, p))
    assert c.subscribe([(f"{zone}/#", 1), (f"{zone}/a", 1), (f"{zone}/+", 1), (f"{zone}/a/#", 1)]) == \
        [1, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED]
    assert c.subscribe([(f"{zone}-one/ab", 1), (f"{zone}-one/abc", 1), (f"{zone}-one/+", 1)]) == \
        [1, NOT_AUTHORIZED, NOT_AUTHORIZED]


def test_shared_subscription_authorization(server, iot, paho, writer):
    """As in AWS: Subscribe is checked on the whole `$share/GROUP/FILTER`, Receive on the topic."""
    zone = unique("shr")
    shared = make_policy(iot, CONNECT_ANY, allow("iot:Subscribe", f"{ARN}:topicfilter/$share/*/{zone}/#"),
                         allow("iot:Receive", f"{ARN}:topic/{zone}/*"))
    plain = make_policy(iot, CONNECT_ANY, allow("iot:Subscribe", f"{ARN}:topicfilter/{zone}/#"),
                        allow("iot:Receive", f"{ARN}:topic/{zone}/*"))
    c = connected(paho, server, device(server, iot, shared))
    assert c.subscribe([(f"$share/grp/{zone}/#", 1), (f"{zone}/#", 1)]) == [1, NOT_AUTHORIZED]
    w = connected(paho, server, writer)
    assert w.publish(f"{zone}/m", b"shared", qos=1) == 0
    assert c.expect(f"{zone}/m").payload == b"shared"
    c2 = connected(paho, server, device(server, iot, plain))
    assert c2.subscribe(f"$share/grp2/{zone}/#", qos=1) == [NOT_AUTHORIZED]


def test_https_publish_is_authorized(server, iot, paho, writer):
    import http.client
    import ssl

    a = server.provision(unique("https"), policy=DEFAULT_POLICY)
    w = watch(paho, server, writer, f"{a.name}/#", "https-elsewhere/#")
    host, _, port = json.loads((server.data_dir / "endpoints.json").read_text())["https"].rpartition(":")
    ctx = ssl.create_default_context(cafile=str(a.ca))
    ctx.load_cert_chain(str(a.cert), str(a.key))

    def post(topic):
        conn = http.client.HTTPSConnection(host.strip("[]"), int(port), context=ctx, timeout=10)
        conn.sock = ctx.wrap_socket(__import__("socket").create_connection((host.strip("[]"), int(port)), 10),
                                    server_hostname="localhost")
        conn.request("POST", f"/topics/{topic}?qos=1", body=b'{"t":1}')
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, body

    status, body = post(f"{a.name}/temp")
    assert status == 200, body
    assert w.expect(f"{a.name}/temp").payload == b'{"t":1}'
    status, body = post("https-elsewhere/temp")
    assert status == 403 and b"ForbiddenException" in body, (status, body)
    w.expect_none(QUIET, topic_prefix="https-elsewhere")


def test_client_id_and_certificate_variables(server, iot, paho, tmp_path):
    zone = unique("vars")
    p = make_policy(iot, CONNECT_ANY,
                    allow("iot:Publish", f"{ARN}:topic/{zone}/cid/${{iot:ClientId}}"),
                    allow("iot:Publish", f"{ARN}:topic/{zone}/cn/${{iot:Certificate.Subject.CommonName}}"),
                    allow("iot:Publish", f"{ARN}:topic/{zone}/id/${{iot:Certificate.Id}}"))
    devs = {}
    for cn in ("plain-cn", "wild*card", "hash#cn"):
        key = tmp_path / f"{len(devs)}.key"
        r = subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", str(key), "-subj", f"/CN={cn}"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        c = iot.create_certificate_from_csr(certificateSigningRequest=r.stdout, setAsActive=True)
        iot.attach_policy(policyName=p, target=c["certificateArn"])
        (tmp_path / f"{len(devs)}.pem").write_text(c["certificatePem"])
        devs[cn] = device_from_files(cn, tmp_path / f"{len(devs)}.pem", key, server.ca)

    cid = unique("client")
    c = connected(paho, server, devs["plain-cn"], client_id=cid)
    assert c.publish(f"{zone}/cid/{cid}", b"1", qos=1) == 0
    assert c.publish(f"{zone}/cid/other", b"1", qos=1) == NOT_AUTHORIZED
    assert c.publish(f"{zone}/cn/plain-cn", b"1", qos=1) == 0
    assert c.publish(f"{zone}/id/{devs['plain-cn'].cert_id}", b"1", qos=1) == 0
    assert c.publish(f"{zone}/id/{devs['wild*card'].cert_id}", b"1", qos=1) == NOT_AUTHORIZED
    # Certificate values with wildcard characters are never substituted (no wildcard through the back door).
    w = connected(paho, server, devs["wild*card"])
    for t in (f"{zone}/cn/wildXcard", f"{zone}/cn/wild*card", f"{zone}/cn/wild"):
        assert w.publish(t, b"1", qos=1) == NOT_AUTHORIZED, t
    # (`#` cannot be in an MQTT topic name: ask TestAuthorization.)
    t = iot.test_authorization(principal=f"{ARN}:cert/{devs['hash#cn'].cert_id}", authInfos=[
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{zone}/cn/hash#cn"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{zone}/id/{devs['hash#cn'].cert_id}"]}])
    assert [x["authDecision"] for x in t["authResults"]] == ["IMPLICIT_DENY", "ALLOWED"]


def test_is_attached_condition(server, iot, paho, tmp_path):
    p = make_policy(iot, allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}}))
    r = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=p, target=r["certificateArn"])
    (tmp_path / "c.pem").write_text(r["certificatePem"])
    (tmp_path / "k.pem").write_text(r["keyPair"]["PrivateKey"])
    dev = device_from_files("attached", tmp_path / "c.pem", tmp_path / "k.pem", server.ca)
    thing = unique("attached")
    refused_connect(paho, server, dev, thing)
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=r["certificateArn"])
    connected(paho, server, dev, client_id=thing).disconnect()
    refused_connect(paho, server, dev, unique("not-the-thing"))  # non-exclusive: the client id names the thing


def test_document_size_counts_no_whitespace(iot):
    statements = [allow("iot:Publish", f"{ARN}:topic/ws/{i:02d}") for i in range(18)]
    compact = json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))
    assert len(compact) < 2048
    roomy = json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=8)
    assert len(roomy) > 2048
    name = unique("roomy")
    iot.create_policy(policyName=name, policyDocument=roomy)
    assert iot.get_policy(policyName=name)["policyDocument"] == roomy


def test_list_attached_policies_recursive_lists_each_policy_once(iot):
    g1, g2, g3 = unique("rec1"), unique("rec2"), unique("rec3")
    arns = [iot.create_thing_group(thingGroupName=g1)["thingGroupArn"]]
    arns.append(iot.create_thing_group(thingGroupName=g2, parentGroupName=g1)["thingGroupArn"])
    arns.append(iot.create_thing_group(thingGroupName=g3, parentGroupName=g2)["thingGroupArn"])
    p1, p2 = make_policy(iot, CONNECT_ANY), make_policy(iot, CONNECT_ANY)
    iot.attach_policy(policyName=p1, target=arns[2])
    iot.attach_policy(policyName=p2, target=arns[1])
    iot.attach_policy(policyName=p1, target=arns[0])
    names = [p["policyName"] for p in iot.list_attached_policies(target=arns[2], recursive=True)["policies"]]
    assert sorted(names) == sorted([p1, p2])


@pytest.mark.parametrize("listing", ["list_policies", "list_targets_for_policy"])
def test_policy_listings_paginate(server, iot, listing):
    target_policy = make_policy(iot, CONNECT_ANY)
    for _ in range(3):
        make_policy(iot, CONNECT_ANY)
        device(server, iot, target_policy)
    key, kw = ("policies", {}) if listing == "list_policies" else ("targets", {"policyName": target_policy})
    first = getattr(iot, listing)(pageSize=2, **kw)
    assert len(first[key]) == 2 and first.get("nextMarker"), first
    second = getattr(iot, listing)(pageSize=2, marker=first["nextMarker"], **kw)
    assert not set(map(str, first[key])) & set(map(str, second[key]))


def test_language_forms(server, iot, paho):
    """Statement as an object, NotAction, NotResource, `arn:aws:iot:*:*:`, action case and wildcards,
    StringLike on the client id."""
    zone = unique("lang")
    p_obj = unique("pol-object")
    iot.create_policy(policyName=p_obj, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
        "Condition": {"StringLike": {"iot:ClientId": f"{zone}-*"}}}}))
    p_not = make_policy(iot,
                        {"Effect": "Allow", "NotAction": ["iot:Publish", "iot:Connect"], "Resource": "*"},
                        {"Effect": "Allow", "Action": "iot:publish", "NotResource": f"arn:aws:iot:*:*:topic/{zone}/secret*"},
                        {"Effect": "Deny", "Action": "iot:Sub*", "Resource": f"arn:aws:iot:*:*:topicfilter/{zone}/deny"})
    dev = device(server, iot, p_obj, p_not)
    refused_connect(paho, server, dev, unique("other-prefix"))
    c = connected(paho, server, dev, client_id=f"{zone}-1")
    assert c.publish(f"{zone}/open", b"1", qos=1) == 0
    assert c.publish(f"{zone}/secret-plans", b"2", qos=1) == NOT_AUTHORIZED
    assert c.subscribe([(f"{zone}/open", 1), (f"{zone}/deny", 1)]) == [1, NOT_AUTHORIZED]
    assert c.publish(f"{zone}/open", b"3", qos=1) == 0
    assert c.expect(f"{zone}/open").payload == b"3"  # Receive comes from NotAction


def test_thing_detach_applies_to_live_connection(server, iot, paho):
    a = server.provision(unique("detach"), policy=DEFAULT_POLICY)
    c = connected(paho, server, a, client_id=a.name)
    assert c.publish(f"{a.name}/x", b"1", qos=1) == 0
    iot.detach_thing_principal(thingName=a.name, principal=cert_arn(a))
    # No thing any more: ThingName has no value, the default policy allows nothing.
    assert c.publish(f"{a.name}/x", b"2", qos=1) == NOT_AUTHORIZED
    refused_connect(paho, server, a, a.name)
    iot.attach_thing_principal(thingName=a.name, principal=cert_arn(a), thingPrincipalType="EXCLUSIVE_THING")
    assert c.publish(f"{a.name}/x", b"3", qos=1) == 0


def test_will_message_is_authorized(server, iot, paho, writer):
    """A will is a publish on the device's behalf: only where it may publish (AWS: iot:Publish on the will topic)."""
    a = server.provision(unique("will-a"), policy=DEFAULT_POLICY)
    b = server.provision(unique("will-b"), policy=DEFAULT_POLICY)
    w = watch(paho, server, writer, f"{a.name}/#", f"{b.name}/#")

    own = paho(server, a, client_id=a.name, version=5).will_set(f"{a.name}/will", b"gone", qos=1)
    own.connect()
    own.drop()
    assert w.expect(f"{a.name}/will").payload == b"gone"

    spoof = paho(server, a, client_id=f"{a.name}-spoof", version=5).will_set(f"{b.name}/will", b"spoofed", qos=1)
    ack = spoof.connect(expect=None)
    if ack is not None and ack.reason == 0:
        spoof.drop()
    w.expect_none(1.0, topic_prefix=b.name)


def test_queued_messages_are_checked_at_delivery(server, iot, paho, writer):
    """Receive is checked when a message is delivered, also for messages queued while offline."""
    zone = unique("queued")
    name = unique("queued-pol")
    iot.create_policy(policyName=name, policyDocument=doc(
        CONNECT_ANY, allow("iot:Subscribe", f"{ARN}:topicfilter/{zone}/*"), allow("iot:Receive", f"{ARN}:topic/{zone}/*")))
    dev = device(server, iot, name)
    cid = unique("queued-client")
    s = paho(server, dev, client_id=cid, version=5, clean=False)
    s.connect(session_expiry=300)
    assert s.subscribe(f"{zone}/#", qos=1) == [1]
    s.disconnect()

    w = connected(paho, server, writer)
    assert w.publish(f"{zone}/before", b"1", qos=1) == 0
    iot.create_policy_version(policyName=name, setAsDefault=True, policyDocument=doc(
        CONNECT_ANY, allow("iot:Receive", f"{ARN}:topic/{zone}/after")))
    assert w.publish(f"{zone}/after", b"2", qos=1) == 0
    assert w.publish(f"{zone}/late", b"3", qos=1) == 0

    s2 = paho(server, dev, client_id=cid, version=5, clean=False)
    assert s2.connect(session_expiry=0).session_present
    assert [(m.topic, m.payload) for m in s2.collect(1)] == [(f"{zone}/after", b"2")]
    s2.expect_none(QUIET)
