"""The S3-compatible object endpoint with real S3 clients: boto3 (objects,
listings, copies, multipart, pre-signed URLs and POST forms, refusals),
`requests` and raw http.client for pre-signed URLs, the AWS CLI (`aws s3`,
`aws s3api`), and paho subscribers for the object events the endpoint
publishes through the MQTT router."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from conftest import unique
from e2elib import QUIET, iot_client, raw_https, s3_client, s3_error

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/unused"


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture
def bucket(s3):
    name = unique("objs")
    s3.create_bucket(Bucket=name)
    return name


def err(e: ClientError) -> tuple[int, str, str]:
    r = e.value.response if hasattr(e, "value") else e.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Code", ""), r["Error"].get("Message", "")


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def keys_of(s3, bucket, prefix="") -> list[str]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def event_of(msg) -> dict:
    doc = json.loads(msg.payload)
    assert list(doc) == ["Records"] and len(doc["Records"]) == 1, doc
    return doc["Records"][0]


def target_of(url: str) -> str:
    """Path and query of a URL, exactly as written."""
    u = urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def with_query(url: str, **changes) -> str:
    u = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    q.update(changes)
    return urlunsplit((u.scheme, u.netloc, u.path, urlencode(q), ""))


def flip_last(sig: str) -> str:
    return sig[:-1] + ("0" if sig[-1] != "0" else "1")


# ---------------------------------------------------------------------------
# buckets and objects
# ---------------------------------------------------------------------------

def test_bucket_lifecycle(s3):
    name = unique("life")
    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "", REGION)

    s3.put_object(Bucket=name, Key="keep.txt", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert err(e)[:2] == (409, "BucketNotEmpty"), err(e)
    s3.head_bucket(Bucket=name)

    s3.delete_object(Bucket=name, Key="keep.txt")
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert err(e)[0] == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=name, Key="keep.txt")
    assert err(e)[:2] == (404, "NoSuchBucket"), err(e)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert err(e)[:2] == (404, "NoSuchBucket"), err(e)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Upper_Case")
    assert err(e)[:2] == (400, "InvalidBucketName"), err(e)


def test_put_get_head_delete_with_metadata(s3, bucket):
    body = b"temperature,21.5\nhumidity,40\n" * 10
    put = s3.put_object(Bucket=bucket, Key="logs/day 1/r\u00e9sum\u00e9+#?.csv", Body=body,
                        ContentType="text/csv; charset=utf-8", Metadata={"device": "sensor-7", "batch": "42"})
    assert put["ETag"] == f'"{md5_hex(body)}"'

    key = "logs/day 1/r\u00e9sum\u00e9+#?.csv"
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/csv; charset=utf-8"
    assert got["ContentLength"] == len(body)
    assert got["Metadata"] == {"device": "sensor-7", "batch": "42"}
    assert got["ETag"] == put["ETag"]
    assert got["LastModified"].year >= 2024

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert head["ContentType"] == "text/csv; charset=utf-8"
    assert head["Metadata"] == {"device": "sensor-7", "batch": "42"}
    assert keys_of(s3, bucket) == [key]

    # Overwrite: the new content and metadata, none of the old.
    s3.put_object(Bucket=bucket, Key=key, Body=b"v2")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == 2 and head["Metadata"] == {}

    # An empty object.
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""

    d = s3.delete_object(Bucket=bucket, Key=key)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key=key)
    assert err(e)[:2] == (404, "NoSuchKey"), err(e)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert err(e)[0] == 404
    # Deleting what is not there succeeds, as on S3.
    assert s3.delete_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_range_requests(s3, bucket):
    body = bytes(range(256)) * 4  # 1024 bytes
    s3.put_object(Bucket=bucket, Key="r.bin", Body=body)
    for rng, lo, hi in (("bytes=100-199", 100, 199), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023),
                        ("bytes=0-0", 0, 0), ("bytes=1000-5000", 1000, 1023)):
        r = s3.get_object(Bucket=bucket, Key="r.bin", Range=rng)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert r["ContentRange"] == f"bytes {lo}-{hi}/1024", (rng, r["ContentRange"])
        assert r["ContentLength"] == hi - lo + 1
        assert r["Body"].read() == body[lo:hi + 1], rng
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=2000-3000")
    assert err(e)[:2] == (416, "InvalidRange"), err(e)


LIST_KEYS = sorted(
    [f"a/{i:02d}.txt" for i in range(8)] + [f"b/{i:02d}.txt" for i in range(8)] + [f"c/{i:02d}.txt" for i in range(6)]
    + ["a/sub/x.txt", "a/sub/y.txt", "top-1", "top-2", "zz/deep/1", "zz/deep/2", "a-dash", "a.dot"]
)


def test_list_objects_v2_prefix_delimiter_pagination(s3, bucket):
    assert len(LIST_KEYS) == 30
    for k in reversed(LIST_KEYS):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())

    # Pagination by hand: 7 per page, in byte order.
    got, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=7, **kw)
        pages += 1
        contents = page.get("Contents", [])
        assert len(contents) <= 7 and page["KeyCount"] == len(contents), page
        assert all(o["Size"] == len(o["Key"]) for o in contents)
        got += [o["Key"] for o in contents]
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        token = page["NextContinuationToken"]
        assert pages < 10
    assert got == LIST_KEYS and pages == 5

    everything = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in everything["Contents"]] == LIST_KEYS and not everything["IsTruncated"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="a/")["Contents"]] == \
        [k for k in LIST_KEYS if k.startswith("a/")]

    root = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in root["CommonPrefixes"]] == ["a/", "b/", "c/", "zz/"]
    assert [o["Key"] for o in root["Contents"]] == ["a-dash", "a.dot", "top-1", "top-2"]

    a = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in a["Contents"]] == [f"a/{i:02d}.txt" for i in range(8)]
    assert [p["Prefix"] for p in a["CommonPrefixes"]] == ["a/sub/"]

    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/03.txt")
    assert [o["Key"] for o in after["Contents"]] == [k for k in LIST_KEYS if k > "b/03.txt"]

    none = s3.list_objects_v2(Bucket=bucket, Prefix="nothing/")
    assert none["KeyCount"] == 0 and "Contents" not in none

    # Delimiter with small pages: prefixes count towards MaxKeys and are not repeated.
    keys, prefixes = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                             PaginationConfig={"PageSize": 2}):
        n = len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        assert n <= 2, page
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == ["a-dash", "a.dot", "top-1", "top-2"] and prefixes == ["a/", "b/", "c/", "zz/"]

    # ListObjects (v1) with Marker, and its paginator.
    v1 = s3.list_objects(Bucket=bucket, Prefix="b/", MaxKeys=3)
    assert [o["Key"] for o in v1["Contents"]] == ["b/00.txt", "b/01.txt", "b/02.txt"] and v1["IsTruncated"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="b/", Marker="b/02.txt", MaxKeys=3)
    assert [o["Key"] for o in v1["Contents"]] == ["b/03.txt", "b/04.txt", "b/05.txt"]
    v1keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4}):
        v1keys += [o["Key"] for o in page.get("Contents", [])]
    assert v1keys == LIST_KEYS
    v1d = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=3)
    assert v1d["IsTruncated"] and v1d.get("NextMarker"), v1d


def test_copy_object_copy_and_replace(s3, bucket):
    body = os.urandom(3000)
    src = s3.put_object(Bucket=bucket, Key="src/orig.bin", Body=body, ContentType="application/x-thing",
                        Metadata={"colour": "red"})
    c = s3.copy_object(Bucket=bucket, Key="dst/copy 1.bin", CopySource={"Bucket": bucket, "Key": "src/orig.bin"})
    assert c["CopyObjectResult"]["ETag"] == src["ETag"]
    h = s3.head_object(Bucket=bucket, Key="dst/copy 1.bin")
    assert h["ContentType"] == "application/x-thing" and h["Metadata"] == {"colour": "red"}
    assert h["ContentLength"] == 3000

    s3.copy_object(Bucket=bucket, Key="dst/copy2.bin", CopySource={"Bucket": bucket, "Key": "src/orig.bin"},
                   MetadataDirective="REPLACE", ContentType="application/json", Metadata={"colour": "blue"})
    g = s3.get_object(Bucket=bucket, Key="dst/copy2.bin")
    assert g["ContentType"] == "application/json" and g["Metadata"] == {"colour": "blue"}
    assert g["Body"].read() == body

    # Across buckets, and from a key that needs encoding.
    other = unique("objs-copy")
    s3.create_bucket(Bucket=other)
    s3.copy_object(Bucket=other, Key="x", CopySource={"Bucket": bucket, "Key": "dst/copy 1.bin"})
    assert s3.get_object(Bucket=other, Key="x")["Body"].read() == body
    # The source is unchanged.
    assert s3.head_object(Bucket=bucket, Key="src/orig.bin")["Metadata"] == {"colour": "red"}

    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst/none", CopySource={"Bucket": bucket, "Key": "src/missing"})
    assert err(e)[:2] == (404, "NoSuchKey"), err(e)


def test_multipart_upload_file_and_download(s3, bucket, server, device, paho, tmp_path):
    data = os.urandom(12 * MiB + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sub = paho(server, device)
    sub.connect()
    sub.subscribe(f"$aws/events/s3/{bucket}/#", qos=1)

    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)
    s3.upload_file(str(src), bucket, "big/scan.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="big/scan.bin")
    assert head["ContentLength"] == len(data)
    parts = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert len(parts) == 3
    # S3's multipart ETag: MD5 of the parts' binary MD5s, then "-<parts>".
    want_etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert head["ETag"] == f'"{want_etag}"', head["ETag"]

    ev = event_of(sub.expect(f"$aws/events/s3/{bucket}/ObjectCreated/CompleteMultipartUpload"))
    assert ev["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert ev["s3"]["object"]["key"] == "big/scan.bin" and ev["s3"]["object"]["size"] == len(data)
    assert ev["s3"]["object"]["eTag"] == want_etag

    dst = tmp_path / "down.bin"
    s3.download_file(bucket, "big/scan.bin", str(dst), Config=cfg)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    # Nothing is left of the upload.
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_abort_list_parts_and_too_small(s3, bucket):
    p1, p2 = os.urandom(5 * MiB), b"tail" * 100
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/abort.bin", ContentType="application/x-fw")
    uid = up["UploadId"]
    assert up["Key"] == "mp/abort.bin" and uid
    e1 = s3.upload_part(Bucket=bucket, Key="mp/abort.bin", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp/abort.bin", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    assert (e1, e2) == (f'"{md5_hex(p1)}"', f'"{md5_hex(p2)}"')
    lp = s3.list_parts(Bucket=bucket, Key="mp/abort.bin", UploadId=uid)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == [(1, len(p1), e1), (2, len(p2), e2)]
    assert uid in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    # Not an object until completed.
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="mp/abort.bin")
    assert err(e)[0] == 404

    assert s3.abort_multipart_upload(Bucket=bucket, Key="mp/abort.bin", UploadId=uid)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp/abort.bin", UploadId=uid)
    assert err(e)[:2] == (404, "NoSuchUpload"), err(e)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp/abort.bin", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert err(e)[:2] == (404, "NoSuchUpload"), err(e)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="mp/abort.bin")
    assert err(e)[0] == 404

    # A part under 5 MiB that is not the last: EntityTooSmall, no object.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp/small.bin")["UploadId"]
    small = [os.urandom(MiB), b"end"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp/small.bin", UploadId=uid, PartNumber=i + 1, Body=b)["ETag"]
             for i, b in enumerate(small)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp/small.bin", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": i + 1, "ETag": t} for i, t in enumerate(etags)]})
    assert err(e)[:2] == (400, "EntityTooSmall"), err(e)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="mp/small.bin")
    assert err(e)[0] == 404
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/small.bin", UploadId=uid)

    # A single part (the last may be small) completes.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp/one.bin", ContentType="application/x-fw")["UploadId"]
    t = s3.upload_part(Bucket=bucket, Key="mp/one.bin", UploadId=uid, PartNumber=1, Body=b"only")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp/one.bin", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": t}]})
    g = s3.get_object(Bucket=bucket, Key="mp/one.bin")
    assert g["Body"].read() == b"only" and g["ContentType"] == "application/x-fw"
    assert g["ETag"].endswith('-1"'), g["ETag"]


def test_delete_objects(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"del/k{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "del/k0"}, {"Key": "del/k1"}, {"Key": "del/k2"},
                                                             {"Key": "del/never-existed"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["del/k0", "del/k1", "del/k2", "del/never-existed"]
    assert r.get("Errors", []) == []
    assert keys_of(s3, bucket) == ["del/k3", "del/k4"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "del/k3"}], "Quiet": True})
    assert r.get("Deleted", []) == [] and r.get("Errors", []) == []
    assert keys_of(s3, bucket) == ["del/k4"]


def test_unknown_subresources_not_implemented(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    for call in (lambda: s3.get_object_tagging(Bucket=bucket, Key="t"),
                 lambda: s3.get_bucket_acl(Bucket=bucket),
                 lambda: s3.put_object_acl(Bucket=bucket, Key="t", ACL="public-read")):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e)[:2] == (501, "NotImplemented"), err(e)
    # The object is unchanged and still private.
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"x"


# ---------------------------------------------------------------------------
# pre-signed URLs and POST forms
# ---------------------------------------------------------------------------

def test_presigned_get_and_put_with_requests(s3, bucket, server):
    ca = str(server.ca)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "ps/up.bin"}, ExpiresIn=60)
    assert put_url.startswith(server.endpoints["s3"] + f"/{bucket}/ps/up.bin?"), put_url
    body = os.urandom(70000)
    r = requests.put(put_url, data=body, verify=ca, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{md5_hex(body)}"'
    assert s3.get_object(Bucket=bucket, Key="ps/up.bin")["Body"].read() == body

    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "ps/up.bin"}, ExpiresIn=60)
    r = requests.get(get_url, verify=ca, timeout=10)
    assert r.status_code == 200 and r.content == body
    # Admin pre-signed URLs are not single-use.
    r = requests.get(get_url, verify=ca, timeout=10, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == body[:10]

    # The URL is for GET: a PUT with it does not match the signature.
    r = requests.put(get_url, data=b"overwrite", verify=ca, timeout=10)
    assert r.status_code == 403, r.text
    assert s3.get_object(Bucket=bucket, Key="ps/up.bin")["Body"].read() == body

    # With a content type in the signature, the same header must be sent.
    ct_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "ps/ct.json",
                                                             "ContentType": "application/json"}, ExpiresIn=60)
    r = requests.put(ct_url, data=b"{}", verify=ca, timeout=10, headers={"Content-Type": "text/plain"})
    assert r.status_code == 403 and s3_error(r.content)[0] == "SignatureDoesNotMatch", r.text
    r = requests.put(ct_url, data=b"{}", verify=ca, timeout=10, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert s3.head_object(Bucket=bucket, Key="ps/ct.json")["ContentType"] == "application/json"


def test_presign_with_botocore_default_signature_version_is_refused_clearly(s3, bucket, server):
    """boto3 configured as most examples do (no signature_version) pre-signs
    URLs and POST forms with SigV2 (AWSAccessKeyId, Signature, Expires).
    Thingport accepts SigV4 only, and says how to switch."""
    ca = str(server.ca)
    default = s3_client(server, signature_version=None)
    s3.put_object(Bucket=bucket, Key="v2/get.txt", Body=b"sigv2 get")
    url = default.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2/get.txt"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    for r in (requests.get(url, verify=ca, timeout=10),
              requests.put(default.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "v2/put.txt"},
                                                          ExpiresIn=60), data=b"sigv2 put", verify=ca, timeout=10)):
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert s3_error(r.content)[0] == "InvalidRequest" and "s3v4" in r.text, r.text
    post = default.generate_presigned_post(Bucket=bucket, Key="v2/post.txt", ExpiresIn=60)
    assert "AWSAccessKeyId" in post["fields"], post
    r = requests.post(post["url"], data=post["fields"], files={"file": ("p.txt", b"sigv2 post")}, verify=ca,
                      timeout=10)
    assert r.status_code == 400 and "s3v4" in r.text, (post, r.status_code, r.text)
    assert keys_of(s3, bucket, "v2/") == ["v2/get.txt"]


def test_presigned_post_form(s3, bucket, server):
    ca = str(server.ca)
    post = s3.generate_presigned_post(
        Bucket=bucket, Key="post/form.txt",
        Fields={"success_action_status": "201", "Content-Type": "text/plain"},
        Conditions=[{"success_action_status": "201"}, {"Content-Type": "text/plain"},
                    ["content-length-range", 1, 1000]],
        ExpiresIn=60)
    content = b"uploaded with an HTML form\n"
    r = requests.post(post["url"], data=post["fields"], files={"file": ("form.txt", content, "text/plain")},
                      verify=ca, timeout=10)
    assert r.status_code == 201, r.text
    doc = ET.fromstring(r.content)
    assert doc.tag.rsplit("}", 1)[-1] == "PostResponse", r.text
    fields = {el.tag.rsplit("}", 1)[-1]: el.text for el in doc}
    assert fields["Bucket"] == bucket and fields["Key"] == "post/form.txt", fields
    assert fields["ETag"] == f'"{md5_hex(content)}"', fields
    assert "Location" in fields
    g = s3.get_object(Bucket=bucket, Key="post/form.txt")
    assert g["Body"].read() == content and g["ContentType"] == "text/plain"

    # Over the content-length-range: refused, nothing stored.
    post2 = s3.generate_presigned_post(
        Bucket=bucket, Key="post/big.txt", Conditions=[["content-length-range", 1, 1000]], ExpiresIn=60)
    r = requests.post(post2["url"], data=post2["fields"], files={"file": ("big.txt", b"B" * 5000)},
                      verify=ca, timeout=10)
    assert r.status_code == 400 and s3_error(r.content)[0] == "EntityTooLarge", (r.status_code, r.text)
    # A field the policy does not allow.
    r = requests.post(post["url"], data={**post["fields"], "Content-Type": "text/html"},
                      files={"file": ("form.txt", b"<script>", "text/html")}, verify=ca, timeout=10)
    assert r.status_code == 403, (r.status_code, r.text)
    # The signed policy cannot be edited.
    r = requests.post(post2["url"], data={**post2["fields"], "key": "post/elsewhere.txt"},
                      files={"file": ("x.txt", b"x")}, verify=ca, timeout=10)
    assert r.status_code == 403, (r.status_code, r.text)
    assert keys_of(s3, bucket, "post/") == ["post/form.txt"]
    assert s3.get_object(Bucket=bucket, Key="post/form.txt")["Body"].read() == content


def test_signature_refusals(s3, bucket, server):
    ca = str(server.ca)
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"top secret")
    # Expired URL: made first, checked last (the wait overlaps the other checks).
    expiring = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret.txt"}, ExpiresIn=1)
    made = time.monotonic()

    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret.txt"}, ExpiresIn=60)
    sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    r = requests.get(with_query(url, **{"X-Amz-Signature": flip_last(sig)}), verify=ca, timeout=10)
    assert r.status_code == 403 and s3_error(r.content)[0] == "SignatureDoesNotMatch", (r.status_code, r.text)
    assert b"top secret" not in r.content
    # Another key with the same signature.
    r = requests.get(url.replace("/secret.txt?", "/secret.txx?"), verify=ca, timeout=10)
    assert r.status_code == 403 and s3_error(r.content)[0] == "SignatureDoesNotMatch", (r.status_code, r.text)
    # A longer lifetime than signed.
    r = requests.get(with_query(url, **{"X-Amz-Expires": "3600"}), verify=ca, timeout=10)
    assert r.status_code == 403, r.text

    wrong = s3_client(server, secret="x" * 40)
    with pytest.raises(ClientError) as e:
        wrong.get_object(Bucket=bucket, Key="secret.txt")
    assert err(e)[:2] == (403, "SignatureDoesNotMatch"), err(e)
    with pytest.raises(ClientError) as e:
        wrong.put_object(Bucket=bucket, Key="secret.txt", Body=b"overwritten")
    assert err(e)[:2] == (403, "SignatureDoesNotMatch"), err(e)

    unknown = s3_client(server, access_key_id="AKIAIOSFODNN7EXAMPLE", secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert err(e)[:2] == (403, "InvalidAccessKeyId"), err(e)

    anon = s3_client(server, unsigned=True)
    for call in (lambda: anon.get_object(Bucket=bucket, Key="secret.txt"),
                 lambda: anon.put_object(Bucket=bucket, Key="anon.txt", Body=b"x"),
                 lambda: anon.list_objects_v2(Bucket=bucket),
                 lambda: anon.list_buckets()):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e)[:2] == (403, "AccessDenied"), err(e)
    r = requests.get(f"{server.endpoints['s3']}/{bucket}/secret.txt", verify=ca, timeout=10)
    assert r.status_code == 403 and s3_error(r.content)[0] == "AccessDenied", r.text

    left = 2.2 - (time.monotonic() - made)
    if left > 0:
        time.sleep(left)
    r = requests.get(expiring, verify=ca, timeout=10)
    code, message = s3_error(r.content)
    assert r.status_code == 403 and code == "AccessDenied" and "Request has expired" in (message or ""), r.text
    assert keys_of(s3, bucket) == ["secret.txt"]
    assert s3.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"top secret"


def test_content_md5_mismatch_is_bad_digest(s3, bucket):
    body = b"the real body"
    wrong = base64.b64encode(hashlib.md5(b"another body").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5.txt", Body=body, ContentMD5=wrong)
    assert err(e)[:2] == (400, "BadDigest"), err(e)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="md5.txt")
    assert err(e)[0] == 404
    right = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5.txt", Body=body, ContentMD5=right)
    assert s3.get_object(Bucket=bucket, Key="md5.txt")["Body"].read() == body


BAD_KEYS = ["a/../b", "../escape", "a/./b", "a/..", "/leading", "ctl\x01char", "new\nline", "bidi\u202egpj.exe",
            "back\\slash"]


def test_path_escaping_and_hidden_character_keys_refused(s3, bucket, server):
    for key in BAD_KEYS:
        # Sent byte for byte (requests and urllib3 would remove `..` segments
        # before the server sees them), signed correctly.
        url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
        status, _, body = raw_https(server, "PUT", target_of(url), body=b"payload")
        assert status == 400, (key, status, body)
        assert s3_error(body)[0], (key, body)
    for key in ("a/../b", "a/./b", "ctl\x01char", "bidi\u202egpj.exe", "new\nline"):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key=key, Body=b"payload")
        assert err(e)[0] == 400, (key, err(e))
    assert keys_of(s3, bucket) == []
    # Keys S3 allows that merely look odd are fine.
    for key in ("dots..in.name", "a/b/", "x//y", ".hidden", "..twodots", "sp ace/+%#?&=;"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode(), key


# ---------------------------------------------------------------------------
# object events
# ---------------------------------------------------------------------------

def test_object_events_on_mqtt(s3, bucket, server, device, paho):
    sub = paho(server, device)
    sub.connect()
    sub.subscribe(f"$aws/events/s3/{bucket}/#", qos=1)
    body = os.urandom(4321)
    s3.put_object(Bucket=bucket, Key="ev/one two.bin", Body=body)
    m = sub.expect(f"$aws/events/s3/{bucket}/ObjectCreated/Put")
    ev = event_of(m)
    assert ev["eventSource"] == "aws:s3" and ev["eventName"] == "ObjectCreated:Put" and ev["awsRegion"] == REGION
    assert ev["s3"]["bucket"]["name"] == bucket and ev["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert ev["s3"]["object"]["key"] == "ev/one+two.bin"  # form-encoded, as S3 does
    assert ev["s3"]["object"]["size"] == len(body) and ev["s3"]["object"]["eTag"] == md5_hex(body)
    assert "thingport" not in ev  # an admin change, not a device's URL

    s3.copy_object(Bucket=bucket, Key="ev/copy.bin", CopySource={"Bucket": bucket, "Key": "ev/one two.bin"})
    ev = event_of(sub.expect(f"$aws/events/s3/{bucket}/ObjectCreated/Copy"))
    assert ev["eventName"] == "ObjectCreated:Copy" and ev["s3"]["object"]["key"] == "ev/copy.bin"
    assert ev["s3"]["object"]["size"] == len(body)

    s3.delete_object(Bucket=bucket, Key="ev/one two.bin")
    ev = event_of(sub.expect(f"$aws/events/s3/{bucket}/ObjectRemoved/Delete"))
    assert ev["eventName"] == "ObjectRemoved:Delete" and ev["s3"]["object"]["key"] == "ev/one+two.bin"
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "ev/copy.bin"}]})
    ev = event_of(sub.expect(f"$aws/events/s3/{bucket}/ObjectRemoved/Delete"))
    assert ev["s3"]["object"]["key"] == "ev/copy.bin"

    post = s3.generate_presigned_post(Bucket=bucket, Key="ev/posted.txt", ExpiresIn=60)
    r = requests.post(post["url"], data=post["fields"], files={"file": ("p.txt", b"posted")}, verify=str(server.ca),
                      timeout=10)
    assert r.status_code == 204, r.text
    ev = event_of(sub.expect(f"$aws/events/s3/{bucket}/ObjectCreated/Post"))
    assert ev["s3"]["object"]["key"] == "ev/posted.txt" and ev["s3"]["object"]["size"] == 6

    # A refused upload publishes nothing.
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="ev/bad", Body=b"x",
                      ContentMD5=base64.b64encode(hashlib.md5(b"y").digest()).decode())
    sub.expect_none(QUIET, topic_prefix=f"$aws/events/s3/{bucket}/ObjectCreated/")


def test_bucket_notification_configuration(s3, bucket, server, device, paho):
    zone = unique("notify")
    arn = f"arn:aws:iot:{REGION}:000000000000:topic/{zone}/images"
    cfg = {"TopicConfigurations": [{
        "Id": "jpg-uploads", "TopicArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "images/"},
                                           {"Name": "suffix", "Value": ".jpg"}]}}}]}
    assert s3.get_bucket_notification_configuration(Bucket=bucket).get("TopicConfigurations", []) == []
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=cfg)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)["TopicConfigurations"]
    assert len(got) == 1 and got[0]["Id"] == "jpg-uploads" and got[0]["TopicArn"] == arn, got
    assert got[0]["Events"] == ["s3:ObjectCreated:*"]
    rules = {r["Name"].lower(): r["Value"] for r in got[0]["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "images/", "suffix": ".jpg"}

    sub = paho(server, device)
    sub.connect()
    sub.subscribe([(f"{zone}/#", 1), (f"$aws/events/s3/{bucket}/#", 1)])
    s3.put_object(Bucket=bucket, Key="images/cat.jpg", Body=b"jpeg")
    m = sub.expect()
    assert m.topic == f"{zone}/images", (m.topic, m.payload)
    ev = event_of(m)
    assert ev["eventName"] == "ObjectCreated:Put" and ev["s3"]["object"]["key"] == "images/cat.jpg"
    assert ev["s3"]["configurationId"] == "jpg-uploads"
    # Not matching the filter or the event types: nothing, not even on the default topic.
    s3.put_object(Bucket=bucket, Key="images/cat.png", Body=b"png")
    s3.put_object(Bucket=bucket, Key="docs/cat.jpg", Body=b"jpeg")
    s3.delete_object(Bucket=bucket, Key="images/cat.jpg")
    sub.expect_none(QUIET)

    # An empty configuration: back to the default topics.
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert s3.get_bucket_notification_configuration(Bucket=bucket).get("TopicConfigurations", []) == []
    s3.put_object(Bucket=bucket, Key="images/dog.jpg", Body=b"jpeg")
    assert sub.expect().topic == f"$aws/events/s3/{bucket}/ObjectCreated/Put"

    # An event type S3 does not know is refused.
    with pytest.raises(ClientError) as e:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [
            {"TopicArn": arn, "Events": ["s3:ObjectExploded:*"]}]})
    assert err(e)[0] == 400, err(e)


def test_rule_s3_action_writes_objects(s3, bucket, server, device, paho):
    iot = iot_client(server)
    zone = unique("rules3")
    name = zone.replace("-", "_")
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": f"SELECT temp, topic(3) AS dev FROM '{zone}/+/+'", "awsIotSqlVersion": "2016-03-23",
        "actions": [{"s3": {"roleArn": ROLE, "bucketName": bucket, "key": "${topic(2)}/${timestamp()}.json"}}]})
    try:
        sub = paho(server, device)
        sub.connect()
        sub.subscribe(f"$aws/events/s3/{bucket}/#", qos=1)
        pub = paho(server, device)
        pub.connect()
        pub.publish(f"{zone}/site-a/dev-7", json.dumps({"temp": 21.5, "noise": 1}).encode(), qos=1)
        ev = event_of(sub.expect(f"$aws/events/s3/{bucket}/ObjectCreated/Put"))
        key = ev["s3"]["object"]["key"]
        assert key.startswith("site-a/") and key.endswith(".json"), key
        assert key[len("site-a/"):-len(".json")].isdigit(), key
        assert keys_of(s3, bucket) == [key]
        assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == {"temp": 21.5, "dev": "dev-7"}
    finally:
        iot.delete_topic_rule(ruleName=name)


# ---------------------------------------------------------------------------
# the AWS CLI
# ---------------------------------------------------------------------------

def find_aws() -> list[str] | None:
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.is_file() and os.access(venv_aws, os.X_OK):
        return [str(venv_aws)]
    return None


AWS = find_aws()


@pytest.mark.skipif(AWS is None, reason="the AWS CLI (awscli, pinned in scripts/test-deps.sh) is not in the venv")
def test_aws_cli_s3(s3, bucket, server, tmp_path):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    (tmp_path / "config").write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": creds["accessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["secretAccessKey"],
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CA_BUNDLE": str(server.ca),
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }

    def aws(*args: str) -> str:
        cmd = [*AWS, *args, "--endpoint-url", server.endpoints["s3"], "--region", REGION]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r.stdout

    up = tmp_path / "up"
    (up / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(300000), "sub/c d.txt": b"with a space\n"}
    for k, v in files.items():
        (up / k).write_bytes(v)
    aws("s3", "cp", str(up), f"s3://{bucket}/cli/", "--recursive", "--only-show-errors")
    assert sorted(keys_of(s3, bucket)) == sorted(f"cli/{k}" for k in files)
    assert s3.get_object(Bucket=bucket, Key="cli/sub/b.bin")["Body"].read() == files["sub/b.bin"]

    down = tmp_path / "down.bin"
    aws("s3", "cp", f"s3://{bucket}/cli/sub/b.bin", str(down), "--only-show-errors")
    assert down.read_bytes() == files["sub/b.bin"]

    ls = aws("s3", "ls", f"s3://{bucket}/cli/")
    assert "PRE sub/" in ls and re.search(r"\s6 a\.txt$", ls, re.M), ls

    lo = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "cli/sub/", "--output", "json"))
    assert [(o["Key"], o["Size"]) for o in lo["Contents"]] == [("cli/sub/b.bin", 300000), ("cli/sub/c d.txt", 13)]

    aws("s3", "rm", f"s3://{bucket}/cli/", "--recursive", "--only-show-errors")
    assert keys_of(s3, bucket) == []


@pytest.mark.timeout(90)
def test_acknowledged_objects_survive_kill9(fresh_server):
    """An object whose PUT (or multipart completion) was acknowledged is there,
    whole, after kill -9 and a restart; the temporary files of an upload cut
    off mid-body are gone."""
    s3c = s3_client(fresh_server)
    s3c.create_bucket(Bucket="durable")
    small = os.urandom(100_000)
    s3c.put_object(Bucket="durable", Key="a/small.bin", Body=small)
    big = os.urandom(11 * 1024 * 1024)
    s3c.upload_fileobj(__import__("io").BytesIO(big), "durable", "a/big.bin",
                       Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    # An upload the server never finishes receiving: a declared length it will not get.
    url = s3c.generate_presigned_url("put_object", Params={"Bucket": "durable", "Key": "a/cut.bin"}, ExpiresIn=60)
    parts = urlsplit(url)
    import socket
    import ssl
    ctx = ssl.create_default_context(cafile=str(fresh_server.ca))
    raw = ctx.wrap_socket(socket.create_connection((parts.hostname, parts.port)), server_hostname=parts.hostname)
    raw.sendall(f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Length: 5000000\r\n\r\n".encode() + b"x" * 300_000)
    time.sleep(0.5)
    fresh_server.kill9()
    raw.close()
    fresh_server.start()
    s3c = s3_client(fresh_server)
    assert s3c.get_object(Bucket="durable", Key="a/small.bin")["Body"].read() == small
    got = s3c.get_object(Bucket="durable", Key="a/big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
    assert keys_of(s3c, "durable") == ["a/big.bin", "a/small.bin"]
    leftovers = list((fresh_server.data_dir / "objects" / "tmp").iterdir())
    assert leftovers == [], f"temporary upload files survived a restart: {leftovers}"


@pytest.mark.timeout(120)
def test_s3_compatible_backend_on_a_third_party_server(make_server, tmp_path):
    """Thingport on the S3-compatible backend (needs a build with --features
    s3), storing into a real third-party S3 server: moto, started by
    scripts/test.sh (THINGPORT_TEST_S3_ENDPOINT)."""
    endpoint = os.environ.get("THINGPORT_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("THINGPORT_TEST_S3_ENDPOINT is not set (scripts/test.sh starts moto and sets it)")
    import boto3
    remote_bucket = unique("tp-remote").lower()
    remote = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    remote.create_bucket(Bucket=remote_bucket)
    cfg = tmp_path / "thingport.toml"
    cfg.write_text(f'''
[objects]
backend = "s3"
[objects.s3]
endpoint = "{endpoint}"
region = "us-east-1"
bucket = "{remote_bucket}"
prefix = "tp/"
access_key_id = "testing"
secret_access_key = "testing"
''')
    srv = make_server("s3backend", extra_args=["--config", str(cfg)]).start()
    s3c = s3_client(srv)
    s3c.create_bucket(Bucket="fleet")
    body = os.urandom(200_000)
    s3c.put_object(Bucket="fleet", Key="cam/a.bin", Body=body, ContentType="application/x-scan", Metadata={"m": "1"})
    got = s3c.get_object(Bucket="fleet", Key="cam/a.bin")
    assert got["Body"].read() == body and got["ContentType"] == "application/x-scan" and got["Metadata"] == {"m": "1"}
    assert got["ETag"] == f'"{md5_hex(body)}"'
    assert s3c.get_object(Bucket="fleet", Key="cam/a.bin", Range="bytes=10-19")["Body"].read() == body[10:20]
    big = os.urandom(11 * 1024 * 1024)
    s3c.upload_fileobj(__import__("io").BytesIO(big), "fleet", "cam/big.bin",
                       Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    assert hashlib.sha256(s3c.get_object(Bucket="fleet", Key="cam/big.bin")["Body"].read()).digest() == \
        hashlib.sha256(big).digest()
    assert keys_of(s3c, "fleet", "cam/") == ["cam/a.bin", "cam/big.bin"]
    url = s3c.generate_presigned_url("get_object", Params={"Bucket": "fleet", "Key": "cam/a.bin"}, ExpiresIn=60)
    assert requests.get(url, verify=str(srv.ca), timeout=10).content == body
    # The bytes really live in the third-party server.
    stored = [o["Key"] for o in remote.list_objects_v2(Bucket=remote_bucket, Prefix="tp/data/fleet/").get("Contents", [])]
    assert stored == ["tp/data/fleet/cam/a.bin", "tp/data/fleet/cam/big.bin"], stored
    s3c.delete_object(Bucket="fleet", Key="cam/a.bin")
    with pytest.raises(ClientError) as e:
        s3c.get_object(Bucket="fleet", Key="cam/a.bin")
    assert err(e.value)[1] == "NoSuchKey"


@pytest.mark.timeout(60)
def test_virtual_host_style_when_configured(make_server, tmp_path):
    """With [objects] virtual_host_suffix, BUCKET.<suffix> addresses a bucket;
    path-style keeps working. (Sent to 127.0.0.1 with the Host header, since
    *.s3.localhost does not resolve everywhere.)"""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from e2elib import admin_credentials
    cfg = tmp_path / "vhost.toml"
    cfg.write_text('[objects]\nvirtual_host_suffix = "s3.localhost"\n')
    srv = make_server("vhost", extra_args=["--config", str(cfg)]).start()
    s3c = s3_client(srv)
    s3c.create_bucket(Bucket="vbucket")
    s3c.put_object(Bucket="vbucket", Key="dir/v.txt", Body=b"virtual host")
    port = urlsplit(srv.endpoints["s3"]).port
    creds = admin_credentials(srv)

    def signed(method: str, host: str, path: str, body: bytes = b""):
        url = f"https://{host}:{port}{path}"
        req = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
        S3SigV4Auth(Credentials(creds["accessKeyId"], creds["secretAccessKey"]), "s3", "us-east-1").add_auth(req)
        headers = dict(req.headers.items())
        headers["Host"] = f"{host}:{port}"
        return requests.request(method, f"https://localhost:{port}{path}", data=body, headers=headers,
                                verify=str(srv.ca), timeout=10)

    r = signed("GET", "vbucket.s3.localhost", "/dir/v.txt")
    assert r.status_code == 200 and r.content == b"virtual host", r.text
    r = signed("PUT", "vbucket.s3.localhost", "/dir/w.txt", b"written by host")
    assert r.status_code == 200, r.text
    assert s3c.get_object(Bucket="vbucket", Key="dir/w.txt")["Body"].read() == b"written by host"
    r = signed("GET", "vbucket.s3.localhost", "/?list-type=2&prefix=dir%2F")
    assert r.status_code == 200 and b"<Key>dir/v.txt</Key>" in r.content and b"<Key>dir/w.txt</Key>" in r.content
    r = signed("GET", "nosuch.s3.localhost", "/x")
    assert r.status_code == 404 and s3_error(r.content)[0] == "NoSuchBucket", r.text
