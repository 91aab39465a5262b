//! The one abstraction every protocol is written against: a [`Channel`] that sends and receives
//! whole frames. Typed messages sit on top ([`ChannelExt`], serde + postcard); byte and round
//! counting is a wrapper ([`Metered`]), not a flag.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// Why a frame could not be sent or received.
#[derive(Debug, Error)]
pub enum ChannelError {
    /// The peer closed the connection (cleanly, between frames).
    #[error("peer closed the connection")]
    Closed,
    /// The connection ended in the middle of a frame.
    #[error("connection ended in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { expected: usize, got: usize },
    /// A frame is larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge { size: u64, max: u64 },
    /// No data within the configured timeout.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// A frame was not complete within its deadline (a peer sending too slowly).
    #[error("the peer took longer than {:.0} s to send one frame", limit.as_secs_f64())]
    TooSlow { limit: std::time::Duration },
    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A bidirectional, reliable, ordered channel of frames (byte strings).
pub trait Channel {
    /// Sends one frame.
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError>;
    /// Receives one frame (blocking).
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError>;
}

impl<C: Channel + ?Sized> Channel for &mut C {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        (**self).send_frame(frame)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        (**self).recv_frame()
    }
}

impl<C: Channel + ?Sized> Channel for Box<C> {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        (**self).send_frame(frame)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        (**self).recv_frame()
    }
}

/// A typed message could not be exchanged.
#[derive(Debug, Error)]
pub enum MessageError {
    /// The channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The frame is not a valid encoding of the expected message.
    #[error("malformed message from peer: {0}")]
    Decode(String),
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Typed send and receive on any [`Channel`] (postcard encoding).
pub trait ChannelExt: Channel {
    /// Encodes and sends one message.
    fn send_msg<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), MessageError> {
        let bytes = postcard::to_stdvec(msg).map_err(|e| MessageError::Encode(e.to_string()))?;
        self.send_frame(&bytes)?;
        Ok(())
    }
    /// Receives and decodes one message.
    fn recv_msg<T: DeserializeOwned>(&mut self) -> Result<T, MessageError> {
        let bytes = self.recv_frame()?;
        postcard::from_bytes(&bytes).map_err(|e| MessageError::Decode(e.to_string()))
    }
}
impl<C: Channel + ?Sized> ChannelExt for C {}

/// Traffic counters, shareable between threads (cloning shares the same counters).
#[derive(Clone, Debug, Default)]
pub struct Traffic(Arc<TrafficInner>);

#[derive(Debug, Default)]
struct TrafficInner {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    round_trips: AtomicU64,
}

/// A snapshot of [`Traffic`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrafficSnapshot {
    /// Bytes of frames sent (payload only, without transport framing).
    pub bytes_sent: u64,
    /// Bytes of frames received.
    pub bytes_received: u64,
    /// Frames sent.
    pub messages_sent: u64,
    /// Frames received.
    pub messages_received: u64,
    /// Round trips: receives that follow a send.
    pub round_trips: u64,
}

impl TrafficSnapshot {
    /// Difference `self - earlier`.
    pub fn since(&self, earlier: &TrafficSnapshot) -> TrafficSnapshot {
        TrafficSnapshot {
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_received: self.bytes_received - earlier.bytes_received,
            messages_sent: self.messages_sent - earlier.messages_sent,
            messages_received: self.messages_received - earlier.messages_received,
            round_trips: self.round_trips - earlier.round_trips,
        }
    }
}

impl Traffic {
    /// Current values.
    pub fn snapshot(&self) -> TrafficSnapshot {
        let t = &self.0;
        TrafficSnapshot {
            bytes_sent: t.bytes_sent.load(Ordering::Relaxed),
            bytes_received: t.bytes_received.load(Ordering::Relaxed),
            messages_sent: t.messages_sent.load(Ordering::Relaxed),
            messages_received: t.messages_received.load(Ordering::Relaxed),
            round_trips: t.round_trips.load(Ordering::Relaxed),
        }
    }
}

/// A channel wrapper that counts bytes and messages each way, and round trips.
pub struct Metered<C> {
    inner: C,
    traffic: Traffic,
    sent_since_recv: bool,
}

impl<C: Channel> Metered<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        Metered {
            inner,
            traffic: Traffic::default(),
            sent_since_recv: false,
        }
    }
    /// The shared counters.
    pub fn traffic(&self) -> Traffic {
        self.traffic.clone()
    }
    /// The wrapped channel.
    pub fn into_inner(self) -> C {
        self.inner
    }
    /// The wrapped channel.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

impl<C: Channel> Channel for Metered<C> {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        self.inner.send_frame(frame)?;
        let t = &self.traffic.0;
        t.bytes_sent
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        t.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.sent_since_recv = true;
        Ok(())
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        let f = self.inner.recv_frame()?;
        let t = &self.traffic.0;
        t.bytes_received
            .fetch_add(f.len() as u64, Ordering::Relaxed);
        t.messages_received.fetch_add(1, Ordering::Relaxed);
        if std::mem::take(&mut self.sent_since_recv) {
            t.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        Ok(f)
    }
}
