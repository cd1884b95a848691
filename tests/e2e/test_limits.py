"""AWS IoT Core limits and publish validation, seen by real clients."""

import pytest

from conftest import unique
from e2elib import RawConn, props, publish_packet, subscribe_packet

KIB = 1024


def connected(paho, server, device, version=5, **kw):
    c = paho(server, device, version=version, **kw)
    c.connect()
    return c


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_payload_of_128_kib_is_delivered(server, device, paho, version):
    t = unique("big") + "/t"
    sub = connected(paho, server, device, version)
    sub.subscribe(t, qos=1)
    pub = connected(paho, server, device, version)
    payload = bytes(range(256)) * (128 * KIB // 256)
    assert len(payload) == 128 * KIB
    rc = pub.publish(t, payload, qos=1)
    assert rc == 0
    assert sub.expect(t).payload == payload


def test_oversized_payload_v5_disconnect_0x95(server, device, paho):
    t = unique("toobig") + "/t"
    sub = connected(paho, server, device)
    sub.subscribe(t, qos=1)
    pub = connected(paho, server, device)
    pub.publish(t, b"x" * (129 * KIB), qos=1, wait=False)
    assert pub.server_disconnect() == 0x95  # Packet too large
    sub.expect_none(topic_prefix=t)


def test_oversized_payload_v311_closed(server, device, paho):
    t = unique("toobig311") + "/t"
    pub = connected(paho, server, device, version=4)
    pub.publish(t, b"x" * (129 * KIB), qos=1, wait=False)
    assert pub.server_disconnect() is None
    assert pub.disconnect_reasons and pub.disconnect_reasons[0] != 0


def test_oversized_payload_qos0_v5(server, device, paho):
    pub = connected(paho, server, device)
    pub.publish(unique("toobig0") + "/t", b"x" * (129 * KIB), qos=0, wait=False)
    assert pub.server_disconnect() == 0x95


def test_topic_slashes_and_length(server, device, paho):
    base = unique("lim")  # no slash in base
    pub = connected(paho, server, device)
    seven = base + "/a" * 7
    eight = base + "/a" * 8
    assert seven.count("/") == 7 and eight.count("/") == 8
    assert pub.publish(seven, b"ok", qos=1) == 0
    assert pub.publish(eight, b"no", qos=1) == 0x90  # Topic Name invalid
    long_ok = "l" * 256
    long_bad = "l" * 257
    assert pub.publish(long_ok, b"ok", qos=1) == 0
    assert pub.publish(long_bad, b"no", qos=1) == 0x90
    assert pub.c.is_connected()
    # Filters: the same limits.
    assert pub.subscribe(seven, qos=1) == [1]
    assert pub.subscribe(eight, qos=1) == [0x8F]  # Topic Filter invalid
    assert pub.subscribe("f" * 257, qos=1) == [0x8F]


def test_topic_with_8_slashes_v311_closes(server, device, paho):
    pub = connected(paho, server, device, version=4)
    pub.publish(unique("lim311") + "/a" * 8, b"no", qos=1, wait=False)
    pub.wait_disconnected()


def test_payload_format_indicator(server, device, paho):
    t = unique("pfi") + "/t"
    sub = connected(paho, server, device)
    sub.subscribe(t, qos=1)
    pub = connected(paho, server, device)
    bad = b"\xff\xfe not utf-8 \xc3\x28"
    assert pub.publish(t, bad, qos=1, properties=props(PayloadFormatIndicator=1)) == 0x99  # Payload format invalid
    assert pub.publish(t, bad, qos=1, properties=props(PayloadFormatIndicator=0)) == 0
    assert pub.publish(t, "héllo ✓".encode(), qos=1, properties=props(PayloadFormatIndicator=1)) == 0
    got = sub.collect(2)
    assert [m.payload for m in got] == [bad, "héllo ✓".encode()]
    assert pub.c.is_connected()


def test_filters_per_subscribe_and_per_session(server, device, paho):
    base = unique("subs")
    c = connected(paho, server, device)
    nine = [(f"{base}/f{i}", 1) for i in range(9)]
    codes = c.subscribe(nine)
    assert codes[:8] == [1] * 8
    assert codes[8] >= 0x80, f"9th filter in one SUBSCRIBE granted: {codes}"
    # Up to 50 subscriptions per session.
    have = 8
    i = 100
    while have < 50:
        batch = [(f"{base}/g{i + k}", 0) for k in range(min(8, 50 - have))]
        assert c.subscribe(batch) == [0] * len(batch)
        have += len(batch)
        i += 8
    assert c.subscribe(f"{base}/one-too-many", qos=0) == [0x97]  # Quota exceeded
    # Re-subscribing an existing filter is not a new subscription.
    assert c.subscribe(f"{base}/f0", qos=0) == [0]


@pytest.mark.parametrize("version", [4, 5])
def test_client_id_length(server, device, version):
    for cid, ok in (("c" * 128, True), ("c" * 129, False)):
        conn = RawConn(server, device)
        try:
            ack = conn.connect(cid, version=version)
            if ok:
                assert ack.body[1] == 0, ack
            elif version == 4:
                assert ack.body == b"\x00\x02"  # identifier rejected
            else:
                assert ack.body[1] == 0x85  # Client Identifier not valid
        finally:
            conn.close()


def test_empty_client_id_needs_clean_session_v311(server, device):
    conn = RawConn(server, device)
    try:
        assert conn.connect("", version=4, clean=False).body == b"\x00\x02"
    finally:
        conn.close()
    conn = RawConn(server, device)
    try:
        assert conn.connect("", version=4, clean=True).body == b"\x00\x00"
    finally:
        conn.close()


def test_server_respects_client_receive_maximum(server, device, paho):
    """Receive Maximum 2 from the client: at most 2 unacknowledged QoS 1 messages."""
    t = unique("recvmax") + "/t"
    raw = RawConn(server, device)
    recv_max = b"\x21" + (2).to_bytes(2, "big")
    ack = raw.connect(unique("recvmax"), version=5, properties=recv_max)
    assert ack.body[1] == 0
    raw.send(subscribe_packet(1, [(t, 1)], version=5))
    assert raw.read_packet().type == 9
    pub = connected(paho, server, device)
    for i in range(5):
        pub.publish(t, str(i).encode(), qos=1)
    got = [raw.read_packet(), raw.read_packet()]
    assert all(p.type == 3 for p in got)
    try:
        extra = raw.read_packet(timeout=0.5)
    except OSError:
        extra = None
    assert extra is None or extra.type != 3, "a third PUBLISH exceeded the client's Receive Maximum of 2"
    # Acknowledge one: exactly one more arrives.
    pid = got[0].body[2 + len(t):4 + len(t)]
    raw.send(b"\x40\x02" + pid)
    p = raw.read_packet()
    assert p.type == 3 and p.body.endswith(b"2")
    raw.close()


def test_server_receive_maximum_qos2(server, device):
    """More than 100 unreleased QoS 2 publishes: DISCONNECT 0x93."""
    raw = RawConn(server, device)
    assert raw.connect(unique("rm100"), version=5).body[1] == 0
    t = unique("rm100") + "/t"
    raw.send(b"".join(publish_packet(t, b"x", qos=2, packet_id=i, version=5) for i in range(1, 102)))
    recs = 0
    while True:
        p = raw.read_packet()
        if p is None:
            break
        if p.type == 5:
            recs += 1
        elif p.type == 14:
            assert p.reason == 0x93, f"DISCONNECT {p.reason:#x}, expected 0x93 Receive Maximum exceeded"
            break
    assert recs == 100
    raw.close()
