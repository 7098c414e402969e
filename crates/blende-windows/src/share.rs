//! X11 driver for sharing one window: desktop snapshots for the share guard and pixel capture,
//! over one X connection kept open for the whole share (xcap opens one per capture).
//!
//! Reads are pipelined: every request of a snapshot is sent before the first reply is awaited.

use blende_guard::{Rect, ScreenSnapshot, ScreenWindow, Snapshot, TargetRead};
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
    compound_text: Atom,
}

/// One X connection with the atoms every read needs.
struct Display {
    conn: RustConnection,
    root: Window,
    screen: Rect,
    atoms: Atoms,
}

type PropCookie<'c> = Cookie<'c, RustConnection, GetPropertyReply>;

/// The identity requests for one window, sent before any reply is awaited.
struct InfoCookies<'c> {
    net_name: PropCookie<'c>,
    wm_name: PropCookie<'c>,
    class: PropCookie<'c>,
    pid: PropCookie<'c>,
    kind: PropCookie<'c>,
}

impl Display {
    fn connect() -> Result<Self, ShareError> {
        let (conn, screen_num) = x11rb::connect(None).map_err(|e| ShareError::Connect(e.to_string()))?;
        let screen = &conn.setup().roots[screen_num];
        let (root, screen_rect) = (screen.root, Rect::new(0, 0, u32::from(screen.width_in_pixels), u32::from(screen.height_in_pixels)));
        let names: [&[u8]; 8] = [
            b"_NET_WM_NAME",
            b"_NET_WM_STATE",
            b"_NET_WM_STATE_HIDDEN",
            b"WM_STATE",
            b"_NET_WM_PID",
            b"_NET_WM_WINDOW_TYPE",
            b"_NET_WM_WINDOW_TYPE_NOTIFICATION",
            b"COMPOUND_TEXT",
        ];
        let cookies = names.map(|n| conn.intern_atom(false, n));
        let mut atoms = [0u32; 8];
        for (slot, cookie) in atoms.iter_mut().zip(cookies) {
            *slot = cookie?.reply()?.atom;
        }
        let [net_wm_name, net_wm_state, net_wm_state_hidden, wm_state, net_wm_pid, net_wm_window_type, notification, compound_text] = atoms;
        let atoms =
            Atoms { net_wm_name, net_wm_state, net_wm_state_hidden, wm_state, net_wm_pid, net_wm_window_type, notification, compound_text };
        Ok(Display { conn, root, screen: screen_rect, atoms })
    }

