"""The AWS IoT Device SDK v2 for Python (`awsiotsdk`, on the `awscrt` native
client) against Thingport's device shadows, connected exactly as the SDK's
samples connect to AWS IoT: `mqtt_connection_builder.mtls_from_path(endpoint,
port, cert_filepath, pri_key_filepath, ca_filepath, client_id=THING)` with a
device provisioned under the least-privilege default policy.

Two shadow APIs of the SDK are exercised:

* `iotshadow.IotShadowClient` (the v1 API every SDK sample used until 2025:
  `subscribe_to_*` + `publish_*`, responses through callbacks) over an MQTT
  3.1.1 `awscrt.mqtt.Connection`;
* `iotshadow.IotShadowClientV2` (request/response futures and event streams,
  correlated by client token) over an MQTT 5 client from
  `mqtt5_client_builder.mtls_from_path`.

Both on the classic shadow and on a named shadow: get, update, delta,
documents (`ShadowUpdatedEvent`), delete, and rejections (`ErrorResponse`).
"""

from __future__ import annotations

import json
import queue
import threading
import time

import boto3
import pytest
from botocore.config import Config

from conftest import unique
from e2elib import WAIT

try:
    from awscrt import mqtt, mqtt5, mqtt_request_response
    from awsiot import iotshadow, mqtt5_client_builder, mqtt_connection_builder
    import awsiot
except ImportError as e:  # pragma: no cover - only without the pinned dependency
    pytest.skip(f"awsiotsdk is not installed ({e}): run scripts/test-deps.sh (it pins awsiotsdk, which "
                "brings the awscrt wheel)", allow_module_level=True)

DEFAULT = "ThingportDefaultDevicePolicy"
QOS1 = mqtt.QoS.AT_LEAST_ONCE
SDK_TIMEOUT = 10


def iot_data(server):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    return boto3.client("iot-data", endpoint_url=server.endpoints["api"], region_name="us-east-1",
                        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))


class Events:
    """Callback sink: one queue per name."""

    def __init__(self):
        self.qs: dict[str, queue.Queue] = {}
        self.lock = threading.Lock()

    def q(self, name: str) -> queue.Queue:
        with self.lock:
            return self.qs.setdefault(name, queue.Queue())

    def cb(self, name: str):
        return lambda ev: self.q(name).put(ev)

    def get(self, name: str, timeout: float = WAIT, where=None):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {name} event within {timeout}s")
            try:
                ev = self.q(name).get(timeout=left)
            except queue.Empty:
                continue
            if where is None or where(ev):
                return ev

    def none(self, name: str, duration: float = 0.6):
        try:
            ev = self.q(name).get(timeout=duration)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected {name} event: {ev}")


@pytest.fixture
def sdk_device(server):
    return server.provision(unique("sdk-thing"), policy=DEFAULT)


@pytest.fixture
def connection(server, sdk_device):
    """An awscrt MQTT 3.1.1 connection built the way the SDK samples build it."""
    conn = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost",
        port=server.port,
        cert_filepath=str(sdk_device.cert),
        pri_key_filepath=str(sdk_device.key),
        ca_filepath=str(sdk_device.ca),
        client_id=sdk_device.name,
        clean_session=True,
        keep_alive_secs=30,
    )
    result = conn.connect().result(SDK_TIMEOUT)
    assert result["session_present"] is False
    yield conn
    try:
        conn.disconnect().result(SDK_TIMEOUT)
    except Exception:
        pass


def _sub(future_and_topic):
    future, topic = future_and_topic
    qos = future.result(SDK_TIMEOUT)
    assert qos == QOS1, (topic, qos)
    return topic


