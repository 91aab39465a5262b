//! Frames over TCP.
//!
//! Wire format: each frame is a 4-byte big-endian unsigned payload length followed by the
//! payload. Nothing else is sent (no handshake, no trailer), so the frame bytes that
//! [`Metered`](secure_ops::channel::Metered) counts are the payload bytes only.

use crate::TransportError;
use secure_ops::channel::{Channel, ChannelError};
use std::fmt;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

/// Length of the frame header (big-endian `u32` payload length).
pub const HEADER_LEN: usize = 4;
/// Default maximum payload size: 256 MiB.
pub const DEFAULT_MAX_FRAME: usize = 256 << 20;
/// Default read timeout: 300 s (a training step on the other server can take a while).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Default write timeout: 60 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default timeout of one connection attempt: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default pause between connection attempts: 250 ms.
pub const DEFAULT_CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(250);

const BUF_CAPACITY: usize = 64 << 10;
/// The receive buffer grows by at most this much before the bytes have actually arrived, so a
/// header that claims a large (but allowed) length costs memory only as data comes in.
const RECV_GROW_STEP: usize = 1 << 20;

/// Settings of a [`TcpChannel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// Largest payload accepted, on send and on receive. Values above `u32::MAX` act as
    /// `u32::MAX` (the length prefix is 32 bits). Default [`DEFAULT_MAX_FRAME`].
    pub max_frame: usize,
    /// How long a receive may wait without any byte arriving before it fails with
    /// [`ChannelError::Timeout`]; `None` waits for ever. Default [`DEFAULT_READ_TIMEOUT`].
    pub read_timeout: Option<Duration>,
    /// How long a send may make no progress before it fails with [`ChannelError::Timeout`];
    /// `None` waits for ever. Default [`DEFAULT_WRITE_TIMEOUT`].
    pub write_timeout: Option<Duration>,
    /// Timeout of one connection attempt in [`TcpChannel::connect`].
    /// Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// How long [`TcpChannel::connect`] keeps retrying a failed connection (for example while
    /// the other server is still starting). `Duration::ZERO` (the default) makes one attempt.
    pub connect_retry: Duration,
    /// Pause between connection attempts. Default [`DEFAULT_CONNECT_RETRY_INTERVAL`].
    pub connect_retry_interval: Duration,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            max_frame: DEFAULT_MAX_FRAME,
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connect_retry: Duration::ZERO,
            connect_retry_interval: DEFAULT_CONNECT_RETRY_INTERVAL,
        }
    }
}

impl TcpOptions {
    /// Sets [`max_frame`](Self::max_frame).
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }
    /// Sets [`read_timeout`](Self::read_timeout).
    pub fn with_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }
    /// Sets [`write_timeout`](Self::write_timeout).
    pub fn with_write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Sets [`connect_retry`](Self::connect_retry).
    pub fn with_connect_retry(mut self, window: Duration) -> Self {
        self.connect_retry = window;
        self
    }

    /// The maximum payload actually enforced (`max_frame` capped at `u32::MAX`).
    pub fn effective_max_frame(&self) -> u64 {
        (self.max_frame as u64).min(u64::from(u32::MAX))
    }
}

/// Progress of the frame being received, kept across a [`ChannelError::Timeout`] so that a
/// later `recv_frame` resumes where the timed-out one stopped.
#[derive(Default)]
struct RxState {
    header: [u8; HEADER_LEN],
    header_got: usize,
    /// Payload length, once the header is complete and accepted.
    len: Option<usize>,
    payload: Vec<u8>,
    filled: usize,
}

