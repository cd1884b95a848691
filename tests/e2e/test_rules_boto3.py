"""Topic rules through boto3 (CreateTopicRule & co.) with a paho device: the
seed's colour rule republishes, disabled rules do not fire, bad SQL is refused
with its position."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import unique

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/unused"  # required by botocore's model, ignored here


@pytest.fixture(scope="module")
def iot(server):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    endpoints = json.loads((server.data_dir / "endpoints.json").read_text())
    return boto3.client("iot", endpoint_url=endpoints["api"], region_name=REGION,
                        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))


def republish_rule(sql: str, topic: str) -> dict:
    return {"sql": sql, "awsIotSqlVersion": "2016-03-23", "ruleDisabled": False,
            "actions": [{"republish": {"roleArn": ROLE, "topic": topic, "qos": 1}}]}


def test_rule_lifecycle_and_seed_colour_rule(server, device, iot, paho):
    name = unique("colour").replace("-", "_")
    zone = unique("things")
    iot.create_topic_rule(ruleName=name, topicRulePayload=republish_rule(
        f"SELECT * FROM '{zone}/thing-2/color' WHERE color = 'red'", f"{zone}/alerts/${{topic(2)}}"))
    got = iot.get_topic_rule(ruleName=name)
    assert got["rule"]["ruleName"] == name and got["rule"]["sql"].startswith("SELECT *")
    assert got["ruleArn"].endswith(f":rule/{name}")
    assert any(r["ruleName"] == name and r["topicPattern"] == f"{zone}/thing-2/color"
               for r in iot.list_topic_rules()["rules"])

    sub = paho(server, device)
    sub.connect()
    sub.subscribe(f"{zone}/alerts/#", qos=1)
    pub = paho(server, device)
    pub.connect()
    pub.publish(f"{zone}/thing-2/color", json.dumps({"color": "blue"}).encode(), qos=1)
    pub.publish(f"{zone}/thing-2/color", json.dumps({"color": "red"}).encode(), qos=1)
    m = sub.expect(f"{zone}/alerts/thing-2")
    assert json.loads(m.payload) == {"color": "red"}
    sub.expect_none(duration=0.5)

    # Disabled: nothing fires; enabled again: it does.
    iot.disable_topic_rule(ruleName=name)
    assert iot.get_topic_rule(ruleName=name)["rule"]["ruleDisabled"] is True
    pub.publish(f"{zone}/thing-2/color", json.dumps({"color": "red"}).encode(), qos=1)
    sub.expect_none(duration=0.5)
    iot.enable_topic_rule(ruleName=name)
    pub.publish(f"{zone}/thing-2/color", json.dumps({"color": "red", "n": 2}).encode(), qos=1)
    assert json.loads(sub.expect(f"{zone}/alerts/thing-2").payload)["n"] == 2

    # Replace changes the SQL; delete removes it.
    iot.replace_topic_rule(ruleName=name, topicRulePayload=republish_rule(
        f"SELECT color AS c FROM '{zone}/thing-2/color'", f"{zone}/alerts/replaced"))
    pub.publish(f"{zone}/thing-2/color", json.dumps({"color": "green"}).encode(), qos=1)
    assert json.loads(sub.expect(f"{zone}/alerts/replaced").payload) == {"c": "green"}
    iot.delete_topic_rule(ruleName=name)
    with pytest.raises(ClientError) as e:
        iot.get_topic_rule(ruleName=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_bad_rules_are_refused(iot):
    with pytest.raises(ClientError) as e:
        iot.create_topic_rule(ruleName="bad_sql", topicRulePayload=republish_rule("SELECT * FORM 'a/b'", "x"))
    err = e.value.response["Error"]
    assert err["Code"] == "SqlParseException" and "column" in err["Message"], err
    with pytest.raises(ClientError) as e:
        iot.create_topic_rule(ruleName="bad_fn", topicRulePayload=republish_rule("SELECT nosuchfn(a) FROM 'a/b'", "x"))
    assert e.value.response["Error"]["Code"] == "SqlParseException"
    name = unique("dup").replace("-", "_")
    iot.create_topic_rule(ruleName=name, topicRulePayload=republish_rule("SELECT * FROM 'a/b'", "x"))
    with pytest.raises(ClientError) as e:
        iot.create_topic_rule(ruleName=name, topicRulePayload=republish_rule("SELECT * FROM 'a/b'", "x"))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    iot.delete_topic_rule(ruleName=name)