def test_v1_classic_shadow_get_update_delta_delete(server, sdk_device, connection):
    thing = sdk_device.name
    shadow = iotshadow.IotShadowClient(connection)
    ev = Events()
    _sub(shadow.subscribe_to_update_shadow_accepted(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, ev.cb("update_accepted")))
    _sub(shadow.subscribe_to_update_shadow_rejected(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, ev.cb("update_rejected")))
    _sub(shadow.subscribe_to_get_shadow_accepted(
        iotshadow.GetShadowSubscriptionRequest(thing_name=thing), QOS1, ev.cb("get_accepted")))
    _sub(shadow.subscribe_to_get_shadow_rejected(
        iotshadow.GetShadowSubscriptionRequest(thing_name=thing), QOS1, ev.cb("get_rejected")))
    _sub(shadow.subscribe_to_shadow_delta_updated_events(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), QOS1, ev.cb("delta")))
    _sub(shadow.subscribe_to_shadow_updated_events(
        iotshadow.ShadowUpdatedSubscriptionRequest(thing_name=thing), QOS1, ev.cb("documents")))
    _sub(shadow.subscribe_to_delete_shadow_accepted(
        iotshadow.DeleteShadowSubscriptionRequest(thing_name=thing), QOS1, ev.cb("delete_accepted")))
    _sub(shadow.subscribe_to_delete_shadow_rejected(
        iotshadow.DeleteShadowSubscriptionRequest(thing_name=thing), QOS1, ev.cb("delete_rejected")))

    # What the SDK's shadow sample does first: get; no shadow yet -> 404.
    shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing, client_token="g0"), QOS1).result(SDK_TIMEOUT)
    err = ev.get("get_rejected")
    assert isinstance(err, iotshadow.ErrorResponse)
    assert (err.code, err.client_token) == (404, "g0")
    assert err.message == f"No shadow exists with name: '{thing}'"

    # The app side sets desired; the device gets the delta.
    iot_data(server).update_thing_shadow(thingName=thing, payload=json.dumps(
        {"state": {"desired": {"color": "green", "lamp": {"on": True, "level": 7}}}}))
    delta = ev.get("delta")
    assert isinstance(delta, iotshadow.ShadowDeltaUpdatedEvent)
    assert delta.state == {"color": "green", "lamp": {"on": True, "level": 7}}
    assert delta.version == 1
    assert delta.metadata["color"]["timestamp"] > 0
    assert delta.timestamp is not None
    docs = ev.get("documents")
    assert isinstance(docs, iotshadow.ShadowUpdatedEvent)
    assert docs.previous is None
    assert docs.current.state.desired == {"color": "green", "lamp": {"on": True, "level": 7}}
    assert docs.current.version == 1

    # The device reports part of it: accepted, and the remaining delta.
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, client_token="u1",
        state=iotshadow.ShadowState(reported={"color": "green", "lamp": {"on": True, "level": 3}})),
        QOS1).result(SDK_TIMEOUT)
    acc = ev.get("update_accepted", where=lambda r: r.client_token == "u1")
    assert isinstance(acc, iotshadow.UpdateShadowResponse)
    assert acc.version == 2
    assert acc.state.reported == {"color": "green", "lamp": {"on": True, "level": 3}}
    assert acc.metadata.reported["lamp"]["level"]["timestamp"] > 0
    delta = ev.get("delta")
    assert (delta.state, delta.version) == ({"lamp": {"level": 7}}, 2)

    shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing, client_token="g1"), QOS1).result(SDK_TIMEOUT)
    got = ev.get("get_accepted", where=lambda r: r.client_token == "g1")
    assert isinstance(got, iotshadow.GetShadowResponse)
    assert got.version == 2
    assert got.state.desired["lamp"]["level"] == 7
    assert got.state.reported["lamp"]["level"] == 3
    assert got.state.delta == {"lamp": {"level": 7}}

    # Converge; no delta after that.
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, client_token="u2", state=iotshadow.ShadowState(reported={"lamp": {"level": 7}})),
        QOS1).result(SDK_TIMEOUT)
    assert ev.get("update_accepted", where=lambda r: r.client_token == "u2").version == 3
    ev.none("delta")

    # A stale version is rejected with 409 and the token.
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, client_token="u3", version=1, state=iotshadow.ShadowState(desired={"color": "red"})),
        QOS1).result(SDK_TIMEOUT)
    rej = ev.get("update_rejected")
    assert (rej.code, rej.message, rej.client_token) == (409, "Version conflict", "u3")

    # Clearing desired with the SDK's nullable flag.
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, client_token="u4", state=iotshadow.ShadowState(desired=None, desired_is_nullable=True)),
        QOS1).result(SDK_TIMEOUT)
    assert ev.get("update_accepted", where=lambda r: r.client_token == "u4").version == 4
    shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing, client_token="g2"), QOS1).result(SDK_TIMEOUT)
    got = ev.get("get_accepted", where=lambda r: r.client_token == "g2")
    assert got.state.desired is None and got.state.delta is None
    assert got.state.reported == {"color": "green", "lamp": {"on": True, "level": 7}}

    shadow.publish_delete_shadow(iotshadow.DeleteShadowRequest(thing_name=thing, client_token="d1"),
                                 QOS1).result(SDK_TIMEOUT)
    dele = ev.get("delete_accepted")
    assert isinstance(dele, iotshadow.DeleteShadowResponse)
    assert (dele.version, dele.client_token) == (4, "d1")
    shadow.publish_delete_shadow(iotshadow.DeleteShadowRequest(thing_name=thing, client_token="d2"),
                                 QOS1).result(SDK_TIMEOUT)
    assert ev.get("delete_rejected").code == 404


