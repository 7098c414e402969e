//! blende-rtc against real PeerConnections on loopback (one integration binary).

mod data_channel;
mod hostile_sender;
mod ice_restart;
mod keyframe_request;