    fn prop(&self, window: Window, property: impl Into<Atom>, kind: impl Into<Atom>) -> Result<PropCookie<'_>, ShareError> {
        Ok(self.conn.get_property(false, window, property, kind, 0, 1024)?)
    }

    fn request_info(&self, window: Window) -> Result<InfoCookies<'_>, ShareError> {
        let a = &self.atoms;
        Ok(InfoCookies {
            // Any type: programs and tools (xdotool) write _NET_WM_NAME as STRING too.
            net_name: self.prop(window, a.net_wm_name, AtomEnum::ANY)?,
            wm_name: self.prop(window, AtomEnum::WM_NAME, AtomEnum::ANY)?,
            class: self.prop(window, AtomEnum::WM_CLASS, AtomEnum::STRING)?,
            pid: self.prop(window, a.net_wm_pid, AtomEnum::CARDINAL)?,
            kind: self.prop(window, a.net_wm_window_type, AtomEnum::ATOM)?,
        })
    }

    /// The window's identity; `Ok(None)` when its title cannot be decoded exactly.
    fn finish_info(&self, c: InfoCookies<'_>) -> Result<Option<WindowInfo>, ReplyError> {
        let (net_name, wm_name, class, pid, kind) =
            (c.net_name.reply()?, c.wm_name.reply()?, c.class.reply()?, c.pid.reply()?, c.kind.reply()?);
        let Ok(title) = crate::x11_title(&net_name.value, &wm_name.value, wm_name.type_ == self.atoms.compound_text) else {
            return Ok(None);
        };
        let (instance, app_name) = crate::split_wm_class(&class.value).unwrap_or_default();
        let is_notification = kind.value32().is_some_and(|mut k| k.any(|x| x == self.atoms.notification));
        // The desktop entry of its application (re-read when one is installed or removed).
        let facts = crate::apps::installed().lookup([app_name.as_str(), instance.as_str()]);
        Ok(Some(WindowInfo {
            os: Os::Linux,
            app_name,
            title,
            pid: pid.value32().and_then(|mut p| p.next()),
            kind: if is_notification { WindowKind::Notification } else { WindowKind::Normal },
            facts,
        }))
    }

    /// Rectangles (with borders) of `windows` that are viewable, paired with the window.
    fn viewable_rects(&self, windows: &[Window]) -> Result<Vec<(Window, Rect)>, ShareError> {
        type Pair<'c> = (Cookie<'c, RustConnection, GetWindowAttributesReply>, Cookie<'c, RustConnection, GetGeometryReply>);
        let cookies: Vec<Pair<'_>> = windows
            .iter()
            .map(|w| Ok((self.conn.get_window_attributes(*w)?, self.conn.get_geometry(*w)?)))
            .collect::<Result<_, ShareError>>()?;
        let mut rects = Vec::new();
        for (w, (attrs, geom)) in windows.iter().zip(cookies) {
            // A window that vanished meanwhile covers nothing.
            let (Ok(attrs), Ok(geom)) = (attrs.reply(), geom.reply()) else { continue };
            if attrs.map_state != MapState::VIEWABLE || attrs.class == WindowClass::INPUT_ONLY {
                continue;
            }
            let border = u32::from(geom.border_width) * 2;
            rects.push((
                *w,
                Rect::new(i32::from(geom.x), i32::from(geom.y), u32::from(geom.width) + border, u32::from(geom.height) + border),
            ));
        }
        Ok(rects)
    }

    /// Captures `drawable`, which covers `rect` in desktop coordinates, into `out`.
    /// Parts outside the screen are grey.
    fn capture(&self, drawable: Window, rect: Rect, out: &mut Bgra) -> Result<(), ShareError> {
        let (w, h) = (rect.width, rect.height);
        out.width = w;
        out.height = h;
        out.data.clear();
        out.data.resize((w * h * 4) as usize, blende_guard::MASK_GREY);
        // X refuses GetImage for a rectangle that is not fully on screen: take the visible part.
        let Some(visible) = rect.intersect(&self.screen) else { return Ok(()) };
        let local = visible.relative_to(&rect);
        let image = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, drawable, local.x as i16, local.y as i16, visible.width as u16, visible.height as u16, !0)?
            .reply()
            .map_err(|e| ShareError::X(e.to_string()))?;
        if image.depth != 24 && image.depth != 32 {
            return Err(ShareError::Format(drawable, image.depth));
        }
        let src_stride = image.data.len() / visible.height.max(1) as usize;
        let row_bytes = visible.width as usize * 4;
        if src_stride < row_bytes {
            return Err(ShareError::Format(drawable, image.depth));
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

/// One shared window on one X connection.
pub struct X11WindowShare {
    display: Display,
    window: Window,
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
        let display = Display::connect()?;
        let exists = match display.conn.get_window_attributes(window)?.reply() {
            Ok(_) => Ok(()),
            Err(ReplyError::X11Error(_)) => Err(ShareError::NoSuchWindow(window)),
            Err(e) => Err(ShareError::from(e)),
        };
        exists.map(|()| X11WindowShare { display, window })
    }

    pub fn window(&self) -> u32 {
        self.window
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
        let d = &self.display;
        let a = &d.atoms;
        // Send everything first, then wait: one round trip for the whole snapshot.
        let attrs = d.conn.get_window_attributes(self.window)?;
        let geom = d.conn.get_geometry(self.window)?;
        let origin = d.conn.translate_coordinates(self.window, d.root, 0, 0)?;
        let info = d.request_info(self.window)?;
        let state = d.prop(self.window, a.net_wm_state, AtomEnum::ATOM)?;
        let wm_state = d.prop(self.window, a.wm_state, a.wm_state)?;
        let tree = d.conn.query_tree(d.root)?;

        let gone = |e: ReplyError| match e {
            ReplyError::X11Error(_) => ShareError::NoSuchWindow(self.window),
            e => e.into(),
        };
        let attrs = attrs.reply().map_err(gone)?;
        let geom = geom.reply().map_err(gone)?;
        let origin = origin.reply().map_err(gone)?;
        let Some(info) = d.finish_info(info).map_err(gone)? else {
            // A title we cannot read exactly: the guard pauses, as for any unreadable window.
            return Ok(Snapshot { target: TargetRead::Unreadable, above: Vec::new() });
        };
        let state = state.reply().map_err(gone)?;
        let wm_state = wm_state.reply().map_err(gone)?;
        let tree = tree.reply()?;

        let hidden = state.value32().is_some_and(|mut s| s.any(|x| x == a.net_wm_state_hidden));
        let iconic = wm_state.value32().and_then(|mut s| s.next()) == Some(3);
        let minimized = hidden || iconic || attrs.map_state != MapState::VIEWABLE;
        let rect = Rect::new(i32::from(origin.dst_x), i32::from(origin.dst_y), u32::from(geom.width), u32::from(geom.height));
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
        Ok(self.display.viewable_rects(&children[pos + 1..])?.into_iter().map(|(_, r)| r).collect())
    }

    fn toplevel(&self) -> Result<Window, ShareError> {
        let mut w = self.window;
        loop {
            let reply = self.display.conn.query_tree(w)?.reply().map_err(|_| ShareError::NoSuchWindow(self.window))?;
            if reply.parent == self.display.root || reply.parent == x11rb::NONE {
                return Ok(w);
            }
            w = reply.parent;
        }
    }

    /// Captures the window's pixels into `out` (BGRA). Parts outside the screen are filled
    /// grey; parts covered by other windows are whatever X returns and must be masked by the
    /// guard.
    pub fn capture(&self, out: &mut Bgra) -> Result<(), ShareError> {
        let d = &self.display;
        let geom = d.conn.get_geometry(self.window)?;
        let origin = d.conn.translate_coordinates(self.window, d.root, 0, 0)?;
        let geom = geom.reply().map_err(|_| ShareError::NoSuchWindow(self.window))?;
        let origin = origin.reply().map_err(|_| ShareError::NoSuchWindow(self.window))?;
        let rect = Rect::new(i32::from(origin.dst_x), i32::from(origin.dst_y), u32::from(geom.width), u32::from(geom.height));
        d.capture(self.window, rect, out)
    }
}

