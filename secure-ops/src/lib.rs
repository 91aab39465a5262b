//! # secure-ops
//!
//! The two-server sub-protocols of smlp, written once against the [`Channel`] trait.
pub mod channel;
pub use channel::{Channel, ChannelError, ChannelExt, MessageError, Metered, Traffic, TrafficSnapshot};