def test_v1_named_shadow(server, sdk_device, connection):
    thing, name = sdk_device.name, "settings"
    shadow = iotshadow.IotShadowClient(connection)
    ev = Events()
    _sub(shadow.subscribe_to_update_named_shadow_accepted(
        iotshadow.UpdateNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name), QOS1,
        ev.cb("update_accepted")))
    _sub(shadow.subscribe_to_update_named_shadow_rejected(
        iotshadow.UpdateNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name), QOS1,
        ev.cb("update_rejected")))
    _sub(shadow.subscribe_to_named_shadow_delta_updated_events(
        iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(thing_name=thing, shadow_name=name), QOS1,
        ev.cb("delta")))
    _sub(shadow.subscribe_to_named_shadow_updated_events(
        iotshadow.NamedShadowUpdatedSubscriptionRequest(thing_name=thing, shadow_name=name), QOS1,
        ev.cb("documents")))
    _sub(shadow.subscribe_to_get_named_shadow_accepted(
        iotshadow.GetNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name), QOS1,
        ev.cb("get_accepted")))
    _sub(shadow.subscribe_to_delete_named_shadow_accepted(
        iotshadow.DeleteNamedShadowSubscriptionRequest(thing_name=thing, shadow_name=name), QOS1,
        ev.cb("delete_accepted")))
    # The classic shadow's delta must stay quiet.
    _sub(shadow.subscribe_to_shadow_delta_updated_events(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), QOS1, ev.cb("classic_delta")))

    shadow.publish_update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="n1",
        state=iotshadow.ShadowState(desired={"interval": 30, "mode": "eco"})), QOS1).result(SDK_TIMEOUT)
    acc = ev.get("update_accepted", where=lambda r: r.client_token == "n1")
    assert (acc.version, acc.state.desired) == (1, {"interval": 30, "mode": "eco"})
    delta = ev.get("delta")
    assert (delta.state, delta.version) == ({"interval": 30, "mode": "eco"}, 1)
    assert ev.get("documents").current.state.desired == {"interval": 30, "mode": "eco"}

    shadow.publish_update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="n2",
        state=iotshadow.ShadowState(reported={"interval": 30})), QOS1).result(SDK_TIMEOUT)
    assert ev.get("update_accepted", where=lambda r: r.client_token == "n2").version == 2
    assert ev.get("delta").state == {"mode": "eco"}
    docs = ev.get("documents", where=lambda d: d.current.version == 2)
    assert docs.previous.version == 1 and docs.previous.state.reported is None
    assert docs.current.state.reported == {"interval": 30}

    shadow.publish_get_named_shadow(iotshadow.GetNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="g"), QOS1).result(SDK_TIMEOUT)
    got = ev.get("get_accepted")
    assert (got.version, got.state.delta, got.client_token) == (2, {"mode": "eco"}, "g")

    shadow.publish_update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="n3", version=7,
        state=iotshadow.ShadowState(reported={"mode": "eco"})), QOS1).result(SDK_TIMEOUT)
    assert ev.get("update_rejected").code == 409

    data = iot_data(server)
    assert data.list_named_shadows_for_thing(thingName=thing)["results"] == [name]
    shadow.publish_delete_named_shadow(iotshadow.DeleteNamedShadowRequest(
        thing_name=thing, shadow_name=name, client_token="del"), QOS1).result(SDK_TIMEOUT)
    assert ev.get("delete_accepted").version == 2
    assert data.list_named_shadows_for_thing(thingName=thing)["results"] == []
    ev.none("classic_delta")


# ---------------------------------------------------------------------------
# IotShadowClientV2 over MQTT 5
# ---------------------------------------------------------------------------