/// A [`Channel`] over a `TcpStream` (see the [module docs](self) for the wire format).
///
/// * Sending a frame larger than the maximum fails with [`ChannelError::FrameTooLarge`] and
///   writes nothing; the channel stays usable.
/// * A received header announcing more than the maximum fails with
///   [`ChannelError::FrameTooLarge`] before anything is allocated; the receive side is then
///   unusable (the stream cannot be resynchronised) and later receives fail with
///   [`ChannelError::Io`].
/// * End of stream before the first byte of a frame is [`ChannelError::Closed`]; inside a
///   header or payload it is [`ChannelError::Truncated`] (`expected`/`got` count the bytes of
///   the part that was cut: 4 for a header, the announced length for a payload). A connection
///   reset is treated like end of stream.
/// * A receive that waits longer than the read timeout without any byte fails with
///   [`ChannelError::Timeout`]; the partial frame is kept and the next receive resumes it.
/// * A send that fails (timeout, closed peer, I/O error) leaves the stream in an unknown
///   state: later sends fail with [`ChannelError::Io`].
///
/// Writes go through a buffer that is flushed once per frame, and `TCP_NODELAY` is set, so a
/// small frame leaves in one segment without Nagle delay.
pub struct TcpChannel {
    reader: BufReader<TcpStream>,
    /// `None` after a failed send.
    writer: Option<BufWriter<TcpStream>>,
    max_frame: u64,
    rx: RxState,
    rx_failed: bool,
}

impl fmt::Debug for TcpChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpChannel")
            .field("local", &self.reader.get_ref().local_addr().ok())
            .field("peer", &self.reader.get_ref().peer_addr().ok())
            .field("max_frame", &self.max_frame)
            .field("rx_failed", &self.rx_failed)
            .field("tx_failed", &self.writer.is_none())
            .finish()
    }
}

enum LastConnectError {
    Resolve(io::Error),
    NoAddress,
    Connect(io::Error),
}

impl TcpChannel {
    /// Connects to `addr` (anything `TcpStream::connect` takes that can also be displayed:
    /// `"host:port"`, a `SocketAddr`, …), retrying for up to
    /// [`options.connect_retry`](TcpOptions::connect_retry).
    ///
    /// The error names the address, the number of attempts and the last failure.
    pub fn connect<A>(addr: A, options: TcpOptions) -> Result<TcpChannel, TransportError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let start = Instant::now();
        let attempt_timeout = options.connect_timeout.max(Duration::from_millis(1));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let last = match addr.to_socket_addrs() {
                Err(e) => LastConnectError::Resolve(e),
                Ok(addrs) => {
                    let mut last = LastConnectError::NoAddress;
                    let mut connected = None;
                    for sa in addrs {
                        match TcpStream::connect_timeout(&sa, attempt_timeout) {
                            Ok(s) => {
                                connected = Some(s);
                                break;
                            }
                            Err(e) => last = LastConnectError::Connect(e),
                        }
                    }
                    if let Some(stream) = connected {
                        tracing::debug!(%addr, attempts, "connected");
                        return TcpChannel::from_stream(stream, &options);
                    }
                    last
                }
            };
            let elapsed = start.elapsed();
            if elapsed + options.connect_retry_interval > options.connect_retry {
                let addr = addr.to_string();
                return Err(match last {
                    LastConnectError::Resolve(source) => TransportError::Resolve { addr, source },
                    LastConnectError::NoAddress => TransportError::NoAddress { addr },
                    LastConnectError::Connect(source) => TransportError::Connect {
                        addr,
                        attempts,
                        elapsed,
                        source,
                    },
                });
            }
            if attempts == 1 {
                tracing::info!(%addr, "peer not reachable yet, retrying");
            }
            thread::sleep(options.connect_retry_interval);
        }
    }

    /// Wraps an established stream: puts it in blocking mode, sets `TCP_NODELAY` and the
    /// timeouts of `options`.
    pub fn from_stream(
        stream: TcpStream,
        options: &TcpOptions,
    ) -> Result<TcpChannel, TransportError> {
        stream
            .set_nonblocking(false)
            .map_err(TransportError::Socket)?;
        stream.set_nodelay(true).map_err(TransportError::Socket)?;
        stream
            .set_read_timeout(options.read_timeout)
            .map_err(TransportError::Socket)?;
        stream
            .set_write_timeout(options.write_timeout)
            .map_err(TransportError::Socket)?;
        let write_half = stream.try_clone().map_err(TransportError::Socket)?;
        Ok(TcpChannel {
            reader: BufReader::with_capacity(BUF_CAPACITY, stream),
            writer: Some(BufWriter::with_capacity(BUF_CAPACITY, write_half)),
            max_frame: options.effective_max_frame(),
            rx: RxState::default(),
            rx_failed: false,
        })
    }

    /// The maximum payload size enforced on this channel.
    pub fn max_frame(&self) -> u64 {
        self.max_frame
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.reader.get_ref().peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.reader.get_ref().local_addr()
    }

    /// Changes the read timeout (`None`: wait for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(timeout)
    }

    /// Changes the write timeout (`None`: wait for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_write_timeout(timeout)
    }

    /// Fails on a frame whose payload is larger than the maximum.
    fn check_len(&self, len: u64) -> Result<(), ChannelError> {
        if len > self.max_frame {
            Err(ChannelError::FrameTooLarge {
                size: len,
                max: self.max_frame,
            })
        } else {
            Ok(())
        }
    }
}

