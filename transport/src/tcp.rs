//! Frames over a byte stream: plain TCP ([`TcpChannel`]) or TLS ([`crate::tls::TlsChannel`]).
//!
//! Wire format: each frame is a 4-byte big-endian unsigned payload length followed by the
//! payload. Nothing else is sent (no handshake, no trailer), so the frame bytes that
//! [`Metered`](secure_ops::channel::Metered) counts are the payload bytes only. Under TLS the same
//! frames travel inside TLS records.

use crate::TransportError;
use secure_ops::channel::{Channel, ChannelError};
use std::fmt;
use std::io::{self, BufReader, ErrorKind, Read, Write};
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
/// Default whole-frame deadline: a frame must arrive within 60 s of its first byte, plus one
/// second per [`DEFAULT_FRAME_MIN_RATE`] bytes of payload.
pub const DEFAULT_FRAME_GRACE: Duration = Duration::from_secs(60);
/// Default slowest accepted average rate of a frame's payload: 256 KiB/s.
pub const DEFAULT_FRAME_MIN_RATE: u64 = 256 << 10;

const BUF_CAPACITY: usize = 64 << 10;
/// The receive buffer grows by at most this much before the bytes have actually arrived, so a
/// header that claims a large (but allowed) length costs memory only as data comes in.
const RECV_GROW_STEP: usize = 1 << 20;

/// How long a whole frame may take once its first byte has arrived: `grace` plus one second per
/// `min_rate` bytes of announced payload. A peer that drips a frame a byte at a time cannot hold a
/// session (and its memory) longer than that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameDeadline {
    /// Fixed part of the deadline.
    pub grace: Duration,
    /// Slowest accepted average payload rate, in bytes per second (at least 1).
    pub min_rate: u64,
}

impl Default for FrameDeadline {
    fn default() -> Self {
        FrameDeadline {
            grace: DEFAULT_FRAME_GRACE,
            min_rate: DEFAULT_FRAME_MIN_RATE,
        }
    }
}

impl FrameDeadline {
    /// The time allowed for a frame of `len` payload bytes.
    pub fn allowed(&self, len: u64) -> Duration {
        self.grace
            .saturating_add(Duration::from_secs(len / self.min_rate.max(1)))
    }
}

/// Settings of a [`TcpChannel`] (and of a [`crate::tls::TlsChannel`]).
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
    /// Deadline of a whole received frame, counted from its first byte; `None`: no deadline.
    /// Passing it fails with [`ChannelError::TooSlow`] and leaves the receive side unusable.
    pub frame_deadline: Option<FrameDeadline>,
    /// Timeout of one connection attempt in [`TcpChannel::connect`] (and of a TLS handshake).
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
            frame_deadline: Some(FrameDeadline::default()),
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
    /// Sets [`frame_deadline`](Self::frame_deadline).
    pub fn with_frame_deadline(mut self, deadline: Option<FrameDeadline>) -> Self {
        self.frame_deadline = deadline;
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

/// A byte stream that frames can travel over: a `TcpStream`, or a TLS stream on one.
pub trait Stream: Read + Write + Send {
    /// The TCP socket underneath (for addresses and timeouts).
    fn socket(&self) -> &TcpStream;
}

impl Stream for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
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
    /// When the frame's first byte arrived.
    started: Option<Instant>,
}

/// Frames over a [`Stream`]; see [`TcpChannel`] for the behaviour, which TLS shares.
pub struct FramedChannel<S: Stream> {
    io: BufReader<S>,
    max_frame: u64,
    read_timeout: Option<Duration>,
    frame_deadline: Option<FrameDeadline>,
    rx: RxState,
    rx_failed: Option<&'static str>,
    tx_failed: bool,
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
/// * A frame not complete within its [`FrameDeadline`] (counted from its first byte) fails with
///   [`ChannelError::TooSlow`]; the receive side is then unusable.
/// * A send that fails (timeout, closed peer, I/O error) leaves the stream in an unknown
///   state: later sends fail with [`ChannelError::Io`].
///
/// A small frame is written with one call (header and payload together) and flushed, and
/// `TCP_NODELAY` is set, so it leaves in one segment without Nagle delay.
pub type TcpChannel = FramedChannel<TcpStream>;

impl<S: Stream> fmt::Debug for FramedChannel<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedChannel")
            .field("local", &self.io.get_ref().socket().local_addr().ok())
            .field("peer", &self.io.get_ref().socket().peer_addr().ok())
            .field("max_frame", &self.max_frame)
            .field("rx_failed", &self.rx_failed)
            .field("tx_failed", &self.tx_failed)
            .finish()
    }
}

