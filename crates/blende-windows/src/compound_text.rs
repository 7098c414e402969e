//! COMPOUND_TEXT (X Consortium, "Compound Text Encoding" 1.1), the encoding xterm, terminal
//! mail programs and other Xlib clients use for `WM_NAME` when they set no `_NET_WM_NAME`.
//!
//! Decoded as Xlib does for the parts that carry European text: ASCII in GL, an ISO 8859 right
//! half in GR (8859-1 at the start; `ESC - F` designates another), and UTF-8 segments between
//! `ESC % G` and `ESC % @`. Direction markers (`CSI 1 ]`, `CSI 2 ]`, `CSI ]`) carry no text.
//! Anything else (multi-byte CJK sets, extended segments, stray controls, broken UTF-8) gives
//! `None`: a title that cannot be read exactly is unreadable, never guessed, because the policy
//! must see the same text the user sees.

use encoding_rs::Encoding;

/// The text of a COMPOUND_TEXT property, or `None` when it cannot be decoded exactly.
#[must_use]
pub fn decode(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    // GR: `None` is ISO 8859-1 (bytes are code points); otherwise an encoding_rs single-byte set.
    let mut gr: Option<&'static Encoding> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x1b => {
                let esc = bytes.get(i + 1..)?;
                match esc {
                    [b'(', b'B', ..] => i += 3,
                    [b'-', f, ..] => {
                        gr = right_half(*f)?;
                        i += 3;
                    }
                    [b'%', b'G', rest @ ..] => {
                        let end = rest.windows(3).position(|w| w == b"\x1b%@").unwrap_or(rest.len());
                        out.push_str(std::str::from_utf8(&rest[..end]).ok()?);
                        i += 3 + end + if end < rest.len() { 3 } else { 0 };
                    }
                    _ => return None,
                }
            }
            0x9b => {
                // Direction: CSI 1 ], CSI 2 ], CSI ].
                match bytes.get(i + 1..)? {
                    [b'1' | b'2', b']', ..] => i += 3,
                    [b']', ..] => i += 2,
                    _ => return None,
                }
            }
            b'\t' | b'\n' | 0x20..=0x7e => {
                out.push(char::from(b));
                i += 1;
            }
            0xa0..=0xff => {
                match gr {
                    None => out.push(char::from(b)),
                    Some(enc) => {
                        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[i..=i]);
                        if had_errors {
                            return None;
                        }
                        out.push_str(&text);
                    }
                }
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The 96-character set an `ESC - F` sequence designates to GR; `Some(None)` is ISO 8859-1.
fn right_half(f: u8) -> Option<Option<&'static Encoding>> {
    Some(Some(match f {
        b'A' => return Some(None),
        b'B' => encoding_rs::ISO_8859_2,
        b'C' => encoding_rs::ISO_8859_3,
        b'D' => encoding_rs::ISO_8859_4,
        b'F' => encoding_rs::ISO_8859_7,
        b'G' => encoding_rs::ISO_8859_6,
        b'H' => encoding_rs::ISO_8859_8,
        b'L' => encoding_rs::ISO_8859_5,
        // ISO 8859-9's right half is windows-1254's (encoding_rs has no separate 8859-9).
        b'M' => encoding_rs::WINDOWS_1254,
        b'V' => encoding_rs::ISO_8859_10,
        b'Y' => encoding_rs::ISO_8859_13,
        b'_' => encoding_rs::ISO_8859_14,
        b'b' => encoding_rs::ISO_8859_15,
        b'f' => encoding_rs::ISO_8859_16,
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn utf8_segments_latin1_and_other_right_halves() {
        // What xterm sets for "Posteingang (3) — Gmail — Mozilla Firefox" (the em dash is not
        // Latin-1, so it goes into a UTF-8 segment).
        let raw = b"Posteingang (3) \x1b%G\xe2\x80\x94\x1b%@ Gmail \x1b%G\xe2\x80\x94\x1b%@ Mozilla Firefox";
        assert_eq!(decode(raw).as_deref(), Some("Posteingang (3) — Gmail — Mozilla Firefox"));
        assert_eq!(decode(b"Stra\xdfe").as_deref(), Some("Straße"), "GR starts as ISO 8859-1");
        assert_eq!(decode(b"\x1b-B\xb3\xf3d\xbc").as_deref(), Some("łódź"), "ISO 8859-2");
        assert_eq!(decode(b"\x1b-b\xa4").as_deref(), Some("€"), "ISO 8859-15");
        assert_eq!(decode(b"\x1b-L\xbf\xe0\xd8\xd2\xd5\xe2").as_deref(), Some("Привет"), "ISO 8859-5");
        assert_eq!(decode(b"\x9b1]abc\x9b]").as_deref(), Some("abc"), "direction markers");
        assert_eq!(decode(b"\x1b(Bplain").as_deref(), Some("plain"));
        assert_eq!(decode(b"\x1b%G\xc3\xa4").as_deref(), Some("ä"), "a segment running to the end");
    }

    #[test]
    fn what_cannot_be_read_exactly_is_unreadable() {
        for raw in [
            &b"\x1b$)A\xc4\xe3"[..],        // GB2312 (multi-byte)
            b"\x1b%/1\x80\x8aBIG5-0\x02xx", // extended segment
            b"\x1b%G\xff\x1b%@",            // broken UTF-8
            b"a\x01b",                      // stray control
            b"\x1b-Z\xa0",                  // unknown set
            b"\x1b",                        // cut short
            b"\x9b3]",                      // not a direction
        ] {
            assert_eq!(decode(raw), None, "{raw:?}");
        }
    }
}
