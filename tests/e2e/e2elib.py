"""Helpers for the end-to-end suite: run the real `thingport` binary, provision
devices, and drive it with real clients (Eclipse Paho, mosquitto_pub/sub) and
with raw MQTT bytes over TLS.

Everything waits by polling with a deadline; nothing sleeps "long enough".
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

REPO_ROOT = Path(__file__).resolve().parents[2]

#: How long to wait for something that should happen (a CONNACK, a message).
WAIT = 5.0
#: How long to watch for something that must NOT happen.
QUIET = 0.6


class E2EError(AssertionError):
    pass


def wait_until(pred: Callable[[], Any], timeout: float = WAIT, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll `pred` until it returns a truthy value; return it, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise E2EError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def find_binary() -> Path:
    env = os.environ.get("THINGPORT_BIN")
    p = Path(env) if env else REPO_ROOT / "target" / "debug" / "thingport"
    if not p.is_file() or not os.access(p, os.X_OK):
        where = f"THINGPORT_BIN={env}" if env else str(p)
        raise E2EError(
            f"thingport binary not found at {where}: run `cargo build -p thingport` "
            "in the repository root first (or set THINGPORT_BIN)"
        )
    return p


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cert_id_from_pem(pem_path: Path) -> str:
    """The certificate id: SHA-256 of the DER encoding, lower-case hex."""
    der = ssl.PEM_cert_to_DER_cert(Path(pem_path).read_text())
    return hashlib.sha256(der).hexdigest()


@dataclass
class Device:
    name: str
    dir: Path
    cert: Path
    key: Path
    ca: Path
    cert_id: str


_listen_flags: dict[str, list[str]] = {}


def other_listen_flags(binary: Path) -> list[str]:
    """The `--*-listen` flags `thingport serve` knows (from its --help), other
    than --mqtt-listen and the opt-in insecure --mqtt-plain-listen."""
    key = str(binary)
    if key not in _listen_flags:
        r = subprocess.run([key, "serve", "--help"], capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        flags = sorted(set(re.findall(r"(--[a-z0-9-]+-listen)\b", r.stdout)))
        _listen_flags[key] = [f for f in flags if f not in ("--mqtt-listen", "--mqtt-plain-listen")]
    return _listen_flags[key]


class Server:
    """One `thingport serve` process on a data directory."""

    def __init__(self, binary: Path, data_dir: Path, mqtt_port: int = 0, extra_args: Iterable[str] = ()):
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.mqtt_port_req = mqtt_port
        self.extra_args = list(extra_args)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.proc: subprocess.Popen | None = None
        self.endpoints: dict = {}
        self.host = "127.0.0.1"
        self.port = 0
        self._log = None
        self._n_devices = 0

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log.flush()
        cmd = [
            str(self.binary), "serve",
            "--data-dir", str(self.data_dir),
            "--mqtt-listen", f"127.0.0.1:{self.mqtt_port_req}",
            # Every other listener on an ephemeral loopback port, so parallel
            # servers never collide on defaults such as 8443.
            *[a for flag in other_listen_flags(self.binary) for a in (flag, "127.0.0.1:0")],
            *self.extra_args,
        ]
        env = dict(os.environ)
        env.setdefault("THINGPORT_LOG", "info")
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env)
        ep_file = self.data_dir / "endpoints.json"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise E2EError(f"thingport serve exited with {self.proc.returncode} before listening\n{self.log_tail()}")
            try:
                ep = json.loads(ep_file.read_text())
                # A file left behind by a killed server has another pid.
                if ep.get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise E2EError(f"thingport serve wrote no endpoints.json within {timeout}s\n{self.log_tail()}")
            time.sleep(0.02)
        self.endpoints = ep
        host, _, port = ep["mqtt"].rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_log()
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 80) -> str:
        lines = self.log_text().splitlines()
        return "---- server log (last %d lines of %s) ----\n%s" % (n, self.log_path, "\n".join(lines[-n:]))

    # -- CLI ---------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), *args, "--data-dir", str(self.data_dir)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise E2EError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{self.log_tail(30)}")
        return r

    ALLOW_ALL = "e2e-allow-all"

    def ensure_allow_all(self) -> None:
        """Create the permissive policy the suite's devices get (authorization
        itself is tested with explicit policies)."""
        if self.ALLOW_ALL in self.cli("policies", "list").stdout:
            return
        doc = self.data_dir.parent / f"{self.data_dir.name}-allow-all.json"
        doc.write_text('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}')
        self.cli("policies", "create", self.ALLOW_ALL, str(doc))

    def provision(self, name: str | None = None, key_type: str = "ec", policy: str | None = ALLOW_ALL) -> Device:
        """Provision a device. `policy`: the policy to attach (default: allow
        everything; "ThingportDefaultDevicePolicy" for least privilege; None: none)."""
        self._n_devices += 1
        name = name or f"dev{self._n_devices}"
        out = self.data_dir.parent / f"{self.data_dir.name}-devices" / name
        if policy == self.ALLOW_ALL:
            self.ensure_allow_all()
        policy_args = ["--policy", policy] if policy else ["--no-policy"]
        r = self.cli("provision", name, "--out", str(out), "--key-type", key_type, *policy_args)
        dev = Device(
            name=name,
            dir=out,
            cert=out / "certificate.pem.crt",
            key=out / "private.pem.key",
            ca=out / "root-ca.pem",
            cert_id=cert_id_from_pem(out / "certificate.pem.crt"),
        )
        printed = r.stdout + r.stderr
        if dev.cert_id not in printed:
            raise E2EError(f"provision did not print certificate id {dev.cert_id}:\n{printed}")
        return dev

    def certs(self, action: str, cert_id: str) -> subprocess.CompletedProcess:
        return self.cli("certs", action, cert_id)

    @property
    def ca(self) -> Path:
        return self.data_dir / "ca" / "root-ca.pem"


# ---------------------------------------------------------------------------
# Eclipse Paho
# ---------------------------------------------------------------------------

@dataclass
class ConnAck:
    session_present: bool
    reason: int
    properties: Any


def rc_int(rc) -> int:
    """ReasonCode / int / MQTTErrorCode -> int."""
    if rc is None:
        return -1
    v = getattr(rc, "value", rc)
    return int(v)


class _PahoClient(mqtt.Client):
    """paho's Client, recording each DISCONNECT packet the server sends.

    paho-mqtt 2.1.0 only parses a DISCONNECT's reason code when the remaining
    length is > 2 (client.py `_handle_disconnect`), so a DISCONNECT of
    `e0 02 8e 00` (reason 0x8E, no properties) reaches on_disconnect as
    "Success". We read the reason code from the raw packet instead."""

    def _handle_disconnect(self) -> None:
        self._e2e_server_disconnects.append(bytes(self._in_packet["packet"]))
        super()._handle_disconnect()


class Paho:
    """A paho-mqtt 2.x client on its own network thread, with blocking helpers.

    TLS is set up exactly like the seed Raspberry Pi example
    (`tls_set(ca_certs, certfile, keyfile, tls_version=ssl.PROTOCOL_TLSv1_2,
    ciphers=None)`) unless `tls12=False`, which lets the library negotiate
    (TLS 1.3 against this server).
    """

    def __init__(
        self,
        server: Server,
        device: Device,
        client_id: str,
        version: int = 5,
        tls12: bool = True,
        clean: bool = True,
        host: str = "localhost",
        keepalive: int = 60,
    ):
        self.server, self.device, self.client_id = server, device, client_id
        self.version = version
        self.host = host
        self.keepalive = keepalive
        self.clean = clean
        kwargs: dict = {}
        if version == 5:
            protocol = mqtt.MQTTv5
        else:
            protocol = mqtt.MQTTv311
            kwargs["clean_session"] = clean
        self.c = _PahoClient(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=False,
            **kwargs,
        )
        self.c._e2e_server_disconnects = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # ssl.PROTOCOL_TLSv1_2
            if tls12:
                self.c.tls_set(
                    ca_certs=str(device.ca),
                    certfile=str(device.cert),
                    keyfile=str(device.key),
                    tls_version=ssl.PROTOCOL_TLSv1_2,
                    ciphers=None,
                )
            else:
                self.c.tls_set(ca_certs=str(device.ca), certfile=str(device.cert), keyfile=str(device.key))
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.connack: ConnAck | None = None
        self.connack_event = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reasons: list[int] = []
        self.disconnect_props: list[Any] = []
        self._cv = threading.Condition()
        self._pub: dict[int, int] = {}
        self._sub: dict[int, list[int]] = {}
        self._unsub: dict[int, list[int]] = {}
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self._looping = False

    # callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = ConnAck(bool(flags.session_present), rc_int(reason_code), properties)
        self.connack_event.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reasons.append(rc_int(reason_code))
        self.disconnect_props.append(properties)
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._cv:
            self._pub[mid] = rc_int(reason_code)
            self._cv.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cv:
            self._sub[mid] = [rc_int(r) for r in reason_codes]
            self._cv.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cv:
            self._unsub[mid] = [rc_int(r) for r in (reason_codes or [])]
            self._cv.notify_all()

    def _wait_cv(self, table: dict, mid: int, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in table:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise E2EError(f"{self.client_id}: no {what} for mid {mid} within {timeout}s "
                                   f"(disconnects: {self.disconnect_reasons})")
                self._cv.wait(min(left, 0.1))
            return table.pop(mid)

    # actions
    def will_set(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, properties=None):
        self.c.will_set(topic, payload, qos=qos, retain=retain, properties=properties)
        return self

    def connect(self, session_expiry: int | None = None, properties: Properties | None = None,
                expect: int | None = 0, timeout: float = WAIT) -> ConnAck:
        """Connect and wait for the CONNACK. `expect` is the reason code to
        require (None: accept anything). For v5, `clean` is Clean Start."""
        kwargs: dict = {}
        if self.version == 5:
            props = properties or Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = props
        self.c.connect(self.host, self.server.port, keepalive=self.keepalive, **kwargs)
        self.c.loop_start()
        self._looping = True
        deadline = time.monotonic() + timeout
        while not self.connack_event.is_set():
            if self.disconnected.is_set() or time.monotonic() > deadline:
                break
            self.connack_event.wait(0.02)
        if expect is not None:
            if self.connack is None:
                raise E2EError(f"{self.client_id}: no CONNACK within {timeout}s (disconnects: {self.disconnect_reasons})\n"
                               f"{self.server.log_tail(20)}")
            assert self.connack.reason == expect, (
                f"{self.client_id}: CONNACK reason {self.connack.reason:#x}, expected {expect:#x}")
        return self.connack

    def tls_version(self) -> str | None:
        s = self.c.socket()
        return s.version() if isinstance(s, ssl.SSLSocket) else None

    def subscribe(self, topic, qos: int = 1, timeout: float = WAIT, **opts) -> list[int]:
        """Subscribe (one filter or a list of (filter, qos|SubscribeOptions));
        wait for SUBACK; return the reason codes. v5 options: no_local,
        retain_as_published, retain_handling, properties (e.g. a
        SubscriptionIdentifier)."""
        properties = opts.pop("properties", None)
        if isinstance(topic, str):
            if self.version == 5:
                so = SubscribeOptions(
                    qos=qos,
                    noLocal=opts.pop("no_local", False),
                    retainAsPublished=opts.pop("retain_as_published", False),
                    retainHandling=opts.pop("retain_handling", 0),
                )
                rc, mid = self.c.subscribe(topic, options=so, properties=properties)
            else:
                rc, mid = self.c.subscribe(topic, qos)
        else:
            if self.version == 5:
                lst = [(t, q if isinstance(q, SubscribeOptions) else SubscribeOptions(qos=q)) for t, q in topic]
                rc, mid = self.c.subscribe(lst, properties=properties)
            else:
                rc, mid = self.c.subscribe(list(topic))
        assert not opts, f"unknown options {opts}"
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {rc}"
        return self._wait_cv(self._sub, mid, timeout, "SUBACK")

    def unsubscribe(self, topic: str, timeout: float = WAIT):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return self._wait_cv(self._unsub, mid, timeout, "UNSUBACK")

    def publish(self, topic: str, payload=b"", qos: int = 0, retain: bool = False,
                properties: Properties | None = None, wait: bool = True, timeout: float = WAIT) -> int | None:
        """Publish; for QoS 1/2 wait for PUBACK/PUBCOMP and return its reason
        code (for QoS 0: wait until written)."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if not wait:
            # Used when the server is expected to close the connection: paho may
            # already have seen the close (its network thread wrote the packet
            # and ended) and then reports MQTT_ERR_NO_CONN. The caller checks
            # the disconnect instead.
            return None
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"{self.client_id}: publish failed locally: {info.rc}"
        return self._wait_cv(self._pub, info.mid, timeout, "PUBACK/PUBCOMP" if qos else "publish written")

    def expect(self, topic: str | None = None, timeout: float = WAIT, payload=None) -> mqtt.MQTTMessage:
        """The next message (skipping ones whose topic differs from `topic`, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise E2EError(f"{self.client_id}: no message{' on ' + topic if topic else ''} within {timeout}s")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if topic is None or m.topic == topic:
                if payload is not None:
                    want = payload.encode() if isinstance(payload, str) else payload
                    assert m.payload == want, f"{m.topic}: payload {m.payload!r}, expected {want!r}"
                return m

    def collect(self, n: int, timeout: float = WAIT, topic_prefix: str | None = None) -> list[mqtt.MQTTMessage]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise E2EError(f"{self.client_id}: got {len(got)} of {n} messages: "
                               f"{[(m.topic, m.payload) for m in got]}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if topic_prefix is None or m.topic.startswith(topic_prefix):
                got.append(m)
        return got

    def expect_none(self, duration: float = QUIET, topic_prefix: str | None = None) -> None:
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                return
            if topic_prefix is None or m.topic.startswith(topic_prefix):
                raise E2EError(f"{self.client_id}: unexpected message on {m.topic}: {m.payload!r} retain={m.retain}")

    def drain(self) -> list[mqtt.MQTTMessage]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def wait_disconnected(self, timeout: float = WAIT) -> list[int]:
        if not self.disconnected.wait(timeout):
            raise E2EError(f"{self.client_id}: still connected after {timeout}s")
        return self.disconnect_reasons

    def server_disconnect(self, timeout: float = WAIT) -> int | None:
        """Wait until the connection ends; return the reason code of the
        DISCONNECT the server sent (0 if it had none), or None if the server
        closed the connection without a DISCONNECT packet."""
        self.wait_disconnected(timeout)
        raw = self.c._e2e_server_disconnects
        if not raw:
            return None
        return raw[0][0] if raw[0] else 0

    def disconnect(self, reason: int | None = None, properties=None, timeout: float = WAIT) -> None:
        """Normal DISCONNECT, then stop the network thread."""
        if self.c.is_connected():
            if reason is not None:
                from paho.mqtt.reasoncodes import ReasonCode
                self.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=reason), properties=properties)
            else:
                self.c.disconnect(properties=properties)
            self.disconnected.wait(timeout)
        self.stop()

    def drop(self, timeout: float = WAIT) -> None:
        """Abnormal end: shut the TCP connection without an MQTT DISCONNECT."""
        s = self.c.socket()
        if s is not None:
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass
        self.disconnected.wait(timeout)
        self.stop()

    def stop(self) -> None:
        if self._looping:
            self._looping = False
            self.c.loop_stop()
        try:
            s = self.c.socket()
            if s is not None:
                s.close()
        except OSError:
            pass

    def close(self) -> None:
        """Best-effort cleanup for fixtures."""
        try:
            if self.c.is_connected():
                self.c.disconnect()
                self.disconnected.wait(1.0)
        except Exception:
            pass
        self.stop()


def props(packet_type=PacketTypes.PUBLISH, **kw) -> Properties:
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


# ---------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub
# ---------------------------------------------------------------------------

def mosq_common(server: Server, device: Device, host: str = "localhost", version: str = "mqttv311") -> list[str]:
    return [
        "-h", host, "-p", str(server.port),
        "--cafile", str(device.ca), "--cert", str(device.cert), "--key", str(device.key),
        "-V", version,
    ]


def mosquitto_pub(server: Server, device: Device, topic: str, message: str, qos: int = 0,
                  host: str = "localhost", version: str = "mqttv311", client_id: str | None = None,
                  extra: Iterable[str] = (), timeout: float = 10.0, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["mosquitto_pub", *mosq_common(server, device, host, version), "-t", topic, "-m", message, "-q", str(qos)]
    if client_id:
        cmd += ["-i", client_id]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise E2EError(f"mosquitto_pub failed ({r.returncode}): {r.stdout}{r.stderr}\n{server.log_tail(20)}")
    return r


class MosquittoSub:
    """A mosquitto_sub process (-d -v, line-buffered through stdbuf). Debug
    lines tell when the SUBACK arrived; other lines are "topic payload"."""

    def __init__(self, server: Server, device: Device, topics: list[str], qos: int = 0,
                 host: str = "localhost", version: str = "mqttv311", client_id: str | None = None,
                 extra: Iterable[str] = (), max_seconds: int = 30):
        cmd = ["mosquitto_sub", *mosq_common(server, device, host, version), "-d", "-v", "-q", str(qos),
               "-W", str(max_seconds)]
        for t in topics:
            cmd += ["-t", t]
        if client_id:
            cmd += ["-i", client_id]
        cmd += list(extra)
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", "-eL", *cmd]
        self.cmd = cmd
        self.server = server
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.all_lines: list[str] = []
        self.subscribed = threading.Event()
        self.connack_rc: int | None = None
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()

    def _reader(self):
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            if line.startswith("Client ") or line.startswith("Subscribed (mid"):
                if " received CONNACK (" in line:
                    try:
                        self.connack_rc = int(line.rsplit("(", 1)[1].rstrip(")"))
                    except ValueError:
                        pass
                if line.startswith("Subscribed (mid"):
                    self.subscribed.set()
                continue
            self.lines.put(line)
        self.lines.put(None)

    def wait_subscribed(self, timeout: float = WAIT) -> "MosquittoSub":
        if not self.subscribed.wait(timeout):
            out = "\n".join(self.all_lines)
            self.kill()
            raise E2EError(f"mosquitto_sub did not get a SUBACK within {timeout}s:\n{out}\n{self.server.log_tail(20)}")
        return self

    def expect_line(self, timeout: float = WAIT) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise E2EError(f"mosquitto_sub printed no message within {timeout}s:\n" + "\n".join(self.all_lines))
        if line is None:
            raise E2EError(f"mosquitto_sub exited ({self.proc.poll()}) without a message:\n" + "\n".join(self.all_lines))
        return line

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def close(self):
        self.kill(signal.SIGTERM)


# ---------------------------------------------------------------------------
# Raw MQTT over TLS (for exact reason codes and malformed packets)
# ---------------------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def mqtt_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + varint(len(body)) + body


def connect_packet(client_id: str, version: int = 4, clean: bool = True, keepalive: int = 60,
                   properties: bytes = b"", flags_extra: int = 0, protocol_name: str = "MQTT") -> bytes:
    flags = (0x02 if clean else 0) | flags_extra
    vh = mqtt_str(protocol_name) + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        vh += varint(len(properties)) + properties
    return packet(0x10, vh + mqtt_str(client_id))


def publish_packet(topic: str | bytes, payload: bytes, qos: int = 0, packet_id: int = 1, retain: bool = False,
                   version: int = 4, properties: bytes = b"") -> bytes:
    first = 0x30 | (qos << 1) | (1 if retain else 0)
    body = mqtt_str(topic)
    if qos:
        body += struct.pack("!H", packet_id)
    if version == 5:
        body += varint(len(properties)) + properties
    return packet(first, body + payload)


def subscribe_packet(packet_id: int, filters: list[tuple[str, int]], version: int = 4, first_byte: int = 0x82) -> bytes:
    body = struct.pack("!H", packet_id)
    if version == 5:
        body += b"\x00"
    for f, o in filters:
        body += mqtt_str(f) + bytes([o])
    return packet(first_byte, body)


@dataclass
class RawPacket:
    type: int
    flags: int
    body: bytes

    @property
    def reason(self) -> int | None:
        """CONNACK return/reason code, DISCONNECT / PUBACK reason code."""
        if self.type == 2:
            return self.body[1]
        if self.type == 14:
            return self.body[0] if self.body else 0
        if self.type in (4, 5, 6, 7):
            return self.body[2] if len(self.body) > 2 else 0
        return None


def tls_context(device: Device | None, ca: Path, tls12: bool = False, cert: Path | None = None,
                key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca))
    if tls12:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if device is not None:
        ctx.load_cert_chain(str(device.cert), str(device.key))
    elif cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class RawConn:
    """A TLS socket speaking bytes."""

    def __init__(self, server: Server, device: Device | None, tls12: bool = False, host: str = "localhost",
                 ctx: ssl.SSLContext | None = None, timeout: float = WAIT):
        if ctx is None:
            ctx = tls_context(device, device.ca if device else server.ca, tls12=tls12)
        raw = socket.create_connection((server.host, server.port), timeout=timeout)
        try:
            self.s = ctx.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("raw read timed out")
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(65536)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            return False
        except ssl.SSLError as e:
            # e.g. a TLS alert from the server after the handshake
            self.last_error = e
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_packet(self, timeout: float = WAIT) -> RawPacket | None:
        """Next packet, or None when the server closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                mult, length, i = 1, 0, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        complete = True
                        break
                if complete and len(self.buf) >= i + length:
                    first = self.buf[0]
                    body = self.buf[i:i + length]
                    self.buf = self.buf[i + length:]
                    return RawPacket(first >> 4, first & 0x0F, body)
            if not self._fill(deadline):
                return None

    def connect(self, client_id: str, version: int = 4, **kw) -> RawPacket:
        self.send(connect_packet(client_id, version=version, **kw))
        p = self.read_packet()
        assert p is not None and p.type == 2, f"expected CONNACK, got {p}"
        return p

    def read_until_closed(self, timeout: float = WAIT) -> list[RawPacket]:
        """Read packets until the server closes; fail if it stays open."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self.read_packet(timeout=max(0.01, deadline - time.monotonic()))
            except (socket.timeout, TimeoutError):
                raise E2EError(f"connection still open after {timeout}s; received {got}")
            except OSError:
                return got
            if p is None:
                return got
            got.append(p)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# openssl: a CA the server does not know
# ---------------------------------------------------------------------------

def make_foreign_ca_device(workdir: Path, cn: str = "intruder") -> tuple[Path, Path, Path]:
    """A CA made with openssl and a client certificate it signs. Returns
    (ca_pem, cert_pem, key_pem)."""
    workdir.mkdir(parents=True, exist_ok=True)

    def run(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=workdir, timeout=30,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise E2EError(f"openssl {' '.join(args)} failed: {r.stderr}")

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Thingport Root CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "dev.key", "-out", "dev.csr", "-subj", f"/CN={cn}")
    (workdir / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                     "extendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "dev.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "dev.pem", "-days", "2", "-extfile", "ext.cnf")
    return workdir / "ca.pem", workdir / "dev.pem", workdir / "dev.key"


def issue_with_ca(ca_cert: Path, ca_key: Path, out_dir: Path, cn: str, days_from: float = -1, days_to: float = 30,
                  client_auth: bool = True) -> tuple[Path, Path]:
    """A client certificate signed by the given CA with Python's cryptography
    package (not registered with the server). Validity relative to now."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
    ca_priv = serialization.load_pem_private_key(Path(ca_key).read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days_from))
        .not_valid_after(now + datetime.timedelta(days=days_to))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
    )
    if client_auth:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = b.sign(ca_priv, hashes.SHA256())
    out_dir.mkdir(parents=True, exist_ok=True)
    cp, kp = out_dir / f"{cn}.pem.crt", out_dir / f"{cn}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)
    return cp, kp


