#!/usr/bin/env bash
# Recreates ../shared/data (mbo/: the real Databento files; crypto/: the recorded exchange
# frames) on a CI runner, from the public repositories and commits listed in their
# PROVENANCE.md files, and checks every file against its sha256. Used by
# .github/workflows/ci.yml (cached).
#   .github/scripts/fetch-test-data.sh DEST   (DEST = ../shared/data from the repo root)
set -euo pipefail
root="$1"
dest="$root/mbo"
crypto="$root/crypto"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest/other-schemas" "$crypto"/{binance,bybit,kraken,coinbase}

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

# The crypto recordings (../shared/data/crypto/PROVENANCE.md).
fetch bmoscon/cryptofeed ce58c2a0015040aa2271e80bac783d74fa2cdcff \
    sample_data/BINANCE.http.0.0 sample_data/BINANCE.ws.1.0 \
    sample_data/BINANCE_US.http.0.0 sample_data/BINANCE_US.ws.1.0 \
    sample_data/BINANCE_FUTURES.http.0.0 sample_data/BINANCE_FUTURES.ws.1.0 \
    sample_data/KRAKEN.ws.48.0 sample_data/KRAKEN.ws.50.0 sample_data/COINBASE.ws.28.0
cf="$work/bmoscon_cryptofeed/sample_data"
for f in BINANCE.http.0.0 BINANCE.ws.1.0 BINANCE_US.http.0.0 BINANCE_US.ws.1.0 \
    BINANCE_FUTURES.http.0.0 BINANCE_FUTURES.ws.1.0; do
    cp "$cf/$f" "$crypto/binance/cryptofeed_$f"
done
cp "$cf/KRAKEN.ws.48.0" "$crypto/kraken/cryptofeed_KRAKEN.ws.48.0"
cp "$cf/KRAKEN.ws.50.0" "$crypto/kraken/cryptofeed_KRAKEN.ws.50.0"
cp "$cf/COINBASE.ws.28.0" "$crypto/coinbase/cryptofeed_COINBASE.ws.28.0"

fetch btschwertfeger/python-kraken-sdk 90cf23d9fc744909f8092ae92c606ab34fad07f6 \
    tests/spot/fixture/orderbook-v1.json tests/spot/fixture/orderbook-v2.json
kf="$work/btschwertfeger_python-kraken-sdk/tests/spot/fixture"
cp "$kf/orderbook-v1.json" "$crypto/kraken/python-kraken-sdk_orderbook-v1.json"
cp "$kf/orderbook-v2.json" "$crypto/kraken/python-kraken-sdk_orderbook-v2.json"

nr=tests/integration_tests/adapters/binance/resources/ws_messages/ws_spot_trade.json
git -C "$src" checkout --quiet a95c8042 -- tests/test_data/bybit/xrpusdt-ob500.data.zip "$nr"
cp "$src/$nr" "$crypto/binance/nautilus_ws_spot_trade.json"
mkdir -p "$work/bybit"
python3 -m zipfile -e "$src/tests/test_data/bybit/xrpusdt-ob500.data.zip" "$work/bybit"
# The archive holds the one JSON-lines file.
find "$work/bybit" -type f -name '*.data' -exec mv {} "$crypto/bybit/nautilus_2024-12-01_XRPUSDT_ob500.data" \;

(cd "$crypto" && sha256sum --check --strict <<'SUMS'
f482e6ea64cb2cbbf2ea6d038f509d9587720631f4287747d2edc480e880c21d  binance/cryptofeed_BINANCE.http.0.0
5ba2e0cc8204e49dff3d4c608dbb1c3cacc06d432d910ccc31f6b94136bfa5d2  binance/cryptofeed_BINANCE.ws.1.0
f915730e1b592f8bdc2f414012bea69ac5b55377254275e8143773e260f641d7  binance/cryptofeed_BINANCE_FUTURES.http.0.0
e1aa90106a893e362e404ec9abb6231c5e494a68dc8a3f8a75c682342aa60d5c  binance/cryptofeed_BINANCE_FUTURES.ws.1.0
5c43b120b5a03a67f4681975b1ec2ac5cb52ffe027a9ad19f995c9e7248f0470  binance/cryptofeed_BINANCE_US.http.0.0
02b24e620a776d59fd08ed331ac27d810dc191b3ac1d57a924340be87d007987  binance/cryptofeed_BINANCE_US.ws.1.0
6800fea838e3960b193edf67cfba90166f77922298704319159ab13995daf53a  binance/nautilus_ws_spot_trade.json
8c6cfb34c534366ee7f61c3b86af3cc6918214d51c8738f5546f7c420b4aeb33  bybit/nautilus_2024-12-01_XRPUSDT_ob500.data
5e21a4137037297a150eeaaf9ee133d41e658058509579232a362f4f0528398d  kraken/cryptofeed_KRAKEN.ws.48.0
b7faccd1f457a11fd39de563500369a18b7c7e159e8725497a36ad66136907cb  kraken/cryptofeed_KRAKEN.ws.50.0
d72562be599054a2031bc10623f5dfacfe250addfdccaae4f5815c924e0d4a2b  kraken/python-kraken-sdk_orderbook-v1.json
65dfd56fe3517165b1dfd72b226abbae1be19caa2371166fed36ee190867e3d3  kraken/python-kraken-sdk_orderbook-v2.json
8b2afe9b69ed0cf5b5eb6c36a82015a25cfa8aaee83379ac9588961b7b5ae8e9  coinbase/cryptofeed_COINBASE.ws.28.0
SUMS
)

cd "$dest"
sha256sum --check --strict <<'SUMS'
5dc124ea0f1e9d87e2a05d0901e654a9551567b841a93ebfcf87a55ddb8f3edd  CLX5_mbo.dbn
f186e479ad0c381c40ef35384c4125d2088fb11f4ac31b0558da3fdaadb0317c  esh4-glbx-mdp3-20231224.mbo.dbn.zst
04597c542c1f0a9d0f6c5e8b73c7624db67d978061b42742b86e09ae608c0bc5  esh4-glbx-mdp3-20231225.mbo.dbn.zst
c1fa0e237978fddf325f3b67830635aeecfe89bb8c64eb63e9cdf71a2cdee56a  esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst
12cc762d20fb0190191f5f631cf229c5a2d0ad6fc52fb6a41346594c05e6284a  other-schemas/test_data.mbp-10.dbn.zst
0036503b694f1334227f7042a0887d608d75a88dd041548da30203433c12f1e5  other-schemas/test_data.trades.dbn.zst
SUMS
