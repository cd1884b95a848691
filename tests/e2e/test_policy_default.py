"""The least-privilege default device policy (`thingport provision` without
--policy), seen by real clients: client id = thing name (or NAME-suffix),
topics under NAME/."""

import pytest

from conftest import unique
from e2elib import RawConn, mosquitto_pub

DEFAULT = "ThingportDefaultDevicePolicy"


@pytest.fixture(scope="module")
def limited(server):
    return server.provision(unique("limited"), policy=DEFAULT)


def test_own_client_id_and_topics(server, limited, paho, mosq_sub):
    name = limited.name
    sub = mosq_sub(server, limited, [f"{name}/#"], qos=1, version="mqttv5", client_id=f"{name}-sub",
                   extra=["-C", "1"]).wait_subscribed()
    assert sub.connack_rc == 0
    mosquitto_pub(server, limited, f"{name}/telemetry", "ok", qos=1, client_id=name)
    assert sub.expect_line() == f"{name}/telemetry ok"


@pytest.mark.parametrize("version", [4, 5])
def test_foreign_client_id_refused(server, limited, version):
    conn = RawConn(server, limited)
    try:
        ack = conn.connect(unique("not-my-name"), version=version)
        assert ack.body[1] == (5 if version == 4 else 0x87), ack
    finally:
        conn.close()


def test_foreign_topics_refused_v5(server, limited, paho):
    c = paho(server, limited, client_id=limited.name, version=5)
    c.connect()
    assert c.publish(f"{limited.name}/mine", b"x", qos=1) == 0
    assert c.publish("someone-else/x", b"x", qos=1) == 0x87
    assert c.subscribe([(f"{limited.name}/#", 1), ("someone-else/#", 1)]) == [1, 0x87]
    assert c.c.is_connected()


def test_foreign_topic_closes_v311(server, limited, paho):
    c = paho(server, limited, client_id=f"{limited.name}-v3", version=4)
    c.connect()
    assert c.publish(f"{limited.name}/mine", b"x", qos=1) == 0
    c.publish("someone-else/x", b"x", qos=1, wait=False)
    c.wait_disconnected()


def test_no_policy_means_nothing(server):
    dev = server.provision(unique("nopolicy"), policy=None)
    conn = RawConn(server, dev)
    try:
        assert conn.connect(dev.name, version=5).body[1] == 0x87
    finally:
        conn.close()
