#!/usr/bin/env python3
"""End-to-end rule latency: a device publishes to `NAME/in/x`, a rule
(`SELECT * FROM 'NAME/in/+'`) republishes to `NAME/out/x`, the same device
receives it. Prints p50/p99/max of publish → republished delivery.

Usage: .venv/bin/python scripts/bench/rule_latency.py [--bin target/release/thingport] [--count 2000] [--rate 500]
Starts its own server on ephemeral ports in a temporary directory."""
import argparse
import json
import os
import ssl
import statistics
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="target/release/thingport")
ap.add_argument("--count", type=int, default=2000)
ap.add_argument("--rate", type=float, default=500.0)
args = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="rule-latency-")
data = os.path.join(tmp, "data")
server = subprocess.Popen([args.bin, "serve", "--data-dir", data, "--mqtt-listen", "127.0.0.1:0",
                           "--api-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    ep_file = os.path.join(data, "endpoints.json")
    for _ in range(200):
        if os.path.exists(ep_file):
            break
        time.sleep(0.05)
    ep = json.load(open(ep_file))
    cli = lambda *a: subprocess.run([args.bin, *a, "--data-dir", data], check=True, capture_output=True)
    dev = os.path.join(tmp, "dev")
    cli("provision", "lat", "--out", dev)  # default least-privilege policy: topics lat/...
    rule = os.path.join(tmp, "rule.json")
    json.dump({"topicRulePayload": {"sql": "SELECT * FROM 'lat/in/+'",
                                    "actions": [{"republish": {"topic": "lat/out/${topic(3)}", "qos": 0}}]}},
              open(rule, "w"))
    cli("rules", "create", "latency", rule)

    host, port = ep["mqtt"].rsplit(":", 1)
    lat = []
    done = threading.Event()

    def on_message(_c, _u, m):
        lat.append(time.perf_counter() - float(m.payload.decode()))
        if len(lat) >= args.count:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lat")
    c.tls_set(ca_certs=f"{dev}/root-ca.pem", certfile=f"{dev}/certificate.pem.crt", keyfile=f"{dev}/private.pem.key",
              tls_version=ssl.PROTOCOL_TLSv1_2)
    c.on_message = on_message
    c.connect("localhost", int(port))
    c.loop_start()
    c.subscribe("lat/out/+", qos=0)
    time.sleep(0.5)
    interval = 1.0 / args.rate
    start = time.perf_counter()
    for i in range(args.count):
        target = start + i * interval
        while time.perf_counter() < target:
            time.sleep(max(0.0, target - time.perf_counter()))
        c.publish("lat/in/x", str(time.perf_counter()).encode(), qos=0)
    done.wait(30)
    c.loop_stop()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(f"rule publish -> republish latency over {len(lat)}/{args.count} messages at {args.rate:.0f} msg/s: "
          f"p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, max {lat[-1] * 1000:.2f} ms, mean {statistics.mean(lat) * 1000:.2f} ms")
finally:
    server.terminate()
    server.wait(10)
