"""mosquitto_pub -> mosquitto_sub round trips over mutual TLS."""

import pytest

from conftest import unique
from e2elib import mosquitto_pub


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_round_trip(server, device, mosq_sub, host, version, qos):
    base = unique(f"mosq/{version}/q{qos}")
    sub = mosq_sub(server, device, [f"{base}/#"], qos=qos, host=host, version=version,
                   client_id=unique("msub"), extra=["-C", "1"]).wait_subscribed()
    assert sub.connack_rc == 0
    payload = f"hello {version} qos{qos} via {host}"
    r = mosquitto_pub(server, device, f"{base}/x", payload, qos=qos, host=host, version=version,
                      client_id=unique("mpub"), extra=["-d"])
    if qos == 1:
        assert "received PUBACK" in r.stdout, r.stdout
    if qos == 2:
        assert "received PUBCOMP" in r.stdout, r.stdout
    assert sub.expect_line() == f"{base}/x {payload}"
    sub.proc.wait(5)
    assert sub.proc.returncode == 0, "\n".join(sub.all_lines)
    # Delivered at the subscription's QoS.
    pub_lines = [l for l in sub.all_lines if "received PUBLISH" in l]
    assert len(pub_lines) == 1 and f"q{qos}" in pub_lines[0], pub_lines


def test_retained_with_mosquitto(server, device, mosq_sub):
    topic = unique("mosq/retained") + "/t"
    mosquitto_pub(server, device, topic, "kept", qos=1, extra=["-r"])
    sub = mosq_sub(server, device, [topic], qos=1, client_id=unique("msub"), extra=["-C", "1"])
    assert sub.expect_line() == f"{topic} kept"
    assert any("r1" in l for l in sub.all_lines if "received PUBLISH" in l), sub.all_lines
    # Clear it: an empty retained message.
    mosquitto_pub(server, device, topic, "", qos=1, extra=["-r"])
    sub2 = mosq_sub(server, device, [topic], qos=1, client_id=unique("msub"),
                    extra=["--retained-only", "-W", "1"]).wait_subscribed()
    sub2.proc.wait(5)
    assert not any("received PUBLISH" in l for l in sub2.all_lines), sub2.all_lines
