"""Thingport payload keys on a device, in Python (reference implementation).

Implements the formats of docs/payload-keys.md with nothing but the
``cryptography`` package:

* ``unwrap(private_key_pem, wrapped)``: recover a data key that Thingport
  wrapped for this device's certificate key (RSA-OAEP-SHA256 or ECIES v1).
* ``encrypt(...)`` / ``decrypt(...)``: the chunked envelope (format v1,
  ``TPE1``), optionally signed with the device's private key.
* ``wrap(public_key_or_cert_pem, data_key)``: the server side of ``unwrap``
  (for tests).

Run as a script it reads one JSON request on stdin and writes one JSON answer
on stdout (bytes as hex); Thingport's Rust tests use this to check that both
implementations agree:

    echo '{"private_key_pem": "...", "wrapped": "01..."}' | python payload_keys.py unwrap
"""

import hashlib
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# ---------------------------------------------------------------- wrapping --

ECIES_VERSION = 0x01
ECIES_INFO = b"thingport-ecies-v1"
CURVES = {0x01: ec.SECP256R1(), 0x02: ec.SECP384R1()}  # curve byte -> curve
POINT_LEN = {0x01: 65, 0x02: 97}  # uncompressed SEC1 point length
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _curve_byte(curve):
    for byte, known in CURVES.items():
        if known.name == curve.name:
            return byte
    raise ValueError(f"unsupported curve {curve.name}")


