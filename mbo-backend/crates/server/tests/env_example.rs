//! `.env.example` documents every `MBO_*` variable the `mbo` command or `docker-compose.yaml`
//! reads, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("MBO_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if name.len() > 4 {
            out.insert(name.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

#[test]
fn env_example_lists_every_variable_the_code_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let example = std::fs::read_to_string(root.join(".env.example"))
        .expect(".env.example at the repository root");
    let documented = names(&example);
    let mut read = BTreeSet::new();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| l.contains("env = \"MBO_")) {
                read.extend(names(line));
            }
        }
    }
    assert!(read.len() >= 15, "found only {read:?}");
    // Compose reads its own settings (image, published ports) from the same `.env`: the
    // `${MBO_...}` interpolations of docker-compose.yaml.
    let compose = std::fs::read_to_string(root.join("docker-compose.yaml"))
        .expect("docker-compose.yaml at the repository root");
    let mut rest = compose.as_str();
    let mut from_compose = 0;
    while let Some(i) = rest.find("${MBO_") {
        let tail = &rest[i + 2..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &tail[name.len()..];
        read.insert(name);
        from_compose += 1;
    }
    assert!(
        from_compose > 0,
        "docker-compose.yaml interpolates no MBO_ variable"
    );
    let missing: Vec<_> = read.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&read).collect();
    assert!(
        missing.is_empty(),
        ".env.example does not document {missing:?}"
    );
    assert!(
        stale.is_empty(),
        ".env.example documents variables nothing reads: {stale:?}"
    );
}
