//! X11 driver for sharing one window: desktop snapshots for the share guard and pixel capture,
//! over one X connection kept open for the whole share (xcap opens one per capture).
//!
//! Reads are pipelined: every request of a snapshot is sent before the first reply is awaited.

use blende_guard::{Rect, Snapshot, TargetRead};
use blende_policy::{Os, WindowInfo, WindowKind};
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::errors::ReplyError;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt, GetGeometryReply, GetPropertyReply, GetWindowAttributesReply, ImageFormat, MapState, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    #[error("cannot connect to the X display: {0}")]
    Connect(String),
    #[error("X request failed: {0}")]
    X(String),
    #[error("window {0:#x} does not exist")]
    NoSuchWindow(u32),
    #[error("window {0:#x} has a pixel format Blende cannot capture (depth {1})")]
    Format(u32, u8),
}

impl From<ReplyError> for ShareError {
    fn from(e: ReplyError) -> Self {
        ShareError::X(e.to_string())
    }
}

impl From<x11rb::errors::ConnectionError> for ShareError {
    fn from(e: x11rb::errors::ConnectionError) -> Self {
        ShareError::X(e.to_string())
    }
}

struct Atoms {
    net_wm_name: Atom,
    net_wm_state: Atom,
    net_wm_state_hidden: Atom,
    wm_state: Atom,
    net_wm_pid: Atom,
    net_wm_window_type: Atom,
    notification: Atom,
}

/// One shared window on one X connection.
pub struct X11WindowShare {
    conn: RustConnection,
    root: Window,
    screen: Rect,
    window: Window,
    atoms: Atoms,
}

impl std::fmt::Debug for X11WindowShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11WindowShare").field("window", &format_args!("{:#x}", self.window)).finish_non_exhaustive()
    }
}

/// A captured frame: BGRA, `width * 4` bytes per row.
#[derive(Clone, Debug, Default)]
pub struct Bgra {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl X11WindowShare {
    pub fn open(window: u32) -> Result<Self, ShareError> {
        let (conn, screen_num) = x11rb::connect(None).map_err(|e| ShareError::Connect(e.to_string()))?;
        let screen = &conn.setup().roots[screen_num];
        let (root, screen_rect) = (screen.root, Rect::new(0, 0, u32::from(screen.width_in_pixels), u32::from(screen.height_in_pixels)));
        let names: [&[u8]; 7] = [
            b"_NET_WM_NAME",
                        b"_NET_WM_STATE",
            b"_NET_WM_STATE_HIDDEN",
            b"WM_STATE",
            b"_NET_WM_PID",
            b"_NET_WM_WINDOW_TYPE",
            b"_NET_WM_WINDOW_TYPE_NOTIFICATION",
        ];
        let cookies = names.map(|n| conn.intern_atom(false, n));
        let mut atoms = [0u32; 7];
        for (slot, cookie) in atoms.iter_mut().zip(cookies) {
            *slot = cookie?.reply()?.atom;
        }
        let [net_wm_name, net_wm_state, net_wm_state_hidden, wm_state, net_wm_pid, net_wm_window_type, notification] = atoms;
        let share = X11WindowShare {
            conn,
            root,
            screen: screen_rect,
            window,
            atoms: Atoms { net_wm_name, net_wm_state, net_wm_state_hidden, wm_state, net_wm_pid, net_wm_window_type, notification },
        };
        let exists = match share.conn.get_window_attributes(window)?.reply() {
            Ok(_) => Ok(()),
            Err(ReplyError::X11Error(_)) => Err(ShareError::NoSuchWindow(window)),
            Err(e) => Err(ShareError::from(e)),
        };
        exists.map(|()| share)
    }

    pub fn window(&self) -> u32 {
        self.window
    }

    fn prop(&self, property: impl Into<Atom>, kind: impl Into<Atom>) -> Result<Cookie<'_, RustConnection, GetPropertyReply>, ShareError> {
        Ok(self.conn.get_property(false, self.window, property, kind, 0, 1024)?)
    }

    /// Reads the shared window and everything stacked above it.
    pub fn snapshot(&self) -> Snapshot {
        match self.read() {
            Ok(s) => s,
            Err(ShareError::NoSuchWindow(_)) => Snapshot { target: TargetRead::Gone, above: Vec::new() },
            Err(_) => Snapshot { target: TargetRead::Unreadable, above: Vec::new() },
        }
    }