/// The whole screen on one X connection, for administrators who allow it.
pub struct X11ScreenShare {
    display: Display,
}

impl std::fmt::Debug for X11ScreenShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11ScreenShare").finish_non_exhaustive()
    }
}

impl X11ScreenShare {
    pub fn open() -> Result<Self, ShareError> {
        Ok(X11ScreenShare { display: Display::connect()? })
    }

    /// Every viewable top-level window with the identity of the client inside it. A window
    /// whose identity cannot be read is reported with an empty one, which the policy blocks.
    pub fn snapshot(&self) -> ScreenSnapshot {
        let d = &self.display;
        let windows = (|| -> Result<Vec<ScreenWindow>, ShareError> {
            let tree = d.conn.query_tree(d.root)?.reply()?;
            let tops = d.viewable_rects(&tree.children)?;
            let clients: Vec<Window> = tops.iter().map(|(w, _)| self.client_of(*w)).collect();
            let cookies = clients.iter().map(|c| d.request_info(*c)).collect::<Result<Vec<_>, _>>()?;
            Ok(tops
                .into_iter()
                .zip(cookies)
                .map(|((top, rect), c)| ScreenWindow {
                    id: u64::from(top),
                    // Unreadable identity or title: empty, which the policy blocks.
                    info: d.finish_info(c).ok().flatten().unwrap_or_else(|| WindowInfo::new(Os::Linux, "", "")),
                    rect,
                })
                .collect())
        })();
        // Unreadable: one unidentified window over the whole screen masks everything.
        let windows = windows.unwrap_or_else(|_| vec![ScreenWindow { id: 0, info: WindowInfo::new(Os::Linux, "", ""), rect: d.screen }]);
        ScreenSnapshot { screen: d.screen, windows }
    }

