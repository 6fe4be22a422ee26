//! What the engine has seen: per-book counters, summed for the market.

/// Records applied, by Databento action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionCounts {
    /// `A` records.
    pub add: u64,
    /// `C` records.
    pub cancel: u64,
    /// `M` records.
    pub modify: u64,
    /// `R` records.
    pub clear: u64,
    /// `T` records.
    pub trade: u64,
    /// `F` records.
    pub fill: u64,
    /// `N` records.
    pub none: u64,
    /// Records with an action character outside the documented set (ignored).
    pub other: u64,
}

impl ActionCounts {
    /// Total records.
    pub fn total(&self) -> u64 {
        self.add
            + self.cancel
            + self.modify
            + self.clear
            + self.trade
            + self.fill
            + self.none
            + self.other
    }

    /// `(action code, count)` pairs, for metrics labels.
    pub fn by_code(&self) -> [(char, u64); 8] {
        [
            ('A', self.add),
            ('C', self.cancel),
            ('M', self.modify),
            ('R', self.clear),
            ('T', self.trade),
            ('F', self.fill),
            ('N', self.none),
            ('?', self.other),
        ]
    }

    fn add_assign(&mut self, o: &Self) {
        self.add += o.add;
        self.cancel += o.cancel;
        self.modify += o.modify;
        self.clear += o.clear;
        self.trade += o.trade;
        self.fill += o.fill;
        self.none += o.none;
        self.other += o.other;
    }
}

/// Counters kept by each book. Every anomaly the rules tolerate is counted here, so a partial
/// or suspicious book can always be explained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records by action.
    pub actions: ActionCounts,
    /// Cancels naming an order the book does not hold (ignored).
    pub unknown_cancels: u64,
    /// Modifies naming an order the book does not hold (applied as adds).
    pub unknown_modifies: u64,
    /// Adds naming an order id already resting (the old order is replaced).
    pub duplicate_adds: u64,
    /// Cancels for more than the order's remaining size (the order is removed).
    pub over_cancels: u64,
    /// `A`/`M` records that could not be applied: no side, undefined price, or zero size on an add.
    pub invalid_records: u64,
    /// Records flagged `F_TOB` or `F_MBP` (top-of-book / aggregated level).
    pub aggregated_records: u64,
    /// Records flagged `F_MAYBE_BAD_BOOK`.
    pub maybe_bad_records: u64,
    /// Records flagged `F_SNAPSHOT`.
    pub snapshot_records: u64,
    /// Event boundaries (records flagged `F_LAST`).
    pub boundaries: u64,
    /// Boundaries at which the book was crossed or locked (best bid ≥ best ask).
    pub crossed_boundaries: u64,
}

impl Counters {
    /// Adds `other` into `self` (market totals).
    pub fn accumulate(&mut self, other: &Counters) {
        self.actions.add_assign(&other.actions);
        self.unknown_cancels += other.unknown_cancels;
        self.unknown_modifies += other.unknown_modifies;
        self.duplicate_adds += other.duplicate_adds;
        self.over_cancels += other.over_cancels;
        self.invalid_records += other.invalid_records;
        self.aggregated_records += other.aggregated_records;
        self.maybe_bad_records += other.maybe_bad_records;
        self.snapshot_records += other.snapshot_records;
        self.boundaries += other.boundaries;
        self.crossed_boundaries += other.crossed_boundaries;
    }
}
