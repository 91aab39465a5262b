//! An in-memory duplex channel: two ends connected by a pair of unbounded queues. Meant for tests
//! and single-process runs where S1 and S2 are threads.

use secure_ops::channel::{Channel, ChannelError};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// One end of an in-memory channel made by [`pair`].
///
/// Frames arrive whole and in order. Dropping one end makes the other end's
/// [`recv_frame`](Channel::recv_frame) return [`ChannelError::Closed`] once the frames already
/// sent have been received, and its [`send_frame`](Channel::send_frame) return
/// [`ChannelError::Closed`] at once. The end is `Send`, so it can be moved to another thread.
#[derive(Debug)]
pub struct MemoryChannel {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    recv_timeout: Option<Duration>,
}

/// Creates a connected pair of in-memory channel ends.
pub fn pair() -> (MemoryChannel, MemoryChannel) {
    let (tx_a, rx_b) = mpsc::channel();
    let (tx_b, rx_a) = mpsc::channel();
    (
        MemoryChannel {
            tx: tx_a,
            rx: rx_a,
            recv_timeout: None,
        },
        MemoryChannel {
            tx: tx_b,
            rx: rx_b,
            recv_timeout: None,
        },
    )
}

impl MemoryChannel {
    /// Makes [`recv_frame`](Channel::recv_frame) give up with [`ChannelError::Timeout`] after
    /// `timeout` (`None`, the default, waits for ever).
    pub fn set_recv_timeout(&mut self, timeout: Option<Duration>) {
        self.recv_timeout = timeout;
    }
}

impl Channel for MemoryChannel {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        self.tx
            .send(frame.to_vec())
            .map_err(|_| ChannelError::Closed)
    }

    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        match self.recv_timeout {
            None => self.rx.recv().map_err(|_| ChannelError::Closed),
            Some(t) => self.rx.recv_timeout(t).map_err(|e| match e {
                RecvTimeoutError::Timeout => ChannelError::Timeout,
                RecvTimeoutError::Disconnected => ChannelError::Closed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secure_ops::channel::ChannelExt;
    use std::thread;

    fn assert_send<T: Send + 'static>() {}

    #[test]
    fn ends_are_send() {
        assert_send::<MemoryChannel>();
    }

    #[test]
    fn many_frames_round_trip_across_threads() {
        let (mut a, mut b) = pair();
        let frames: Vec<Vec<u8>> = (0..200usize)
            .map(|i| match i {
                0 => Vec::new(),
                1 => (0..1 << 20).map(|j| (j % 251) as u8).collect(),
                _ => vec![i as u8; i * 7],
            })
            .collect();
        let expected = frames.clone();
        let echo = thread::spawn(move || loop {
            match b.recv_frame() {
                Ok(f) => b.send_frame(&f).unwrap(),
                Err(ChannelError::Closed) => break,
                Err(e) => panic!("unexpected {e}"),
            }
        });
        for f in &frames {
            a.send_frame(f).unwrap();
        }
        for want in &expected {
            assert_eq!(&a.recv_frame().unwrap(), want);
        }
        drop(a);
        echo.join().unwrap();
    }

    #[test]
    fn dropping_one_end_closes_the_other() {
        let (mut a, b) = pair();
        let mut b = b;
        b.send_frame(b"last").unwrap();
        drop(b);
        // Frames already sent are still delivered, then Closed.
        assert_eq!(a.recv_frame().unwrap(), b"last");
        assert!(matches!(a.recv_frame(), Err(ChannelError::Closed)));
        assert!(matches!(a.send_frame(b"x"), Err(ChannelError::Closed)));
    }

    #[test]
    fn dropped_in_another_thread_wakes_a_blocked_receiver() {
        let (mut a, b) = pair();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            drop(b);
        });
        assert!(matches!(a.recv_frame(), Err(ChannelError::Closed)));
        t.join().unwrap();
    }

    #[test]
    fn recv_timeout() {
        let (mut a, mut b) = pair();
        a.set_recv_timeout(Some(Duration::from_millis(30)));
        assert!(matches!(a.recv_frame(), Err(ChannelError::Timeout)));
        b.send_frame(b"late").unwrap();
        assert_eq!(a.recv_frame().unwrap(), b"late");
        drop(b);
        assert!(matches!(a.recv_frame(), Err(ChannelError::Closed)));
    }

    #[test]
    fn typed_messages() {
        let (mut a, mut b) = pair();
        a.send_msg(&(7u32, String::from("seven"), vec![1i64, -2]))
            .unwrap();
        let got: (u32, String, Vec<i64>) = b.recv_msg().unwrap();
        assert_eq!(got, (7, "seven".to_string(), vec![1, -2]));
    }
}
