#!/usr/bin/env python3
"""Payload keys: how fast Thingport issues data keys, and how fast the
envelope encrypts, on both ends (docs/benchmarks.md, "Payload keys").

Run by scripts/bench-keys.sh, which builds and starts the server; this part
provisions the devices and measures:

* **Data keys over MQTT.** Devices with RSA-2048, EC P-256 and EC P-384
  certificates publish `{"replyTo": "devices/<thing>/keys", "requestId": n}`
  to `payload-keys/requests` (QoS 1) and receive the answer on their reply
  topic (QoS 1), with paho-mqtt over mutual TLS. One connection per device,
  pipelined: `--inflight` requests outstanding, each answer triggers the next
  request, for `--seconds` or `--count` requests per device, whichever comes
  first. Also 1 request in flight (the unloaded round trip), and `--devices`
  devices at once, one process each (aggregate keys/s). Every answer is
  checked (no `error`, the right algorithm), and one key per device is
  unwrapped with the device's private key.
* **KMS GenerateDataKey over HTTP** with boto3, sequential, for comparison.
* **Envelope throughput**: the Rust `keys` crate (`cargo test --release -p
  keys --test timing -- --ignored --nocapture`, its own output parsed) and
  the device-side Python reference implementation
  (examples/python/payload_keys.py) over 100 MiB, unsigned and signed, each
  against bare AES-256-GCM of the same library on the same machine.
* **Per-key asymmetric cost** in Python (`cryptography`, i.e. OpenSSL):
  wrapping (what the server does for each key) and unwrapping (what a device
  does), per key type.

For every load scenario it records the server's CPU (/proc/PID/stat), the
bytes the server wrote (/proc/PID/io wchar: WAL, database, log, sockets), the
clients' CPU and the rest of the machine's busy cores, because the machine
may be shared; before each group it waits briefly for the machine to be quiet.
The MQTT clients set TCP_NODELAY (paho leaves Nagle on; --nagle keeps it).

    bench_keys.py --data-dir DATA --server-pid PID --thingport BIN --work DIR [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import multiprocessing as mp
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
ARN = "arn:aws:iot:us-east-1:000000000000"
REQUEST_TOPIC = "payload-keys/requests"
ALGORITHMS = {
    "rsa": "RSAES_OAEP_SHA_256",
    "ec": "ECIES_P256_HKDF_SHA256_AES_256_GCM",
    "ec-p384": "ECIES_P384_HKDF_SHA256_AES_256_GCM",
}
KEY_LABEL = {"rsa": "RSA-2048", "ec": "EC P-256", "ec-p384": "EC P-384"}

# The least privilege a device needs to ask for data keys (docs/payload-keys.md).
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/{REQUEST_TOPIC}"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": f"{ARN}:topicfilter/devices/${{iot:Connection.Thing.ThingName}}/*"},
        {"Effect": "Allow", "Action": "iot:Receive",
         "Resource": f"{ARN}:topic/devices/${{iot:Connection.Thing.ThingName}}/*"},
        {"Effect": "Allow", "Action": "thingport:GenerateDataKey",
         "Resource": "arn:aws:kms:us-east-1:000000000000:key/*"},
    ],
}


def log(msg: str) -> None:
    print(f"[bench-keys {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- CPU accounting -------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_wchar(pid: int | None) -> int:
    """Bytes the process passed to write-type syscalls (files, sockets, its log), /proc/PID/io."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))
    except (OSError, StopIteration, TypeError):
        return 0


def machine_busy() -> float:
    """Busy CPU-seconds of the whole machine (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK_TCK


def wait_quiet(max_cores: float, max_wait: float) -> float:
    """Wait (up to max_wait s) until the machine uses at most max_cores over one second."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy(), time.perf_counter()
        time.sleep(1.0)
        cores = (machine_busy() - b0) / (time.perf_counter() - t0)
        if cores <= max_cores or time.monotonic() >= deadline:
            return cores
        log(f"machine busy ({cores:.2f} cores); waiting for it to calm down")


class Window:
    """Server CPU and machine CPU over a window (client CPU is reported by the clients)."""

    def __init__(self, pid: int | None):
        self.pid = pid

    def __enter__(self):
        self.srv0 = proc_cpu(self.pid) if self.pid else 0.0
        self.wchar0 = proc_wchar(self.pid)
        self.busy0 = machine_busy()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.server = (proc_cpu(self.pid) if self.pid else 0.0) - self.srv0
        self.wchar = proc_wchar(self.pid) - self.wchar0
        self.busy = machine_busy() - self.busy0
        return False


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