def device_from_files(name: str, cert: Path, key: Path, ca: Path) -> Device:
    return Device(name=name, dir=cert.parent, cert=cert, key=key, ca=ca, cert_id=cert_id_from_pem(cert))


def tls_refused(server: Server, device: Device, tls12: bool, version: int = 4) -> str:
    """Try a TLS connection plus CONNECT; return how it failed. Fails the test
    if a CONNACK comes back."""
    try:
        conn = RawConn(server, device, tls12=tls12)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return f"handshake failed: {e}"
    try:
        try:
            conn.send(connect_packet(unique_id("refused"), version=version))
            p = conn.read_packet()
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return f"failed after the handshake: {e}"
        if p is not None:
            raise E2EError(f"expected the TLS connection to fail, got {p}")
        return "closed without CONNACK " + str(getattr(conn, "last_error", ""))
    finally:
        conn.close()


_uid = [0]


def unique_id(prefix: str) -> str:
    _uid[0] += 1
    return f"{prefix}-{os.getpid()}-{_uid[0]}"


# ---------------------------------------------------------------------------
# Management API, iot-data and the S3-compatible object endpoint (admin key)
# ---------------------------------------------------------------------------

def admin_credentials(server: Server) -> dict:
    """data_dir/admin-credentials.json: {"accessKeyId": …, "secretAccessKey": …}."""
    return json.loads((server.data_dir / "admin-credentials.json").read_text())