enum LastConnectError {
    Resolve(io::Error),
    NoAddress,
    Connect(io::Error),
}

/// Connects a TCP socket to `addr`, retrying for up to `options.connect_retry`.
pub(crate) fn connect_socket<A>(addr: &A, options: &TcpOptions) -> Result<TcpStream, TransportError>
where
    A: ToSocketAddrs + fmt::Display + ?Sized,
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
                for sa in addrs {
                    match TcpStream::connect_timeout(&sa, attempt_timeout) {
                        Ok(s) => {
                            tracing::debug!(%addr, attempts, "connected");
                            return Ok(s);
                        }
                        Err(e) => last = LastConnectError::Connect(e),
                    }
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

/// Puts a socket in blocking mode and sets `TCP_NODELAY` and the timeouts of `options`.
pub(crate) fn configure_socket(
    stream: &TcpStream,
    options: &TcpOptions,
) -> Result<(), TransportError> {
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
    Ok(())
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
        let stream = connect_socket(&addr, &options)?;
        TcpChannel::from_stream(stream, &options)
    }

    /// Wraps an established stream: puts it in blocking mode, sets `TCP_NODELAY` and the
    /// timeouts of `options`.
    pub fn from_stream(
        stream: TcpStream,
        options: &TcpOptions,
    ) -> Result<TcpChannel, TransportError> {
        configure_socket(&stream, options)?;
        Ok(FramedChannel::over(stream, options))
    }
}

impl<S: Stream> FramedChannel<S> {
    /// Frames over `stream`, whose socket is already configured.
    pub(crate) fn over(stream: S, options: &TcpOptions) -> Self {
        FramedChannel {
            io: BufReader::with_capacity(BUF_CAPACITY, stream),
            max_frame: options.effective_max_frame(),
            read_timeout: options.read_timeout,
            frame_deadline: options.frame_deadline,
            rx: RxState::default(),
            rx_failed: None,
            tx_failed: false,
        }
    }

    /// The stream underneath.
    pub fn stream(&self) -> &S {
        self.io.get_ref()
    }

    /// The stream underneath, for writing below the framing (tests of hostile peers): anything
    /// written here desynchronises the frames.
    pub fn stream_mut(&mut self) -> &mut S {
        self.io.get_mut()
    }

    /// The maximum payload size enforced on this channel.
    pub fn max_frame(&self) -> u64 {
        self.max_frame
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream().socket().peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream().socket().local_addr()
    }

    /// Changes the read timeout (`None`: wait for ever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream().socket().set_read_timeout(timeout)?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// Changes the write timeout (`None`: wait for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream().socket().set_write_timeout(timeout)
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

    /// Time left for the frame being received (`None` outside a frame or without a deadline);
    /// past the deadline the receive side becomes unusable and the error is
    /// [`ChannelError::TooSlow`].
    fn frame_time_left(&mut self) -> Result<Option<Duration>, ChannelError> {
        let (Some(fd), Some(started)) = (self.frame_deadline, self.rx.started) else {
            return Ok(None);
        };
        let allowed = fd.allowed(self.rx.len.unwrap_or(0) as u64);
        let elapsed = started.elapsed();
        if elapsed >= allowed {
            self.rx_failed = Some("receive side unusable after a frame missed its deadline");
            return Err(ChannelError::TooSlow { limit: allowed });
        }
        Ok(Some(allowed - elapsed))
    }

    /// Before a read inside a frame: fails once the frame's deadline has passed, and otherwise
    /// shortens the socket's read timeout so that the read cannot outlast the deadline.
    fn before_read(&mut self) -> Result<(), ChannelError> {
        let Some(left) = self.frame_time_left()? else {
            return Ok(());
        };
        let left = left.max(Duration::from_millis(1));
        let timeout = Some(self.read_timeout.map_or(left, |t| t.min(left)));
        self.stream()
            .socket()
            .set_read_timeout(timeout)
            .map_err(ChannelError::Io)
    }