    /// The client window (the one with WM_STATE) inside a window-manager frame, or the window
    /// itself (override-redirect pop-ups, unmanaged windows).
    fn client_of(&self, top: Window) -> Window {
        let d = &self.display;
        let has_state = |w: Window| {
            d.prop(w, d.atoms.wm_state, d.atoms.wm_state).ok().and_then(|c| c.reply().ok()).is_some_and(|r| !r.value.is_empty())
        };
        let mut level = vec![top];
        for _ in 0..3 {
            if let Some(w) = level.iter().copied().find(|w| has_state(*w)) {
                return w;
            }
            level = level.iter().filter_map(|w| d.conn.query_tree(*w).ok()?.reply().ok()).flat_map(|t| t.children).collect();
        }
        top
    }

    pub fn capture(&self, out: &mut Bgra) -> Result<(), ShareError> {
        self.display.capture(self.display.root, self.display.screen, out)
    }
}

/// A small picture of a window for the share picker, made through the share guard: a blocked
/// window is never captured at all (`Ok(None)`), and windows lying on top are masked.
pub fn thumbnail(window: u32, policy: &blende_policy::Policy, max_width: u32) -> Result<Option<Bgra>, ShareError> {
    let share = X11WindowShare::open(window)?;
    let before = share.snapshot();
    let Ok(mut guard) = blende_guard::ShareGuard::start(policy.clone(), u64::from(window), &before) else { return Ok(None) };
    let mut frame = Bgra::default();
    share.capture(&mut frame)?;
    let after = share.snapshot();
    let decision = guard.handle_frame(frame.width, frame.height, &before, &after, 0);
    if !matches!(decision, blende_guard::Decision::Send { .. }) {
        return Ok(None);
    }
    let mut fm =
        blende_guard::FrameMut { data: &mut frame.data, width: frame.width, height: frame.height, stride_bytes: frame.width as usize * 4 };
    blende_guard::apply(&decision, &mut fm);
    Ok(Some(downscale(&frame, max_width)))
}

/// Box-filter downscale to at most `max_width` pixels wide, keeping the aspect ratio.
pub fn downscale(frame: &Bgra, max_width: u32) -> Bgra {
    let factor = frame.width.div_ceil(max_width.max(1)).max(1);
    let (w, h) = ((frame.width / factor).max(1), (frame.height / factor).max(1));
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0u32; 4];
            for dy in 0..factor {
                let row = ((y * factor + dy) * frame.width) as usize;
                for dx in 0..factor {
                    let i = (row + (x * factor + dx) as usize) * 4;
                    for (a, v) in acc.iter_mut().zip(&frame.data[i..i + 4]) {
                        *a += u32::from(*v);
                    }
                }
            }
            let n = factor * factor;
            data.extend(acc.iter().map(|a| (a / n) as u8));
        }
    }
    Bgra { width: w, height: h, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscale_averages_blocks() {
        let frame = Bgra { width: 4, height: 2, data: [[0u8, 0, 0, 255], [200, 100, 50, 255]].repeat(4).concat() };
        let small = downscale(&frame, 2);
        assert_eq!((small.width, small.height), (2, 1));
        assert_eq!(&small.data[..4], &[100, 50, 25, 255]);
    }
}
