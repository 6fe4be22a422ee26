#!/usr/bin/env bash
# Recreates ../shared/data/mbo (the real Databento files the backend tests read) on a CI
# runner, from the public repositories and commits listed in its PROVENANCE.md, and checks
# every file against the sha256 recorded there. Used by .github/workflows/ci.yml (cached).
#   .github/scripts/fetch-test-data.sh DEST   (DEST = ../shared/data/mbo from the repo root)
set -euo pipefail
dest="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest/other-schemas"

# fetch REPO COMMIT PATH...: a blobless clone, then only the named files at that commit.
fetch() {
    local repo="$1" commit="$2"
    shift 2
    git clone --quiet --filter=blob:none --no-checkout "https://github.com/$repo.git" "$work/${repo//\//_}"
    git -C "$work/${repo//\//_}" checkout --quiet "$commit" -- "$@"
}

fetch hiibolt/mbo b6d31b2 mbo-backend/assets/CLX5_mbo.dbn
cp "$work/hiibolt_mbo/mbo-backend/assets/CLX5_mbo.dbn" "$dest/"

nt=tests/test_data/databento
na=crates/adapters/databento/test_data
fetch nautechsystems/nautilus_trader a95c8042 LICENSE \
    "$nt/esh4-glbx-mdp3-20231224.mbo.dbn.zst" "$nt/esh4-glbx-mdp3-20231225.mbo.dbn.zst" \
    "$nt/order_book_deltas_catalog/databento/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst" \
    "$na/test_data.mbp-10.dbn.zst" "$na/test_data.trades.dbn.zst"
src="$work/nautechsystems_nautilus_trader"
cp "$src/LICENSE" "$dest/nautilus_trader-LICENSE"
cp "$src/$nt/esh4-glbx-mdp3-20231224.mbo.dbn.zst" "$src/$nt/esh4-glbx-mdp3-20231225.mbo.dbn.zst" "$dest/"
cp "$src/$nt/order_book_deltas_catalog/databento/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst" \
    "$dest/esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst"
cp "$src/$na/test_data.mbp-10.dbn.zst" "$src/$na/test_data.trades.dbn.zst" "$dest/other-schemas/"

cd "$dest"
sha256sum --check --strict <<'SUMS'
5dc124ea0f1e9d87e2a05d0901e654a9551567b841a93ebfcf87a55ddb8f3edd  CLX5_mbo.dbn
f186e479ad0c381c40ef35384c4125d2088fb11f4ac31b0558da3fdaadb0317c  esh4-glbx-mdp3-20231224.mbo.dbn.zst
04597c542c1f0a9d0f6c5e8b73c7624db67d978061b42742b86e09ae608c0bc5  esh4-glbx-mdp3-20231225.mbo.dbn.zst
c1fa0e237978fddf325f3b67830635aeecfe89bb8c64eb63e9cdf71a2cdee56a  esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst
12cc762d20fb0190191f5f631cf229c5a2d0ad6fc52fb6a41346594c05e6284a  other-schemas/test_data.mbp-10.dbn.zst
0036503b694f1334227f7042a0887d608d75a88dd041548da30203433c12f1e5  other-schemas/test_data.trades.dbn.zst
SUMS