# --- provisioning -----------------------------------------------------------------


def provision(thingport: str, data: Path, work: Path, devices: list[tuple[str, str]]) -> None:
    pol = work / "key-bench-policy.json"
    pol.write_text(json.dumps(POLICY))
    subprocess.run([thingport, "policies", "create", "KeyBenchDevice", str(pol), "--data-dir", str(data)],
                   check=True, stdout=subprocess.DEVNULL)
    for thing, key_type in devices:
        subprocess.run([thingport, "provision", thing, "--out", str(work / thing), "--key-type", key_type,
                        "--policy", "KeyBenchDevice", "--data-dir", str(data)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- one device over MQTT (runs in its own process) -------------------------------


def device_run(spec: dict, start_barrier, out_queue) -> None:
    """Connect as one device, warm up, wait at the barrier, then keep
    spec['inflight'] data-key requests outstanding until spec['seconds'] have
    passed or spec['count'] requests were sent; put a result dict on out_queue."""
    try:
        out_queue.put(_device_run(spec, start_barrier))
    except Exception as e:  # noqa: BLE001 -- report, the parent decides
        try:
            start_barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        out_queue.put({"thing": spec["thing"], "fatal": f"{type(e).__name__}: {e}"})


def _device_run(spec: dict, start_barrier) -> dict:
    import paho.mqtt.client as mqtt

    thing, d = spec["thing"], Path(spec["dir"])
    reply_topic = f"devices/{thing}/keys"
    inflight, seconds, count = spec["inflight"], spec["seconds"], spec["count"] or 10**9
    expected_alg = ALGORITHMS[spec["key_type"]]

    lock = threading.Lock()
    connected, subscribed, done = threading.Event(), threading.Event(), threading.Event()
    state = {"next": 0, "phase": "warmup", "warm_left": spec["warmup"], "stop_at": 0.0, "limit": count}
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    errors: list[str] = []
    sample: dict = {}
    marks = {"first_send": 0.0, "last_reply": 0.0, "sent": 0, "received": 0}

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=thing, protocol=mqtt.MQTTv311, clean_session=True)
    c.tls_set(ca_certs=str(d / "root-ca.pem"), certfile=str(d / "certificate.pem.crt"),
              keyfile=str(d / "private.pem.key"))
    c.max_inflight_messages_set(inflight + 16)  # paho's own QoS 1 window must not be the limit

    def send() -> None:
        """Send the next request (called with lock held)."""
        i = state["next"]
        state["next"] += 1
        sent_at[i] = time.perf_counter()
        if state["phase"] == "run":
            marks["sent"] += 1
        c.publish(REQUEST_TOPIC, json.dumps({"replyTo": reply_topic, "requestId": i}), qos=1)

    def on_connect(client, userdata, flags, rc, props=None):
        if rc == 0:
            if spec["nodelay"]:
                # paho leaves Nagle's algorithm on; the server turns it off on its side.
                client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connected.set()

    def on_subscribe(client, userdata, mid, rcs, props=None):
        subscribed.set()

    def on_message(client, userdata, msg):
        now = time.perf_counter()
        answer = json.loads(msg.payload)
        with lock:
            i = answer.get("requestId")
            t0 = sent_at.pop(i, None)
            if t0 is None:
                errors.append(f"unexpected answer {str(answer)[:200]}")
                return
            if "error" in answer:
                errors.append(json.dumps(answer["error"])[:300])
            elif answer.get("algorithm") != expected_alg:
                errors.append(f"algorithm {answer.get('algorithm')}, expected {expected_alg}")
            elif not sample:
                sample.update(answer)
            if state["phase"] == "warmup":
                state["warm_left"] -= 1
                if state["warm_left"] <= 0 and not sent_at:
                    done.set()  # warm-up drained
                elif state["warm_left"] - len(sent_at) > 0:
                    send()
                return
            latencies.append(now - t0)
            marks["received"] += 1
            marks["last_reply"] = now
            if marks["sent"] < state["limit"] and now < state["stop_at"]:
                send()
            elif not sent_at:
                done.set()

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    host, port = spec["mqtt"].rsplit(":", 1)
    c.connect(host, int(port), keepalive=60)
    c.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("no CONNACK (refused or timed out)")
        c.subscribe(reply_topic, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("no SUBACK")
        # Warm-up: a few requests (first use of the master key, connections, caches).
        if spec["warmup"] > 0:
            with lock:
                for _ in range(min(inflight, spec["warmup"])):
                    send()
            if not done.wait(30):
                raise RuntimeError("warm-up answers did not arrive")
            done.clear()
        if errors:
            raise RuntimeError(f"warm-up: {errors[0]}")
        start_barrier.wait(60)
        cpu0 = time.process_time()
        with lock:
            state["phase"] = "run"
            marks["first_send"] = time.perf_counter()
            state["stop_at"] = marks["first_send"] + seconds
            for _ in range(min(inflight, state["limit"])):
                send()
        done.wait(seconds + 30)
        cpu = time.process_time() - cpu0
        with lock:
            lost = len(sent_at)
    finally:
        c.disconnect()
        c.loop_stop()

    # Untimed: the device really can unwrap what it was given.
    if sample:
        sys.path.insert(0, str(ROOT / "examples" / "python"))
        from payload_keys import unwrap

        key = unwrap((d / "private.pem.key").read_bytes(), base64.b64decode(sample["wrappedKey"]))
        if len(key) != 32:
            errors.append(f"unwrapped a {len(key)}-byte key")
    else:
        errors.append("no valid answer")
    return {
        "thing": thing,
        "key_type": spec["key_type"],
        "first_send": marks["first_send"],  # perf_counter is CLOCK_MONOTONIC: comparable across processes
        "last_reply": marks["last_reply"],
        "sent": marks["sent"],
        "received": marks["received"],
        "unanswered": lost,
        "latencies": latencies,
        "errors": errors[:5],
        "error_count": len(errors),
        "client_cpu": cpu,
    }


def mqtt_scenario(name: str, specs: list[dict], server_pid: int) -> dict:
    """Run the devices of specs at once (one process each); aggregate."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(specs) + 1)
    q = ctx.Queue()
    procs = [ctx.Process(target=device_run, args=(s, barrier, q), daemon=True) for s in specs]
    for p in procs:
        p.start()
    try:
        barrier.wait(90)
    except threading.BrokenBarrierError:
        pass
    with Window(server_pid) as w:
        results = [q.get(timeout=max(s["seconds"] for s in specs) + 120) for _ in specs]
    for p in procs:
        p.join(10)
    fatal = [r for r in results if "fatal" in r]
    if fatal:
        raise SystemExit(f"{name}: {fatal[0]['thing']}: {fatal[0]['fatal']}")
    lat = [x for r in results for x in r["latencies"]]
    keys = sum(r["received"] for r in results)
    span = max(r["last_reply"] for r in results) - min(r["first_send"] for r in results)
    client_cpu = sum(r["client_cpu"] for r in results)
    errors = sum(r["error_count"] for r in results)
    unanswered = sum(r["unanswered"] for r in results)
    key_types = sorted({r["key_type"] for r in results})
    return {
        "group": "mqtt",
        "scenario": name,
        "key_type": " + ".join(KEY_LABEL[k] for k in key_types),
        "devices": len(specs),
        "inflight": specs[0]["inflight"],
        "keys": keys,
        "seconds": span,
        "keys_per_s": keys / span if span > 0 else 0.0,
        "per_device_keys_per_s": [r["received"] / (r["last_reply"] - r["first_send"]) if r["received"] else 0.0
                                  for r in results],
        "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000 if lat else float("nan"),
        "server_cpu_ms_per_key": w.server / keys * 1000 if keys else float("nan"),
        "server_written_kib_per_key": w.wchar / keys / 1024 if keys else float("nan"),
        "server_cores": w.server / w.wall,
        "client_cores": client_cpu / w.wall,
        "other_cores": max(0.0, (w.busy - w.server - client_cpu) / w.wall),
        "errors": errors,
        "error_samples": [e for r in results for e in r["errors"]][:5],
        "unanswered": unanswered,
    }


# --- KMS over HTTP ------------------------------------------------------------------


def kms_scenario(data: Path, server_pid: int, seconds: float, count: int, warmup: int) -> dict:
    import boto3
    from botocore.config import Config

    endpoints = json.loads((data / "endpoints.json").read_text())
    creds = json.loads((data / "admin-credentials.json").read_text())
    kms = boto3.client("kms", endpoint_url=endpoints["api"], region_name="us-east-1",
                       aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
                       config=Config(retries={"max_attempts": 1}))
    key = "alias/thingport-devices"
    for _ in range(warmup):
        kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    lat: list[float] = []
    count = count or 10**9
    c0 = time.process_time()
    with Window(server_pid) as w:
        t_end = time.perf_counter() + seconds
        while len(lat) < count and time.perf_counter() < t_end:
            t0 = time.perf_counter()
            r = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
            lat.append(time.perf_counter() - t0)
            if len(r["Plaintext"]) != 32 or not r["CiphertextBlob"]:
                raise SystemExit(f"KMS GenerateDataKey: unexpected answer {r}")
    client_cpu = time.process_time() - c0
    keys = len(lat)
    return {
        "group": "kms",
        "scenario": "KMS `GenerateDataKey`, boto3 over HTTP, sequential",
        "key_type": "– (no wrap)",
        "devices": 1,
        "inflight": 1,
        "keys": keys,
        "seconds": w.wall,
        "keys_per_s": keys / w.wall,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
        "server_cpu_ms_per_key": w.server / keys * 1000,
        "server_written_kib_per_key": w.wchar / keys / 1024,
        "server_cores": w.server / w.wall,
        "client_cores": client_cpu / w.wall,
        "other_cores": max(0.0, (w.busy - w.server - client_cpu) / w.wall),
        "errors": 0,
        "unanswered": 0,
    }


# --- envelope throughput ----------------------------------------------------------


RUST_LINE = re.compile(r"^\s*(envelope|raw GCM|signed)\s+(encrypt|decrypt)\s+([\d.]+) MiB/s")


def rust_timing(cmd: list[str]) -> tuple[list[dict], str]:
    """Run the keys crate's timing test and parse its lines."""
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    rows, raw = [], []
    for line in r.stdout.splitlines():
        m = RUST_LINE.match(line)
        if m or "MiB" in line or "overhead" in line:
            raw.append(line.rstrip())
        if m:
            what = {"envelope": "envelope, unsigned", "raw GCM": "bare AES-256-GCM, one call, in place (reference)", "signed": "envelope, signed"}
            rows.append({"impl": "Rust `keys` crate (aws-lc-rs)", "what": what[m[1]], "op": m[2],
                         "mib_per_s": float(m[3])})
    if len(rows) != 6:
        raise SystemExit(f"could not read the timing test's output:\n{r.stdout}")
    return rows, "\n".join(raw)


def python_envelope(mib: int, rounds: int, key_pem: bytes, cert_pem: bytes) -> list[dict]:
    """The device-side reference implementation against bare AESGCM, over mib MiB."""
    sys.path.insert(0, str(ROOT / "examples" / "python"))
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from payload_keys import decrypt, encrypt

    size = mib * MiB
    plaintext = os.urandom(size)
    data_key = os.urandom(32)
    aad = b'{"object":"uploads/bench/a.bin","thing":"bench"}'

    def best(f) -> tuple[float, float]:
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times), statistics.median(times)

    rows = []

    def add(what, op, t):
        rows.append({"impl": "Python `payload_keys.py` (cryptography)" if what.startswith("envelope")
                     else "Python `cryptography` `AESGCM`", "what": what, "op": op,
                     "mib_per_s": size / MiB / t[0], "median_mib_per_s": size / MiB / t[1]})

    box: dict = {}

    def enc(signed: bool):
        box["env"] = encrypt(data_key, "dk-bench", aad, plaintext, sign_with_pem=key_pem if signed else None)

    def dec(signed: bool):
        _, pt, s = decrypt(data_key, box["env"], signer_cert_pem=cert_pem if signed else None)
        if len(pt) != size or s != signed:
            raise SystemExit("python envelope round trip failed")
        box["pt"] = pt

    add("envelope, unsigned", "encrypt", best(lambda: enc(False)))
    add("envelope, unsigned", "decrypt", best(lambda: dec(False)))
    if box.pop("pt") != plaintext:
        raise SystemExit("python envelope: plaintext differs")
    add("envelope, signed", "encrypt", best(lambda: enc(True)))
    add("envelope, signed", "decrypt", best(lambda: dec(True)))
    box.clear()
    aes = AESGCM(data_key)
    nonce = os.urandom(12)

    def raw_enc():
        box["ct"] = aes.encrypt(nonce, plaintext, None)

    def raw_dec():
        box["pt"] = aes.decrypt(nonce, box["ct"], None)

    add("bare AES-256-GCM, one call, new output buffer", "encrypt", best(raw_enc))
    add("bare AES-256-GCM, one call, new output buffer", "decrypt", best(raw_dec))
    box.clear()
    # The same AES in 64 KiB calls whose outputs are dropped at once: the
    # allocator reuses them, so no fresh memory is touched (the AES ceiling).
    chunk = 65536
    view = memoryview(plaintext)

    def chunked_enc():
        for i in range(0, size, chunk):
            aes.encrypt(nonce, view[i : i + chunk], None)

    sealed = [aes.encrypt(nonce, view[i : i + chunk], None) for i in range(0, size, chunk)]

    def chunked_dec():
        for s in sealed:
            aes.decrypt(nonce, s, None)

    add("bare AES-256-GCM, 64 KiB calls, outputs dropped (reference)", "encrypt", best(chunked_enc))
    add("bare AES-256-GCM, 64 KiB calls, outputs dropped (reference)", "decrypt", best(chunked_dec))
    return rows


def python_per_key(work: Path, things: dict[str, str], n: int) -> list[dict]:
    """Per-key asymmetric cost in Python (OpenSSL through cryptography):
    wrap (what the server does per key), the device's unwrap as called
    (parses the PEM key every time), parsing alone, and the unwrap with
    the key already parsed."""
    sys.path.insert(0, str(ROOT / "examples" / "python"))
    import payload_keys as pk
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def loaded_unwrap(key, wrapped):
        if isinstance(key, rsa.RSAPrivateKey):
            return key.decrypt(wrapped, pk.OAEP)
        curve = pk._curve_byte(key.curve)
        plen = pk.POINT_LEN[curve]
        header, nonce, ct = wrapped[: 2 + plen], wrapped[2 + plen : 14 + plen], wrapped[14 + plen :]
        eph = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, header[2:])
        k = pk._ecies_key(key.exchange(ec.ECDH(), eph), header[2:], pk._uncompressed(key.public_key()))
        return AESGCM(k).decrypt(nonce, ct, header)

    def per_op(f, reps) -> float:
        f()
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        return (time.perf_counter() - t0) / reps * 1e6

    rows = []
    for key_type, thing in things.items():
        d = work / thing
        key_pem, cert_pem = (d / "private.pem.key").read_bytes(), (d / "certificate.pem.crt").read_bytes()
        dk = os.urandom(32)
        wrapped = pk.wrap(cert_pem, dk)
        key = serialization.load_pem_private_key(key_pem, None)
        assert pk.unwrap(key_pem, wrapped) == dk and loaded_unwrap(key, wrapped) == dk
        slow = key_type == "rsa"
        rows.append({"key_type": KEY_LABEL[key_type],
                     "wrap_us": per_op(lambda: pk.wrap(cert_pem, dk), n),
                     "unwrap_us": per_op(lambda: pk.unwrap(key_pem, wrapped), n // 10 if slow else n),
                     "parse_key_us": per_op(lambda: serialization.load_pem_private_key(key_pem, None),
                                            n // 10 if slow else n),
                     "unwrap_loaded_us": per_op(lambda: loaded_unwrap(key, wrapped), n)})
    return rows


# --- report -------------------------------------------------------------------------


def md_keys(rows: list[dict]) -> str:
    out = ["| scenario | device key | devices × in flight | keys | keys/s | p50 ms | p99 ms "
           "| server CPU ms / key | server writes KiB / key | server cores | client cores | other cores | errors |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['key_type']} | {r['devices']} × {r['inflight']} | {r['keys']:,} "
                   f"| **{r['keys_per_s']:,.0f}** | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                   f"| {r['server_cpu_ms_per_key']:.3f} | {r['server_written_kib_per_key']:.1f} | {r['server_cores']:.2f} | {r['client_cores']:.2f} "
                   f"| {r['other_cores']:.2f} | {r['errors'] + r['unanswered']} |")
    return "\n".join(out)


def md_envelope(rows: list[dict]) -> str:
    # The reference of each language: its bare GCM that touches no fresh memory
    # (Rust: one call in place; Python: 64 KiB calls whose outputs the allocator reuses).
    ref = {(r["impl"].split()[0], r["op"]): r["mib_per_s"] for r in rows if "(reference)" in r["what"]}
    out = ["| implementation | what | operation | MiB/s (best) | MiB/s (median) | vs the reference (best) |",
           "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        base = ref.get((r["impl"].split()[0], r["op"]))
        ratio = f"{r['mib_per_s'] / base * 100:.0f} %" if base and "(reference)" not in r["what"] else ""
        med = f"{r['median_mib_per_s']:,.0f}" if "median_mib_per_s" in r else "–"
        out.append(f"| {r['impl']} | {r['what']} | {r['op']} | **{r['mib_per_s']:,.0f}** | {med} | {ratio} |")
    return "\n".join(out)


def md_per_key(rows: list[dict]) -> str:
    out = ["| device key | wrap µs (the server's step, here in OpenSSL) | `unwrap()` µs as called | parsing the PEM key alone µs "
           "| unwrap with the key parsed once µs |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r['key_type']} | {r['wrap_us']:,.0f} | {r['unwrap_us']:,.0f} | {r['parse_key_us']:,.0f} "
                   f"| {r['unwrap_loaded_us']:,.0f} |")
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--thingport", required=True, help="the thingport binary (for provisioning)")
    ap.add_argument("--work", required=True, type=Path, help="scratch directory (device identities)")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each pipelined MQTT run")
    ap.add_argument("--count", type=int, default=0, help="stop each device after this many requests (0: no limit)")
    ap.add_argument("--inflight", type=int, default=64, help="requests outstanding per device")
    ap.add_argument("--devices", type=int, default=4, help="devices at once in the aggregate runs")
    ap.add_argument("--serial-seconds", type=float, default=2.0, help="length of the 1-in-flight MQTT runs")
    ap.add_argument("--warmup", type=int, default=50, help="requests per device before measuring")
    ap.add_argument("--kms-seconds", type=float, default=5.0)
    ap.add_argument("--kms-count", type=int, default=0)
    ap.add_argument("--envelope-mib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="envelope runs (best is reported)")
    ap.add_argument("--per-key-ops", type=int, default=300)
    ap.add_argument("--rust-timing", default="cargo test --release -p keys --test timing -- --ignored --nocapture",
                    help="command for the Rust envelope timing ('' skips it)")
    ap.add_argument("--nagle", action="store_true",
                    help="leave Nagle's algorithm on in the MQTT clients (paho's default; TCP_NODELAY is set otherwise)")
    ap.add_argument("--skip-mqtt", action="store_true")
    ap.add_argument("--skip-envelope", action="store_true")
    ap.add_argument("--quiet-cores", type=float, default=0.5)
    ap.add_argument("--quiet-wait", type=float, default=20.0)
    ap.add_argument("--quiet-wait-each", type=float, default=5.0)
    a = ap.parse_args()

    data, work, pid = a.data_dir, a.work, a.server_pid
    work.mkdir(parents=True, exist_ok=True)
    endpoints = json.loads((data / "endpoints.json").read_text())
    n = max(1, a.devices)
    devices = [(f"kb-rsa-{i}", "rsa") for i in range(1, n + 1)] + [(f"kb-ec-{i}", "ec") for i in range(1, n + 1)]
    devices.append(("kb-p384-1", "ec-p384"))
    log(f"provisioning {len(devices)} devices (policy KeyBenchDevice)")
    provision(a.thingport, data, work, devices)

    def spec(thing, key_type, inflight, seconds, count=a.count):
        return {"thing": thing, "key_type": key_type, "dir": str(work / thing), "mqtt": endpoints["mqtt"],
                "inflight": inflight, "seconds": seconds, "count": count, "warmup": a.warmup,
                "nodelay": not a.nagle}

    def settle():
        if a.quiet_wait_each > 0:
            wait_quiet(a.quiet_cores, a.quiet_wait_each)

    others = wait_quiet(a.quiet_cores, a.quiet_wait)
    log(f"endpoints {endpoints['mqtt']} (MQTT), {endpoints['api']} (API); other load at start: {others:.2f} cores")
    key_rows: list[dict] = []
    if not a.skip_mqtt:
        for key_type in ("rsa", "ec"):
            settle()
            log(f"MQTT, 1 {KEY_LABEL[key_type]} device, 1 in flight, {a.serial_seconds:g} s")
            key_rows.append(mqtt_scenario("MQTT, 1 in flight (round trip)",
                                          [spec(f"kb-{key_type}-1", key_type, 1, a.serial_seconds)], pid))
        for key_type, thing in (("rsa", "kb-rsa-1"), ("ec", "kb-ec-1"), ("ec-p384", "kb-p384-1")):
            settle()
            log(f"MQTT, 1 {KEY_LABEL[key_type]} device, {a.inflight} in flight, {a.seconds:g} s")
            key_rows.append(mqtt_scenario("MQTT, pipelined", [spec(thing, key_type, a.inflight, a.seconds)], pid))
        for key_type in ("rsa", "ec"):
            settle()
            log(f"MQTT, {n} {KEY_LABEL[key_type]} devices at once, {a.inflight} in flight each, {a.seconds:g} s")
            key_rows.append(mqtt_scenario(f"MQTT, pipelined, {n} devices at once (aggregate)",
                                          [spec(f"kb-{key_type}-{i}", key_type, a.inflight, a.seconds)
                                           for i in range(1, n + 1)], pid))
    settle()
    log(f"KMS GenerateDataKey with boto3, sequential, {a.kms_seconds:g} s")
    key_rows.append(kms_scenario(data, pid, a.kms_seconds, a.kms_count, 20))

    env_rows: list[dict] = []
    rust_raw = ""
    per_key: list[dict] = []
    if not a.skip_envelope:
        if a.rust_timing.strip():
            settle()
            log(f"Rust envelope timing: {a.rust_timing}")
            rows, rust_raw = rust_timing(a.rust_timing.split())
            env_rows += rows
        settle()
        log(f"Python envelope, {a.envelope_mib} MiB, best of {a.rounds}")
        ec_dir = work / "kb-ec-1"
        env_rows += python_envelope(a.envelope_mib, a.rounds, (ec_dir / "private.pem.key").read_bytes(),
                                    (ec_dir / "certificate.pem.crt").read_bytes())
        settle()
        log("Python wrap/unwrap per key")
        per_key = python_per_key(work, {"rsa": "kb-rsa-1", "ec": "kb-ec-1", "ec-p384": "kb-p384-1"},
                                 a.per_key_ops)

    import boto3
    import cryptography
    import paho.mqtt

    meta = {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                    "?"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "paho_mqtt": paho.mqtt.__version__,
        "cryptography": cryptography.__version__,
        "openssl": __import__("cryptography.hazmat.backends.openssl", fromlist=["backend"]).backend
        .openssl_version_text(),
        "boto3": boto3.__version__,
        "inflight": a.inflight,
        "seconds": a.seconds,
    }
    print(f"\nPayload keys, {meta['time_utc']}, {meta['nproc']} cores ({meta['cpu']}), Python {meta['python']}, "
          f"paho-mqtt {meta['paho_mqtt']}, cryptography {meta['cryptography']} ({meta['openssl']})\n")
    print(f"Data keys: MQTT 3.1.1 over mutual TLS with paho-mqtt ({'Nagle on' if a.nagle else 'TCP_NODELAY'}), "
          f"requests and answers at QoS 1; keys/s = answers / (last answer - first request); latency = publish of "
          f"the request -> answer received; server writes = /proc/PID/io wchar (WAL, database, log, sockets)\n")
    print(md_keys(key_rows))
    errs = [e for r in key_rows for e in r.get("error_samples", [])]
    if errs:
        print("\nerrors (samples): " + "; ".join(errs))
    if env_rows:
        print(f"\nEnvelope throughput, {a.envelope_mib} MiB in memory, 64 KiB chunks, signed = ECDSA P-256 "
              f"(best of {a.rounds}; MiB = 2^20 bytes)\n")
        print(md_envelope(env_rows))
    if per_key:
        print(f"\nPer data key, Python `cryptography` (OpenSSL), µs per operation\n")
        print(md_per_key(per_key))
    if rust_raw:
        print("\nRust timing test output:\n" + "\n".join("    " + line for line in rust_raw.splitlines()))
    print()
    if a.json:
        for r in key_rows:
            r.pop("latencies", None)
        a.json.write_text(json.dumps({"meta": meta, "keys": key_rows, "envelope": env_rows, "per_key": per_key,
                                      "rust_output": rust_raw}, indent=2))
    return 1 if any(r["errors"] or r["unanswered"] for r in key_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