def _uncompressed(public_key):
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _ecies_key(shared_secret, ephemeral_point, recipient_point):
    """HKDF-SHA256(IKM = ECDH x-coordinate, salt = ephemeral ‖ recipient point, info, L = 32)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_point + recipient_point, info=ECIES_INFO)
    return hkdf.derive(shared_secret)


def _load_public_key(pem):
    """A certificate or a public key, PEM."""
    if b"-----BEGIN CERTIFICATE-----" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    return serialization.load_pem_public_key(pem)


def wrap(public_key_or_cert_pem: bytes, data_key: bytes) -> bytes:
    """Wrap data_key for the holder of the private key (what Thingport's server does)."""
    public_key = _load_public_key(public_key_or_cert_pem)
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.encrypt(data_key, OAEP)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValueError("unsupported key: RSA, EC P-256 or EC P-384 only")
    curve = _curve_byte(public_key.curve)
    ephemeral = ec.generate_private_key(public_key.curve)
    ephemeral_point = _uncompressed(ephemeral.public_key())
    key = _ecies_key(ephemeral.exchange(ec.ECDH(), public_key), ephemeral_point, _uncompressed(public_key))
    header = bytes([ECIES_VERSION, curve]) + ephemeral_point
    nonce = os.urandom(12)
    return header + nonce + AESGCM(key).encrypt(nonce, data_key, header)


def unwrap(private_key_pem: bytes, wrapped: bytes) -> bytes:
    """Recover a data key wrapped for this device (PKCS#8, SEC1 or PKCS#1 PEM key)."""
    private_key = serialization.load_pem_private_key(private_key_pem, password=None)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.decrypt(wrapped, OAEP)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError("unsupported key: RSA, EC P-256 or EC P-384 only")
    curve = _curve_byte(private_key.curve)
    point_len = POINT_LEN[curve]
    if len(wrapped) <= 2 + point_len + 12 + 16 or wrapped[0] != ECIES_VERSION or wrapped[1] != curve:
        raise ValueError("not an ECIES v1 key wrapped for this curve")
    header = wrapped[: 2 + point_len]  # version ‖ curve ‖ ephemeral point: the AAD
    nonce = wrapped[2 + point_len : 14 + point_len]
    ciphertext = wrapped[14 + point_len :]
    ephemeral_point = header[2:]
    ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(private_key.curve, ephemeral_point)
    shared_secret = private_key.exchange(ec.ECDH(), ephemeral)
    key = _ecies_key(shared_secret, ephemeral_point, _uncompressed(private_key.public_key()))
    return AESGCM(key).decrypt(nonce, ciphertext, header)  # raises InvalidTag if altered


# ---------------------------------------------------------------- envelope --

MAGIC = b"TPE1"
FLAG_SIGNED = 0x01
KIND_DATA, KIND_FINAL = 0, 1
TAG_LEN = 16
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RSA signatures


def _chunk_nonce(base_nonce, index):
    """base_nonce XOR index (as a 96-bit big-endian integer)."""
    return (int.from_bytes(base_nonce, "big") ^ index).to_bytes(12, "big")


def _chunk_aad(header_hash, index, kind):
    return header_hash + struct.pack(">QB", index, kind)


def _sign(private_key, digest):
    """Sign the 32-byte transcript digest (as the message)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(digest, PSS, hashes.SHA256())
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        hash_alg = hashes.SHA384() if private_key.curve.name == "secp384r1" else hashes.SHA256()
        return private_key.sign(digest, ec.ECDSA(hash_alg))
    raise ValueError("unsupported signing key: RSA, EC P-256 or EC P-384 only")


def _verify(public_key, digest, signature):
    """Raises cryptography.exceptions.InvalidSignature if it does not verify."""
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, digest, PSS, hashes.SHA256())
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        hash_alg = hashes.SHA384() if public_key.curve.name == "secp384r1" else hashes.SHA256()
        public_key.verify(signature, digest, ec.ECDSA(hash_alg))
    else:
        raise ValueError("unsupported signer key")


def encrypt(data_key, key_id, aad, plaintext, kms_blob=b"", sign_with_pem=None, chunk_size=65536) -> bytes:
    """Encrypt plaintext into a v1 envelope; sign it when sign_with_pem (the device's private key) is given."""
    if not 1024 <= chunk_size <= 16 * 1024 * 1024:
        raise ValueError("chunk_size must be 1 KiB .. 16 MiB")
    signer = serialization.load_pem_private_key(sign_with_pem, password=None) if sign_with_pem else None
    key_id = key_id.encode() if isinstance(key_id, str) else key_id
    base_nonce = os.urandom(12)
    header = (
        MAGIC
        + struct.pack(">BI", FLAG_SIGNED if signer else 0, chunk_size)
        + struct.pack(">H", len(key_id)) + key_id
        + struct.pack(">I", len(aad)) + aad
        + struct.pack(">I", len(kms_blob)) + kms_blob
        + base_nonce
    )
    header_hash = hashlib.sha256(header).digest()
    aes = AESGCM(data_key)
    out = [header]
    # Full chunks, then the final one (0..chunk_size bytes; the only one for an empty payload).
    chunks = [plaintext[i : i + chunk_size] for i in range(0, len(plaintext), chunk_size)] or [b""]
    for index, chunk in enumerate(chunks):
        kind = KIND_FINAL if index == len(chunks) - 1 else KIND_DATA
        sealed = aes.encrypt(_chunk_nonce(base_nonce, index), chunk, _chunk_aad(header_hash, index, kind))
        out.append(struct.pack(">BI", kind, len(sealed)) + sealed)
    envelope = b"".join(out)
    if signer:
        signature = _sign(signer, hashlib.sha256(envelope).digest())
        envelope += struct.pack(">H", len(signature)) + signature
    return envelope


def parse_header(envelope):
    """(header dict, header length); raises ValueError if malformed or incomplete."""
    if envelope[:4] != MAGIC:
        raise ValueError("not a Thingport envelope")
    pos = 4

    def take(n):
        nonlocal pos
        if pos + n > len(envelope):
            raise ValueError("truncated header")
        pos += n
        return envelope[pos - n : pos]

    flags, chunk_size = struct.unpack(">BI", take(5))
    if flags & ~FLAG_SIGNED or not 1024 <= chunk_size <= 16 * 1024 * 1024:
        raise ValueError("bad header flags or chunk size")
    key_id = take(struct.unpack(">H", take(2))[0]).decode()
    aad = take(struct.unpack(">I", take(4))[0])
    kms_blob = take(struct.unpack(">I", take(4))[0])
    base_nonce = take(12)
    header = {
        "key_id": key_id,
        "aad": aad,
        "chunk_size": chunk_size,
        "kms_blob": kms_blob,
        "signed": bool(flags & FLAG_SIGNED),
        "base_nonce": base_nonce,
    }
    return header, pos


def decrypt(data_key, envelope, signer_cert_pem=None):
    """(header dict, plaintext, signed). A signed envelope needs signer_cert_pem (certificate or
    public key PEM); giving one for an unsigned envelope is refused too."""
    header, pos = parse_header(envelope)
    if header["signed"] != (signer_cert_pem is not None):
        raise ValueError("envelope is signed: signer required" if header["signed"] else "envelope is not signed")
    header_hash = hashlib.sha256(envelope[:pos]).digest()
    aes = AESGCM(data_key)
    chunk_size = header["chunk_size"]
    plaintext, index = [], 0
    while True:
        if pos + 5 > len(envelope):
            raise ValueError("truncated: no final chunk")
        kind, length = struct.unpack(">BI", envelope[pos : pos + 5])
        if kind == KIND_DATA:
            valid = length == chunk_size + TAG_LEN  # data chunks are full
        else:
            valid = kind == KIND_FINAL and TAG_LEN <= length <= chunk_size + TAG_LEN
        if not valid:
            raise ValueError("malformed record")
        body = envelope[pos + 5 : pos + 5 + length]
        if len(body) != length:
            raise ValueError("truncated record")
        pos += 5 + length
        nonce = _chunk_nonce(header["base_nonce"], index)
        plaintext.append(aes.decrypt(nonce, body, _chunk_aad(header_hash, index, kind)))  # raises InvalidTag
        index += 1
        if kind == KIND_FINAL:
            break
    if header["signed"]:
        digest = hashlib.sha256(envelope[:pos]).digest()
        if pos + 2 > len(envelope):
            raise ValueError("truncated: no signature")
        (sig_len,) = struct.unpack(">H", envelope[pos : pos + 2])
        signature = envelope[pos + 2 : pos + 2 + sig_len]
        if len(signature) != sig_len:
            raise ValueError("truncated signature")
        pos += 2 + sig_len
        _verify(_load_public_key(signer_cert_pem), digest, signature)
    if pos != len(envelope):
        raise ValueError("data after the end of the envelope")
    return header, b"".join(plaintext), header["signed"]


# ------------------------------------------------------- JSON command line --


def _main(command):
    req = json.load(sys.stdin)
    h = bytes.fromhex
    pem = lambda name: req[name].encode() if req.get(name) else None  # noqa: E731
    if command == "wrap":
        return {"wrapped": wrap(pem("pem"), h(req["data_key"])).hex()}
    if command == "unwrap":
        return {"data_key": unwrap(pem("private_key_pem"), h(req["wrapped"])).hex()}
    if command == "encrypt":
        envelope = encrypt(
            h(req["data_key"]),
            req["key_id"],
            h(req["aad"]),
            h(req["plaintext"]),
            kms_blob=h(req.get("kms_blob", "")),
            sign_with_pem=pem("sign_with_pem"),
            chunk_size=req.get("chunk_size", 65536),
        )
        return {"envelope": envelope.hex()}
    if command == "decrypt":
        header, plaintext, signed = decrypt(h(req["data_key"]), h(req["envelope"]), pem("signer_cert_pem"))
        header = {k: v.hex() if isinstance(v, bytes) else v for k, v in header.items()}
        return {"header": header, "plaintext": plaintext.hex(), "signed": signed}
    raise SystemExit(f"usage: {sys.argv[0]} wrap|unwrap|encrypt|decrypt < request.json")


if __name__ == "__main__":
    try:
        answer = _main(sys.argv[1] if len(sys.argv) > 1 else "")
    except (ValueError, KeyError, TypeError) as e:
        answer, code = {"error": f"{type(e).__name__}: {e}"}, 1
    except Exception as e:  # InvalidTag, InvalidSignature, ...
        answer, code = {"error": type(e).__name__}, 1
    else:
        code = 0
    json.dump(answer, sys.stdout)
    sys.exit(code)
