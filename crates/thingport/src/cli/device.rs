//! `thingport device …`: the device side of payload keys, for scripts and
//! for devices that run the CLI — unwrap a data key with the device's
//! private key, and encrypt or decrypt files and messages in the envelope
//! format (streamed, so large files never sit whole in memory).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// What a device keeps of a data key answer: the JSON the issuer sent.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyAnswer {
    key_id: String,
    wrapped_key: String,
    #[serde(default)]
    ciphertext_blob: String,
}

fn read_answer(path: &Path) -> anyhow::Result<KeyAnswer> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!("{} is not a data key answer (JSON with keyId, wrappedKey, ciphertextBlob)", path.display())
    })
}

fn unwrap_key(answer: &KeyAnswer, private_key: &Path) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    let pem = std::fs::read_to_string(private_key)
        .with_context(|| format!("cannot read the private key {}", private_key.display()))?;
    let wrapped = b64().decode(answer.wrapped_key.trim()).context("wrappedKey is not base64")?;
    keys::wrap::unwrap(&pem, &wrapped).map_err(|e| {
        anyhow::anyhow!("cannot unwrap data key {}: {e} (is this the device's own private key?)", answer.key_id)
    })
}

/// `thingport device unwrap`: print the data key (base64) — for devices that do the rest themselves.
pub fn unwrap(answer: &Path, private_key: &Path) -> anyhow::Result<()> {
    let a = read_answer(answer)?;
    let key = unwrap_key(&a, private_key)?;
    println!("{}", b64().encode(&key[..]));
    Ok(())
}

/// The authenticated data binding thing name and object key (canonical JSON).
pub fn aad(thing: Option<&str>, object: Option<&str>) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    if let Some(o) = object {
        m.insert("object".into(), o.into());
    }
    if let Some(t) = thing {
        m.insert("thing".into(), t.into());
    }
    serde_json::Value::Object(m).to_string().into_bytes()
}

fn open_in(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    Ok(Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
}

/// Write through a temporary file renamed into place, so a failure leaves no half output.
struct Output {
    tmp: Option<PathBuf>,
    dest: PathBuf,
    w: Box<dyn Write>,
}

impl Output {
    fn create(path: &Path) -> anyhow::Result<Output> {
        if path == Path::new("-") {
            return Ok(Output { tmp: None, dest: path.into(), w: Box::new(std::io::stdout()) });
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let f = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Output { tmp: Some(tmp), dest: path.into(), w: Box::new(std::io::BufWriter::new(f)) })
    }
    fn commit(mut self) -> anyhow::Result<()> {
        self.w.flush()?;
        if let Some(tmp) = self.tmp.take() {
            std::fs::rename(&tmp, &self.dest).with_context(|| format!("cannot write {}", self.dest.display()))?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

const BUF: usize = 1024 * 1024;

/// `thingport device encrypt`: envelope-encrypt a file (or `-` for stdin/stdout).
pub fn encrypt(
    answer: &Path,
    private_key: &Path,
    input: &Path,
    output: &Path,
    thing: Option<&str>,
    object: Option<&str>,
    sign: bool,
) -> anyhow::Result<()> {
    let a = read_answer(answer)?;
    let key = unwrap_key(&a, private_key)?;
    let header = keys::envelope::EnvelopeHeader {
        key_id: a.key_id.clone(),
        aad: aad(thing, object),
        chunk_size: 64 * 1024,
        kms_blob: b64().decode(a.ciphertext_blob.trim()).context("ciphertextBlob is not base64")?,
        signed: sign,
    };
    let signer = if sign {
        let pem = std::fs::read_to_string(private_key)?;
        Some(keys::envelope::Signer::from_pem(&pem).map_err(|e| anyhow::anyhow!("cannot sign with this key: {e}"))?)
    } else {
        None
    };
    let (mut enc, head) = keys::envelope::Encryptor::new(&key, header).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut r = open_in(input)?;
    let mut out = Output::create(output)?;
    out.w.write_all(&head)?;
    let mut buf = vec![0u8; BUF];
    let mut sealed = Vec::with_capacity(BUF + 4096);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sealed.clear();
        enc.update(&buf[..n], &mut sealed).map_err(|e| anyhow::anyhow!("{e}"))?;
        out.w.write_all(&sealed)?;
    }
    sealed.clear();
    enc.finish(signer.as_ref(), &mut sealed).map_err(|e| anyhow::anyhow!("{e}"))?;
    out.w.write_all(&sealed)?;
    out.commit()
}

/// `thingport device decrypt`: open an envelope with the device's own data key.
pub fn decrypt(
    answer: &Path,
    private_key: &Path,
    input: &Path,
    output: &Path,
    signer_cert: Option<&Path>,
) -> anyhow::Result<()> {
    let a = read_answer(answer)?;
    let key = unwrap_key(&a, private_key)?;
    let spki = match signer_cert {
        Some(p) => {
            let pem = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            let der = pki::pem_to_der(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Some(keys::wrap::spki_from_certificate(&der).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        None => None,
    };
    let mut r = open_in(input)?;
    let mut buf = vec![0u8; BUF];
    let mut pending = Vec::new();
    // The header first.
    let (header_len, key_id) = loop {
        if let Some((h, len)) =
            keys::envelope::parse_header(&pending).map_err(|e| anyhow::anyhow!("not an envelope: {e}"))?
        {
            break (len, h.key_id);
        }
        let n = r.read(&mut buf)?;
        anyhow::ensure!(n > 0, "the input ends inside the envelope header");
        pending.extend_from_slice(&buf[..n]);
    };
    anyhow::ensure!(key_id == a.key_id, "the envelope was made with data key {key_id}, not {}", a.key_id);
    let mut dec = keys::envelope::Decryptor::new(&key, &pending[..header_len]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Output::create(output)?;
    let mut plain = Vec::with_capacity(BUF + 4096);
    dec.update(&pending[header_len..], &mut plain).map_err(|e| anyhow::anyhow!("{e}"))?;
    out.w.write_all(&plain)?;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        plain.clear();
        dec.update(&buf[..n], &mut plain).map_err(|e| anyhow::anyhow!("{e}"))?;
        out.w.write_all(&plain)?;
    }
    let verified = dec.finish(spki.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    out.commit()?;
    if verified {
        eprintln!("signature verified");
    }
    Ok(())
}