@pytest.fixture
def mqtt5_client(server, sdk_device):
    connected = threading.Event()
    failures: list = []
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost",
        port=server.port,
        cert_filepath=str(sdk_device.cert),
        pri_key_filepath=str(sdk_device.key),
        ca_filepath=str(sdk_device.ca),
        client_id=sdk_device.name,
        on_lifecycle_connection_success=lambda data: connected.set(),
        on_lifecycle_connection_failure=lambda data: failures.append(data.exception),
    )
    client.start()
    if not connected.wait(SDK_TIMEOUT):
        client.stop()
        pytest.fail(f"MQTT 5 client did not connect: {failures}")
    yield client
    client.stop()


def test_v2_client_classic_and_named(server, sdk_device, mqtt5_client):
    thing = sdk_device.name
    shadow = iotshadow.IotShadowClientV2(mqtt5_client, mqtt_request_response.ClientOptions(
        max_request_response_subscriptions=4, max_streaming_subscriptions=4, operation_timeout_in_seconds=10))
    ev = Events()

    def open_stream(create, request, name):
        subscribed = threading.Event()

        def status(e):
            if e.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
                subscribed.set()

        stream = create(request, awsiot.ServiceStreamOptions(incoming_event_listener=ev.cb(name),
                                                            subscription_status_listener=status))
        stream.open()
        assert subscribed.wait(SDK_TIMEOUT), f"{name} stream never subscribed"
        return stream

    streams = [
        open_stream(shadow.create_shadow_delta_updated_stream,
                    iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), "delta"),
        open_stream(shadow.create_named_shadow_delta_updated_stream,
                    iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(thing_name=thing, shadow_name="cfg"),
                    "named_delta"),
        open_stream(shadow.create_shadow_updated_stream,
                    iotshadow.ShadowUpdatedSubscriptionRequest(thing_name=thing), "documents"),
    ]
    try:
        # get of a missing shadow: the future fails with the modeled 404.
        with pytest.raises(awsiot.V2ServiceException) as ei:
            shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(SDK_TIMEOUT)
        assert isinstance(ei.value.modeled_error, iotshadow.V2ErrorResponse), ei.value.inner_error
        assert ei.value.modeled_error.code == 404

        resp = shadow.update_shadow(iotshadow.UpdateShadowRequest(
            thing_name=thing, state=iotshadow.ShadowState(desired={"fan": "high"}))).result(SDK_TIMEOUT)
        assert isinstance(resp, iotshadow.UpdateShadowResponse)
        assert (resp.version, resp.state.desired) == (1, {"fan": "high"})
        # The SDK generated a client token and matched the response by it.
        assert resp.client_token
        delta = ev.get("delta")
        assert (delta.state, delta.version) == ({"fan": "high"}, 1)
        assert ev.get("documents").current.state.desired == {"fan": "high"}

        resp = shadow.update_shadow(iotshadow.UpdateShadowRequest(
            thing_name=thing, state=iotshadow.ShadowState(reported={"fan": "high"}))).result(SDK_TIMEOUT)
        assert resp.version == 2
        got = shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(SDK_TIMEOUT)
        assert isinstance(got, iotshadow.GetShadowResponse)
        assert got.version == 2 and got.state.delta is None
        assert got.state.reported == {"fan": "high"}

        with pytest.raises(awsiot.V2ServiceException) as ei:
            shadow.update_shadow(iotshadow.UpdateShadowRequest(
                thing_name=thing, version=1, state=iotshadow.ShadowState(desired={"fan": "low"}))).result(SDK_TIMEOUT)
        assert ei.value.modeled_error.code == 409

        # Named shadow.
        resp = shadow.update_named_shadow(iotshadow.UpdateNamedShadowRequest(
            thing_name=thing, shadow_name="cfg", state=iotshadow.ShadowState(desired={"rate": 5}))).result(SDK_TIMEOUT)
        assert resp.version == 1
        assert ev.get("named_delta").state == {"rate": 5}
        got = shadow.get_named_shadow(iotshadow.GetNamedShadowRequest(
            thing_name=thing, shadow_name="cfg")).result(SDK_TIMEOUT)
        assert got.state.delta == {"rate": 5}
        dele = shadow.delete_named_shadow(iotshadow.DeleteNamedShadowRequest(
            thing_name=thing, shadow_name="cfg")).result(SDK_TIMEOUT)
        assert dele.version == 1
        dele = shadow.delete_shadow(iotshadow.DeleteShadowRequest(thing_name=thing)).result(SDK_TIMEOUT)
        assert dele.version == 2
        ev.none("delta")
    finally:
        # A StreamingOperation has no close(): it unsubscribes when released.
        del streams
