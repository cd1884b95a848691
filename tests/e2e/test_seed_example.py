"""The seed Raspberry Pi example (paho-mqtt, TLS 1.2, client certificate),
run as a separate Python program against the real server.

Differences from the slide, needed on paho-mqtt 2.x and on this server:
- `mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=...)`: paho 2.x
  refuses `mqtt.Client(client_id=...)` without a callback API version; VERSION1
  keeps the slide's callback signatures (`on_connect(mqttc, obj, flags, rc)`).
- the device shadow topics (`$aws/things/.../shadow/update`) are replaced by
  plain topics: `$` topics are reserved until the shadow service exists.
- no GPIO: the motion value is a counter; the loop stops after 3 messages.
"""

import json
import subprocess
import sys
import textwrap

from conftest import unique

SCRIPT = textwrap.dedent('''
    import sys, ssl, json, time
    from datetime import datetime
    import paho.mqtt.client as mqtt

    host, port, ca, cert, key, client_id, topic = sys.argv[1:8]
    got = []
    subscribed = []

    def on_connect(mqttc, obj, flags, rc):
        if rc == 0:
            print("Subscriber Connection status code: " + str(rc) + " | Connection status: successful", flush=True)
            mqttc.subscribe(topic + "/accepted", qos=0)
        elif rc == 1:
            print("Subscriber Connection status code: " + str(rc) + " | Connection status: Connection refused")

    def on_subscribe(mqttc, obj, mid, granted_qos):
        print("Subscribed: " + str(mid) + " " + str(granted_qos) + "data" + str(obj), flush=True)
        subscribed.append(mid)

    def on_message(mqttc, obj, msg):
        print("Received message from topic: " + msg.topic + " | QoS: " + str(msg.qos) + " | Data Received: " + str(msg.payload), flush=True)
        got.append(msg.payload)

    mqttc = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id)
    mqttc.on_connect = on_connect
    mqttc.on_subscribe = on_subscribe
    mqttc.on_message = on_message
    mqttc.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLSv1_2, ciphers=None)
    mqttc.connect(host, port=int(port))
    mqttc.loop_start()

    deadline = time.time() + 10
    while not subscribed and time.time() < deadline:  # SUBACK for on_connect's SUBSCRIBE
        time.sleep(0.02)
    infos = []
    for i in range(3):
        data = {"motion": i, "time": datetime.now().strftime("%Y/%m/%d %H:%M:%S")}
        payload = '{"state":{"reported":' + json.dumps(data) + '}}'
        print(payload, flush=True)
        infos.append(mqttc.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(timeout=5)
        assert info.is_published(), "PUBACK missing"
    while len(got) < 3 and time.time() < deadline:
        time.sleep(0.02)
    mqttc.disconnect()
    mqttc.loop_stop()
    print("ECHOED", len(got), flush=True)
''')


def test_seed_raspberry_pi_example(server, device, paho, tmp_path):
    topic = unique("things/IoT-motion-sensor") + "/shadow/update"
    # A "shadow service" stand-in: echo every update to .../accepted.
    echo = paho(server, device, version=4)
    echo.connect()
    echo.subscribe(topic, qos=1)
    script = tmp_path / "seed_example.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), "localhost", str(server.port), str(device.ca), str(device.cert),
         str(device.key), unique("xinwenfu"), topic],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(3):
        m = echo.expect(topic, timeout=10)
        doc = json.loads(m.payload)
        assert set(doc["state"]["reported"]) == {"motion", "time"}
        echo.publish(topic + "/accepted", m.payload, qos=1)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "Connection status: successful" in out, out
    assert "Subscribed: 1 (0,)" in out, out
    assert out.count("Received message from topic: " + topic + "/accepted") == 3, out
    assert "ECHOED 3" in out, out