    /// After a frame: the socket's read timeout back to the idle timeout.
    fn restore_timeout(&self) {
        if self.frame_deadline.is_some() {
            let _ = self.stream().socket().set_read_timeout(self.read_timeout);
        }
    }

    /// A read timed out: past the frame's deadline it is [`ChannelError::TooSlow`].
    fn timed_out(&mut self) -> ChannelError {
        let err = match self.frame_time_left() {
            Err(too_slow) => too_slow,
            Ok(_) => ChannelError::Timeout,
        };
        self.restore_timeout();
        err
    }

    fn read_some(&mut self, part: Part) -> Result<ReadOutcome, ChannelError> {
        self.before_read()?;
        let rx = &mut self.rx;
        let buf = match part {
            Part::Header => &mut rx.header[rx.header_got..],
            Part::Payload => &mut rx.payload[rx.filled..],
        };
        match read_some(&mut self.io, buf) {
            Ok(o) => {
                if matches!(o, ReadOutcome::Data(_)) && rx.started.is_none() {
                    rx.started = Some(Instant::now());
                }
                Ok(o)
            }
            Err(e) if is_timeout(&e) => Err(self.timed_out()),
            Err(e) => Err(ChannelError::Io(e)),
        }
    }
}

#[derive(Clone, Copy)]
enum Part {
    Header,
    Payload,
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

/// Frames up to this size are copied behind their header and written with one call.
const COALESCE: usize = 64 << 10;

impl<S: Stream> Channel for FramedChannel<S> {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        self.check_len(frame.len() as u64)?;
        if self.tx_failed {
            return Err(ChannelError::Io(io::Error::new(
                ErrorKind::BrokenPipe,
                "send side unusable after an earlier failed send",
            )));
        }
        // `check_len` capped the length at u32::MAX.
        let header = (frame.len() as u32).to_be_bytes();
        let w = self.io.get_mut();
        let result = if frame.len() <= COALESCE {
            let mut buf = Vec::with_capacity(HEADER_LEN + frame.len());
            buf.extend_from_slice(&header);
            buf.extend_from_slice(frame);
            w.write_all(&buf)
        } else {
            w.write_all(&header).and_then(|()| w.write_all(frame))
        }
        .and_then(|()| w.flush());
        if let Err(e) = result {
            // Part of the frame may be on the wire: the stream is out of step.
            self.tx_failed = true;
            return Err(write_error(e));
        }
        Ok(())
    }

    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        if let Some(why) = self.rx_failed {
            return Err(ChannelError::Io(io::Error::new(
                ErrorKind::InvalidData,
                why,
            )));
        }
        while self.rx.len.is_none() {
            if self.rx.header_got == HEADER_LEN {
                let len = u64::from(u32::from_be_bytes(self.rx.header));
                if len > self.max_frame {
                    self.rx_failed = Some("receive side unusable after an oversized frame header");
                    self.restore_timeout();
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
                self.rx.len = Some(len);
                self.rx.payload = Vec::new();
                self.rx.filled = 0;
                break;
            }
            match self.read_some(Part::Header)? {
                ReadOutcome::Data(n) => self.rx.header_got += n,
                ReadOutcome::End if self.rx.header_got == 0 => return Err(ChannelError::Closed),
                ReadOutcome::End => {
                    return Err(ChannelError::Truncated {
                        expected: HEADER_LEN,
                        got: self.rx.header_got,
                    })
                }
            }
        }
        let len = self.rx.len.unwrap_or(0);
        while self.rx.filled < len {
            if self.rx.filled == self.rx.payload.len() {
                let grow = (len - self.rx.filled).min(RECV_GROW_STEP);
                self.rx.payload.resize(self.rx.filled + grow, 0);
            }
            match self.read_some(Part::Payload)? {
                ReadOutcome::Data(n) => self.rx.filled += n,
                ReadOutcome::End => {
                    return Err(ChannelError::Truncated {
                        expected: len,
                        got: self.rx.filled,
                    })
                }
            }
        }
        let mut frame = std::mem::take(&mut self.rx.payload);
        frame.truncate(len);
        self.rx = RxState::default();
        self.restore_timeout();
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
