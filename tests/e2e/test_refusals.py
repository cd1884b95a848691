"""Who may not connect: TLS failures and certificate status."""

import ssl
import time

import pytest

from conftest import unique
from e2elib import (
    RawConn, device_from_files, issue_with_ca, make_foreign_ca_device, tls_refused, wait_until,
)

TLS = [pytest.param(True, id="tls1.2"), pytest.param(False, id="tls-default")]


# -- TLS -----------------------------------------------------------------------

@pytest.mark.parametrize("tls12", TLS)
def test_no_client_certificate(server, device, tls12):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(device.ca))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            RawConn(server, None, ctx=ctx)
    else:
        # TLS 1.3: the client finishes first; the server's alert arrives on read.
        try:
            conn = RawConn(server, None, ctx=ctx)
        except (ssl.SSLError, ConnectionResetError):
            return
        from e2elib import connect_packet
        try:
            conn.send(connect_packet(unique("nocert")))
            assert conn.read_packet() is None, "a connection without a client certificate got a CONNACK"
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass


def test_no_client_certificate_paho(server, device, paho):
    import paho.mqtt.client as mqtt
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("nocert"), reconnect_on_failure=False)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c.tls_set(ca_certs=str(device.ca), tls_version=ssl.PROTOCOL_TLSv1_2)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        c.connect("localhost", server.port)


@pytest.mark.parametrize("tls12", TLS)
def test_certificate_from_another_ca(server, device, tmp_path, tls12):
    # Same subject as the real CA, different key: made with openssl.
    ca, cert, key = make_foreign_ca_device(tmp_path / "foreign")
    intruder = device_from_files("intruder", cert, key, device.ca)
    how = tls_refused(server, intruder, tls12=tls12)
    assert how


def test_certificate_from_another_ca_paho(server, device, tmp_path, paho):
    ca, cert, key = make_foreign_ca_device(tmp_path / "foreign")
    intruder = device_from_files("intruder", cert, key, device.ca)
    c = paho(server, intruder, version=4, tls12=True)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        c.connect()


def test_server_certificate_names(server, device):
    """The server certificate verifies for localhost and 127.0.0.1, not for other names."""
    for host in ("localhost", "127.0.0.1"):
        RawConn(server, device, host=host).close()
    with pytest.raises(ssl.SSLCertVerificationError):
        RawConn(server, device, host="example.com")


@pytest.mark.parametrize("tls12", TLS)
def test_expired_certificate_from_our_ca(server, tmp_path, tls12):
    cert, key = issue_with_ca(server.ca, server.data_dir / "ca" / "root-ca.key", tmp_path, "expired",
                              days_from=-10, days_to=-1)
    how = tls_refused(server, device_from_files("expired", cert, key, server.ca), tls12=tls12)
    assert how


@pytest.mark.parametrize("version", [4, 5])
def test_unregistered_certificate_from_our_ca(server, tmp_path, version):
    """Signed by the server's CA but never registered: TLS works, CONNECT is refused."""
    cert, key = issue_with_ca(server.ca, server.data_dir / "ca" / "root-ca.key", tmp_path, "unregistered")
    dev = device_from_files("unregistered", cert, key, server.ca)
    assert_connack_refused(server, dev, version)


# -- certificate status ----------------------------------------------------------

def assert_connack_refused(server, dev, version):
    conn = RawConn(server, dev)
    try:
        ack = conn.connect(unique("refused"), version=version)
        if version == 4:
            assert ack.body == b"\x00\x05", f"3.1.1 CONNACK {ack.body.hex()}, expected 0005 (not authorized)"
        else:
            assert ack.body[0] == 0 and ack.body[1] == 0x87, f"v5 CONNACK {ack.body.hex()}, expected reason 0x87"
        assert conn.read_until_closed() == []
    finally:
        conn.close()


def assert_connects(server, dev, version):
    conn = RawConn(server, dev)
    try:
        ack = conn.connect(unique("accepted"), version=version)
        assert ack.body[:2] == b"\x00\x00", ack
    finally:
        conn.close()