/// What a read attempt found.
enum ReadOutcome {
    Data(usize),
    /// End of stream, or the connection was reset/aborted.
    End,
}

fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<ReadOutcome> {
    loop {
        match reader.read(buf) {
            Ok(0) => return Ok(ReadOutcome::End),
            Ok(n) => return Ok(ReadOutcome::Data(n)),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(ReadOutcome::End)
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn read_error(e: io::Error) -> ChannelError {
    if is_timeout(&e) {
        ChannelError::Timeout
    } else {
        ChannelError::Io(e)
    }
}

fn write_error(e: io::Error) -> ChannelError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ChannelError::Timeout,
        ErrorKind::BrokenPipe
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotConnected
        | ErrorKind::WriteZero => ChannelError::Closed,
        _ => ChannelError::Io(e),
    }
}

impl Channel for TcpChannel {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        self.check_len(frame.len() as u64)?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(ChannelError::Io(io::Error::new(
                ErrorKind::BrokenPipe,
                "send side unusable after an earlier failed send",
            )));
        };
        // `check_len` capped the length at u32::MAX.
        let header = (frame.len() as u32).to_be_bytes();
        let result = writer
            .write_all(&header)
            .and_then(|()| writer.write_all(frame))
            .and_then(|()| writer.flush());
        if let Err(e) = result {
            // Part of the frame may be on the wire: the stream is out of step. Drop the writer
            // without flushing what is still buffered (a flush could block again).
            if let Some(w) = self.writer.take() {
                let _ = w.into_parts();
            }
            return Err(write_error(e));
        }
        Ok(())
    }

    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        if self.rx_failed {
            return Err(ChannelError::Io(io::Error::new(
                ErrorKind::InvalidData,
                "receive side unusable after an oversized frame header",
            )));
        }
        let rx = &mut self.rx;
        while rx.len.is_none() {
            if rx.header_got == HEADER_LEN {
                let len = u64::from(u32::from_be_bytes(rx.header));
                if len > self.max_frame {
                    self.rx_failed = true;
                    return Err(ChannelError::FrameTooLarge {
                        size: len,
                        max: self.max_frame,
                    });
                }
                // len <= max_frame <= u32::MAX, which fits in usize on supported targets.
                let len = usize::try_from(len).map_err(|_| ChannelError::FrameTooLarge {
                    size: len,
                    max: self.max_frame,
                })?;
                rx.len = Some(len);
                rx.payload = Vec::new();
                rx.filled = 0;
                break;
            }
            match read_some(&mut self.reader, &mut rx.header[rx.header_got..])
                .map_err(read_error)?
            {
                ReadOutcome::Data(n) => rx.header_got += n,
                ReadOutcome::End if rx.header_got == 0 => return Err(ChannelError::Closed),
                ReadOutcome::End => {
                    return Err(ChannelError::Truncated {
                        expected: HEADER_LEN,
                        got: rx.header_got,
                    })
                }
            }
        }
        let len = rx.len.unwrap_or(0);
        while rx.filled < len {
            if rx.filled == rx.payload.len() {
                let grow = (len - rx.filled).min(RECV_GROW_STEP);
                rx.payload.resize(rx.filled + grow, 0);
            }
            let buf = &mut rx.payload[rx.filled..];
            match read_some(&mut self.reader, buf).map_err(read_error)? {
                ReadOutcome::Data(n) => rx.filled += n,
                ReadOutcome::End => {
                    return Err(ChannelError::Truncated {
                        expected: len,
                        got: rx.filled,
                    })
                }
            }
        }
        let mut frame = std::mem::take(&mut rx.payload);
        frame.truncate(len);
        *rx = RxState::default();
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn connected(options: &TcpOptions) -> (TcpChannel, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpChannel::connect(addr, options.clone()).unwrap();
        let (raw, _) = listener.accept().unwrap();
        (client, raw)
    }

    #[test]
    fn header_is_big_endian_length() {
        let (mut ch, mut raw) = connected(&TcpOptions::default());
        ch.send_frame(b"abc").unwrap();
        let mut buf = [0u8; 7];
        raw.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [0, 0, 0, 3, b'a', b'b', b'c']);
        raw.write_all(&[0, 0, 1, 0]).unwrap();
        raw.write_all(&[9u8; 256]).unwrap();
        assert_eq!(ch.recv_frame().unwrap(), vec![9u8; 256]);
    }

    #[test]
    fn timeout_mid_payload_resumes() {
        let opts = TcpOptions::default().with_read_timeout(Some(Duration::from_millis(100)));
        let (mut ch, mut raw) = connected(&opts);
        raw.write_all(&[0, 0, 0, 6, 1, 2]).unwrap();
        assert!(matches!(ch.recv_frame(), Err(ChannelError::Timeout)));
        raw.write_all(&[3, 4]).unwrap();
        assert!(matches!(ch.recv_frame(), Err(ChannelError::Timeout)));
        raw.write_all(&[5, 6, 0, 0, 0, 0]).unwrap();
        assert_eq!(ch.recv_frame().unwrap(), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(ch.recv_frame().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn timeout_mid_header_resumes() {
        let opts = TcpOptions::default().with_read_timeout(Some(Duration::from_millis(100)));
        let (mut ch, mut raw) = connected(&opts);
        raw.write_all(&[0, 0]).unwrap();
        assert!(matches!(ch.recv_frame(), Err(ChannelError::Timeout)));
        raw.write_all(&[0, 1, 42]).unwrap();
        assert_eq!(ch.recv_frame().unwrap(), vec![42]);
    }

    #[test]
    fn oversized_header_poisons_receive_side_only() {
        let opts = TcpOptions::default().with_max_frame(16);
        let (mut ch, mut raw) = connected(&opts);
        raw.write_all(&[0, 0, 0, 17]).unwrap();
        assert!(matches!(
            ch.recv_frame(),
            Err(ChannelError::FrameTooLarge { size: 17, max: 16 })
        ));
        assert!(matches!(ch.recv_frame(), Err(ChannelError::Io(_))));
        ch.send_frame(b"still fine").unwrap();
        let mut buf = [0u8; 14];
        raw.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[4..], b"still fine");
    }

    #[test]
    fn channel_is_send() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<TcpChannel>();
    }

    #[test]
    fn max_frame_is_capped_at_u32() {
        let o = TcpOptions::default().with_max_frame(usize::MAX);
        assert_eq!(o.effective_max_frame(), u64::from(u32::MAX));
    }
}
