use crate::channel::{ChannelError, MessageError};
use crate::messages::SubProtocol;
use thiserror::Error;

/// Everything that can go wrong in a sub-protocol, on either side.
#[derive(Debug, Error)]
pub enum ProtocolError {
    /// The channel failed or a message could not be decoded.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A Paillier operation failed (e.g. an invalid ciphertext from the peer).
    #[error("cryptographic error: {0}")]
    Crypto(#[from] paillier::Error),
    /// S1 and S2 disagree on version, key or parameters.
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// Parameters are not acceptable for this key.
    #[error("invalid session parameters: {0}")]
    InvalidParams(String),
    /// A value left its declared range |x| < 2^ℓ (detected by S2 on the blinded value).
    #[error("value out of range in {op}: a value exceeded the declared bound |x| < 2^{value_bits} (fixed-point overflow)")]
    OutOfRange { op: SubProtocol, value_bits: u32 },
    /// The peer reported an error.
    #[error("peer error: {0}")]
    Peer(String),
    /// The peer sent a well-formed but unexpected message.
    #[error("protocol violation: {0}")]
    Violation(String),
    /// S2 refused a request and ended the session (S2's side of a session: the request was
    /// malformed, beyond S2's limits or its profile, or carried a value out of its range).
    #[error("S2 refused {} and ended the session: {why}", refused_what(*.op))]
    Refused {
        /// The sub-protocol of the refused request (`None`: a malformed request or one outside
        /// any sub-protocol, e.g. a second Hello).
        op: Option<SubProtocol>,
        /// Why.
        why: String,
        /// Whether a blinded value was out of its range (a would-be oracle probe or an overflow).
        out_of_range: bool,
    },
    /// A request from the caller is inconsistent (shapes, empty input).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl From<ChannelError> for ProtocolError {
    fn from(e: ChannelError) -> Self {
        ProtocolError::Message(MessageError::Channel(e))
    }
}

impl ProtocolError {
    /// Whether this error, ending an S2 session, was the peer's doing in a way that a refusal
    /// budget counts: a refused request, a message that does not decode (or is over the frame
    /// limit), an invalid ciphertext or an unexpected message. A closed or silent connection, a
    /// handshake with parameters S2 does not serve, and S2's own failures are not.
    pub fn counts_as_refusal(&self) -> bool {
        match self {
            ProtocolError::Refused { .. }
            | ProtocolError::Crypto(_)
            | ProtocolError::Violation(_)
            | ProtocolError::Message(MessageError::Decode(_)) => true,
            ProtocolError::Message(MessageError::Channel(e)) => {
                matches!(e, ChannelError::FrameTooLarge { .. })
            }
            _ => false,
        }
    }

    /// Whether the peer closed the connection.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            ProtocolError::Message(MessageError::Channel(ChannelError::Closed))
        )
    }
}

fn refused_what(op: Option<SubProtocol>) -> &'static str {
    op.map_or("a request", SubProtocol::name)
}
