//! Order side.

/// The side of the book an order rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    /// Buy orders (Databento `B`).
    Bid = b'B',
    /// Sell orders (Databento `A`).
    Ask = b'A',
}

impl Side {
    /// Parses Databento's side character (`B` or `A`); `N` and anything else give `None`.
    #[inline]
    pub fn from_c_char(c: std::ffi::c_char) -> Option<Self> {
        match c as u8 {
            b'B' => Some(Side::Bid),
            b'A' => Some(Side::Ask),
            _ => None,
        }
    }

    /// The ASCII code Databento uses for this side.
    #[inline]
    pub fn as_char(self) -> char {
        self as u8 as char
    }

    /// The other side.
    #[inline]
    pub fn opposite(self) -> Self {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Bid => "B",
            Side::Ask => "A",
        })
    }
}
