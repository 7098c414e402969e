//! X11 reads that xcap does not do, over one connection per listing.

use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt};
use x11rb::rust_connection::RustConnection;

pub(crate) struct Extra {
    conn: RustConnection,
    net_wm_name: Atom,
    compound_text: Atom,
    net_wm_window_type: Atom,
    notification: Atom,
}

impl Extra {
    pub(crate) fn connect() -> Option<Self> {
        let (conn, _) = x11rb::connect(None).ok()?;
        let atom = |name: &[u8]| conn.intern_atom(false, name).ok()?.reply().ok().map(|r| r.atom);
        let net_wm_window_type = atom(b"_NET_WM_WINDOW_TYPE")?;
        let notification = atom(b"_NET_WM_WINDOW_TYPE_NOTIFICATION")?;
        let net_wm_name = atom(b"_NET_WM_NAME")?;
        let compound_text = atom(b"COMPOUND_TEXT")?;
        Some(Extra { conn, net_wm_name, compound_text, net_wm_window_type, notification })
    }

    /// The title as [`crate::x11_title`] reads it; `None` when the window has gone.
    pub(crate) fn title(&self, window: u32) -> Option<Result<String, crate::Unreadable>> {
        let net = self.conn.get_property(false, window, self.net_wm_name, AtomEnum::ANY, 0, 4096).ok()?;
        let wm = self.conn.get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 4096).ok()?;
        let (net, wm) = (net.reply().ok()?, wm.reply().ok()?);
        Some(crate::x11_title(&net.value, &wm.value, wm.type_ == self.compound_text))
    }

    /// `WM_CLASS` as (instance, class); `None` when unset or the window has gone.
    pub(crate) fn wm_class(&self, window: u32) -> Option<(String, String)> {
        let reply = self.conn.get_property(false, window, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 1024).ok()?.reply().ok()?;
        crate::split_wm_class(&reply.value)
    }

    pub(crate) fn is_notification(&self, window: u32) -> bool {
        let Ok(cookie) = self.conn.get_property(false, window, self.net_wm_window_type, AtomEnum::ATOM, 0, 32) else { return false };
        let Ok(reply) = cookie.reply() else { return false };
        reply.value32().is_some_and(|mut types| types.any(|t| t == self.notification))
    }
}
