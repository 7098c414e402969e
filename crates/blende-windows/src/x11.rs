//! X11 reads that xcap does not do, over one connection per listing.

use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt};
use x11rb::rust_connection::RustConnection;

pub(crate) struct Extra {
    conn: RustConnection,
    net_wm_window_type: Atom,
    notification: Atom,
}

impl Extra {
    pub(crate) fn connect() -> Option<Self> {
        let (conn, _) = x11rb::connect(None).ok()?;
        let atom = |name: &[u8]| conn.intern_atom(false, name).ok()?.reply().ok().map(|r| r.atom);
        let net_wm_window_type = atom(b"_NET_WM_WINDOW_TYPE")?;
        let notification = atom(b"_NET_WM_WINDOW_TYPE_NOTIFICATION")?;
        Some(Extra { conn, net_wm_window_type, notification })
    }

    /// `WM_NAME` of any encoding. STRING is ISO Latin-1 by the ICCCM.
    pub(crate) fn wm_name(&self, window: u32) -> Option<String> {
        let reply = self.conn.get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 4096).ok()?.reply().ok()?;
        if reply.value.is_empty() {
            return None;
        }
        Some(crate::decode_title(&reply.value))
    }

    pub(crate) fn is_notification(&self, window: u32) -> bool {
        let Ok(cookie) = self.conn.get_property(false, window, self.net_wm_window_type, AtomEnum::ATOM, 0, 32) else { return false };
        let Ok(reply) = cookie.reply() else { return false };
        reply.value32().is_some_and(|mut types| types.any(|t| t == self.notification))
    }
}
