"""Malformed and hostile input over a TLS socket (Python's ssl module): the
connection is closed, and the server keeps serving normal clients."""

import os
import socket
import struct

import pytest

from conftest import unique
from e2elib import RawConn, connect_packet, mqtt_str, packet, publish_packet, subscribe_packet, varint


@pytest.fixture(autouse=True)
def still_serving(server, device, paho):
    """After each test: the server is alive and a normal client works."""
    yield
    assert server.alive(), "the server process died\n" + server.log_tail()
    c = paho(server, device, version=5)
    c.connect()
    t = unique("alive") + "/t"
    c.subscribe(t, qos=1)
    c.publish(t, b"ok", qos=1)
    assert c.expect(t).payload == b"ok"
    c.disconnect()


def closed_without_connack(server, device, data: bytes):
    conn = RawConn(server, device)
    try:
        conn.send(data)
        got = conn.read_until_closed()
    finally:
        conn.close()
    assert not [p for p in got if p.type == 2 and p.body[-1:] == b"\x00"], f"accepted: {got}"
    return got


def after_connect(server, device, data: bytes, version: int = 5):
    """Connect properly, send `data`, return what came back before the close."""
    conn = RawConn(server, device)
    try:
        assert conn.connect(unique("bad"), version=version).body[1] == 0
        conn.send(data)
        return conn.read_until_closed()
    finally:
        conn.close()


def disconnect_reason(got):
    d = [p for p in got if p.type == 14]
    return d[0].reason if d else None


# -- before CONNECT -------------------------------------------------------------

def test_remaining_length_over_four_bytes_before_connect(server, device):
    closed_without_connack(server, device, b"\x10\xff\xff\xff\xff\x7f")


def test_connect_remaining_length_shorter_than_content(server, device):
    good = connect_packet(unique("short"), version=4)
    body = good[2:]
    # Claim 6 bytes: the packet ends inside the protocol name / level.
    closed_without_connack(server, device, b"\x10\x06" + body[:6] + body[6:])


def test_connect_with_reserved_fixed_header_flags(server, device):
    good = connect_packet(unique("flags"), version=4)
    closed_without_connack(server, device, bytes([0x11]) + good[1:])


def test_connect_with_reserved_connect_flag(server, device):
    closed_without_connack(server, device, connect_packet(unique("rsv"), version=4, flags_extra=0x01))


def test_connect_protocol_level_9(server, device):
    conn = RawConn(server, device)
    try:
        conn.send(connect_packet(unique("lvl9"), version=9))
        p = conn.read_packet()
        assert p is not None and p.type == 2, f"expected CONNACK, got {p}"
        assert p.body == b"\x00\x01", f"CONNACK {p.body.hex()}, expected 0001 (unacceptable protocol version)"
        assert conn.read_until_closed() == []
    finally:
        conn.close()


def test_connect_wrong_protocol_name(server, device):
    got = closed_without_connack(server, device, connect_packet(unique("name"), version=4, protocol_name="MQTX"))
    assert all(p.type == 2 and p.body[1] != 0 for p in got)


def test_first_packet_not_connect(server, device):
    closed_without_connack(server, device, b"\xc0\x00")  # PINGREQ


