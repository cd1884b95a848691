//! One MQTT client connection over TCP or TLS, framed with the workspace
//! codec: write packets into a buffer, flush when the caller decides (so
//! publishers batch many PUBLISH packets per TLS record), read and decode.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::BytesMut;
use mqtt::{Connect, Packet, Properties, Protocol};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::cli::TargetArgs;

/// Largest packet we accept from the broker.
const MAX_PACKET: usize = 1 << 20;

/// A byte stream: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Boxed stream, so TCP and TLS share one connection type.
pub type BoxIo = Box<dyn Io>;

/// Everything needed to open a connection to the broker under test.
#[derive(Clone)]
pub struct Target {
    /// Resolved broker address.
    pub addr: SocketAddr,
    /// TLS config and the name to verify, for TLS targets.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    /// MQTT version spoken.
    pub protocol: Protocol,
    /// Keep-alive sent in CONNECT, seconds.
    pub keep_alive: u16,
    /// Client id prefix.
    pub client_id_prefix: String,
    /// Initial size of each connection's read and write buffers (small for
    /// idle-connection tests, larger for throughput).
    pub buffer_size: usize,
}

impl Target {
    /// Build a target from the command line (reads the PEM files).
    pub async fn from_args(a: &TargetArgs) -> anyhow::Result<Target> {
        let addr = tokio::net::lookup_host((a.host.as_str(), a.port))
            .await
            .with_context(|| format!("cannot resolve {}", a.host))?
            .next()
            .ok_or_else(|| anyhow!("{} has no address", a.host))?;
        let tls = if a.tls {
            let ca = a.ca.as_deref().ok_or_else(|| anyhow!("--tls needs --ca"))?;
            let config: Arc<ClientConfig> = crate::tls::client_config(ca, a.cert.as_deref(), a.key.as_deref())?;
            let name = a.server_name.clone().unwrap_or_else(|| a.host.clone());
            let name = ServerName::try_from(name.clone()).map_err(|_| anyhow!("invalid server name {name:?}"))?;
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        let protocol = if a.mqtt_version == 5 { Protocol::V5 } else { Protocol::V311 };
        Ok(Target {
            addr,
            tls,
            protocol,
            keep_alive: a.keep_alive,
            client_id_prefix: a.client_id_prefix.clone(),
            buffer_size: 16 * 1024,
        })
    }

    /// Open the byte stream: TCP connect, then the TLS handshake if any.
    pub async fn open(&self) -> anyhow::Result<BoxIo> {
        let tcp = TcpStream::connect(self.addr).await.with_context(|| format!("TCP connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let s = connector.connect(name.clone(), tcp).await.context("TLS handshake")?;
                Ok(Box::new(s))
            }
        }
    }

    /// Open the stream and complete CONNECT / CONNACK (clean session).
    pub async fn connect(&self, client_id: &str) -> anyhow::Result<Conn> {
        let io = self.open().await?;
        let mut conn = Conn::new(io, self.protocol, self.buffer_size);
        conn.queue(&Packet::Connect(Connect {
            protocol: self.protocol,
            clean_start: true,
            keep_alive: self.keep_alive,
            client_id: client_id.to_string(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }))?;
        conn.flush().await.context("sending CONNECT")?;
        match conn.recv().await.context("waiting for CONNACK")? {
            Packet::ConnAck(ack) if ack.code == 0 => Ok(conn),
            Packet::ConnAck(ack) => {
                let why = ack.properties.reason_string.unwrap_or_default();
                bail!("CONNACK refused the connection: code 0x{:02x} {why}", ack.code)
            }
            other => bail!("expected CONNACK, got {}", other.name()),
        }
    }
}

/// A connected MQTT client: a stream plus read and write buffers.
pub struct Conn {
    io: BoxIo,
    rbuf: BytesMut,
    wbuf: BytesMut,
    protocol: Protocol,
}

impl Conn {
    /// Wrap an open stream, with buffers of `capacity` bytes to start with.
    pub fn new(io: BoxIo, protocol: Protocol, capacity: usize) -> Conn {
        Conn { io, rbuf: BytesMut::with_capacity(capacity), wbuf: BytesMut::with_capacity(capacity), protocol }
    }

    /// Encode `p` into the write buffer (sent by the next [`Conn::flush`]).
    pub fn queue(&mut self, p: &Packet) -> anyhow::Result<()> {
        mqtt::encode(p, self.protocol, &mut self.wbuf).map_err(|e| anyhow!("cannot encode {}: {e}", p.name()))
    }

    /// Write out everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        flush_buf(&mut self.io, &mut self.wbuf).await
    }

    /// The next packet from the broker; an error at end of stream.
    pub async fn recv(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(p) = self.try_decode()? {
                return Ok(p);
            }
            self.fill().await?;
        }
    }

    /// A packet already buffered, if a whole one is there.
    pub fn try_decode(&mut self) -> anyhow::Result<Option<Packet>> {
        mqtt::decode(&mut self.rbuf, self.protocol, MAX_PACKET).map_err(|e| anyhow!("bad packet from broker: {e}"))
    }

    /// Read more bytes (cancel-safe); an error at end of stream.
    pub async fn fill(&mut self) -> anyhow::Result<usize> {
        let n = self.io.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            bail!("broker closed the connection");
        }
        Ok(n)
    }

    /// Split into a reader and a writer usable from two tasks.
    pub fn split(self) -> (ConnReader, ConnWriter) {
        let (r, w) = tokio::io::split(self.io);
        (
            ConnReader { io: r, rbuf: self.rbuf, protocol: self.protocol },
            ConnWriter { io: w, wbuf: self.wbuf, protocol: self.protocol },
        )
    }

    /// Send DISCONNECT and close the stream (errors ignored: best effort).
    pub async fn close(mut self) {
        let _ = self.queue(&Packet::Disconnect(mqtt::Disconnect::default()));
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}

/// Read half of a split [`Conn`].
pub struct ConnReader {
    io: ReadHalf<BoxIo>,
    rbuf: BytesMut,
    protocol: Protocol,
}

impl ConnReader {
    /// The next packet from the broker; an error at end of stream.
    pub async fn recv(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(p) = mqtt::decode(&mut self.rbuf, self.protocol, MAX_PACKET)
                .map_err(|e| anyhow!("bad packet from broker: {e}"))?
            {
                return Ok(p);
            }
            if self.io.read_buf(&mut self.rbuf).await? == 0 {
                bail!("broker closed the connection");
            }
        }
    }
}

/// Write half of a split [`Conn`].
pub struct ConnWriter {
    io: WriteHalf<BoxIo>,
    wbuf: BytesMut,
    protocol: Protocol,
}

impl ConnWriter {
    /// Encode `p` into the write buffer.
    pub fn queue(&mut self, p: &Packet) -> anyhow::Result<()> {
        mqtt::encode(p, self.protocol, &mut self.wbuf).map_err(|e| anyhow!("cannot encode {}: {e}", p.name()))
    }

    /// Bytes waiting to be flushed.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Write out everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        flush_buf(&mut self.io, &mut self.wbuf).await
    }

    /// Send DISCONNECT and close (best effort).
    pub async fn close(mut self) {
        let _ = self.queue(&Packet::Disconnect(mqtt::Disconnect::default()));
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}

async fn flush_buf<W: AsyncWrite + Unpin>(io: &mut W, buf: &mut BytesMut) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let r = io.write_all(buf).await;
    buf.clear();
    r?;
    io.flush().await
}
