#!/usr/bin/env python3
"""Object transfer throughput against Thingport's S3-compatible endpoint.

Run by scripts/bench-objects.sh, which builds and starts the server; this part
measures. For 1 MiB and 100 MiB objects it times:

* curl with SigV4 pre-signed PUT and GET URLs over HTTPS: the device path (a
  device gets a pre-signed URL and uploads with a plain HTTPS client). One curl
  process, so one new TCP + TLS connection, per object, as a device would do;
  for 1 MiB also 4 curl processes at once, and one curl reusing its
  connection for every object;
* boto3 `upload_file` / `download_file` (multipart, 8 MiB parts, 10 threads,
  boto3's defaults) for 100 MiB, as a second client;
* the disk's own speed on the same filesystem with dd: 100 MiB written with
  `conv=fsync` (through the page cache, as the server writes) and with
  `oflag=direct` (the device alone), 1 MiB files written with `conv=fsync`,
  and a cached 100 MiB file read to /dev/null.

MB is 10^6 bytes everywhere (as dd prints it). Every PUT and GET is checked
(HTTP 200, byte count), and one object of each size is read back and compared
(and its ETag checked against its MD5). For each scenario it also records the
server's CPU (from /proc/PID/stat), the client's CPU (this process and its
children: curl, dd) and the rest of the machine's busy cores, because the
machine may be shared. Before each group it waits (briefly) for the machine
to be quiet.

    bench_objects.py --data-dir DATA --server-pid PID --work DIR [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MiB = 1024 * 1024
MB = 1_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench-objects {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- CPU accounting -----------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """Busy CPU-seconds of the whole machine (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK_TCK


def self_cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@dataclass
class Meter:
    """Wall time and CPU of the server, of this client and of the rest of the
    machine, summed over every `with meter:` block (so untimed steps, such as
    deleting what a run wrote, can sit between the timed ones)."""

    server_pid: int | None
    t0: float = 0.0
    srv0: float = 0.0
    cli0: float = 0.0
    busy0: float = 0.0
    wall: float = 0.0
    server: float = 0.0
    client: float = 0.0
    busy: float = 0.0

    def __enter__(self):
        self.srv0 = proc_cpu(self.server_pid) if self.server_pid else 0.0
        self.cli0 = self_cpu()
        self.busy0 = machine_busy()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self.t0
        self.server += (proc_cpu(self.server_pid) if self.server_pid else 0.0) - self.srv0
        self.client += self_cpu() - self.cli0
        self.busy += machine_busy() - self.busy0
        return False

    @property
    def others(self) -> float:
        """Cores busy outside server and client during the window."""
        return max(0.0, (self.busy - self.server - self.client) / self.wall) if self.wall else 0.0


def wait_quiet(max_cores: float, max_wait: float) -> float:
    """Wait (up to max_wait seconds) until the machine uses at most max_cores
    cores over one second. Returns the last measured busy cores."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy(), time.perf_counter()
        time.sleep(1.0)
        cores = (machine_busy() - b0) / (time.perf_counter() - t0)
        if cores <= max_cores or time.monotonic() >= deadline:
            return cores
        log(f"machine busy ({cores:.2f} cores used by others); waiting for it to calm down")


# --- results ------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    client: str
    size: int  # bytes per object
    times: list[float]  # seconds per object (or per run)
    meter: Meter
    concurrency: int = 1
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.times)

    def mbps(self) -> list[float]:
        return [self.size / t / MB for t in self.times]

    def row(self) -> dict:
        rates = self.mbps()
        total = self.size * self.count
        return {
            "scenario": self.scenario,
            "client": self.client,
            "object_bytes": self.size,
            "objects": self.count,
            "concurrency": self.concurrency,
            "median_ms": statistics.median(self.times) * 1000,
            "median_mbps": statistics.median(rates),
            "min_mbps": min(rates),
            "max_mbps": max(rates),
            "aggregate_mbps": total / self.meter.wall / MB if self.meter.wall else 0.0,
            "wall_s": self.meter.wall,
            "server_cpu_s": self.meter.server,
            "server_cpu_s_per_gb": self.meter.server / (total / 1e9) if total else 0.0,
            "server_cores": self.meter.server / self.meter.wall if self.meter.wall else 0.0,
            "client_cores": self.meter.client / self.meter.wall if self.meter.wall else 0.0,
            "other_cores": self.meter.others,
            "server_measured": self.meter.server_pid is not None,
            "note": self.note,
            **self.extra,
        }


def size_label(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n} B"


def markdown(rows: list[dict]) -> str:
    head = ("| scenario | client | object | n × conc. | median ms / object | median MB/s | min–max MB/s "
            "| aggregate MB/s | server CPU-s / GB | server cores | client cores | other cores |")
    out = [head, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        srv = r["server_cpu_s_per_gb"]
        out.append(
            f"| {r['scenario']} | {r['client']} | {size_label(r['object_bytes'])} | {r['objects']} × {r['concurrency']} "
            f"| {r['median_ms']:.1f} | **{r['median_mbps']:.0f}** | {r['min_mbps']:.0f}–{r['max_mbps']:.0f} "
            f"| {r['aggregate_mbps']:.0f} | {('%.2f' % srv) if r['server_measured'] else '–'} "
            f"| {('%.2f' % r['server_cores']) if r['server_measured'] else '–'} "
            f"| {r['client_cores']:.2f} | {r['other_cores']:.2f} |"
        )
    return "\n".join(out)


# --- disk baseline -------------------------------------------------------------


def dd(args: list[str]) -> float:
    """Run dd, return its wall time in seconds (measured here, so it includes
    the final fsync for conv=fsync)."""
    t0 = time.perf_counter()
    subprocess.run(["dd", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "LC_ALL": "C"})
    return time.perf_counter() - t0


def disk_baseline(work: Path, large_mib: int, runs: int, small_runs: int) -> list[Result]:
    """dd on the measured filesystem, under the same conditions as the server
    scenarios: every run writes a new file and the previous one is deleted
    first (the server scenarios delete their objects between runs), so the
    page cache reuses freed pages. On this VM, growing the page cache into
    memory the guest has not used lately costs several times more; see
    docs/benchmarks.md."""
    results = []
    f = work / "dd.bin"
    times = []
    m = Meter(None)
    for _ in range(runs):
        f.unlink(missing_ok=True)
        with m:
            times.append(dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={large_mib}", "conv=fsync"]))
    results.append(Result("disk write, `dd bs=1M conv=fsync`", "dd", large_mib * MiB, times, m,
                          note="new file each run"))
    # The file just written is in the page cache: memory bandwidth through
    # the read path, for context only.
    times = []
    with Meter(None) as m:
        for _ in range(runs):
            times.append(dd([f"if={f}", "of=/dev/null", "bs=1M"]))
    results.append(Result("read of a cached file, `dd of=/dev/null`", "dd", large_mib * MiB, times, m))
    # The device itself, without the page cache.
    times = []
    m = Meter(None)
    for _ in range(runs):
        f.unlink(missing_ok=True)
        with m:
            times.append(dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={large_mib}", "oflag=direct", "conv=fsync"]))
    f.unlink(missing_ok=True)
    results.append(Result("disk write, `dd bs=1M oflag=direct conv=fsync`", "dd", large_mib * MiB, times, m,
                          note="O_DIRECT: no page cache"))
    small = [work / f"dd-small-{i}.bin" for i in range(small_runs)]
    times = []
    with Meter(None) as m:
        for g in small:
            times.append(dd(["if=/dev/zero", f"of={g}", "bs=1M", "count=1", "conv=fsync"]))
    for g in small:
        g.unlink(missing_ok=True)
    results.append(Result("disk write, `dd bs=1M count=1 conv=fsync`", "dd", MiB, times, m,
                          note="one new file each"))
    return results


# --- curl -----------------------------------------------------------------------


class Curl:
    W = "%{http_code} %{time_total} %{time_appconnect} %{size_upload} %{size_download}\\n"

    def __init__(self, ca: str, host: str, port: int):
        self.base = ["curl", "-sS", "--cacert", ca, "--resolve", f"{host}:{port}:127.0.0.1", "-w", self.W]

    @staticmethod
    def parse(out: str, expect_code: int, size: int, upload: bool) -> list[float]:
        times = []
        for line in out.strip().splitlines():
            code, total, _tls, up, down = line.split()
            if int(code) != expect_code:
                raise RuntimeError(f"curl: HTTP {code} (expected {expect_code})")
            moved = int(float(up if upload else down))
            if moved != size:
                raise RuntimeError(f"curl moved {moved} bytes, expected {size}")
            times.append(float(total))
        return times

    def put(self, src: Path, url: str, size: int) -> float:
        out = subprocess.run([*self.base, "-o", "/dev/null", "-T", str(src), url],
                             check=True, capture_output=True, text=True).stdout
        return self.parse(out, 200, size, True)[0]

    def get(self, url: str, size: int, dest: str = "/dev/null") -> float:
        out = subprocess.run([*self.base, "-o", dest, url], check=True, capture_output=True, text=True).stdout
        return self.parse(out, 200, size, False)[0]

    def put_many(self, src: Path, urls: list[str], size: int) -> list[float]:
        """One curl, one connection reused for every URL (HTTP/1.1 keep-alive)."""
        args = [*self.base]
        for u in urls:
            args += ["-o", "/dev/null", "-T", str(src), u]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return self.parse(out, 200, size, True)

    def get_many(self, urls: list[str], size: int) -> list[float]:
        args = [*self.base]
        for u in urls:
            args += ["-o", "/dev/null", u]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return self.parse(out, 200, size, False)


def md5_file(p: Path) -> str:
    h = hashlib.md5()
    with open(p, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def make_file(p: Path, size: int) -> None:
    with open(p, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n


# --- main ------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--work", required=True, type=Path, help="scratch directory on the filesystem to measure")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--small-count", type=int, default=50, help="sequential 1 MiB PUTs/GETs")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--concurrent-count", type=int, default=25, help="1 MiB objects per concurrent client")
    ap.add_argument("--large-mib", type=int, default=100)
    ap.add_argument("--large-runs", type=int, default=5)
    ap.add_argument("--boto-runs", type=int, default=3)
    ap.add_argument("--dd-runs", type=int, default=3)
    ap.add_argument("--keep-objects", action="store_true",
                    help="do not delete objects between runs (the page cache then keeps growing)")
    ap.add_argument("--quiet-cores", type=float, default=0.5)
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="seconds to wait at the start for at most --quiet-cores busy cores")
    ap.add_argument("--quiet-wait-each", type=float, default=10.0,
                    help="the same before each group of scenarios")
    a = ap.parse_args()

    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    data = a.data_dir
    endpoints = json.loads((data / "endpoints.json").read_text())
    s3_url = endpoints["s3"]
    creds = json.loads((data / "admin-credentials.json").read_text())
    ca = str(data / "ca" / "root-ca.pem")
    u = urlsplit(s3_url)
    host, port = u.hostname, u.port
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    pid = a.server_pid

    others = wait_quiet(a.quiet_cores, a.quiet_wait)
    log(f"endpoint {s3_url}; other load at start: {others:.2f} cores")

    def settle() -> None:
        if a.quiet_wait_each > 0:
            wait_quiet(a.quiet_cores, a.quiet_wait_each)

    s3 = boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", verify=ca,
        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      read_timeout=120, max_pool_connections=16),
    )
    bucket = f"bench-{int(time.time())}"
    s3.create_bucket(Bucket=bucket)

    def presign(method: str, key: str) -> str:
        return s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)

    small, large = work / "small.bin", work / "large.bin"
    make_file(small, MiB)
    make_file(large, a.large_mib * MiB)
    small_md5, large_md5 = md5_file(small), md5_file(large)
    curl = Curl(ca, host, port)
    results: list[Result] = []

    # Warm-up: the first TLS handshake, the bucket's blob directories.
    curl.put(small, presign("put_object", "warmup"), MiB)
    curl.get(presign("get_object", "warmup"), MiB)

    # Disk first, while nothing of ours is being written back.
    settle()
    log("disk baseline (dd)")
    results += disk_baseline(work, a.large_mib, a.dd_runs, 20)

    def delete(keys: list[str]) -> None:
        """Untimed: what a run wrote goes before the next run (unless
        --keep-objects), so runs find the same conditions, as dd's runs do."""
        if a.keep_objects:
            return
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                     "Quiet": True})

    dl = work / "download.bin"

    # 1 MiB, sequential, one curl process (one TCP + TLS connection) per object.
    n = a.small_count
    settle()
    log(f"1 MiB: {n} sequential PUTs and GETs, one curl (one TLS connection) per object")
    keys = [f"small/seq/{i:04d}" for i in range(n)]
    puts = [presign("put_object", k) for k in keys]
    gets = [presign("get_object", k) for k in keys]
    with Meter(pid) as m:
        t = [curl.put(small, url, MiB) for url in puts]
    results.append(Result("PUT, pre-signed URL, new connection each", "curl", MiB, t, m))
    with Meter(pid) as m:
        t = [curl.get(url, MiB) for url in gets]
    results.append(Result("GET, pre-signed URL, new connection each", "curl", MiB, t, m, note="-o /dev/null"))
    # Verify one object end to end (untimed).
    curl.get(gets[0], MiB, str(dl))
    if md5_file(dl) != small_md5:
        raise SystemExit("a 1 MiB object came back different")
    etag = s3.head_object(Bucket=bucket, Key=keys[0])["ETag"].strip('"')
    if etag != small_md5:
        raise SystemExit(f"1 MiB ETag {etag} is not the MD5 {small_md5}")
    dl.unlink()
    delete(keys)

    # 1 MiB, one curl for all: one kept-alive connection (isolates the
    # per-connection cost: process start, TCP, TLS handshake).
    settle()
    keys = [f"small/ka/{i:04d}" for i in range(n)]
    puts = [presign("put_object", k) for k in keys]
    gets = [presign("get_object", k) for k in keys]
    with Meter(pid) as m:
        t = curl.put_many(small, puts, MiB)
    results.append(Result("PUT, pre-signed URL, one kept-alive connection", "curl", MiB, t, m))
    with Meter(pid) as m:
        t = curl.get_many(gets, MiB)
    results.append(Result("GET, pre-signed URL, one kept-alive connection", "curl", MiB, t, m, note="-o /dev/null"))
    delete(keys)

    # 1 MiB, concurrent clients, each one curl per object.
    c, per = a.concurrency, a.concurrent_count
    settle()
    log(f"1 MiB: {c} concurrent clients × {per} PUTs and GETs")
    keys = [[f"small/conc/{w}/{i:04d}" for i in range(per)] for w in range(c)]
    puts = [[presign("put_object", k) for k in ks] for ks in keys]
    gets = [[presign("get_object", k) for k in ks] for ks in keys]
    with cf.ThreadPoolExecutor(c) as pool:
        with Meter(pid) as m:
            t = sum(pool.map(lambda urls: [curl.put(small, u, MiB) for u in urls], puts), [])
        results.append(Result("PUT, pre-signed URL, new connection each", "curl", MiB, t, m, concurrency=c))
        with Meter(pid) as m:
            t = sum(pool.map(lambda urls: [curl.get(u, MiB) for u in urls], gets), [])
        results.append(Result("GET, pre-signed URL, new connection each", "curl", MiB, t, m, concurrency=c,
                              note="-o /dev/null"))
    delete(sum(keys, []))

    # 100 MiB with curl: per run PUT, GET to /dev/null, GET to a file, then
    # (untimed) delete the object and the downloaded file.
    size = a.large_mib * MiB
    settle()
    log(f"{a.large_mib} MiB: {a.large_runs} PUTs and GETs with curl")
    m_put, m_get, m_file = Meter(pid), Meter(pid), Meter(pid)
    t_put, t_get, t_file = [], [], []
    for i in range(a.large_runs):
        key = f"large/curl/{i}"
        put, get = presign("put_object", key), presign("get_object", key)
        with m_put:
            t_put.append(curl.put(large, put, size))
        with m_get:
            t_get.append(curl.get(get, size))
        if i < 3:
            with m_file:
                t_file.append(curl.get(get, size, str(dl)))
            if i == 0:
                if md5_file(dl) != large_md5:
                    raise SystemExit(f"the {a.large_mib} MiB object came back different")
                etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
                if etag != large_md5:
                    raise SystemExit(f"{a.large_mib} MiB ETag {etag} is not the MD5 {large_md5}")
            dl.unlink()
        delete([key])
    results.append(Result("PUT, pre-signed URL", "curl", size, t_put, m_put))
    results.append(Result("GET, pre-signed URL", "curl", size, t_get, m_get, note="-o /dev/null"))
    results.append(Result("GET, pre-signed URL, to a file on disk", "curl", size, t_file, m_file,
                          note="-o FILE (page cache, no fsync)"))

    # 100 MiB with boto3 (multipart upload, ranged parallel download).
    tc = TransferConfig()  # boto3 defaults: 8 MiB threshold and parts, 10 threads
    settle()
    log(f"{a.large_mib} MiB: {a.boto_runs} boto3 upload_file / download_file (multipart, "
        f"{tc.multipart_chunksize // MiB} MiB parts, {tc.max_concurrency} threads)")
    m_up, m_down = Meter(pid), Meter(pid)
    t_up, t_down = [], []
    for i in range(a.boto_runs):
        key = f"large/boto/{i}"
        with m_up:
            t0 = time.perf_counter()
            s3.upload_file(str(large), bucket, key, Config=tc)
            t_up.append(time.perf_counter() - t0)
        with m_down:
            t0 = time.perf_counter()
            s3.download_file(bucket, key, str(dl), Config=tc)
            t_down.append(time.perf_counter() - t0)
        if i == 0 and md5_file(dl) != large_md5:
            raise SystemExit("the boto3 download came back different")
        dl.unlink()
        delete([key])
    results.append(Result("upload_file (multipart)", "boto3", size, t_up, m_up,
                          note=f"{tc.multipart_chunksize // MiB} MiB parts, {tc.max_concurrency} threads"))
    results.append(Result("download_file (ranged GETs)", "boto3", size, t_down, m_down,
                          note="to a file on disk (no fsync)"))

    rows = [r.row() for r in results]
    meta = {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "endpoint": s3_url,
        "work_dir": str(work),
        "filesystem": subprocess.run(["df", "-T", str(work)], capture_output=True, text=True).stdout.splitlines()[-1],
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "curl": subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "boto3": boto3.__version__,
    }
    print(f"\nObject transfer, {meta['time_utc']}, {meta['nproc']} cores, work dir {work} "
          f"({meta['filesystem'].split()[1]}); MB = 10^6 bytes\n")
    print(markdown(rows))
    print()
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