@pytest.mark.parametrize("version", [4, 5])
def test_deactivated_then_reactivated(server, version):
    dev = server.provision(unique("deact"))
    assert_connects(server, dev, version)
    server.certs("deactivate", dev.cert_id)
    assert_connack_refused(server, dev, version)
    server.certs("activate", dev.cert_id)
    assert_connects(server, dev, version)


@pytest.mark.parametrize("version", [4, 5])
def test_deactivated_paho(server, paho, version):
    dev = server.provision(unique("deact-paho"))
    server.certs("deactivate", dev.cert_id)
    c = paho(server, dev, version=version)
    ack = c.connect(expect=None)
    assert ack is not None, "no CONNACK"
    # paho maps the 3.1.1 return code 5 to the MQTT 5 "Not authorized" (0x87).
    assert ack.reason == 0x87
    c.wait_disconnected()


@pytest.mark.parametrize("version", [4, 5])
def test_revoked(server, version):
    dev = server.provision(unique("revoked"))
    server.certs("revoke", dev.cert_id)
    assert_connack_refused(server, dev, version)
    # Revocation cannot be undone.
    r = server.cli("certs", "activate", dev.cert_id, check=False)
    assert r.returncode != 0, f"activating a revoked certificate succeeded: {r.stdout}{r.stderr}"
    assert_connack_refused(server, dev, version)


def test_other_devices_unaffected_by_deactivation(server, device, paho):
    victim = server.provision(unique("victim"))
    server.certs("deactivate", victim.cert_id)
    c = paho(server, device, version=5)
    c.connect()
    assert_connects(server, device, 4)


@pytest.mark.parametrize("version", [4, 5])
def test_live_connection_closed_on_deactivate(server, paho, version):
    dev = server.provision(unique("live"))
    bystander_dev = server.provision(unique("bystander"))
    c = paho(server, dev, version=version)
    c.connect()
    c2 = paho(server, dev, version=version)  # a second connection with the same certificate
    c2.connect()
    other = paho(server, bystander_dev, version=version)
    other.connect()
    t0 = time.monotonic()
    server.certs("deactivate", dev.cert_id)
    for cl in (c, c2):
        code = cl.server_disconnect(timeout=5)
        if version == 5:
            assert code == 0x98, f"DISCONNECT reason {code}, expected 0x98 Administrative action"
        else:
            assert code is None
    assert time.monotonic() - t0 < 5
    assert other.c.is_connected()
    t = unique("live") + "/t"
    other.subscribe(t, qos=1)
    other.publish(t, b"ok", qos=1)
    assert other.expect(t).payload == b"ok"


def test_live_mosquitto_sub_ends_on_revoke(server, mosq_sub):
    dev = server.provision(unique("live-mosq"))
    sub = mosq_sub(server, dev, [unique("live-mosq") + "/t"], version="mqttv5", client_id=unique("live-mosq"))
    sub.wait_subscribed()
    server.certs("revoke", dev.cert_id)
    # mosquitto_sub prints "Received DISCONNECT (152)": 0x98 Administrative action.
    wait_until(lambda: any("Received DISCONNECT (152)" in l for l in sub.all_lines), timeout=5,
               what="mosquitto_sub to get a DISCONNECT; it printed:\n" + "\n".join(sub.all_lines))


def test_will_published_when_certificate_deactivated(server, device, paho):
    """A server-initiated close is not a normal DISCONNECT: the will is sent."""
    victim_dev = server.provision(unique("will-victim"))
    wt = unique("will-deact") + "/t"
    w = paho(server, device, version=5)
    w.connect()
    w.subscribe(wt, qos=1)
    v = paho(server, victim_dev, version=5)
    v.will_set(wt, b"deactivated", qos=1)
    v.connect()
    server.certs("deactivate", victim_dev.cert_id)
    assert v.server_disconnect() == 0x98
    assert w.expect(wt).payload == b"deactivated"
