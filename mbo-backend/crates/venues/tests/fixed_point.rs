//! Fixed-point parse/print round trips (property tests) and print-back of real levels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use mbo_venues::fixtures::read_cryptofeed_http;
use mbo_venues::{
    format_price, parse_price, parse_qty, L2Book, Qty, Side, VenueKind, VenueOptions,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any price text with at most 9 decimals that fits i64 prints back identically.
    #[test]
    fn price_round_trip(int in 0u64..9_000_000_000, frac in 0u64..1_000_000_000, decimals in 0usize..=9, neg in any::<bool>()) {
        let frac_text = format!("{frac:09}");
        let text = if decimals == 0 {
            format!("{}{int}", if neg { "-" } else { "" })
        } else {
            format!("{}{int}.{}", if neg { "-" } else { "" }, &frac_text[..decimals])
        };
        let (p, d) = parse_price(&text).unwrap();
        prop_assert_eq!(usize::from(d), decimals);
        let back = format_price(p, d);
        // "-0" and "-0.000" print without the sign.
        let expected = if p == 0 { text.trim_start_matches('-').to_owned() } else { text.clone() };
        prop_assert_eq!(back, expected);
    }

    /// Any size text with up to 18 decimals and an integer part up to 3e20 (beyond any token
    /// supply) prints back identically.
    #[test]
    fn qty_round_trip(int in any::<u64>(), int_hi in 0u64..3, frac in any::<u64>(), decimals in 0usize..=18) {
        let frac_text = format!("{:018}", u128::from(frac) * 1000 % 10u128.pow(18));
        let int_text = if int_hi == 0 { int.to_string() } else { format!("{int_hi}{int:020}") };
        let text = if decimals == 0 { int_text } else { format!("{int_text}.{}", &frac_text[..decimals]) };
        let (q, d) = parse_qty(&text).unwrap();
        prop_assert_eq!(q.format(d), text);
    }

    /// Parsing never panics on arbitrary text.
    #[test]
    fn parse_arbitrary(s in ".{0,60}") {
        let _ = parse_price(&s);
        let _ = parse_qty(&s);
    }

    /// Exactness: a + b computed in fixed point equals the parse of the decimal sum.
    #[test]
    fn qty_sum_exact(a in 0u64..u64::MAX, b in 0u64..u64::MAX) {
        let qa = parse_qty(&format!("0.{a:019}")[..20]).unwrap().0;
        let qb = parse_qty(&format!("0.{b:019}")[..20]).unwrap().0;
        let sum = qa.checked_add(qb).unwrap();
        prop_assert_eq!(sum, Qty(qa.0 + qb.0));
    }
}

#[test]
fn binance_snapshot_levels_print_back_exactly() {
    let text = common::read("binance/cryptofeed_BINANCE.http.0.0");
    let snaps = read_cryptofeed_http(&text).unwrap();
    for s in &snaps {
        let mut v = VenueKind::Binance.create(&VenueOptions::default());
        let mut out = Vec::new();
        v.on_rest_snapshot(&s.symbol, s.body, &mut out);
        let book: &L2Book = &v.books().get(&s.symbol).unwrap().book;
        let json: serde_json::Value = serde_json::from_str(s.body).unwrap();
        for (key, side) in [("bids", Side::Bid), ("asks", Side::Ask)] {
            let want: Vec<(String, String)> = json[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l[0].as_str().unwrap().to_owned(),
                        l[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let got: Vec<(String, String)> = book
                .levels(side)
                .map(|l| (l.price_text(), l.qty_text()))
                .collect();
            assert_eq!(got, want, "{} {key}", s.symbol);
        }
    }
}
