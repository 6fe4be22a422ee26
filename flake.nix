# Nix: a development shell with everything `make test` uses, and the `mbo` binary as a
# package.
#   nix develop            # shell: Rust (with clippy, rustfmt), Node 22, SQLite, Prometheus,
#                          # the ops validators
#   nix build              # ./result/bin/mbo
#   nix run . -- serve     # the simulator on http://127.0.0.1:8080/
#
# flake.lock is not committed yet: writing it needs network access to resolve nixpkgs, which
# the machine this was written on does not have. The first `nix develop` or `nix flake lock`
# creates it; commit it then so every machine gets the same nixpkgs. `make test-ops` checks
# that this file parses (nix-instantiate --parse); it cannot evaluate it without nixpkgs.
{
  description = "mbo: exact L3 order books from Databento MBO data, served over SSE";

  inputs = {
    # A release branch, so the toolchain moves only with deliberate lock updates.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        cargoToml = builtins.fromTOML (builtins.readFile ./mbo-backend/Cargo.toml);
        mbo = pkgs.rustPlatform.buildRustPackage {
          pname = "mbo";
          version = cargoToml.workspace.package.version;
          src = ./mbo-backend;
          # The committed lockfile pins every crate; Nix fetches them by its hashes.
          cargoLock.lockFile = ./mbo-backend/Cargo.lock;
          cargoBuildFlags = [ "--package" "mbo-server" ];
          # The tests need the real Databento files outside the repository (../shared).
          doCheck = false;
          meta = {
            description = "Exact market-by-order order books over HTTP and SSE";
            license = pkgs.lib.licenses.asl20;
            mainProgram = "mbo";
          };
        };
      in
      {
        packages.default = mbo;
        packages.mbo = mbo;

        apps.default = flake-utils.lib.mkApp { drv = mbo; };

        devShells.default = pkgs.mkShell {
          inputsFrom = [ mbo ];
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            nodejs_22
            sqlite
            prometheus
            jq
            python3
            # Validators, to run by hand; `make test-ops` still installs its pinned PyPI
            # versions into a venv so its results match CI's.
            docker-compose
            hadolint
            kubectl
            check-jsonschema
          ]
          # The end-to-end test drives Chromium through playwright-core (no browser download).
          ++ pkgs.lib.optionals pkgs.stdenv.isLinux [ chromium ];
          shellHook = ''
            echo "mbo dev shell: make run | make test | make test-ops"
          '';
        };
      });
}