def iot_client(server: Server, secret: str | None = None):
    """boto3 `iot` (management API) with the admin key."""
    import boto3
    from botocore.config import Config
    creds = admin_credentials(server)
    return boto3.client("iot", endpoint_url=server.endpoints["api"], region_name="us-east-1",
                        aws_access_key_id=creds["accessKeyId"],
                        aws_secret_access_key=secret if secret is not None else creds["secretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))


def iot_data_client(server: Server):
    """boto3 `iot-data` (shadows, publish) with the admin key."""
    import boto3
    from botocore.config import Config
    creds = admin_credentials(server)
    return boto3.client("iot-data", endpoint_url=server.endpoints["api"], region_name="us-east-1",
                        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
                        config=Config(retries={"max_attempts": 1}, connect_timeout=WAIT, read_timeout=10))


def s3_client(server: Server, access_key_id: str | None = None, secret: str | None = None, unsigned: bool = False,
              **config):
    """boto3 `s3` on the object endpoint (endpoints.json "s3", TLS verified
    with the server's root CA), path-style, with the admin key unless told
    otherwise. Extra keyword arguments go to botocore's Config.

    signature_version is "s3v4" unless given: without it botocore signs
    requests with SigV4 but pre-signs URLs and POST forms with SigV2
    (`_default_s3_presign_to_sigv2`); pass signature_version=None for
    botocore's defaults."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    creds = admin_credentials(server)
    cfg = dict(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=WAIT, read_timeout=30,
               signature_version="s3v4")
    if unsigned:
        cfg["signature_version"] = UNSIGNED
    cfg.update(config)
    if cfg["signature_version"] is None:
        del cfg["signature_version"]
    return boto3.client("s3", endpoint_url=server.endpoints["s3"], region_name="us-east-1",
                        aws_access_key_id=access_key_id or creds["accessKeyId"],
                        aws_secret_access_key=secret if secret is not None else creds["secretAccessKey"],
                        verify=str(server.ca), config=Config(**cfg))


def s3_error(body: bytes | str) -> tuple[str | None, str | None]:
    """(Code, Message) of an S3 XML error body; (None, None) if it is none."""
    import xml.etree.ElementTree as ET
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None
    if root.tag.rsplit("}", 1)[-1] != "Error":
        return None, None

    def text(name):
        for el in root:
            if el.tag.rsplit("}", 1)[-1] == name:
                return el.text
        return None
    return text("Code"), text("Message")


def raw_https(server: Server, method: str, target: str, body: bytes = b"", headers: dict | None = None,
              timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """One request on the object endpoint with http.client, sending `target`
    (path and query) byte for byte: unlike requests and urllib3, nothing
    removes `..` segments. Returns (status, lower-case headers, body)."""
    import http.client
    from urllib.parse import urlsplit
    u = urlsplit(server.endpoints["s3"])
    ctx = ssl.create_default_context(cafile=str(server.ca))
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        hdrs = {"Content-Length": str(len(body))} if body or method in ("PUT", "POST") else {}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class HttpRecorder:
    """A local HTTP server on 127.0.0.1:0 (own thread) recording every POST
    body, answering 200 — the target of a rule's `http` action."""

    def __init__(self):
        import http.server
        rec = self
        self.bodies: "queue.Queue[tuple[str, dict, bytes]]" = queue.Queue()

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n)
                rec.bodies.put((self.path, {k.lower(): v for k, v in self.headers.items()}, data))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._t = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._t.start()

    def expect(self, pred: Callable[[dict], bool] = lambda d: True, timeout: float = WAIT) -> dict:
        """The next JSON body for which `pred` holds (others are skipped)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise E2EError(f"no matching POST within {timeout}s; got {seen}")
            try:
                _, _, data = self.bodies.get(timeout=left)
            except queue.Empty:
                continue
            doc = json.loads(data)
            if pred(doc):
                return doc
            seen.append(doc)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------
# Payload keys: the KMS-compatible API and Thingport's own management routes
# ---------------------------------------------------------------------------

def kms_client(server: Server):
    """boto3 `kms` on the management API (KMS JSON 1.1, SigV4) with the admin key."""
    import boto3
    from botocore.config import Config
    creds = admin_credentials(server)
    return boto3.client("kms", endpoint_url=server.endpoints["api"], region_name="us-east-1",
                        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
                        config=Config(retries={"max_attempts": 1}, connect_timeout=WAIT, read_timeout=30))


def api_request(server: Server, method: str, path: str, body: bytes = b"", params: dict | None = None,
                headers: dict | None = None, timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """One SigV4-signed request (admin key, service "iot", botocore's pure-Python
    SigV4Auth) to a management API route boto3 has no client for, e.g.
    `/thingport/data-keys`. Returns (status, lower-case headers, body)."""
    import requests
    from urllib.parse import urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    creds = admin_credentials(server)
    url = server.endpoints["api"] + path + ("?" + urlencode(params) if params else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(creds["accessKeyId"], creds["secretAccessKey"]), "iot", "us-east-1").add_auth(req)
    r = requests.request(method, url, data=body, headers=dict(req.headers.items()), timeout=timeout)
    return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content


def api_json(server: Server, method: str, path: str, body: bytes = b"", params: dict | None = None,
             expect: int = 200) -> dict:
    """api_request, requiring status `expect` and a JSON body."""
    status, _, data = api_request(server, method, path, body, params)
    if status != expect:
        raise E2EError(f"{method} {path}: HTTP {status} (expected {expect}): {data[:500]!r}")
    return json.loads(data)