def test_http_request_garbage(server, device):
    closed_without_connack(server, device, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")


def test_random_garbage(server, device):
    data = b"\x00" + os.urandom(512)
    closed_without_connack(server, device, data)


def test_plaintext_mqtt_on_tls_port(server, device):
    s = socket.create_connection((server.host, server.port), timeout=5)
    try:
        s.sendall(connect_packet(unique("plain"), version=4))
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        assert not data.startswith(b"\x20\x02"), "a plaintext CONNECT got a CONNACK"
    finally:
        s.close()


def test_tcp_connect_then_nothing(server, device):
    s = socket.create_connection((server.host, server.port), timeout=5)
    s.close()


# -- after CONNECT --------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_remaining_length_over_four_bytes(server, device, version):
    got = after_connect(server, device, b"\x30\xff\xff\xff\xff\x7f", version)
    if version == 5:
        assert disconnect_reason(got) in (None, 0x81, 0x95), got


@pytest.mark.parametrize("first_byte", [0x80, 0x83, 0x60, 0xA0, 0xC1, 0xE1], ids=lambda b: f"{b:#04x}")
def test_reserved_flags(server, device, first_byte):
    t = unique("rf") + "/t"
    if first_byte >> 4 == 8:
        data = subscribe_packet(7, [(t, 1)], version=5, first_byte=first_byte)
    elif first_byte >> 4 == 6:
        data = bytes([first_byte]) + b"\x02\x00\x01"  # PUBREL must have flags 0010
    elif first_byte >> 4 == 10:
        data = packet(first_byte, struct.pack("!H", 3) + b"\x00" + mqtt_str(t))  # UNSUBSCRIBE: 0010
    else:
        data = bytes([first_byte, 0x00])  # PINGREQ / DISCONNECT with flags
    got = after_connect(server, device, data, 5)
    assert not [p for p in got if p.type in (9, 11, 13, 7)], f"answered a malformed packet: {got}"
    assert disconnect_reason(got) in (None, 0x81, 0x82), got


def test_publish_qos3(server, device):
    got = after_connect(server, device, publish_packet("a/b", b"x", qos=3, version=5))
    assert disconnect_reason(got) in (None, 0x81), got


def test_publish_wildcard_topic(server, device):
    got = after_connect(server, device, publish_packet("a/+", b"x", qos=1, version=5))
    assert not [p for p in got if p.type == 4 and p.reason == 0]
    assert disconnect_reason(got) in (None, 0x81, 0x90), got


def test_publish_invalid_utf8_topic(server, device):
    got = after_connect(server, device, publish_packet(b"a/\xff\xfe", b"x", qos=1, version=5))
    assert not [p for p in got if p.type == 4 and p.reason == 0]
    assert disconnect_reason(got) in (None, 0x81, 0x90), got


def test_publish_topic_with_nul(server, device):
    got = after_connect(server, device, publish_packet(b"a/\x00b", b"x", qos=1, version=5))
    assert not [p for p in got if p.type == 4 and p.reason == 0]


def test_publish_qos1_packet_id_zero(server, device):
    got = after_connect(server, device, publish_packet("a/b", b"x", qos=1, packet_id=0, version=5))
    assert not [p for p in got if p.type == 4]


def test_subscribe_without_filters(server, device):
    got = after_connect(server, device, packet(0x82, struct.pack("!H", 1) + b"\x00"))
    assert not [p for p in got if p.type == 9], got


def test_second_connect(server, device):
    got = after_connect(server, device, connect_packet(unique("again"), version=5))
    assert disconnect_reason(got) in (None, 0x82), got


@pytest.mark.parametrize("version", [4, 5])
def test_reserved_packet_type_0(server, device, version):
    after_connect(server, device, b"\x00\x00", version)


def test_auth_packet_in_v311(server, device):
    after_connect(server, device, b"\xf0\x00", 4)


def test_string_length_past_packet_end(server, device):
    # SUBSCRIBE whose filter length says 200 but the packet holds 3 bytes.
    body = struct.pack("!H", 1) + b"\x00" + struct.pack("!H", 200) + b"a/b" + b"\x01"
    got = after_connect(server, device, packet(0x82, body))
    assert not [p for p in got if p.type == 9], got


def test_property_length_past_packet_end(server, device):
    body = mqtt_str("a/b") + struct.pack("!H", 1) + varint(50) + b"\x01\x01"
    got = after_connect(server, device, packet(0x32, body))
    assert not [p for p in got if p.type == 4 and p.reason == 0], got


@pytest.mark.parametrize("options,reason", [
    (0x03, 0x82),  # QoS 3: protocol error
    (0xC1, 0x81),  # reserved bits 6-7: malformed
    (0x31, 0x82),  # Retain Handling 3: protocol error
], ids=["qos3", "reserved-bits", "retain-handling-3"])
def test_bad_subscription_options(server, device, options, reason):
    got = after_connect(server, device, subscribe_packet(1, [(unique("opt") + "/t", options)], version=5))
    assert not [p for p in got if p.type == 9], got
    assert disconnect_reason(got) == reason, got


def test_no_local_on_shared_subscription(server, device):
    got = after_connect(server, device, subscribe_packet(1, [(f"$share/g/{unique('nl')}/t", 0x05)], version=5))
    assert not [p for p in got if p.type == 9 and p.body[-1] < 0x80], got
    assert disconnect_reason(got) in (None, 0x82), got  # MQTT-3.8.3-4: protocol error


def test_dup_on_qos0_publish(server, device):
    data = publish_packet(unique("dup0") + "/t", b"x", version=5)
    got = after_connect(server, device, bytes([data[0] | 0x08]) + data[1:])
    assert disconnect_reason(got) in (None, 0x81, 0x82), got  # MQTT-3.3.1-2


def test_session_expiry_on_disconnect_after_zero(server, device):
    """MQTT-3.14.2-2: a non-zero Session Expiry on DISCONNECT after 0 on CONNECT is a protocol error."""
    got = after_connect(server, device, packet(0xE0, b"\x00" + varint(5) + b"\x11\x00\x00\x00\x10"))
    assert disconnect_reason(got) == 0x82, got