    fn read(&self) -> Result<Snapshot, ShareError> {
        let a = &self.atoms;
        // Send everything first, then wait: one round trip for the whole snapshot.
        let attrs = self.conn.get_window_attributes(self.window)?;
        let geom = self.conn.get_geometry(self.window)?;
        let origin = self.conn.translate_coordinates(self.window, self.root, 0, 0)?;
        // Any type: programs and tools (xdotool) write _NET_WM_NAME as STRING too.
        let net_name = self.prop(a.net_wm_name, AtomEnum::ANY)?;
        let wm_name = self.prop(AtomEnum::WM_NAME, AtomEnum::ANY)?;
        let class = self.prop(AtomEnum::WM_CLASS, AtomEnum::STRING)?;
        let state = self.prop(a.net_wm_state, AtomEnum::ATOM)?;
        let wm_state = self.prop(a.wm_state, a.wm_state)?;
        let pid = self.prop(a.net_wm_pid, AtomEnum::CARDINAL)?;
        let kind = self.prop(a.net_wm_window_type, AtomEnum::ATOM)?;
        let tree = self.conn.query_tree(self.root)?;

        let gone = |e: ReplyError| match e {
            ReplyError::X11Error(_) => ShareError::NoSuchWindow(self.window),
            e => e.into(),
        };
        let attrs = attrs.reply().map_err(gone)?;
        let geom = geom.reply().map_err(gone)?;
        let origin = origin.reply().map_err(gone)?;
        let net_name = net_name.reply().map_err(gone)?;
        let wm_name = wm_name.reply().map_err(gone)?;
        let class = class.reply().map_err(gone)?;
        let state = state.reply().map_err(gone)?;
        let wm_state = wm_state.reply().map_err(gone)?;
        let pid = pid.reply().map_err(gone)?;
        let kind = kind.reply().map_err(gone)?;
        let tree = tree.reply()?;

        let title = if net_name.value.is_empty() { crate::decode_title(&wm_name.value) } else { crate::decode_title(&net_name.value) };
        let app_name = class.value.split(|b| *b == 0).nth(1).map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
        let hidden = state.value32().is_some_and(|mut s| s.any(|x| x == a.net_wm_state_hidden));
        let iconic = wm_state.value32().and_then(|mut s| s.next()) == Some(3);
        let minimized = hidden || iconic || attrs.map_state != MapState::VIEWABLE;
        let is_notification = kind.value32().is_some_and(|mut k| k.any(|x| x == a.notification));
        let rect = Rect::new(i32::from(origin.dst_x), i32::from(origin.dst_y), u32::from(geom.width), u32::from(geom.height));
        let info = WindowInfo {
            os: Os::Linux,
            app_name,
            title,
            pid: pid.value32().and_then(|mut p| p.next()),
            kind: if is_notification { WindowKind::Notification } else { WindowKind::Normal },
        };
        let above = self.windows_above(&tree.children)?;
        Ok(Snapshot { target: TargetRead::Present { info, rect, minimized }, above })
    }

    /// The rectangles of every viewable top-level window stacked above the shared window's
    /// top-level ancestor (its window-manager frame), override-redirect pop-ups included.
    fn windows_above(&self, children: &[Window]) -> Result<Vec<Rect>, ShareError> {
        let top = self.toplevel()?;
        let Some(pos) = children.iter().position(|c| *c == top) else {
            return Err(ShareError::NoSuchWindow(self.window));
        };
        let above = &children[pos + 1..];
        type Pair<'c> = (Cookie<'c, RustConnection, GetWindowAttributesReply>, Cookie<'c, RustConnection, GetGeometryReply>);
        let cookies: Vec<Pair<'_>> =
            above.iter().map(|w| Ok((self.conn.get_window_attributes(*w)?, self.conn.get_geometry(*w)?))).collect::<Result<_, ShareError>>()?;
        let mut rects = Vec::new();
        for (attrs, geom) in cookies {
            // A window that vanished meanwhile covers nothing.
            let (Ok(attrs), Ok(geom)) = (attrs.reply(), geom.reply()) else { continue };
            if attrs.map_state != MapState::VIEWABLE || attrs.class == WindowClass::INPUT_ONLY {
                continue;
            }
            let border = u32::from(geom.border_width) * 2;
            rects.push(Rect::new(i32::from(geom.x), i32::from(geom.y), u32::from(geom.width) + border, u32::from(geom.height) + border));
        }
        Ok(rects)
    }

    fn toplevel(&self) -> Result<Window, ShareError> {
        let mut w = self.window;
        loop {
            let reply = self.conn.query_tree(w)?.reply().map_err(|_| ShareError::NoSuchWindow(self.window))?;
            if reply.parent == self.root || reply.parent == x11rb::NONE {
                return Ok(w);
            }
            w = reply.parent;
        }
    }

    /// Captures the window's pixels into `out` (BGRA). Parts outside the screen are filled
    /// grey; parts covered by other windows are whatever X returns and must be masked by the
    /// guard.
    pub fn capture(&self, out: &mut Bgra) -> Result<(), ShareError> {
        let geom = self.conn.get_geometry(self.window)?.reply().map_err(|_| ShareError::NoSuchWindow(self.window))?;
        let origin = self.conn.translate_coordinates(self.window, self.root, 0, 0)?.reply().map_err(|_| ShareError::NoSuchWindow(self.window))?;
        let (w, h) = (u32::from(geom.width), u32::from(geom.height));
        let rect = Rect::new(i32::from(origin.dst_x), i32::from(origin.dst_y), w, h);
        out.width = w;
        out.height = h;
        out.data.clear();
        out.data.resize((w * h * 4) as usize, blende_guard::MASK_GREY);
        // X refuses GetImage for a rectangle that is not fully on screen: take the visible part.
        let Some(visible) = rect.intersect(&self.screen) else { return Ok(()) };
        let local = visible.relative_to(&rect);
        let image = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.window, local.x as i16, local.y as i16, visible.width as u16, visible.height as u16, !0)?
            .reply()
            .map_err(|e| ShareError::X(e.to_string()))?;
        if image.depth != 24 && image.depth != 32 {
            return Err(ShareError::Format(self.window, image.depth));
        }
        let src_stride = image.data.len() / visible.height.max(1) as usize;
        let row_bytes = visible.width as usize * 4;
        if src_stride < row_bytes {
            return Err(ShareError::Format(self.window, image.depth));
        }
        let dst_stride = w as usize * 4;
        for (y, src) in image.data.chunks_exact(src_stride).take(visible.height as usize).enumerate() {
            let dst_start = (local.y as usize + y) * dst_stride + local.x as usize * 4;
            let dst = &mut out.data[dst_start..dst_start + row_bytes];
            dst.copy_from_slice(&src[..row_bytes]);
            // X leaves the padding byte undefined: make every pixel opaque.
            for px in dst.chunks_exact_mut(4) {
                px[3] = 0xFF;
            }
        }
        Ok(())
    }
}
