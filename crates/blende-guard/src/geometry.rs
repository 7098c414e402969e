//! Rectangles in desktop (root window) coordinates.

/// An axis-aligned rectangle. Width and height may be zero (empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Rect { x, y, width, height }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    fn right(&self) -> i64 {
        i64::from(self.x) + i64::from(self.width)
    }

    fn bottom(&self) -> i64 {
        i64::from(self.y) + i64::from(self.height)
    }

    /// The overlap of two rectangles, if any.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        let w = u32::try_from(x1 - i64::from(x0)).ok().filter(|w| *w > 0)?;
        let h = u32::try_from(y1 - i64::from(y0)).ok().filter(|h| *h > 0)?;
        Some(Rect::new(x0, y0, w, h))
    }

    /// This rectangle relative to `origin`'s top-left corner.
    pub fn relative_to(&self, origin: &Rect) -> Rect {
        Rect::new(self.x - origin.x, self.y - origin.y, self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersections() {
        let a = Rect::new(0, 0, 100, 100);
        assert_eq!(a.intersect(&Rect::new(50, 60, 100, 100)), Some(Rect::new(50, 60, 50, 40)));
        assert_eq!(a.intersect(&Rect::new(100, 0, 10, 10)), None, "touching is not overlapping");
        assert_eq!(a.intersect(&Rect::new(-10, -10, 20, 20)), Some(Rect::new(0, 0, 10, 10)));
        assert_eq!(a.intersect(&Rect::new(i32::MAX, 0, u32::MAX, 10)), None);
        assert_eq!(Rect::new(10, 20, 5, 5).relative_to(&Rect::new(8, 8, 1, 1)), Rect::new(2, 12, 5, 5));
    }
}
